"""Unit tests of rules/load.py: the schema, every operator, and errors that name file:line:column."""

from __future__ import annotations

import pickle
import re
import textwrap
from pathlib import Path

import pytest

import pytest_dicomqc
from pytest_dicomqc.rules.evaluate import Facts, evaluate_rule
from pytest_dicomqc.rules.load import RulesError, load_rules, parse_rules
from pytest_dicomqc.rules.model import FILE, PIXEL, TAG, Check, Condition, NonDicomPolicy, RuleSet, Target
from pytest_dicomqc.rules.regex import Regex

SOURCE = "rules.yaml"
ROWS = Target(TAG, "Rows", 0x00280010)
MODALITY = Target(TAG, "Modality", 0x00080060)


def parse(text: str) -> RuleSet:
    return parse_rules(textwrap.dedent(text), SOURCE)


def parse_error(text: str) -> str:
    with pytest.raises(RulesError) as excinfo:
        parse(text)
    return str(excinfo.value)


def one_rule(body: str) -> str:
    """A rules file holding one rule whose keys (4-space indented) start on line 4."""
    return "version: 1\nrules:\n  - id: only\n" + textwrap.indent(textwrap.dedent(body), "    ")


# --- valid files ------------------------------------------------------------------------------

EVERY_OPERATOR = """\
version: 1
non_dicom: fail
columns: [PatientID, "(0018,0050)"]
rules:
  - id: r-equals
    description: CT only
    tag: Modality
    equals: CT
  - id: r-equals-list
    tag: ImageType
    equals: [ORIGINAL, PRIMARY]
  - id: r-in
    tag: VOILUTFunction
    in: [LINEAR, SIGMOID]
    allow_missing: true
  - id: r-not-in
    tag: Modality
    not_in: [SC, OT]
  - id: r-contains
    tag: ImageType
    contains: ORIGINAL
  - id: r-not-contains
    tag: ImageType
    not_contains: LOCALIZER
  - id: r-matches
    tag: SOPInstanceUID
    matches: '[0-9.]+'
  - id: r-min
    pixel: rows
    min: 64
  - id: r-max
    pixel: max
    max: 4095.5
  - id: r-range
    tag: RescaleSlope
    range: [0.5, 2]
  - id: r-present
    file: transfer_syntax
    present: true
    severity: warning
    message: "{id}: {observed}"
"""


@pytest.fixture(scope="module")
def every_operator() -> RuleSet:
    return parse_rules(EVERY_OPERATOR, SOURCE)


def test_every_operator_loads_with_its_operand(every_operator: RuleSet) -> None:
    checks = {rule.id: (rule.check.operator, rule.check.operand) for rule in every_operator.rules}
    assert checks == {
        "r-equals": ("equals", "CT"),
        "r-equals-list": ("equals", ("ORIGINAL", "PRIMARY")),
        "r-in": ("in", ("LINEAR", "SIGMOID")),
        "r-not-in": ("not_in", ("SC", "OT")),
        "r-contains": ("contains", "ORIGINAL"),
        "r-not-contains": ("not_contains", "LOCALIZER"),
        "r-matches": ("matches", Regex("[0-9.]+")),
        "r-min": ("min", 64),
        "r-max": ("max", 4095.5),
        "r-range": ("range", (0.5, 2)),
        "r-present": ("present", True),
    }


def test_every_operator_targets(every_operator: RuleSet) -> None:
    targets = {rule.id: rule.target for rule in every_operator.rules}
    assert targets["r-equals"] == MODALITY
    assert targets["r-equals-list"] == Target(TAG, "ImageType", 0x00080008)
    assert targets["r-min"] == Target(PIXEL, "rows")
    assert targets["r-max"] == Target(PIXEL, "max")
    assert targets["r-range"] == Target(TAG, "RescaleSlope", 0x00281053)
    assert targets["r-present"] == Target(FILE, "transfer_syntax")


def test_rule_attributes_and_defaults(every_operator: RuleSet) -> None:
    rules = {rule.id: rule for rule in every_operator.rules}
    assert [rule.id for rule in every_operator.rules] == list(rules)  # file order kept
    assert len(rules) == 11
    assert rules["r-equals"].description == "CT only"
    assert rules["r-equals"].severity == "error"
    assert rules["r-equals"].allow_missing is False
    assert rules["r-equals"].when == ()
    assert rules["r-equals"].message == ""
    assert rules["r-equals"].line == 5
    assert rules["r-in"].allow_missing is True
    assert rules["r-present"].severity == "warning"
    assert rules["r-present"].message == "{id}: {observed}"
    assert rules["r-present"].line == 37


def test_top_level_options(every_operator: RuleSet) -> None:
    assert every_operator.source == SOURCE
    assert every_operator.non_dicom == NonDicomPolicy(default="fail")
    assert every_operator.columns == (Target(TAG, "PatientID", 0x00100020), Target(TAG, "(0018,0050)", 0x00180050))


def test_ruleset_tags_cover_rules_conditions_and_columns(every_operator: RuleSet) -> None:
    assert every_operator.tags == frozenset(
        {0x00080060, 0x00080008, 0x00281056, 0x00080018, 0x00281053, 0x00100020, 0x00180050}
    )


def test_defaults_when_options_are_absent() -> None:
    ruleset = parse("version: 1\nrules: []\n")
    assert ruleset == RuleSet(source=SOURCE, rules=(), columns=(), non_dicom=NonDicomPolicy())


@pytest.mark.parametrize(
    ("written", "expected"),
    [("", 1), ("min_dicom_files: 0\n", 0), ("min_dicom_files: 250\n", 250)],
    ids=["default", "zero", "250"],
)
def test_min_dicom_files(written: str, expected: int) -> None:
    ruleset = parse("version: 1\n" + written + "rules: []\n")
    assert ruleset.min_dicom_files == expected
    assert type(ruleset.min_dicom_files) is int  # not the loader's int that remembers its spelling


@pytest.mark.parametrize(("written", "shown"), [("-1", "-1"), ("true", "True"), ("2.5", "2.5"), ('"3"', "'3'")])
def test_min_dicom_files_errors(written: str, shown: str) -> None:
    assert parse_error(f"version: 1\nrules: []\nmin_dicom_files: {written}\n") == (
        f"rules.yaml:3:18: 'min_dicom_files' must be a whole number of files >= 0, not {shown}"
    )


def test_min_dicom_files_misspelt() -> None:
    assert parse_error("version: 1\nrules: []\nmin_dicom_file: 1\n") == (
        "rules.yaml:3:1: unknown top-level key 'min_dicom_file' (did you mean 'min_dicom_files'?)"
    )


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("Rows", "Rows"),
        ('"(0028,0010)"', "(0028,0010)"),
        ('"00280010"', "(0028,0010)"),
        ("00280010", "(0028,0010)"),  # unquoted: YAML keeps it text because of the 8
        ('"0028,0010"', "(0028,0010)"),
        ("0028,0010", "(0028,0010)"),
        ('"(0028, 0010)"', "(0028,0010)"),
    ],
)
def test_tag_spellings(spelling: str, name: str) -> None:
    ruleset = parse(one_rule(f"tag: {spelling}\nmin: 1\n"))
    assert ruleset.rules[0].target == Target(TAG, name, 0x00280010)


def test_hex_tag_is_upper_cased() -> None:
    ruleset = parse(one_rule('tag: "(0029,10ab)"\npresent: true\n'))
    assert ruleset.rules[0].target == Target(TAG, "(0029,10AB)", 0x002910AB)


def test_unquoted_tag_of_octal_digits_is_not_misread() -> None:
    # PatientName; every digit is 0-7, so PyYAML resolves the scalar as an octal integer.
    ruleset = parse(one_rule("tag: 00100010\npresent: true\n"))
    assert ruleset.rules[0].target.tag == 0x00100010


@pytest.mark.parametrize(
    ("when", "conditions"),
    [
        ("{Modality: [CT, MR]}", (Condition(MODALITY, Check("in", ("CT", "MR"))),)),
        ("{Modality: CT}", (Condition(MODALITY, Check("equals", "CT")),)),
        ("{PixelData: {present: true}}", (Condition(Target(TAG, "PixelData", 0x7FE00010), Check("present", True)),)),
        ("{rows: {min: 256}}", (Condition(Target(PIXEL, "rows"), Check("min", 256)),)),
        ("{kind: dicom}", (Condition(Target(FILE, "kind"), Check("equals", "dicom")),)),
        (
            '{"(0008,0060)": {not_in: [SC]}, BitsStored: 12}',
            (
                Condition(Target(TAG, "(0008,0060)", 0x00080060), Check("not_in", ("SC",))),
                Condition(Target(TAG, "BitsStored", 0x00280101), Check("equals", 12)),
            ),
        ),
    ],
)
def test_when_forms(when: str, conditions: tuple[Condition, ...]) -> None:
    ruleset = parse(one_rule(f"tag: Rows\nmin: 1\nwhen: {when}\n"))
    assert ruleset.rules[0].when == conditions


def test_when_block_mapping_form() -> None:
    ruleset = parse(one_rule("tag: Rows\nmin: 1\nwhen:\n  Modality:\n    - CT\n  rows:\n    range: [1, 9]\n"))
    assert ruleset.rules[0].when == (
        Condition(MODALITY, Check("in", ("CT",))),
        Condition(Target(PIXEL, "rows"), Check("range", (1, 9))),
    )
    assert ruleset.tags == frozenset({0x00280010, 0x00080060})


def test_packaged_default_rules_load() -> None:
    path = Path(pytest_dicomqc.__file__).parent / "rules.yaml"
    ruleset = load_rules(path)
    assert [rule.id for rule in ruleset.rules] == [
        "original-image",
        "voi-lut-function",
        "pixel-dtype-ct-mr",
        "pixel-dtype-xray",
    ]
    assert ruleset.source == str(path)
    assert ruleset.non_dicom == NonDicomPolicy()
    assert ruleset.min_dicom_files == 1


def test_load_rules_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(one_rule("tag: Modality\nequals: CT\n"), encoding="utf-8")
    ruleset = load_rules(path)
    assert ruleset.source == str(path)
    assert ruleset.rules[0].check == Check("equals", "CT")


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            one_rule("tag: ImageType\ncontain: ORIGINAL\n"),
            "rules.yaml:5:5: unknown rule key 'contain' (did you mean 'contains'?)",
            id="operator-typo",
        ),
        pytest.param(
            one_rule("tag: ImageTyp\ncontains: ORIGINAL\n"),
            "rules.yaml:4:10: unknown DICOM keyword 'ImageTyp' (did you mean 'ImageType'?)",
            id="keyword-typo",
        ),
        pytest.param(
            one_rule("tag: Rows\nmin: 1\nwhen: {Modality: {contain: CT}}\n"),
            "rules.yaml:6:23: unknown operator 'contain' (did you mean 'contains'?)",
            id="when-operator-typo",
        ),
        pytest.param(
            one_rule("pixel: dtyp\nin: [uint8]\n"),
            "rules.yaml:4:12: unknown pixel field 'dtyp' (did you mean 'dtype'?); "
            "known: rows, columns, frames, samples_per_pixel, dtype, mean, min, max",
            id="pixel-field-typo",
        ),
        pytest.param(
            "version: 1\nrules:\n  - id: a\n    tag: Rows\n    min: 1\n  - id: a\n    tag: Rows\n    max: 9\n",
            "rules.yaml:6:9: duplicate rule id 'a'",
            id="duplicate-id",
        ),
        pytest.param(
            one_rule("tag: Rows\nmin: 1\nmax: 9\n"),
            "rules.yaml:3:5: rule 'only' needs exactly one operator (equals, in, not_in, contains, not_contains, "
            "contains_any, contains_all, matches, glob, min, max, range, tolerance, present); found min, max",
            id="two-operators",
        ),
        pytest.param(
            one_rule("tag: Rows\n"),
            "rules.yaml:3:5: rule 'only' needs exactly one operator (equals, in, not_in, contains, not_contains, "
            "contains_any, contains_all, matches, glob, min, max, range, tolerance, present); found none",
            id="no-operator",
        ),
        pytest.param(
            one_rule("description: no target\nmin: 1\n"),
            "rules.yaml:3:5: rule 'only' needs exactly one of 'tag', 'pixel', 'file'",
            id="no-target",
        ),
        pytest.param(
            one_rule("tag: Rows\npixel: rows\nmin: 1\n"),
            "rules.yaml:3:5: rule 'only' needs exactly one of 'tag', 'pixel', 'file'",
            id="two-targets",
        ),
        pytest.param(
            one_rule("tag: Rows\nmin: 1\nseverity: fatal\n"),
            "rules.yaml:6:15: 'severity' must be 'error' or 'warning', not 'fatal'",
            id="bad-severity",
        ),
        pytest.param(
            one_rule("tag: Rows\nrange: [5, 1]\n"),
            "rules.yaml:5:12: 'range' low 5 is above high 1",
            id="range-reversed",
        ),
        pytest.param(
            one_rule("tag: Rows\nrange: [1, 2, 3]\n"),
            "rules.yaml:5:12: 'range' needs two numbers: [low, high]",
            id="range-three-numbers",
        ),
        pytest.param(
            one_rule("tag: SOPInstanceUID\nmatches: '[unclosed'\n"),
            "rules.yaml:5:14: invalid regular expression '[unclosed': unterminated character set at position 0",
            id="invalid-regex",
        ),
        pytest.param(
            one_rule("tag: Modality\nin: []\n"),
            "rules.yaml:5:9: 'in' needs a non-empty list of values",
            id="empty-in",
        ),
        pytest.param(
            one_rule("tag: Modality\nnot_in: CT\n"),
            "rules.yaml:5:13: 'not_in' needs a non-empty list of values",
            id="not-in-scalar",
        ),
        pytest.param(
            one_rule("tag: Rows\nmin: '1'\n"),
            "rules.yaml:5:10: 'min' needs a number, not '1'",
            id="min-text",
        ),
        pytest.param(
            one_rule("tag: Rows\npresent: 1\n"),
            "rules.yaml:5:14: 'present' needs true or false",
            id="present-not-bool",
        ),
        pytest.param(
            one_rule("tag: ImageType\ncontains: [A, B]\n"),
            "rules.yaml:5:15: 'contains' needs a single value",
            id="contains-list",
        ),
        pytest.param(
            one_rule("tag: Rows\nequals: {a: 1}\n"),
            "rules.yaml:5:13: 'equals' needs a value or a list of values",
            id="equals-mapping",
        ),
        pytest.param(
            one_rule("tag: Rows\nmin: 1\nallow_missing: sometimes\n"),
            "rules.yaml:6:20: 'allow_missing' must be true or false",
            id="allow-missing-not-bool",
        ),
        pytest.param(
            one_rule("tag: Rows\nmin: 1\nwhen: [Modality]\n"),
            "rules.yaml:6:11: 'when' must be a mapping of tag or pixel field to condition",
            id="when-list",
        ),
        pytest.param(
            one_rule("tag: Rows\nmin: 1\ndescription: [a]\n"),
            "rules.yaml:6:18: 'description' must be text",
            id="description-not-text",
        ),
        pytest.param("rules: []\n", "rules.yaml:1:1: 'version: 1' is required", id="missing-version"),
        pytest.param("version: 2\nrules: []\n", "rules.yaml:1:10: 'version: 1' is required", id="version-2"),
        pytest.param("version: 1\n", "rules.yaml:1:1: 'rules' must be a list of rules", id="missing-rules"),
        pytest.param("version: 1\nrules: {}\n", "rules.yaml:2:8: 'rules' must be a list of rules", id="rules-mapping"),
        pytest.param(
            "version: 1\nrule: []\n",
            "rules.yaml:2:1: unknown top-level key 'rule' (did you mean 'rules'?)",
            id="unknown-top-level-key",
        ),
        pytest.param(
            "version: 1\nnon_dicom: maybe\nrules: []\n",
            "rules.yaml:2:12: 'non_dicom' must be one of skip, fail, pass, or a mapping with 'default'",
            id="non-dicom-maybe",
        ),
        pytest.param(
            "version: 1\ncolumns: [PatientID, Foo]\nrules: []\n",
            "rules.yaml:2:10: unknown DICOM keyword 'Foo'",
            id="unknown-column",
        ),
        pytest.param(
            "version: 1\nrules:\n  - id: a\n    tag: Rows\n   min: 1\n",
            "rules.yaml:5:4: invalid YAML: expected <block end>, but found '<block mapping start>'",
            id="yaml-syntax",
        ),
        pytest.param(
            one_rule("tag: Rows\nmin: 1\nmin: 2\n"),
            "rules.yaml:6:5: invalid YAML: duplicate key 'min'",
            id="yaml-duplicate-key",
        ),
    ],
)
def test_error_message(text: str, expected: str) -> None:
    assert parse_error(text) == expected


@pytest.mark.parametrize("bad_id", ["Upper", "under_score", "-leading-dash", "sp ace", "12", "''", "[a]"])
def test_bad_rule_id(bad_id: str) -> None:
    message = parse_error(one_rule("tag: Rows\nmin: 1\n").replace("id: only", f"id: {bad_id}"))
    assert message == "rules.yaml:3:9: rule 'id' must be lowercase letters, digits and '-'"


def test_missing_rule_id_points_at_the_rule() -> None:
    message = parse_error("version: 1\nrules:\n  - tag: Rows\n    min: 1\n")
    assert message == "rules.yaml:3:5: rule 'id' must be lowercase letters, digits and '-'"


def test_python_object_tag_is_rejected_and_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    text = f'version: 1\nrules: !!python/object/apply:os.system ["touch {marker}"]\n'
    message = parse_error(text)
    assert message.startswith("rules.yaml:2:8: invalid YAML: could not determine a constructor for the tag ")
    assert "python/object/apply:os.system" in message
    assert not marker.exists()


@pytest.mark.parametrize("payload", ["!!python/name:os.system", "!!python/object/new:os.system [echo]"])
def test_other_python_tags_are_rejected(payload: str) -> None:
    assert parse_error(f"version: 1\nrules: {payload}\n").startswith("rules.yaml:2:8: invalid YAML: ")


def test_scalar_rule_error_names_line_and_column() -> None:
    message = parse_error("version: 1\nrules:\n  - original-image\n")
    assert message.startswith("rules.yaml:3:5: ")


def test_message_with_unknown_placeholder_is_rejected_at_load() -> None:
    message = parse_error(one_rule("tag: Rows\nmin: 1\nmessage: 'too small: {rows}'\n"))
    assert message.startswith("rules.yaml:6:")


def test_every_error_message_starts_with_source_line_column() -> None:
    # The pytest layer relies on this shape to print one ERROR line naming the place.
    message = parse_error(one_rule("tag: ImageTyp\ncontains: ORIGINAL\n"))
    assert re.match(r"rules\.yaml:\d+:\d+: ", message)


def test_load_rules_error_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "custom.yaml"
    path.write_text(one_rule("tag: Modality\ncontain: CT\n"), encoding="utf-8")
    with pytest.raises(RulesError) as excinfo:
        load_rules(path)
    assert str(excinfo.value) == f"{path}:5:5: unknown rule key 'contain' (did you mean 'contains'?)"


def test_load_rules_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(RulesError) as excinfo:
        load_rules(path)
    assert str(excinfo.value) == f"{path}: cannot read rules file: No such file or directory"


def test_load_rules_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\nrules: []\n# caf\xe9\n")
    with pytest.raises(RulesError) as excinfo:
        load_rules(path)
    assert str(excinfo.value) == f"{path}: rules file is not UTF-8 text: invalid continuation byte at byte 26"


@pytest.mark.parametrize("word", ["NO", "YES", "ON", "OFF", "no", "y"])
def test_yaml_1_1_booleans_stay_text(word: str) -> None:
    # BurnedInAnnotation is "YES"/"NO" in DICOM; YAML 1.1 would read both as booleans
    ruleset = parse(one_rule(f"tag: BurnedInAnnotation\nequals: {word}\nwhen: {{Modality: {word}}}\n"))
    rule = ruleset.rules[0]
    assert (rule.check.operand, rule.when[0].check.operand) == (word, word)


def test_true_and_false_are_still_booleans() -> None:
    rule = parse(one_rule("tag: Rows\npresent: True\nallow_missing: false\n")).rules[0]
    assert (rule.check.operand, rule.allow_missing) == (True, False)


@pytest.mark.parametrize("template", ["bad {observed.foo}", "bad {observed[0]}", "{nope}", "{", "{0}"])
def test_broken_message_template_is_a_load_error(template: str) -> None:
    message = parse_error(one_rule(f"tag: Rows\nmin: 1\nmessage: '{template}'\n"))
    assert message.startswith("rules.yaml:6:14: 'message' has an unknown or broken placeholder")
    assert message.endswith("known: {id}, {target}, {observed}, {expected}")


def test_format_spec_on_target_works() -> None:
    rule = parse(one_rule("tag: Rows\nmin: 64\nmessage: '[{target:>6}] {observed} < 64'\n")).rules[0]
    assert evaluate_rule(rule, Facts(tags={0x00280010: 32}))[1].message == "[  Rows] 32 < 64"


@pytest.mark.parametrize("rule_id", ["dtype", "status", "path", "rows", "notes", "mean"])
def test_rule_id_may_not_be_a_report_column(rule_id: str) -> None:
    text = f"version: 1\nrules:\n  - id: {rule_id}\n    tag: Rows\n    min: 1\n"
    assert parse_error(text) == f"rules.yaml:3:9: rule id {rule_id!r} is a column of the report; choose another"


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        (r"(?P<x>a)(?P=x)", "named backreferences (?P=…) are not supported"),
        (r"(?>a)", "atomic groups (?>…) are not supported"),
        (r"(a)?(?(1)b|c)", "conditional groups (?(…) are not supported"),
        (r"a\Z", r"\Z (RE2 writes the end of the text \z) is not supported"),
        (r"(?x) a", "the flag (?x) is not supported, only i, m, s and U"),
    ],
)
def test_a_construct_re2_lacks_is_named(pattern: str, problem: str) -> None:
    with pytest.raises(RulesError) as excinfo:
        parse_rules(one_rule(f"tag: Modality\nmatches: '{pattern}'\n"), "rules.yaml")
    assert (
        str(excinfo.value)
        == f"rules.yaml:5:14: invalid regular expression {pattern!r}: {problem} (RE2 syntax, linear time)"
    )


def test_a_loaded_pattern_survives_pickling() -> None:
    """Reading processes get the rules pickled: the pattern arrives compiled the same way."""
    check = parse_rules(one_rule("tag: Modality\nmatches: 'C[TR]'\n"), "rules.yaml").rules[0].check
    copy = pickle.loads(pickle.dumps(check))
    assert copy == check
    assert copy.operand.fullmatch("CT") and not copy.operand.fullmatch("CTX")
