"""The conclusion as the terminal shows it: the same lines after a pytest run and after a merge.

Pure: lines of text with their colour; pytest's terminal reporter or the merge command writes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pytest_dicomqc.conclusion import ACTIVE, EXPIRED, NOT_RUN, STALE, WARNINGS, Conclusion
from pytest_dicomqc.record import ITEM_NAME


@dataclass(frozen=True)
class Line:
    text: str
    colour: str = ""
    """``red``, ``green``, ``yellow`` or none."""
    path: bool = False
    """It names a file: never cut to the terminal's width."""


def conclusion_lines(conclusion: Conclusion) -> Iterator[Line]:
    """Verdict, files by status, failing rules, the dataset results, waivers not in use."""
    verdict = conclusion.verdict
    yield Line(f"dicomqc: {conclusion.headline}", {"FAILED": "red", "PASSED": "green"}.get(verdict, ""))
    counts = ", ".join(f"{count:,} {status}" for status, count in conclusion.statuses.items() if count)
    total = len(conclusion.rows)
    yield Line(f"dicomqc: {total:,} file{'' if total == 1 else 's'}: {counts or 'none'}")
    if conclusion.earlier:  # two lines: the time must not be cut to the terminal's width
        yield Line(f"dicomqc: partial run: {conclusion.earlier_text}", "yellow")
        yield Line(f"dicomqc: from {conclusion.earlier_source}", "yellow")
    for tally in conclusion.tallies:
        if tally.failing:
            parts = [f"{tally.failed:,} failed"] if tally.failed else []
            parts += [f"{tally.warned:,} warned"] if tally.warned else []
            yield Line(
                f"dicomqc rule {tally.rule.id} ({tally.rule.severity}): {', '.join(parts)}"
                f" of {tally.applicable:,} applicable files",
                "red" if tally.failed else "yellow",
            )
    if conclusion.failed_without_a_rule:
        yield Line(f"dicomqc: {conclusion.failed_without_a_rule_text}", "red")
    if conclusion.shard:
        results = len(conclusion.results)
        yield Line(
            f"dicomqc: shard {conclusion.shard}: {results} dataset result{'' if results == 1 else 's'} judged at merge",
            "yellow",
        )
    else:
        for result in conclusion.results:
            name = result.name.replace("::", " ")
            if result.outcome == "failed":  # its problems are in the failure above, printed once
                yield Line(f"dicomqc {name} failed: {result.summary} (above: {ITEM_NAME}::{result.name})", "red")
            else:
                colour = "yellow" if result.status in (*WARNINGS, NOT_RUN) else ""
                yield Line(f"dicomqc {name} {result.status}: {result.message}", colour)
    for use in conclusion.waivers:
        if use.status != ACTIVE:
            waiver = use.waiver
            what = {EXPIRED: f"expired on {waiver.expires}", STALE: "matched no finding (stale)"}.get(
                use.status, "waived nothing in this partial run"
            )
            yield Line(f"dicomqc waiver {waiver.id} ({waiver.source}:{waiver.line}) {what}", "yellow")
