"""The rules as loaded: plain frozen data, no I/O and no pytest."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TypeAlias

Literal: TypeAlias = str | int | float | bool
"""A value written in the rules file (never None, unlike a cell)."""
Operand: TypeAlias = Literal | tuple[Literal, ...] | re.Pattern[str]

SEVERITIES = ("error", "warning")
NON_DICOM_POLICIES = ("skip", "fail", "pass")
TAG = "tag"
PIXEL = "pixel"
FILE = "file"
FILE_FIELDS = ("kind", "transfer_syntax", "size_bytes", "path")


@dataclass(frozen=True)
class Target:
    """What a rule looks at: a DICOM tag, a pixel summary field or a fact about the file."""

    source: str
    name: str
    tag: int | None = None
    identifying: bool = field(default=False, compare=False)
    """Values are never shown (patient names, IDs, birth dates): see ``extract.is_identifying``."""

    def __str__(self) -> str:
        return self.name if self.source == TAG else f"{self.source}.{self.name}"


@dataclass(frozen=True)
class Check:
    """An operator and its operand, e.g. ``contains: ORIGINAL``."""

    operator: str
    operand: Operand


@dataclass(frozen=True)
class Condition:
    """One ``when:`` entry; a rule applies only where all of its conditions hold."""

    target: Target
    check: Check


@dataclass(frozen=True)
class Threshold:
    """``max_failing``: how many applicable files may fail a rule before the dataset fails it."""

    count: int | None = None
    percent: str | None = None
    """As written ("2.5"): compared exactly, since 0.29 * 100 is 28.999… in floating point."""
    text: str = ""

    def allows(self, failing: int, applicable: int) -> bool:
        if self.count is not None:
            return failing <= self.count
        assert self.percent is not None
        return failing * 100 <= Fraction(self.percent) * applicable


@dataclass(frozen=True)
class Rule:
    id: str
    target: Target
    check: Check
    severity: str = "error"
    allow_missing: bool = False
    when: tuple[Condition, ...] = ()
    description: str = ""
    message: str = ""
    max_failing: Threshold | None = None
    line: int = 0


@dataclass(frozen=True)
class Waiver:
    """A known finding accepted for a while: matched by path glob or SOPInstanceUID."""

    id: str
    reason: str
    rules: tuple[str, ...]
    """Rule ids it waives; ``("*",)`` waives every rule."""
    path: str | None = None
    sop_instance_uid: str | None = None
    expires: str | None = None
    """ISO date; on and after it the waiver no longer applies."""
    expired: bool = False
    source: str = ""
    line: int = 0

    def covers(self, rule_id: str) -> bool:
        return "*" in self.rules or rule_id in self.rules


@dataclass(frozen=True)
class NonDicomPolicy:
    """What non-DICOM files do: ``default`` (skip, fail or pass) unless a glob says otherwise."""

    default: str = "skip"
    exceptions: tuple[tuple[str, str], ...] = ()
    """(glob, policy) pairs, first match wins."""


@dataclass(frozen=True)
class RuleSet:
    """A validated rules file, with the waivers that apply to it."""

    source: str
    rules: tuple[Rule, ...]
    columns: tuple[Target, ...] = ()
    non_dicom: NonDicomPolicy = field(default_factory=NonDicomPolicy)
    waivers: tuple[Waiver, ...] = ()

    @property
    def tags(self) -> frozenset[int]:
        """Every tag the rules, their conditions and the extra columns read."""
        targets = [rule.target for rule in self.rules]
        targets += [condition.target for rule in self.rules for condition in rule.when]
        targets += list(self.columns)
        return frozenset(t.tag for t in targets if t.tag is not None)
