"""One set of numbers: every count the report shows comes from :func:`conclude`, and they add up.

A property test over random outcomes: files that passed, failed, warned, were waived, to which a
rule did not apply, that did not run or whose worker crashed. The Summary sheet is read back from
the workbook, so a writer that counted for itself would be caught.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_dicomqc.conclusion import DICOM_FILES, Scope, conclude
from pytest_dicomqc.pipeline import value_columns
from pytest_dicomqc.record import FAIL, NOT_APPLICABLE, PASS, WAIVED, WARN, FileRecord, ReportRow
from pytest_dicomqc.rules.load import parse_rules
from tests.helpers import read_sheet, write_workbook

RULES = parse_rules(
    """\
version: 1
rules:
  - id: strict-rule
    tag: Rows
    min: 64
  - id: tolerant-rule
    tag: Columns
    min: 64
    max_failing: 40%
  - id: counted-rule
    tag: Modality
    equals: CT
    max_failing: 2
  - id: warning-rule
    tag: PatientSex
    in: [F, M]
    severity: warning
""",
    "rules.yaml",
)
RULE_IDS = [rule.id for rule in RULES.rules]
CELLS = (PASS, FAIL, WARN, WAIVED, NOT_APPLICABLE)

a_file = st.one_of(
    st.tuples(
        st.sampled_from(["passed", "failed", "waived", "skipped"]),
        st.lists(st.sampled_from(CELLS), min_size=4, max_size=4),
    ),
    st.tuples(st.sampled_from(["not run", "crashed"]), st.none()),
)


def rows_of(files: list[tuple[str, list[str] | None]]) -> list[ReportRow]:
    rows = []
    for index, (status, cells) in enumerate(files):
        path = f"f{index}.dcm"
        if cells is None:
            rows.append(ReportRow(path, status))  # type: ignore[arg-type]
            continue
        record = FileRecord(path, "dicom", status, "", {}, dict(zip(RULE_IDS, cells, strict=True)), ())
        rows.append(ReportRow(path, status, record))  # type: ignore[arg-type]
    return rows


def numbers(text: str) -> dict[str, int]:
    return {name.strip(): int(count) for name, count in re.findall(r"([a-z ]+?) (\d+)", text.replace(",", ""))}


@settings(max_examples=40, deadline=None)
@given(st.lists(a_file, max_size=30))
def test_the_summary_adds_up_and_agrees_with_the_thresholds(files: list[tuple[str, list[str] | None]]) -> None:
    rows = rows_of(files)
    conclusion = conclude(rows, RULES, Scope("data/"))
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.xlsx"
        write_workbook(report, conclusion, RULES, value_columns(RULES), [])
        summary = read_sheet(report, "Summary")
    by_section: dict[str, dict[str, tuple[object, object]]] = {}
    for row in summary:
        by_section.setdefault(str(row["section"]), {})[str(row["item"])] = (row["value"], row["detail"])

    # every file is counted once, under one status
    statuses = by_section["status"]
    assert sum(int(value) for value, _ in statuses.values()) == len(rows) == by_section["files"]["total"][0]
    for status in ("passed", "failed", "waived", "skipped", "not run", "crashed"):
        assert statuses[status][0] == sum(1 for row in rows if row.status == status)

    # per rule: the cells of every file, each counted once
    thresholds = {verdict.rule_id: verdict for verdict in conclusion.thresholds}
    for index, rule_id in enumerate(RULE_IDS):
        value, detail = by_section["rule"][rule_id]
        counts = numbers(str(detail).partition(";")[2])
        cells = [cells[index] for _, cells in files if cells is not None]
        assert counts["passed"] == cells.count(PASS)
        assert counts["failed"] == cells.count(FAIL)
        assert counts["warned"] == cells.count(WARN)
        assert counts["waived"] == cells.count(WAIVED)
        assert counts["not applicable"] == cells.count(NOT_APPLICABLE)
        assert counts["not checked"] == sum(1 for _, cells in files if cells is None)
        assert counts["applicable"] == counts["passed"] + counts["failed"] + counts["warned"] + counts["waived"]
        assert sum(counts[k] for k in ("applicable", "not applicable", "not checked")) == len(rows)
        assert value == counts["failed"] + counts["warned"]
        if rule_id in thresholds and counts["applicable"]:  # the threshold verdict states the very same numbers
            message = thresholds[rule_id].message
            assert message.startswith(f"{value} of {counts['applicable']} applicable files fail rule {rule_id!r}")

    # every failed file is counted once: under the rules it failed, or by why it failed without one
    failed_files = statuses["failed"][0] + statuses["crashed"][0]  # type: ignore[operator]
    failing_a_rule = sum(1 for status, cells in files if status == "failed" and cells is not None and FAIL in cells)
    without = by_section["files"].get("failed with no rule failing", (0, ""))
    assert without[0] == conclusion.failed_without_a_rule_count == failed_files - failing_a_rule
    assert without[1] == conclusion.failed_without_a_rule_why

    # thresholds and dataset results are judged only over a complete picture
    complete = all(cells is not None for _, cells in files)
    threshold_rows = by_section.get("threshold", {})
    assert set(threshold_rows) == {"tolerant-rule", "counted-rule"}
    for rule_id, (status, message) in threshold_rows.items():
        if complete:
            verdict = thresholds[rule_id]
            assert (status, message) == (verdict.status, verdict.message)
            assert status == ("empty" if not verdict.tally.applicable else "passed" if verdict.passed else "failed")
        else:
            assert status == "not judged"
    dicom_files = by_section["dataset"][DICOM_FILES]
    assert dicom_files[0] == ("not judged" if not complete else "passed" if rows else "failed")

    # the verdict on top agrees with the counts below it
    verdict = by_section["verdict"]
    (word,) = verdict
    failing = statuses["failed"][0] + statuses["crashed"][0]  # type: ignore[operator]
    failing_results = sum(1 for result in conclusion.results if result.outcome == "failed")
    assert word == ("FAILED" if failing or failing_results else "INCOMPLETE" if not complete else "PASSED")


def test_a_waived_file_counts_as_applicable_in_the_rule_row_and_the_threshold() -> None:
    """The case that was seen: the Summary said 'applicable 16' where the threshold said 17."""
    files = (
        [("passed", [PASS] * 4)] * 3
        + [("waived", [PASS, WAIVED, PASS, PASS])]
        + [("passed", [PASS, WARN, PASS, PASS])] * 13
    )
    files += [("passed", [PASS, NOT_APPLICABLE, PASS, PASS])] * 5
    conclusion = conclude(rows_of(files), RULES, Scope("data/"))
    (tally,) = [t for t in conclusion.tallies if t.rule.id == "tolerant-rule"]
    assert (tally.applicable, tally.passed, tally.warned, tally.waived, tally.not_applicable) == (17, 3, 13, 1, 5)
    (threshold,) = [t for t in conclusion.thresholds if t.rule_id == "tolerant-rule"]
    assert threshold.message == "13 of 17 applicable files fail rule 'tolerant-rule' (76.5%), above max_failing 40%"


def test_why_a_file_failed_with_no_rule_failing() -> None:
    """Each failed file that no rule failed is counted by why; pytest failing an item whose file
    passed its checks (a fixture, a hook, ``--runxfail``) is not blamed on the file."""
    passed = FileRecord("b.dcm", "dicom", "waived", "", {}, {"strict-rule": WAIVED}, ())
    lfs_note = "Git LFS pointer (not downloaded: run git lfs pull); 1234 bytes"
    rows = [
        ReportRow("a.dcm", "failed", FileRecord("a.dcm", "unreadable", "failed", "cannot parse", {}, {}, ())),
        ReportRow("b.dcm", "failed", passed),
        ReportRow("c.dcm", "failed"),
        ReportRow("d.dcm", "crashed"),
        ReportRow("e.dcm", "failed", FileRecord("e.dcm", "non-dicom", "failed", "", {"notes": lfs_note}, {}, ())),
        ReportRow("f.txt", "failed", FileRecord("f.txt", "non-dicom", "failed", "", {"notes": "text file"}, {}, ())),
        ReportRow("g.dcm", "failed", FileRecord("g.dcm", "unreadable", "failed", "cannot parse", {}, {}, ())),
        ReportRow("h.dcm", "failed", FileRecord("h.dcm", "dicom", "failed", "", {}, {"strict-rule": FAIL}, ())),
    ]
    conclusion = conclude(rows, RULES, Scope("data/"))
    assert conclusion.failed_without_a_rule_text == (
        "7 files failed with no rule failing: 2 unreadable files,"
        " 1 file (failed by pytest: a hook, a fixture, --runxfail), 1 file (failed before it was read),"
        " 1 crashed file (worker died), 1 Git LFS pointer (not downloaded: run git lfs pull),"
        " 1 non-DICOM file (non_dicom: fail)"
    )
