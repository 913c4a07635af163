"""Pure rule evaluation: facts in, PASS/FAIL/WARN/N/A and findings out.

Multi-valued tags: ``contains``/``not_contains`` look for one value among them,
``contains_any``/``contains_all`` for one/all of a list, ``in`` needs every value in the list,
``not_in`` needs none, ``min``/``max``/``range``/``tolerance`` need every value in bounds,
``equals`` (with a list: value by value), ``matches`` and ``glob`` compare the whole value as
DICOM writes it (``A\\B``). An absent or empty value is *missing*: it passes only
``present: false`` or ``allow_missing``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from pytest_dicomqc.record import (
    FAIL,
    NOT_APPLICABLE,
    PASS,
    WAIVED,
    WARN,
    Finding,
    Scalar,
    Value,
    display,
    is_empty,
)
from pytest_dicomqc.rules.globs import glob_matches
from pytest_dicomqc.rules.model import PIXEL, TAG, Check, Condition, Rule, RuleSet, Target, Waiver

SOP_INSTANCE_UID = 0x00080018

MISSING_TEXT = "<missing>"
REDACTED_TEXT = "<present, identifying value not shown>"


class Unread(enum.Enum):
    """A value that exists but could not be read (undecodable pixel data): rules on it do not apply."""

    VALUE = "unread"


@dataclass(frozen=True)
class Facts:
    """Everything rules may look at for one file."""

    tags: Mapping[int, Value] = field(default_factory=dict)
    pixels: Mapping[str, Scalar] | None = field(default_factory=dict)
    """``None`` when the file has pixel data that could not be decoded."""
    file: Mapping[str, Scalar] = field(default_factory=dict)

    def lookup(self, target: Target) -> Value | Unread:
        if target.source == TAG:
            return self.tags.get(target.tag) if target.tag is not None else None
        if target.source == PIXEL:
            return Unread.VALUE if self.pixels is None else self.pixels.get(target.name)
        return self.file.get(target.name)


@dataclass(frozen=True)
class Evaluation:
    """One file against the whole rules file."""

    results: dict[str, str]
    findings: tuple[Finding, ...]
    waivers: tuple[str, ...]
    """Ids of the waivers that accepted one of the findings."""


def evaluate(ruleset: RuleSet, facts: Facts, strict: bool = False) -> Evaluation:
    """Result cell for every rule, a finding for each rule that did not hold, waivers applied.

    ``strict`` turns warning rules into failing ones (``--dicom-strict``).
    """
    waivers = matching_waivers(ruleset.waivers, facts)
    results: dict[str, str] = {}
    findings: list[Finding] = []
    used: list[str] = []
    for rule in ruleset.rules:
        result, finding = evaluate_rule(rule, facts, strict)
        if finding is not None:
            waiver = next((w for w in waivers if w.covers(rule.id)), None)
            if waiver is not None:
                result, finding = WAIVED, replace(finding, waiver=waiver.id)
                used += [] if waiver.id in used else [waiver.id]
            findings.append(finding)
        results[rule.id] = result
    return Evaluation(results, tuple(findings), tuple(used))


def matching_waivers(waivers: tuple[Waiver, ...], facts: Facts) -> list[Waiver]:
    """Waivers in force (not expired) whose path glob or SOPInstanceUID names this file."""
    path = str(facts.file.get("path") or "")
    sop_instance_uid = facts.tags.get(SOP_INSTANCE_UID)
    return [
        w
        for w in waivers
        if not w.expired
        and (glob_matches(w.path, path) if w.path is not None else w.sop_instance_uid == sop_instance_uid)
    ]


def applies(when: tuple[Condition, ...], facts: Facts) -> bool:
    """Whether every ``when:`` condition holds; one on a value that could not be read does not."""
    for condition in when:
        value = facts.lookup(condition.target)
        if isinstance(value, Unread) or not holds(condition.check, value):
            return False
    return True


def evaluate_rule(rule: Rule, facts: Facts, strict: bool = False) -> tuple[str, Finding | None]:
    value = facts.lookup(rule.target)
    if isinstance(value, Unread) or not applies(rule.when, facts):
        return NOT_APPLICABLE, None  # an unread value: the file fails already, for the reason it could not be read
    if is_empty(value) and rule.allow_missing and rule.check.operator != "present":
        return PASS, None
    if holds(rule.check, value):
        return PASS, None
    if is_empty(value):
        observed = MISSING_TEXT
    elif rule.target.identifying:
        observed = REDACTED_TEXT
    else:
        observed = str(display(value))
    expected = expectation(rule.check)
    message = (rule.message or "{target} = {observed}, expected {expected}").format(
        target=str(rule.target), observed=observed, expected=expected, id=rule.id
    )
    if rule.max_failing is not None:
        # counted against the rule's threshold over the dataset; a file alone does not fail it
        return WARN, Finding(rule.id, "threshold", observed, expected, message)
    result = FAIL if rule.severity == "error" or strict else WARN
    return result, Finding(rule.id, rule.severity, observed, expected, message)


def holds(check: Check, value: Value) -> bool:
    """Whether ``value`` satisfies ``check``; a missing value satisfies only ``present: false``."""
    operator, operand = check.operator, check.operand
    if operator == "present":
        return (not is_empty(value)) is operand
    if is_empty(value):
        return False
    values = value if isinstance(value, list) else [value]
    if operator == "equals":
        if isinstance(operand, tuple):  # value by value: [1, 1] equals DS "1.0\\1.0"
            return len(values) == len(operand) and all(_same(v, o) for v, o in zip(values, operand, strict=True))
        return _same(display(value), operand)
    if operator == "in":
        assert isinstance(operand, tuple)
        return all(any(_same(v, item) for item in operand) for v in values)
    if operator == "not_in":
        assert isinstance(operand, tuple)
        return not any(_same(v, item) for v in values for item in operand)
    if operator == "contains":
        return any(_same(v, operand) for v in values)
    if operator == "not_contains":
        return not any(_same(v, operand) for v in values)
    if operator == "contains_any":
        assert isinstance(operand, tuple)
        return any(_same(v, item) for v in values for item in operand)
    if operator == "contains_all":
        assert isinstance(operand, tuple)
        return all(any(_same(v, item) for v in values) for item in operand)
    if operator == "glob":
        assert isinstance(operand, str)
        return glob_matches(operand, str(display(value)))
    if operator == "matches":
        assert isinstance(operand, re.Pattern)
        return operand.fullmatch(str(display(value))) is not None
    numbers = [_number(v) for v in values]
    if any(n is None for n in numbers):
        return False
    if operator == "min":
        return all(n >= operand for n in numbers if n is not None)  # type: ignore[operator]
    if operator == "max":
        return all(n <= operand for n in numbers if n is not None)  # type: ignore[operator]
    if operator == "range":
        assert isinstance(operand, tuple)
        low, high = operand
        return all(low <= n <= high for n in numbers if n is not None)  # type: ignore[operator]
    if operator == "tolerance":
        assert isinstance(operand, tuple)
        centre, spread = operand
        return all(abs(n - centre) <= spread for n in numbers if n is not None)  # type: ignore[operator]
    raise ValueError(f"unknown operator {operator!r}")  # the loader admits none


def expectation(check: Check) -> str:
    """The expected side of a finding, in words."""
    operand = check.operand
    if isinstance(operand, re.Pattern):
        return f"to match {_quoted(operand.pattern)}"
    if check.operator == "present":
        return "present" if operand else "absent"
    if check.operator == "range":
        assert isinstance(operand, tuple)
        return f"between {operand[0]} and {operand[1]}"
    if check.operator == "tolerance":
        assert isinstance(operand, tuple)
        return f"within {operand[0]} ± {operand[1]}"
    words = {
        "equals": "equal to",
        "in": "one of",
        "not_in": "none of",
        "contains": "to contain",
        "not_contains": "not to contain",
        "contains_any": "to contain one of",
        "contains_all": "to contain all of",
        "glob": "to match the pattern",
        "min": ">=",
        "max": "<=",
    }
    shown = "[" + ", ".join(str(o) for o in operand) + "]" if isinstance(operand, tuple) else _quoted(operand)
    return f"{words[check.operator]} {shown}"


def _same(value: Scalar, operand: object) -> bool:
    if isinstance(operand, bool) or isinstance(value, bool):
        return value == operand
    if isinstance(operand, (int, float)):
        number = _number(value)
        return number is not None and number == operand
    return str(value).strip() == str(operand)


def _number(value: Scalar) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _quoted(operand: object) -> str:
    """Text in plain quotes (no doubled backslashes, unlike repr); numbers as they are."""
    return f"'{operand}'" if isinstance(operand, str) else str(operand)
