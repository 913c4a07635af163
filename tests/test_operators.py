"""The operator table (rules/operators.py): every operator loads, holds both ways, fails a missing
value (except ``present``) and reads in words, in a rule and in a ``when:`` condition alike."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_dicomqc.record import Value
from pytest_dicomqc.rules.evaluate import expectation, holds
from pytest_dicomqc.rules.load import parse_rules
from pytest_dicomqc.rules.model import Check
from pytest_dicomqc.rules.operators import COMPANION_KEYS, OPERATOR_NAMES, OPERATORS, OperandError, operator

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")

EXAMPLES: dict[str, tuple[dict[str, Any], Value, Value, str]] = {
    # operator: (as written in a rule, a value that holds, one that does not, the expected words)
    "equals": ({"equals": "CT"}, "CT ", "MR", "equal to 'CT'"),
    "in": ({"in": ["CT", "MR"]}, "MR", "US", "one of [CT, MR]"),
    "not_in": ({"not_in": ["SC", "OT"]}, "CT", "OT", "none of [SC, OT]"),
    "contains": ({"contains": "ORIGINAL"}, ["ORIGINAL", "PRIMARY"], ["DERIVED"], "to contain 'ORIGINAL'"),
    "not_contains": ({"not_contains": "LOCALIZER"}, ["ORIGINAL"], ["LOCALIZER"], "not to contain 'LOCALIZER'"),
    "contains_any": (
        {"contains_any": ["AXIAL", "CORONAL"]},
        ["ORIGINAL", "AXIAL"],
        ["ORIGINAL", "SAGITTAL"],
        "to contain one of [AXIAL, CORONAL]",
    ),
    "contains_all": (
        {"contains_all": ["ORIGINAL", "PRIMARY"]},
        ["ORIGINAL", "PRIMARY", "AXIAL"],
        ["ORIGINAL", "SECONDARY"],
        "to contain all of [ORIGINAL, PRIMARY]",
    ),
    "matches": ({"matches": "(?i)siemens.*"}, "SIEMENS Healthineers", "GE", "to match '(?i)siemens.*'"),
    "glob": ({"glob": "train/**"}, "train/a/b.dcm", "test/a.dcm", "to match the pattern 'train/**'"),
    "min": ({"min": 256}, "512", 128, ">= 256"),
    "max": ({"max": 5}, ["1.0", "2.5"], "5.5", "<= 5"),
    "range": ({"range": [-1024, 3000]}, 0, 4000, "between -1024 and 3000"),
    "tolerance": ({"tolerance": 0.05, "value": 0.7}, ["0.68", "0.72"], "0.8", "within 0.7 ± 0.05"),
    "present": ({"present": False}, None, "DOE^JOHN", "absent"),
}


def test_every_operator_has_an_example() -> None:
    assert list(EXAMPLES) == list(OPERATOR_NAMES)


def test_operator_names_are_unique_and_companions_are_not_operators() -> None:
    assert len(set(OPERATOR_NAMES)) == len(OPERATORS)
    assert COMPANION_KEYS == ("value",)
    assert not set(COMPANION_KEYS) & set(OPERATOR_NAMES)


def loaded(written: dict[str, Any]) -> tuple[Check, Check]:
    """The check of a rule written so, and of a ``when:`` condition written so."""
    spec = json.dumps(written)  # JSON is YAML flow style
    text = f"version: 1\nrules:\n  - {{id: r, tag: ImageType, when: {{Modality: {spec}}}, **SPEC**}}\n"
    rule = parse_rules(text.replace("**SPEC**", spec[1:-1]), "rules.yaml").rules[0]
    return rule.check, rule.when[0].check


@pytest.mark.parametrize("name", OPERATOR_NAMES)
def test_operator_loads_holds_and_reads(name: str) -> None:
    written, good, bad, words = EXAMPLES[name]
    check, condition = loaded(written)
    assert check == condition
    assert check.operator == name
    assert (holds(check, good), holds(check, bad)) == (True, False)
    assert expectation(check) == words


@pytest.mark.parametrize("name", OPERATOR_NAMES)
def test_only_an_operator_that_judges_missing_values_holds_for_one(name: str) -> None:
    check, _ = loaded(EXAMPLES[name][0])
    judges = operator(name).judges_missing
    assert judges is (name == "present")
    assert [holds(check, missing) for missing in (None, "", [])] == [judges] * 3


@pytest.mark.parametrize("name", [name for name in OPERATOR_NAMES if operator(name).companion is None])
def test_a_mapping_is_no_operand(name: str) -> None:
    with pytest.raises(OperandError, match=f"^'{name}' needs "):
        operator(name).operand({"a": 1})


def test_an_unknown_operator_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"^unknown operator 'starts_with'$"):
        operator("starts_with")


def test_readme_operator_table_lists_the_operators() -> None:
    section = README.split("**Operators**", 1)[1].split("One example per operator", 1)[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    documented = [name for cell in rows for name in re.findall(r"`(\w+)", cell) if name not in COMPANION_KEYS]
    assert documented == list(OPERATOR_NAMES)
