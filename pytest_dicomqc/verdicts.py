"""Verdicts over the whole dataset, from every file's record: rule thresholds and waiver use.

They need every file, so under xdist only the controller can give them; this module is pure
(records in, verdicts out) so that the controller's reporter just calls it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pytest_dicomqc.record import FAIL, PASS, WAIVED, WARN, FileRecord
from pytest_dicomqc.rules.model import RuleSet, Waiver

ACTIVE = "active"
EXPIRED = "expired"
STALE = "stale"
UNUSED = "unused in this partial run"


@dataclass(frozen=True)
class ThresholdVerdict:
    """``max_failing`` of one rule, judged over every file it applied to."""

    rule_id: str
    applicable: int
    failing: int
    allowed: str
    passed: bool

    @property
    def message(self) -> str:
        share = f" ({100 * self.failing / self.applicable:.1f}%)" if self.applicable else ""
        verb = "within" if self.passed else "above"
        return (
            f"{self.failing} of {self.applicable} applicable files fail rule {self.rule_id!r}{share}, "
            f"{verb} max_failing {self.allowed}"
        )


@dataclass(frozen=True)
class WaiverUse:
    waiver: Waiver
    status: str
    """active (waived at least one finding), expired (no longer applies) or stale (matched nothing)."""
    files: int


def threshold_verdicts(ruleset: RuleSet, records: Iterable[FileRecord]) -> list[ThresholdVerdict]:
    rules = [rule for rule in ruleset.rules if rule.max_failing is not None]
    counts = {rule.id: Counter[str]() for rule in rules}
    for record in records:
        for rule_id, counter in counts.items():
            counter[record.results.get(rule_id, "")] += 1
    verdicts = []
    for rule in rules:
        assert rule.max_failing is not None
        counter = counts[rule.id]
        failing = counter[WARN] + counter[FAIL]
        applicable = failing + counter[PASS] + counter[WAIVED]
        verdicts.append(
            ThresholdVerdict(
                rule.id, applicable, failing, rule.max_failing.text, rule.max_failing.allows(failing, applicable)
            )
        )
    return verdicts


def waiver_uses(
    ruleset: RuleSet, records: Sequence[FileRecord], complete: bool, dataset_uses: Counter[str] | None = None
) -> list[WaiverUse]:
    """How each waiver was used: ``files`` counts the files it waived a rule for, plus the
    dataset problems it accepted (``dataset_uses``). Only a run over the whole dataset
    (``complete``) can call one stale: in a partial run (``-k``, ``--lf``, ``-x``…) it may just
    not have met its files."""
    used = Counter(waiver_id for record in records for waiver_id in record.waivers)
    used.update(dataset_uses or Counter())
    uses = []
    for waiver in ruleset.waivers:
        status = EXPIRED if waiver.expired else ACTIVE if used[waiver.id] else STALE if complete else UNUSED
        uses.append(WaiverUse(waiver, status, used[waiver.id]))
    return uses
