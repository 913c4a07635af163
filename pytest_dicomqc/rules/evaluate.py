"""Pure rule evaluation: facts in, PASS/FAIL/WARN/N/A and findings out.

What each operator means, on single and multi-valued tags, is in the operator table
(:mod:`pytest_dicomqc.rules.operators`). An absent or empty value is *missing*: it passes only
``present: false`` or ``allow_missing``.
"""

from __future__ import annotations

import enum
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
from pytest_dicomqc.rules.limits import clip
from pytest_dicomqc.rules.model import PIXEL, TAG, Check, Condition, Rule, RuleSet, Target, Waiver
from pytest_dicomqc.rules.operators import operator

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
    if is_empty(value) and excused_when_missing(rule):
        return PASS, None
    if holds(rule.check, value):
        return PASS, None
    if is_empty(value):
        observed = MISSING_TEXT
    elif rule.target.identifying:
        observed = REDACTED_TEXT
    else:
        observed = clip(str(display(value)))  # a finding quotes a value, it does not carry it
    expected = expectation(rule.check)
    message = (rule.message or "{target} = {observed}, expected {expected}").format(
        target=str(rule.target), observed=observed, expected=expected, id=rule.id
    )
    if rule.max_failing is not None:
        # counted against the rule's threshold over the dataset; a file alone does not fail it
        return WARN, Finding(rule.id, "threshold", observed, expected, message)
    result = FAIL if rule.severity == "error" or strict else WARN
    return result, Finding(rule.id, rule.severity, observed, expected, message)


def excused_when_missing(rule: Rule) -> bool:
    """``allow_missing`` passes a missing value, except for an operator that judges missing values
    itself (``present: true`` with ``allow_missing`` still fails an absent tag)."""
    return rule.allow_missing and not operator(rule.check.operator).judges_missing


def holds(check: Check, value: Value) -> bool:
    """Whether ``value`` satisfies ``check``; a missing value satisfies only ``present: false``."""
    return operator(check.operator).holds(check.operand, value)


def expectation(check: Check) -> str:
    """The expected side of a finding, in words (from the operator table)."""
    return operator(check.operator).words(check.operand)
