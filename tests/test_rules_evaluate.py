"""Unit tests of rules/evaluate.py: every operator both ways, missing values, when, severity, findings."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pytest_dicomqc.record import FAIL, NOT_APPLICABLE, PASS, WARN, Finding, Value
from pytest_dicomqc.rules.evaluate import MISSING_TEXT, Facts, evaluate, evaluate_rule, expectation, holds
from pytest_dicomqc.rules.load import parse_rules
from pytest_dicomqc.rules.model import FILE, PIXEL, TAG, Check, Condition, Operand, Rule, RuleSet, Target, Threshold
from pytest_dicomqc.rules.regex import Regex

TAGS = {"ImageType": 0x00080008, "Modality": 0x00080060, "Rows": 0x00280010, "RescaleSlope": 0x00281053}
IMAGE_TYPE = Target(TAG, "ImageType", TAGS["ImageType"])
MODALITY = Target(TAG, "Modality", TAGS["Modality"])
ROWS = Target(TAG, "Rows", TAGS["Rows"])
SLOPE = Target(TAG, "RescaleSlope", TAGS["RescaleSlope"])
DTYPE = Target(PIXEL, "dtype")
KIND = Target(FILE, "kind")


def make_rule(
    target: Target,
    operator: str,
    operand: Operand,
    *,
    rule_id: str = "r",
    severity: str = "error",
    allow_missing: bool = False,
    when: tuple[Condition, ...] = (),
    message: str = "",
) -> Rule:
    return Rule(
        id=rule_id,
        target=target,
        check=Check(operator, operand),
        severity=severity,
        allow_missing=allow_missing,
        when=when,
        message=message,
    )


def tag_facts(**values: Value) -> Facts:
    """Facts holding the given tags, by keyword (one of :data:`TAGS`)."""
    return Facts(tags={TAGS[name]: value for name, value in values.items()})


# --- holds: every operator, both ways ---------------------------------------------------------

HOLDS_CASES = [
    # equals: scalar text (DICOM padding ignored), numbers compared as numbers, multi-values joined
    (Check("equals", "CT"), "CT", True),
    (Check("equals", "CT"), "CT ", True),
    (Check("equals", "CT"), "MR", False),
    (Check("equals", "CT"), "ct", False),
    (Check("equals", 512), 512, True),
    (Check("equals", 512), "512", True),
    (Check("equals", 512), 511, False),
    (Check("equals", 1.5), "1.50", True),
    (Check("equals", 1.5), "abc", False),
    (Check("equals", "ORIGINAL\\PRIMARY"), ["ORIGINAL", "PRIMARY"], True),
    (Check("equals", "ORIGINAL\\PRIMARY"), ["ORIGINAL", "PRIMARY", "AXIAL"], False),
    (Check("equals", "ORIGINAL"), ["ORIGINAL", "PRIMARY"], False),
    # in: every value must be listed
    (Check("in", ("CT", "MR")), "CT", True),
    (Check("in", ("CT", "MR")), "US", False),
    (Check("in", ("ORIGINAL", "PRIMARY", "AXIAL")), ["ORIGINAL", "PRIMARY"], True),
    (Check("in", ("ORIGINAL", "PRIMARY")), ["ORIGINAL", "SECONDARY"], False),
    (Check("in", (8, 16)), "16", True),
    (Check("in", (8, 16)), 12, False),
    # not_in: no value may be listed
    (Check("not_in", ("SC", "OT")), "CT", True),
    (Check("not_in", ("SC", "OT")), "OT", False),
    (Check("not_in", ("LOCALIZER",)), ["ORIGINAL", "PRIMARY"], True),
    (Check("not_in", ("LOCALIZER",)), ["ORIGINAL", "LOCALIZER"], False),
    # contains / not_contains: one value among the many
    (Check("contains", "ORIGINAL"), ["ORIGINAL", "PRIMARY"], True),
    (Check("contains", "ORIGINAL"), ["DERIVED", "PRIMARY"], False),
    (Check("contains", "ORIGINAL"), "ORIGINAL", True),
    (Check("contains", "ORIGINAL"), "ORIGINAL\\PRIMARY", False),  # a scalar is one value, not split
    (Check("contains", "ORIG"), ["ORIGINAL"], False),  # whole values, not substrings
    (Check("not_contains", "LOCALIZER"), ["ORIGINAL", "PRIMARY"], True),
    (Check("not_contains", "LOCALIZER"), ["ORIGINAL", "LOCALIZER"], False),
    # matches: full match of the value as DICOM writes it
    (Check("matches", Regex(r"[0-9.]+")), "1.2.840.10008", True),
    (Check("matches", Regex(r"[0-9.]+")), "1.2.840.x", False),
    (Check("matches", Regex(r"ORIG")), "ORIGINAL", False),
    (Check("matches", Regex(r"ORIGINAL\\.*")), ["ORIGINAL", "PRIMARY"], True),
    (Check("matches", Regex(r"DERIVED\\.*")), ["ORIGINAL", "PRIMARY"], False),
    (Check("matches", Regex(r"5\d\d")), 512, True),
    # min / max / range: DS and IS may arrive as text
    (Check("min", 64), 64, True),
    (Check("min", 64), 63, False),
    (Check("min", 1.5), "1.5", True),
    (Check("min", 1.5), "1.49", False),
    (Check("min", 0), "abc", False),
    (Check("min", 1), [1.0, 2.0], True),
    (Check("min", 1), [0.5, 2.0], False),
    (Check("max", 4095), 4095, True),
    (Check("max", 4095), 4096, False),
    (Check("max", 2), " 1.5 ", True),
    (Check("max", 2), "2.5", False),
    (Check("max", 100), "n/a", False),
    (Check("range", (0.5, 2)), "1.5", True),
    (Check("range", (0.5, 2)), 0.5, True),
    (Check("range", (0.5, 2)), 2, True),
    (Check("range", (0.5, 2)), 2.01, False),
    (Check("range", (0.5, 2)), "0.49", False),
    (Check("range", (0.5, 2)), "one", False),
    (Check("range", (0, 10)), ["1", "9"], True),
    (Check("range", (0, 10)), ["1", "11"], False),
    (Check("range", (0, 10)), ["1", "x"], False),
    # present
    (Check("present", True), "CT", True),
    (Check("present", True), 0, True),
    (Check("present", True), None, False),
    (Check("present", True), "", False),
    (Check("present", True), [], False),
    (Check("present", False), None, True),
    (Check("present", False), "", True),
    (Check("present", False), "CT", False),
]


@pytest.mark.parametrize(("check", "value", "expected"), HOLDS_CASES)
def test_holds(check: Check, value: Value, expected: bool) -> None:
    assert holds(check, value) is expected


@pytest.mark.parametrize(
    "check",
    [
        Check("equals", "CT"),
        Check("in", ("CT",)),
        Check("not_in", ("CT",)),
        Check("contains", "CT"),
        Check("not_contains", "CT"),
        Check("matches", Regex(".*")),
        Check("min", 0),
        Check("max", 0),
        Check("range", (0, 1)),
    ],
)
@pytest.mark.parametrize("missing", [None, "", []])
def test_missing_value_fails_every_operator_but_present(check: Check, missing: Value) -> None:
    assert holds(check, missing) is False


# --- evaluate_rule ----------------------------------------------------------------------------


def test_passing_rule_has_no_finding() -> None:
    rule = make_rule(IMAGE_TYPE, "contains", "ORIGINAL", rule_id="original-image")
    assert evaluate_rule(rule, tag_facts(ImageType=["ORIGINAL", "PRIMARY"])) == (PASS, None)


def test_failing_rule_finding_text() -> None:
    rule = make_rule(IMAGE_TYPE, "contains", "ORIGINAL", rule_id="original-image")
    result = evaluate_rule(rule, tag_facts(ImageType=["DERIVED", "SECONDARY"]))
    assert result == (
        FAIL,
        Finding(
            rule_id="original-image",
            severity="error",
            observed="DERIVED\\SECONDARY",
            expected="to contain 'ORIGINAL'",
            message="ImageType = DERIVED\\SECONDARY, expected to contain 'ORIGINAL'",
        ),
    )


def test_missing_tag_fails_with_missing_observed() -> None:
    rule = make_rule(MODALITY, "in", ("CT", "MR"), rule_id="modality")
    assert evaluate_rule(rule, Facts()) == (
        FAIL,
        Finding("modality", "error", MISSING_TEXT, "one of [CT, MR]", "Modality = <missing>, expected one of [CT, MR]"),
    )


@pytest.mark.parametrize("missing", [None, "", []])
def test_missing_tag_passes_with_allow_missing(missing: Value) -> None:
    rule = make_rule(MODALITY, "in", ("CT", "MR"), allow_missing=True)
    assert evaluate_rule(rule, tag_facts(Modality=missing)) == (PASS, None)


def test_allow_missing_does_not_excuse_a_wrong_value() -> None:
    rule = make_rule(MODALITY, "in", ("CT", "MR"), allow_missing=True)
    result, finding = evaluate_rule(rule, tag_facts(Modality="US"))
    assert result == FAIL
    assert finding is not None
    assert finding.observed == "US"


def test_allow_missing_does_not_excuse_present_true() -> None:
    rule = make_rule(MODALITY, "present", True, allow_missing=True)
    assert evaluate_rule(rule, Facts()) == (
        FAIL,
        Finding("r", "error", MISSING_TEXT, "present", "Modality = <missing>, expected present"),
    )


def test_present_false_passes_on_missing_tag() -> None:
    assert evaluate_rule(make_rule(MODALITY, "present", False), Facts()) == (PASS, None)


def test_present_false_fails_on_present_tag() -> None:
    assert evaluate_rule(make_rule(MODALITY, "present", False), tag_facts(Modality="CT")) == (
        FAIL,
        Finding("r", "error", "CT", "absent", "Modality = CT, expected absent"),
    )


def test_warning_severity_gives_warn() -> None:
    rule = make_rule(ROWS, "min", 256, rule_id="big-enough", severity="warning")
    assert evaluate_rule(rule, tag_facts(Rows=128)) == (
        WARN,
        Finding("big-enough", "warning", "128", ">= 256", "Rows = 128, expected >= 256"),
    )


def test_warning_rule_that_holds_passes() -> None:
    rule = make_rule(ROWS, "min", 256, severity="warning")
    assert evaluate_rule(rule, tag_facts(Rows=512)) == (PASS, None)


MODALITY_CT = Condition(MODALITY, Check("in", ("CT", "MR")))


@pytest.mark.parametrize("modality", ["US", None])
def test_when_not_matching_is_not_applicable(modality: Value) -> None:
    rule = make_rule(DTYPE, "in", ("int16", "uint16"), when=(MODALITY_CT,))
    facts = Facts(tags={TAGS["Modality"]: modality}, pixels={"dtype": "float32"})
    assert evaluate_rule(rule, facts) == (NOT_APPLICABLE, None)


def test_when_matching_evaluates_the_rule() -> None:
    rule = make_rule(DTYPE, "in", ("int16", "uint16"), rule_id="pixel-dtype", when=(MODALITY_CT,))
    facts = Facts(tags={TAGS["Modality"]: "MR"}, pixels={"dtype": "float32"})
    assert evaluate_rule(rule, facts) == (
        FAIL,
        Finding(
            "pixel-dtype",
            "error",
            "float32",
            "one of [int16, uint16]",
            "pixel.dtype = float32, expected one of [int16, uint16]",
        ),
    )


def test_when_needs_every_condition() -> None:
    large = Condition(Target(PIXEL, "rows"), Check("min", 256))
    rule = make_rule(DTYPE, "equals", "uint16", when=(MODALITY_CT, large))
    small_ct = Facts(tags={TAGS["Modality"]: "CT"}, pixels={"rows": 128, "dtype": "uint8"})
    large_ct = Facts(tags={TAGS["Modality"]: "CT"}, pixels={"rows": 512, "dtype": "uint8"})
    assert evaluate_rule(rule, small_ct) == (NOT_APPLICABLE, None)
    assert evaluate_rule(rule, large_ct)[0] == FAIL


def test_file_target() -> None:
    rule = make_rule(Target(FILE, "transfer_syntax"), "not_in", ("JPEG Baseline (Process 1)",), rule_id="lossless")
    facts = Facts(file={"transfer_syntax": "JPEG Baseline (Process 1)", "kind": "dicom"})
    assert evaluate_rule(rule, facts) == (
        FAIL,
        Finding(
            "lossless",
            "error",
            "JPEG Baseline (Process 1)",
            "none of [JPEG Baseline (Process 1)]",
            "file.transfer_syntax = JPEG Baseline (Process 1), expected none of [JPEG Baseline (Process 1)]",
        ),
    )


def test_custom_message_template() -> None:
    rule = make_rule(
        SLOPE,
        "range",
        (0.5, 2),
        rule_id="slope",
        message="{id}: slope {observed} on {target} is not {expected}",
    )
    assert evaluate_rule(rule, tag_facts(RescaleSlope="2.5")) == (
        FAIL,
        Finding(
            "slope", "error", "2.5", "between 0.5 and 2", "slope: slope 2.5 on RescaleSlope is not between 0.5 and 2"
        ),
    )


def test_custom_message_keeps_observed_braces_literal() -> None:
    rule = make_rule(MODALITY, "equals", "CT", message="got {observed}")
    _, finding = evaluate_rule(rule, tag_facts(Modality="{id}"))
    assert finding is not None
    assert finding.message == "got {id}"


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (Check("equals", "CT"), "equal to 'CT'"),
        (Check("equals", 512), "equal to 512"),
        (Check("in", ("LINEAR", "SIGMOID")), "one of [LINEAR, SIGMOID]"),
        (Check("not_in", ("SC", "OT")), "none of [SC, OT]"),
        (Check("contains", "ORIGINAL"), "to contain 'ORIGINAL'"),
        (Check("not_contains", "LOCALIZER"), "not to contain 'LOCALIZER'"),
        (Check("matches", Regex(r"[0-9.]+")), "to match '[0-9.]+'"),
        (Check("min", 64), ">= 64"),
        (Check("max", 4095.5), "<= 4095.5"),
        (Check("range", (0.5, 2)), "between 0.5 and 2"),
        (Check("present", True), "present"),
        (Check("present", False), "absent"),
        (Check("contains_any", ("AXIAL", "CORONAL")), "to contain one of [AXIAL, CORONAL]"),
        (Check("contains_all", ("ORIGINAL", "PRIMARY")), "to contain all of [ORIGINAL, PRIMARY]"),
        (Check("glob", "train/**"), "to match the pattern 'train/**'"),
        (Check("tolerance", (0.7, 0.05)), "within 0.7 ± 0.05"),
        (Check("equals", (1, 1)), "equal to [1, 1]"),
    ],
)
def test_expectation_text(check: Check, expected: str) -> None:
    assert expectation(check) == expected


# --- evaluate ---------------------------------------------------------------------------------


def test_evaluate_gives_a_result_per_rule_and_findings_for_the_rest() -> None:
    rules = (
        make_rule(IMAGE_TYPE, "contains", "ORIGINAL", rule_id="original-image"),
        make_rule(MODALITY, "equals", "CT", rule_id="ct-only"),
        make_rule(ROWS, "min", 256, rule_id="big", severity="warning"),
        make_rule(DTYPE, "equals", "int16", rule_id="mr-dtype", when=(Condition(MODALITY, Check("equals", "MR")),)),
        make_rule(SLOPE, "equals", 1, rule_id="slope", allow_missing=True),
    )
    facts = Facts(
        tags={TAGS["ImageType"]: ["DERIVED", "PRIMARY"], TAGS["Modality"]: "CT", TAGS["Rows"]: 128},
        pixels={"dtype": "uint16"},
    )
    evaluation = evaluate(RuleSet(source="x", rules=rules), facts)
    results, findings = evaluation.results, list(evaluation.findings)
    assert results == {"original-image": FAIL, "ct-only": PASS, "big": WARN, "mr-dtype": NOT_APPLICABLE, "slope": PASS}
    assert list(results) == ["original-image", "ct-only", "big", "mr-dtype", "slope"]
    assert findings == [
        Finding(
            "original-image",
            "error",
            "DERIVED\\PRIMARY",
            "to contain 'ORIGINAL'",
            "ImageType = DERIVED\\PRIMARY, expected to contain 'ORIGINAL'",
        ),
        Finding("big", "warning", "128", ">= 256", "Rows = 128, expected >= 256"),
    ]


def test_evaluate_loaded_default_style_rules() -> None:
    ruleset = parse_rules(
        "version: 1\n"
        "rules:\n"
        "  - id: voi\n"
        "    tag: VOILUTFunction\n"
        "    in: [LINEAR, LINEAR_EXACT, SIGMOID]\n"
        "    allow_missing: true\n"
        "  - id: has-pixels\n"
        "    tag: ImageType\n"
        "    contains: ORIGINAL\n"
        "    when: {PixelData: {present: true}}\n",
        "rules.yaml",
    )
    without_pixels = Facts(tags={0x00080008: ["DERIVED"]})
    with_pixels = Facts(tags={0x00080008: ["DERIVED"], 0x7FE00010: "<8192 bytes>", 0x00281056: "LOG"})
    assert evaluate(ruleset, without_pixels).results == {"voi": PASS, "has-pixels": NOT_APPLICABLE}
    assert evaluate(ruleset, with_pixels).results == {"voi": FAIL, "has-pixels": FAIL}


def test_equals_list_of_numbers_matches_decimal_string_values() -> None:
    ruleset = parse_rules(
        "version: 1\nrules:\n  - id: spacing\n    tag: PixelSpacing\n    equals: [1, 1]\n", "rules.yaml"
    )
    # extract.normalise turns DS "1\1" into [1.0, 1.0]
    assert evaluate(ruleset, Facts(tags={0x00280030: [1.0, 1.0]})).results == {"spacing": PASS}


@pytest.mark.parametrize(
    ("check", "value", "expected"),
    [
        # a YAML boolean compares only as a boolean: DICOM text "1" is not true
        (Check("equals", True), True, True),
        (Check("equals", True), False, False),
        (Check("equals", True), "1", False),
        (Check("equals", False), "", False),  # empty is missing
        (Check("in", (True,)), [True, True], True),
    ],
)
def test_booleans_compare_only_with_booleans(check: Check, value: Value, expected: bool) -> None:
    assert holds(check, value) is expected


def test_threshold_rule_gives_warn_and_a_threshold_finding() -> None:
    """Under ``max_failing`` a file that breaks the rule passes with WARN; the dataset verdict counts it."""
    rule = replace(make_rule(ROWS, "min", 64), max_failing=Threshold(count=1, text="1"))
    assert evaluate_rule(rule, tag_facts(Rows=32)) == (
        WARN,
        Finding("r", "threshold", "32", ">= 64", "Rows = 32, expected >= 64"),
    )
    assert evaluate_rule(rule, tag_facts(Rows=64)) == (PASS, None)


def test_identifying_value_is_never_the_observed_text() -> None:
    patient_id = Target(TAG, "PatientID", 0x00100020, identifying=True)
    rule = make_rule(patient_id, "matches", Regex("ANON-.*"))
    redacted = "<present, identifying value not shown>"
    assert evaluate_rule(rule, Facts(tags={0x00100020: "DOE^JOHN-1234"})) == (
        FAIL,
        Finding("r", "error", redacted, "to match 'ANON-.*'", f"PatientID = {redacted}, expected to match 'ANON-.*'"),
    )


def test_an_operator_the_loader_never_admits_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"^unknown operator 'bogus'$"):
        holds(Check("bogus", 1), 5)
