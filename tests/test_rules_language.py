"""The operators added for data managers, selectors, thresholds, waivers and rule examples, unit by unit."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from pytest_dicomqc.conclusion import Scope, conclude
from pytest_dicomqc.record import FAIL, NOT_APPLICABLE, PASS, WAIVED, WARN, FileRecord, ReportRow, Value
from pytest_dicomqc.rules.evaluate import Facts, evaluate, holds
from pytest_dicomqc.rules.globs import glob_matches
from pytest_dicomqc.rules.limits import MAX_RULES_BYTES
from pytest_dicomqc.rules.load import RulesError, load_rules, load_waivers, parse_rules
from pytest_dicomqc.rules.model import Check, NonDicomPolicy, RuleSet, Threshold, Waiver
from pytest_dicomqc.rules.regex import Regex

IMAGE_TYPE = 0x00080008
PIXEL_SPACING = 0x00280030
TODAY = dt.date(2026, 11, 25)


def load(text: str) -> RuleSet:
    return parse_rules(textwrap.dedent(text), "rules.yaml", TODAY)


def error(text: str) -> str:
    with pytest.raises(RulesError) as excinfo:
        load(text)
    return str(excinfo.value)


@pytest.mark.parametrize(
    ("check", "value", "expected"),
    [
        (Check("contains_any", ("AXIAL", "LOCALIZER")), ["ORIGINAL", "PRIMARY", "AXIAL"], True),
        (Check("contains_any", ("AXIAL", "LOCALIZER")), ["ORIGINAL", "PRIMARY"], False),
        (Check("contains_any", ("AXIAL",)), "AXIAL", True),  # single value
        (Check("contains_any", ("AXIAL",)), None, False),  # missing
        (Check("contains_all", ("ORIGINAL", "PRIMARY")), ["ORIGINAL", "PRIMARY", "AXIAL"], True),
        (Check("contains_all", ("ORIGINAL", "PRIMARY")), ["ORIGINAL", "SECONDARY"], False),
        (Check("contains_all", ("ORIGINAL",)), [], False),  # empty is missing
        (Check("glob", "train/**"), "train/ct/a.dcm", True),
        (Check("glob", "train/*"), "train/ct/a.dcm", False),  # * stays inside one folder
        (Check("glob", "**/*.dcm"), "a.dcm", True),
        (Check("tolerance", (0.7, 0.05)), [0.72, 0.68], True),  # every value within
        (Check("tolerance", (0.7, 0.05)), [0.72, 0.8], False),
        (Check("tolerance", (0.7, 0.05)), "0.74", True),  # DS text is a number
        (Check("tolerance", (0.7, 0.05)), "thin", False),  # not a number
        (Check("tolerance", (0.7, 0.05)), None, False),
        # the boundary: |value - centre| == tolerance holds (binary fractions, so exactly equal)
        (Check("tolerance", (2, 0.5)), 2.5, True),
        (Check("tolerance", (2, 0.5)), "1.5", True),
        (Check("tolerance", (2, 0.5)), [1.5, 2.5], True),
        (Check("tolerance", (2, 0.5)), 2.5000001, False),
        (Check("tolerance", (2, 0.5)), 1.4999999, False),
        (Check("tolerance", (2, 0)), 2, True),  # tolerance 0: exactly the value
        (Check("tolerance", (2, 0)), 2.0000001, False),
        (Check("equals", (1, 1)), [1.0, 1.0], True),  # list compares value by value
        (Check("equals", (1, 1)), [1.0, 2.0], False),
        (Check("equals", (1, 1)), [1.0], False),
    ],
)
def test_operator(check: Check, value: Value, expected: bool) -> None:
    assert holds(check, value) is expected


def test_new_operators_load_with_their_operands() -> None:
    ruleset = load(
        """\
        version: 1
        rules:
          - id: a
            tag: ImageType
            contains_any: [AXIAL, CORONAL]
          - id: b
            tag: ImageType
            contains_all: [ORIGINAL, PRIMARY]
          - id: c
            file: path
            glob: "train/**"
          - id: d
            tag: PixelSpacing
            tolerance: 0.05
            value: 0.7
        """
    )
    assert [(r.check.operator, r.check.operand) for r in ruleset.rules] == [
        ("contains_any", ("AXIAL", "CORONAL")),
        ("contains_all", ("ORIGINAL", "PRIMARY")),
        ("glob", "train/**"),
        ("tolerance", (0.7, 0.05)),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("tolerance: 0.05\n", "rules.yaml:5:16: rule 'r': 'tolerance' needs a 'value' to be within it of"),
        ("tolerance: -1\nvalue: 2\n", "rules.yaml:5:16: 'tolerance' needs a number >= 0 and a numeric 'value'"),
        ("min: 1\nvalue: 2\n", "rules.yaml:6:5: rule 'r': 'value' goes only with 'tolerance'"),
        ("contains_any: []\n", "rules.yaml:5:19: 'contains_any' needs a non-empty list of values"),
        ("min: 1\nmax_failing: 2 %\n", None),
        ("min: 1\nmax_failing: lots\n", "rules.yaml:6:18: 'max_failing' is a count of files or a percentage"),
        ("min: 1\nmax_failing: 101%\n", "rules.yaml:6:18: 'max_failing' is a count of files or a percentage"),
        ("min: 1\nseverity: warning\nmax_failing: 1\n", "rules.yaml:7:18: 'max_failing' goes with severity error only"),
        ("min: 64\nexamples: {pass: [64, 512], fail: [8]}\n", None),
        (
            "min: 64\nexamples: {pass: [64, 32]}\n",
            "rules.yaml:6:27: rule 'r': example 32 fails the rule (listed under pass)",
        ),
        (
            "min: 64\nexamples:\n  fail: [128]\n",
            "rules.yaml:7:14: rule 'r': example 128 passes the rule (listed under fail)",
        ),
        ("min: 64\nexamples: [1]\n", "rules.yaml:6:15: 'examples' is a mapping with 'pass' and/or 'fail' lists"),
    ],
)
def test_rule_keys(body: str, message: str | None) -> None:
    text = "version: 1\nrules:\n  - id: r\n    tag: Rows\n" + textwrap.indent(body, "    ")
    if message is None:
        load(text)
    else:
        assert error(text).startswith(message)


def test_examples_of_a_multi_valued_tag() -> None:
    rule_text = """\
        version: 1
        rules:
          - id: original
            tag: ImageType
            contains: ORIGINAL
            examples:
              pass: [[ORIGINAL, PRIMARY]]
              fail: [[DERIVED, PRIMARY], DERIVED]
        """
    assert load(rule_text).rules[0].id == "original"
    assert "example ['DERIVED', 'ORIGINAL'] passes" in error(rule_text.replace("DERIVED, PRIMARY", "DERIVED, ORIGINAL"))


def test_when_path_is_a_glob_and_file_fields_work() -> None:
    ruleset = load(
        """\
        version: 1
        rules:
          - id: train-only
            tag: ImageType
            contains: ORIGINAL
            when: {path: "train/**", transfer_syntax: {matches: "Explicit.*"}}
        """
    )
    derived = {IMAGE_TYPE: ["DERIVED"]}
    native = {"transfer_syntax": "Explicit VR Little Endian"}
    assert evaluate(ruleset, Facts(tags=derived, file={**native, "path": "train/a.dcm"})).results == {
        "train-only": FAIL
    }
    assert evaluate(ruleset, Facts(tags=derived, file={**native, "path": "test/a.dcm"})).results == {
        "train-only": NOT_APPLICABLE
    }


WAIVERS = """\
    version: 1
    rules:
      - id: original
        tag: ImageType
        contains: ORIGINAL
      - id: spacing
        tag: PixelSpacing
        present: true
    waivers:
      - path: "legacy/**"
        rules: [original]
        reason: accepted by the board
      - id: uid
        sop_instance_uid: "1.2.3"
        rules: "*"
        reason: calibration
        expires: 2027-01-01
      - id: old
        path: "**"
        rules: [original]
        reason: used to be fine
        expires: 2026-11-25
    """


def test_waivers_match_by_glob_and_uid_and_expire() -> None:
    ruleset = load(WAIVERS)
    assert [(w.id, w.expired) for w in ruleset.waivers] == [("W1", False), ("uid", False), ("old", True)]
    legacy = evaluate(ruleset, Facts(tags={IMAGE_TYPE: ["DERIVED"]}, file={"path": "legacy/x.dcm"}))
    assert (legacy.results, legacy.waivers) == ({"original": WAIVED, "spacing": FAIL}, ("W1",))
    assert [f.waiver for f in legacy.findings] == ["W1", ""]
    by_uid = evaluate(ruleset, Facts(tags={IMAGE_TYPE: ["DERIVED"], 0x00080018: "1.2.3"}, file={"path": "new/y.dcm"}))
    assert (by_uid.results, by_uid.waivers) == ({"original": WAIVED, "spacing": WAIVED}, ("uid",))
    # "old" covers every path but expired today: it waives nothing
    plain = evaluate(ruleset, Facts(tags={IMAGE_TYPE: ["DERIVED"]}, file={"path": "new/z.dcm"}))
    assert plain.results == {"original": FAIL, "spacing": FAIL}


def test_waiver_uses_name_stale_and_expired() -> None:
    ruleset = load(WAIVERS)
    record = FileRecord("legacy/x.dcm", "dicom", "waived", "", {}, {"original": WAIVED}, (), waivers=("W1",))
    uses = conclude([ReportRow(record.path, "waived", record)], ruleset, Scope("data/")).waivers
    assert [(u.waiver.id, u.status, u.files) for u in uses] == [
        ("W1", "active", 1),
        ("uid", "stale", 0),
        ("old", "expired", 0),
    ]


@pytest.mark.parametrize(
    ("waiver", "message"),
    [
        ("- path: 'a/**'\n  rules: [original]\n", "rules.yaml:7:5: waiver 'W1' needs a 'reason'"),
        ("- path: 'a/**'\n  rules: [original]\n  reason: ' '\n", "rules.yaml:9:13: waiver 'W1' needs a 'reason'"),
        ("- rules: [original]\n  reason: r\n", "rules.yaml:7:5: waiver 'W1' needs exactly one of 'path' (a glob)"),
        (
            "- path: a\n  rules: [orignal]\n  reason: r\n",
            "rules.yaml:8:12: waiver 'W1': unknown rule id 'orignal' (did you mean 'original'?)",
        ),
        ("- path: a\n  rules: []\n  reason: r\n", "rules.yaml:8:12: 'rules' must be a list of rule ids, or '*'"),
        (
            "- path: a\n  rules: '*'\n  reason: r\n  expires: soon\n",
            "rules.yaml:10:14: 'expires' must be a date YYYY-MM-DD",
        ),
        ("- path: a\n  rules: '*'\n  reason: r\n  until: 2027-01-01\n", "rules.yaml:10:5: unknown waiver key 'until'"),
    ],
)
def test_waiver_errors(waiver: str, message: str) -> None:
    text = "version: 1\nrules:\n  - id: original\n    tag: ImageType\n    contains: ORIGINAL\nwaivers:\n"
    assert error(text + textwrap.indent(waiver, "  ")).startswith(message)


def test_threshold_verdicts_count_applicable_files() -> None:
    ruleset = load("version: 1\nrules:\n  - id: r\n    tag: Rows\n    min: 64\n    max_failing: 25%\n")
    facts = [Facts(tags={0x00280010: rows}) for rows in (32, 128, 128, 128)]
    records = [
        FileRecord(f"{i}.dcm", "dicom", "passed", "", {}, evaluate(ruleset, f).results, ()) for i, f in enumerate(facts)
    ]
    assert [r.results["r"] for r in records] == [WARN, PASS, PASS, PASS]
    (verdict,) = conclude([ReportRow(r.path, "passed", r) for r in records], ruleset, Scope("data/")).thresholds
    assert (verdict.tally.applicable, verdict.tally.failing, verdict.passed) == (4, 1, True)
    assert verdict.message == "1 of 4 applicable files fail rule 'r' (25.0%), within max_failing 25%"


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("train/**", "train/a/b/c.dcm", True),
        ("train/**", "val/a.dcm", False),
        ("**/*.json", "labels.json", True),
        ("**/*.json", "a/b/labels.json", True),
        ("*.dcm", "a/b.dcm", False),
        ("a?c", "abc", True),
        ("a.b", "axb", False),  # dots are literal
    ],
)
def test_glob(pattern: str, path: str, matches: bool) -> None:
    assert glob_matches(pattern, path) is matches


def test_non_dicom_mapping_errors() -> None:
    assert error("version: 1\nrules: []\nnon_dicom: {default: maybe}\n").startswith(
        "rules.yaml:3:22: 'default' must be one of skip, fail, pass"
    )
    assert error("version: 1\nrules: []\nnon_dicom: {allow: ['*.json']}\n").startswith(
        "rules.yaml:3:13: unknown non_dicom key 'allow'"
    )


@pytest.mark.parametrize(
    ("percent", "failing", "applicable", "allowed"),
    [
        ("29", 29, 100, True),
        ("57", 57, 100, True),
        ("58", 58, 100, True),
        ("2.5", 1, 40, True),
        ("2.5", 2, 40, False),
        ("29", 30, 100, False),
    ],
)
def test_percentage_threshold_is_exact(percent: str, failing: int, applicable: int, allowed: bool) -> None:
    rule = load(f"version: 1\nrules:\n  - id: r\n    tag: Rows\n    min: 1\n    max_failing: {percent}%\n").rules[0]
    assert rule.max_failing is not None
    assert rule.max_failing.allows(failing, applicable) is allowed


@pytest.mark.parametrize(("failing", "allowed"), [(0, True), (2, True), (3, False)])
def test_count_threshold_allows_up_to_the_count(failing: int, allowed: bool) -> None:
    rule = load("version: 1\nrules:\n  - id: r\n    tag: Rows\n    min: 1\n    max_failing: 2\n").rules[0]
    assert rule.max_failing is not None
    assert rule.max_failing.allows(failing, applicable=100) is allowed


def test_examples_respect_allow_missing() -> None:
    text = "version: 1\nrules:\n  - id: r\n    tag: VOILUTFunction\n    in: [LINEAR]\n    allow_missing: true\n"
    assert load(text + "    examples: {pass: ['', LINEAR], fail: [LOG]}\n").rules[0].id == "r"
    assert error(text + "    examples: {fail: ['']}\n").startswith(
        "rules.yaml:7:23: rule 'r': example '' passes the rule"
    )


RULE = "version: 1\nrules:\n  - id: original\n    tag: ImageType\n    contains: ORIGINAL\n"
DATASET = "version: 1\nrules: []\ndataset:\n  - id: c\n"


WAIVER_AND_DATASET_ERRORS: list[tuple[str, str]] = [
    (RULE + "waivers: {path: a}\n", "rules.yaml:6:10: 'waivers' must be a list of waivers"),
    (
        RULE + "waivers:\n  - just text\n",
        "rules.yaml:7:5: each waiver is a mapping with 'path' or 'sop_instance_uid', 'rules' and 'reason'",
    ),
    (
        RULE + "waivers:\n  - {id: 'bad id', path: a, rules: '*', reason: r}\n",
        "rules.yaml:7:10: waiver 'id' must be letters, digits and '-'",
    ),
    (
        RULE + "waivers:\n  - {id: [x], path: a, rules: '*', reason: r}\n",
        "rules.yaml:7:10: waiver 'id' must be letters, digits and '-'",
    ),
    (RULE + "waivers:\n  - {path: [a], rules: '*', reason: r}\n", "rules.yaml:7:12: 'path' must be text"),
    (
        RULE + "waivers:\n  - {sop_instance_uid: {a: 1}, rules: '*', reason: r}\n",
        "rules.yaml:7:24: 'sop_instance_uid' must be text",
    ),
    (
        RULE + "waivers:\n  - {path: a, rules: [], reason: r}\n",
        "rules.yaml:7:22: 'rules' must be a list of rule ids, or '*' for every rule",
    ),
    (
        RULE + "waivers:\n  - {path: a, reason: r}\n",
        "rules.yaml:7:5: 'rules' must be a list of rule ids, or '*' for every rule",
    ),
    (
        RULE + "waivers:\n  - {id: w, path: a, rules: '*', reason: r}\n  - {id: w, path: b, rules: '*', reason: r}\n",
        "rules.yaml:8:10: duplicate waiver id 'w'",
    ),
    (
        RULE + "waivers:\n  - {path: a, rules: '*', reason: r, expires: 2026-01-01 10:00:00}\n",
        "rules.yaml:7:47: 'expires' must be a date YYYY-MM-DD, not '2026-01-01 10:00:00'",
    ),
    (
        RULE + "waivers:\n  - {path: a, rules: '*', reason: r, expires: soon}\n",
        "rules.yaml:7:47: 'expires' must be a date YYYY-MM-DD, not 'soon'",
    ),
    (DATASET + "    count: {}\n", "rules.yaml:5:12: 'count' is a mapping with 'min' and/or 'max' files per group"),
    (DATASET + "    count: 5\n", "rules.yaml:5:12: 'count' is a mapping with 'min' and/or 'max' files per group"),
    (
        DATASET + "    count: {min: 1, most: 3}\n",
        "rules.yaml:5:12: 'count' is a mapping with 'min' and/or 'max' files per group",
    ),
    (DATASET + "    count: {min: -1}\n", "rules.yaml:5:18: 'min' must be a whole number of files >= 0"),
    (DATASET + "    count: {max: true}\n", "rules.yaml:5:18: 'max' must be a whole number of files >= 0"),
    (DATASET + "    count: {max: 2.5}\n", "rules.yaml:5:18: 'max' must be a whole number of files >= 0"),
    (DATASET + "    count: {min: 3, max: 2}\n", "rules.yaml:5:12: 'count' min 3 is above max 2"),
    (
        DATASET.replace("id: c", "id: d") + "    disjoint: PatientID\n    split: ''\n",
        "rules.yaml:6:12: 'split' is a regular expression matched at the start of the path, e.g. '(train|test)/'",
    ),
    *(
        (
            RULE + f"    max_failing: {written}\n",
            f"rules.yaml:6:18: 'max_failing' is a count of files or a percentage such as '2%', not {shown}",
        )
        for written, shown in (("100.5%", "'100.5%'"), ("-1", "-1"), ("true", "True"), ("2.5", "2.5"))
    ),
    (
        RULE + "    examples: {}\n",
        "rules.yaml:6:15: 'examples' is a mapping with 'pass' and/or 'fail' lists of values",
    ),
    (
        RULE + "    examples: {pass: [[ORIGINAL]], maybe: [x]}\n",
        "rules.yaml:6:15: 'examples' is a mapping with 'pass' and/or 'fail' lists of values",
    ),
    (RULE + "    examples: {pass: ORIGINAL}\n", "rules.yaml:6:22: 'examples: pass' must be a list of values"),
]
"""Waivers, dataset-check counts and splits, thresholds and examples: (rules text, the error)."""


def test_bounds_that_are_allowed() -> None:
    """The edges of what loads: a count of 0 and min equal to max, max_failing 0 and 100%."""
    ruleset = load(DATASET + "    count: {min: 0}\n  - id: e\n    count: {min: 2, max: 2}\n")
    assert [(check.minimum, check.maximum) for check in ruleset.dataset] == [(0, None), (2, 2)]
    assert load(RULE + "    max_failing: 0\n").rules[0].max_failing == Threshold(count=0, text="0")
    assert load(RULE + "    max_failing: 100%\n").rules[0].max_failing == Threshold(percent="100", text="100%")
    assert load(RULE + "    max_failing: 3\n").rules[0].max_failing == Threshold(count=3, text="3")


def test_waiver_attributes_as_loaded() -> None:
    ruleset = load(
        RULE
        + "waivers:\n"
        + "  - {path: 'legacy/**', rules: [original], reason: '  accepted by the board  ', expires: 2027-06-30}\n"
        + "  - {id: phantom, sop_instance_uid: 1.2.3, rules: '*', reason: calibration, expires: '2026-11-25'}\n"
        + "  - {sop_instance_uid: 12345, rules: [original], reason: an unquoted number}\n"
    )
    assert ruleset.waivers == (
        Waiver(
            id="W1",
            reason="accepted by the board",
            rules=("original",),
            path="legacy/**",
            expires="2027-06-30",
            source="rules.yaml",
            line=7,
        ),
        Waiver(
            id="phantom",
            reason="calibration",
            rules=("*",),
            sop_instance_uid="1.2.3",
            expires="2026-11-25",
            expired=True,  # a waiver ends on its date (TODAY)
            source="rules.yaml",
            line=8,
        ),
        Waiver(
            id="W3",
            reason="an unquoted number",
            rules=("original",),
            sop_instance_uid="12345",
            source="rules.yaml",
            line=9,
        ),
    )


def test_waivers_file_adds_its_waivers(tmp_path: Path) -> None:
    ruleset = load(RULE + "waivers:\n  - {id: old, path: a, rules: '*', reason: r}\n")
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(
        "version: 1\nwaivers:\n  - {id: new, path: b, rules: [original], reason: r, expires: 2026-11-25}\n"
    )
    combined = load_waivers(waivers, ruleset, TODAY)
    assert [(w.id, w.source, w.line, w.expired) for w in combined.waivers] == [
        ("old", "rules.yaml", 7, False),
        ("new", str(waivers), 3, True),
    ]
    assert combined.rules == ruleset.rules


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("waivers: []\n", "{path}:1:1: a waivers file is a mapping with 'version: 1' and 'waivers'"),
        ("version: 2\nwaivers: []\n", "{path}:1:1: a waivers file is a mapping with 'version: 1' and 'waivers'"),
        ("version: 1\n", "{path}:1:1: a waivers file is a mapping with 'version: 1' and 'waivers'"),
        ("just text\n", "{path}: a waivers file is a mapping with 'version: 1' and 'waivers'"),
        ("version: 1\nwaivers: []\nrules: []\n", "{path}:3:1: unknown top-level key 'rules'"),
        (
            "version: 1\nwaivers:\n  - {id: old, path: b, rules: '*', reason: r}\n",
            "{path}:3:3: waiver ids also used in rules.yaml: old",
        ),
        (
            "version: 1\nwaivers:\n  - {path: b, rules: [originl], reason: r}\n",
            "{path}:3:22: waiver 'W1': unknown rule id 'originl' (did you mean 'original'?)",
        ),
    ],
)
def test_waivers_file_errors_name_that_file(tmp_path: Path, text: str, message: str) -> None:
    ruleset = load(RULE + "waivers:\n  - {id: old, path: a, rules: '*', reason: r}\n")
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(text)
    with pytest.raises(RulesError) as excinfo:
        load_waivers(waivers, ruleset, TODAY)
    assert str(excinfo.value) == message.format(path=waivers)


def test_missing_waivers_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(RulesError) as excinfo:
        load_waivers(tmp_path / "absent.yaml", load(RULE))
    assert str(excinfo.value) == f"{tmp_path / 'absent.yaml'}: cannot read waivers file: No such file or directory"


ROWS_RULE = "version: 1\nrules:\n  - id: r\n    tag: Rows\n"


RULE_ERRORS: list[tuple[str, str]] = [
    ("- a\n- b\n", "rules.yaml:1:1: a rules file is a mapping with 'version' and 'rules'"),
    ("just text\n", "rules.yaml: a rules file is a mapping with 'version' and 'rules'"),  # no place to name
    (
        "version: 1\nrules: []\ncolumns: Rows\n",
        "rules.yaml:3:10: 'columns' must be a list of DICOM keywords or tags",
    ),
    (
        "version: 1\nrules: []\nnon_dicom: maybe\n",
        "rules.yaml:3:12: 'non_dicom' must be one of skip, fail, pass, or a mapping with 'default'",
    ),
    (
        "version: 1\nrules: []\nnon_dicom: {pass: '*.json'}\n",
        "rules.yaml:3:19: 'pass' must be a list of path patterns such as '**/*.json'",
    ),
    (
        "version: 1\nrules:\n  - just text\n",
        "rules.yaml:3:5: each rule must be a mapping with 'id', a target and an operator",
    ),
    (ROWS_RULE + "    min: 1\n    description: [a]\n", "rules.yaml:6:18: 'description' must be text"),
    (ROWS_RULE + "    min: 1\n    message: 5\n", "rules.yaml:6:14: 'message' must be text"),
    (
        ROWS_RULE + "    min: 1\n    when: {Modality: {matches: [a]}}\n",
        "rules.yaml:6:32: 'matches' needs a regular expression as text",
    ),
    (ROWS_RULE + "    glob: [a]\n", "rules.yaml:5:11: 'glob' needs a path pattern as text, e.g. 'train/**'"),
    (ROWS_RULE + "    matches: 5\n", "rules.yaml:5:14: 'matches' needs a regular expression as text"),
    (ROWS_RULE + "    range: [2, 1]\n", "rules.yaml:5:12: 'range' low 2 is above high 1"),
    (
        ROWS_RULE + "    tolerance: 1\n    value: x\n",
        "rules.yaml:5:16: 'tolerance' needs a number >= 0 and a numeric 'value': value ± tolerance",
    ),
]
"""The rules file, its rules and their conditions and operators."""


def test_rules_as_loaded() -> None:
    """What reaches a loaded rule: description and message as written, the line, tags by number
    (upper-cased, identifying where the dictionary says so); the non-DICOM exceptions; the edges
    of range and tolerance that still load."""
    ruleset = load(
        "version: 1\nrules:\n"
        "  - id: r\n    tag: '(0010,0010)'\n    present: false\n    description: ' why '\n    message: 'msg {id}'\n"
        "  - id: s\n    tag: '(0009,1a10)'\n    equals: x\n"
        "  - {id: t, tag: Rows, range: [2, 2]}\n"
        "  - {id: u, tag: Rows, tolerance: 0, value: 3}\n"
        "non_dicom: {pass: [a, b], fail: [c]}\n"
    )
    first, second, third, fourth = ruleset.rules
    assert (first.target.name, first.target.tag, first.target.identifying) == ("(0010,0010)", 0x00100010, True)
    assert (first.description, first.message, first.line, second.line) == (" why ", "msg {id}", 3, 8)
    assert (second.target.name, second.target.tag, second.target.identifying) == ("(0009,1A10)", 0x00091A10, False)
    assert (third.check, fourth.check) == (Check("range", (2, 2)), Check("tolerance", (3, 0)))
    assert ruleset.non_dicom == NonDicomPolicy("skip", (("c", "fail"), ("a", "pass"), ("b", "pass")))


def test_load_rules_decides_expiry_by_the_day_given(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULE + "waivers:\n  - {path: a, rules: '*', reason: r, expires: 2026-11-26}\n")
    assert [w.expired for w in load_rules(path, TODAY).waivers] == [False]
    assert [w.expired for w in load_rules(path, dt.date(2026, 11, 26)).waivers] == [True]


STRUCTURE_ERRORS: list[tuple[str, str]] = [
    # nesting: 32 levels load (and fail for what they are), 33 are refused before anything is built
    (
        "version: 1\nrules: []\ncolumns: " + "[" * 31 + "]" * 31 + "\n",
        "rules.yaml:3:10: a tag is a DICOM keyword or '(gggg,eeee)', not " + "[" * 30 + "]" * 30,
    ),
    (
        "version: 1\nrules: []\ncolumns: " + "[" * 32 + "]" * 32 + "\n",
        "rules.yaml:3:41: nesting is deeper than 32 levels",
    ),
    # the deep branch comes first: every branch is checked, not only the last one seen
    (
        "columns: " + "[" * 32 + "]" * 32 + "\nrules: []\nversion: 1\nnon_dicom: {default: skip}\n",
        "rules.yaml:1:41: nesting is deeper than 32 levels",
    ),
    ("version: 1\nrules: []\n1: a\n", "rules.yaml:3:1: invalid YAML: keys must be text, not 1"),
    (
        "version: 1\nrules: []\ndataset:\n  - {id: c, unique: PatientID, when: 5}\n",
        "rules.yaml:4:38: 'when' must be a mapping of tag or pixel field to condition",
    ),
    (
        ROWS_RULE + "    min: 1\n    when: {Bogus: 1}\n",
        "rules.yaml:6:12: unknown DICOM keyword 'Bogus' (did you mean 'BolusID'?)",
    ),
    (ROWS_RULE + "    min: 1\n    when: {Modality: {bogus: 1}}\n", "rules.yaml:6:23: unknown operator 'bogus'"),
    (
        "version: 1\nrules: []\ndataset:\n  - {id: c, unique: PatientID, when: {Bogus: 1}}\n",
        "rules.yaml:4:39: unknown DICOM keyword 'Bogus' (did you mean 'BolusID'?)",
    ),
    (
        "version: 1\nrules: []\ndataset:\n  - {id: c, consistent: [Rows], group_by: Bogus}\n",
        "rules.yaml:4:43: unknown DICOM keyword 'Bogus' (did you mean 'BolusID'?)",
    ),
    (
        "version: 1\nrules: []\ndataset:\n  - {id: c, consistent: [Rowz]}\n",
        "rules.yaml:4:25: unknown DICOM keyword 'Rowz' (did you mean 'Rows'?)",
    ),
    (
        ROWS_RULE + "    min: 1\n    when: {Modality: []}\n",
        "rules.yaml:6:12: 'in' needs a non-empty list of values",
    ),
    (
        ROWS_RULE + "    min: 1\n    when: {path: 5}\n",
        "rules.yaml:6:12: 'glob' needs a path pattern as text, e.g. 'train/**'",
    ),
    (
        ROWS_RULE + "    min: 1\n    when: {Modality: null}\n",
        "rules.yaml:6:12: 'equals' needs a value or a list of values",
    ),
    (
        ROWS_RULE + "    min: 1\n    when: {Modality: {}}\n",
        "rules.yaml:6:22: condition on 'Modality' needs exactly one operator (equals, in, not_in, contains, "
        "not_contains, contains_any, contains_all, matches, glob, min, max, range, tolerance, present); found none",
    ),
    (
        "version: 1\nrules: []\nnon_dicom: [a]\n",
        "rules.yaml:3:12: 'non_dicom' must be one of skip, fail, pass, or a mapping with 'default'",
    ),
]
"""Nesting, keys, conditions and dataset checks by where they stand."""


def test_alias_is_checked_once() -> None:
    """An alias repeats a node: the nesting check visits it once (no alias bomb), the rules load."""
    text = "version: 1\nrules: []\ncolumns: &c [Rows]\nnon_dicom: {pass: *c}\n"
    assert load(text).non_dicom.exceptions == (("Rows", "pass"),)


def test_defaults_and_spellings_as_loaded() -> None:
    ruleset = load(
        "version: 1\ncolumns: ['(7fe1,0010)']\nrules:\n  - {id: r, tag: Rows, min: 1}\n"
        "waivers:\n  - {sop_instance_uid: 0012345, rules: '*', reason: leading zeros kept}\n"
    )
    assert [c.name for c in ruleset.columns] == ["(7FE1,0010)"]
    assert (ruleset.rules[0].description, ruleset.rules[0].message) == ("", "")
    assert ruleset.waivers[0].sop_instance_uid == "0012345"  # as written, not the number 12345


def test_waivers_file_details(tmp_path: Path) -> None:
    """The waivers file's own day of expiry, YAML errors and clashes name that file."""
    ruleset = load(
        RULE + "waivers:\n  - {id: a, path: x, rules: '*', reason: r}\n  - {id: b, path: y, rules: '*', reason: r}\n"
    )
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("version: 1\nwaivers:\n  - {id: c, path: z, rules: '*', reason: r, expires: 2998-01-01}\n")
    assert [w.expired for w in load_waivers(waivers, ruleset, dt.date(2999, 1, 1)).waivers] == [False, False, True]
    for text, message in (
        (
            "version: 1\nwaivers: [\n",
            f"{waivers}:3:1: invalid YAML: expected the node content, but found '<stream end>'",
        ),
        ("version: 1\nwaivers: {a: 1}\n", f"{waivers}:2:10: 'waivers' must be a list of waivers"),
        (
            "version: 1\nwaivers:\n  - {id: a, path: x, rules: '*', reason: r}\n"
            "  - {id: b, path: x, rules: '*', reason: r}\n",
            f"{waivers}:3:3: waiver ids also used in rules.yaml: a, b",
        ),
    ):
        waivers.write_text(text)
        with pytest.raises(RulesError) as excinfo:
            load_waivers(waivers, ruleset, TODAY)
        assert str(excinfo.value) == message


def test_a_rules_file_at_the_size_limit_loads(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    text = "version: 1\nrules: []\n"
    path.write_text(text + "#" * (MAX_RULES_BYTES - len(text) - 1) + "\n")
    assert load_rules(path).rules == ()
    path.write_text(text + "#" * (MAX_RULES_BYTES - len(text)) + "\n")
    with pytest.raises(RulesError) as excinfo:
        load_rules(path)
    assert str(excinfo.value) == f"{path}: rules file is larger than {MAX_RULES_BYTES} bytes"


def test_allow_missing_does_not_excuse_present_in_examples() -> None:
    """``present: true`` with ``allow_missing``: a missing value still fails the rule, so an empty
    example belongs under ``fail``."""
    rule = "version: 1\nrules:\n  - id: r\n    tag: ImageType\n    present: true\n    allow_missing: true\n"
    assert load(rule + "    examples: {fail: ['']}\n").rules[0].id == "r"


def test_non_dicom_mapping_keeps_its_default() -> None:
    assert load("version: 1\nrules: []\nnon_dicom: {default: fail, pass: [a]}\n").non_dicom == NonDicomPolicy(
        "fail", (("a", "pass"),)
    )


@pytest.mark.parametrize(("text", "message"), WAIVER_AND_DATASET_ERRORS + RULE_ERRORS + STRUCTURE_ERRORS)
def test_load_errors_name_the_place_and_the_problem(text: str, message: str) -> None:
    assert error(text) == message


def test_patterns_read_a_file_name_that_is_not_utf8() -> None:
    """Such a name holds a lone surrogate for each undecodable byte: one character, as for Python's re."""
    assert glob_matches("caf?.dcm", "caf\udce9.dcm")
    assert Regex("([^/]+)/", groups=True).prefix("tr\udce9in/a.dcm") == "tr\udce9in"
