"""Unit tests of writers/jsonl.py (``--dicom-json``): exact records, the packaged schema, counts
read from the conclusion, and hostile text that must never break a line or the UTF-8."""

from __future__ import annotations

import importlib.resources
import json
import math
import os
from pathlib import Path
from typing import Any, get_args

import jsonschema
import pandas
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_dicomqc.conclusion import Conclusion, Outcome, ResultStatus, Scope, Verdict, WaiverStatus, conclude
from pytest_dicomqc.dataset_checks import DATASET_STATUSES
from pytest_dicomqc.record import (
    FAIL,
    KINDS,
    NOT_APPLICABLE,
    PASS,
    SEVERITIES,
    STATUSES,
    WAIVED,
    WARN,
    FileRecord,
    Finding,
    ReportRow,
    Scalar,
)
from pytest_dicomqc.rules.load import parse_rules
from pytest_dicomqc.rules.model import DATASET_CHECK_TYPES
from pytest_dicomqc.writers.jsonl import (
    RECORD_TYPES,
    SCHEMA_RESOURCE,
    SCHEMA_VERSION,
    file_record,
    line,
    summary_record,
)

SCHEMA = json.loads(importlib.resources.files("pytest_dicomqc").joinpath(SCHEMA_RESOURCE).read_text("utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
CELLS = (PASS, FAIL, WARN, NOT_APPLICABLE, WAIVED)

RULES = parse_rules(
    """\
version: 1
rules:
  - id: original-image
    tag: ImageType
    contains: ORIGINAL
  - id: enough-rows
    tag: Rows
    min: 64
    max_failing: 1
  - id: sex-known
    tag: PatientSex
    in: [F, M]
    severity: warning
dataset:
  - id: unique-sop
    unique: SOPInstanceUID
waivers:
  - id: legacy-reformats
    path: "legacy/**"
    rules: [original-image]
    reason: Reformatted legacy series (DATA-142)
    expires: 2099-06-30
""",
    "rules.yaml",
)
RULE_IDS = [rule.id for rule in RULES.rules]
EARLIER = "2026-11-30T10:00:00+01:00"


def dicom(
    path: str, verdict: str, cells: list[str], uid: str, *findings: Finding, waivers: tuple[str, ...] = ()
) -> FileRecord:
    values: dict[str, Scalar] = {"ImageType": "ORIGINAL\\PRIMARY", "Rows": 512, "mean": 101.25, "VOILUTFunction": None}
    results = dict(zip(RULE_IDS, cells, strict=True))
    return FileRecord(path, "dicom", verdict, "", values, results, findings, waivers, {"unique-sop": [uid]})


B_FINDINGS = (
    Finding("original-image", "error", "DERIVED\\SECONDARY", "contains ORIGINAL", "not an original image"),
    Finding("enough-rows", "error", "32", ">= 64", "too few rows"),
    Finding("sex-known", "warning", "<missing>", "in [F, M]", "PatientSex missing"),
)
WAIVED_FINDING = Finding("original-image", "error", "DERIVED", "contains ORIGINAL", "reformat", "legacy-reformats")
NOTES = FileRecord("notes.txt", "non-dicom", "skipped", "", {"notes": "text file"}, dict.fromkeys(RULE_IDS, "N/A"), ())
CHECKED = [
    ReportRow("a.dcm", "passed", dicom("a.dcm", "passed", [PASS, PASS, PASS], "1.2.3.4")),
    ReportRow("b.dcm", "failed", dicom("b.dcm", "failed", [FAIL, FAIL, WARN], "1.2.3.4", *B_FINDINGS)),
    ReportRow(
        "legacy/c.dcm",
        "waived",
        dicom("legacy/c.dcm", "waived", [WAIVED, PASS, PASS], "1.2.3.5", WAIVED_FINDING, waivers=("legacy-reformats",)),
    ),
    ReportRow("notes.txt", "skipped", NOTES),
    ReportRow("old/f.dcm", "passed", dicom("old/f.dcm", "passed", [PASS, PASS, PASS], "1.2.3.6"), earlier=EARLIER),
]
UNCHECKED = [
    ReportRow("d.dcm", "not run"),
    ReportRow("e.dcm", "crashed", error="worker 'gw1' crashed while running this file"),
]
RUN_FACTS: list[tuple[str, Scalar]] = [("dataset", "data"), ("duration (s)", 1.5), ("pytest exit status", 1)]


def complete() -> Conclusion:
    return conclude(CHECKED, RULES, Scope("data/"))


def partial() -> Conclusion:
    return conclude(CHECKED + UNCHECKED, RULES, Scope("data/"))


def lines_of(conclusion: Conclusion, run_facts: list[tuple[str, Scalar]] = RUN_FACTS) -> list[str]:
    return [line(file_record(row)) for row in conclusion.rows] + [line(summary_record(conclusion, run_facts))]


# -- exact records ---------------------------------------------------------------------------


def test_a_failed_file_with_findings() -> None:
    assert file_record(CHECKED[1]) == {
        "record": "file",
        "schema": 1,
        "path": "b.dcm",
        "status": "failed",
        "kind": "dicom",
        "checked": "this run",
        "error": None,
        "failed_rules": ["original-image", "enough-rows"],
        "warned_rules": ["sex-known"],
        "values": {"ImageType": "ORIGINAL\\PRIMARY", "Rows": 512, "mean": 101.25, "VOILUTFunction": None},
        "results": {"original-image": "FAIL", "enough-rows": "FAIL", "sex-known": "WARN"},
        "findings": [
            {
                "rule": "original-image",
                "severity": "error",
                "observed": "DERIVED\\SECONDARY",
                "expected": "contains ORIGINAL",
                "message": "not an original image",
                "waiver": None,
            },
            {
                "rule": "enough-rows",
                "severity": "error",
                "observed": "32",
                "expected": ">= 64",
                "message": "too few rows",
                "waiver": None,
            },
            {
                "rule": "sex-known",
                "severity": "warning",
                "observed": "<missing>",
                "expected": "in [F, M]",
                "message": "PatientSex missing",
                "waiver": None,
            },
        ],
        "waivers": [],
    }


def test_files_with_no_record_and_from_an_earlier_run() -> None:
    empty: dict[str, Any] = {
        "failed_rules": [],
        "warned_rules": [],
        "values": {},
        "results": {},
        "findings": [],
        "waivers": [],
    }
    assert file_record(UNCHECKED[0]) == {
        "record": "file",
        "schema": 1,
        "path": "d.dcm",
        "status": "not run",
        "kind": None,
        "checked": None,
        "error": None,
        **empty,
    }
    assert file_record(UNCHECKED[1]) == {
        "record": "file",
        "schema": 1,
        "path": "e.dcm",
        "status": "crashed",
        "kind": None,
        "checked": "this run",
        "error": "worker 'gw1' crashed while running this file",
        **empty,
    }
    earlier = file_record(CHECKED[4])
    assert (earlier["status"], earlier["checked"], earlier["results"]["enough-rows"]) == ("passed", EARLIER, "PASS")


def test_a_waived_file_and_a_skipped_non_dicom_file() -> None:
    waived = file_record(CHECKED[2])
    assert (waived["status"], waived["waivers"], waived["failed_rules"]) == ("waived", ["legacy-reformats"], [])
    assert waived["findings"][0]["waiver"] == "legacy-reformats"
    assert file_record(CHECKED[3]) == {
        "record": "file",
        "schema": 1,
        "path": "notes.txt",
        "status": "skipped",
        "kind": "non-dicom",
        "checked": "this run",
        "error": None,
        "failed_rules": [],
        "warned_rules": [],
        "values": {"notes": "text file"},
        "results": {"original-image": "N/A", "enough-rows": "N/A", "sex-known": "N/A"},
        "findings": [],
        "waivers": [],
    }


def test_the_summary_of_a_complete_run() -> None:
    conclusion = complete()
    (verdict,) = conclusion.dataset
    (problem,) = verdict.findings
    summary = summary_record(conclusion, RUN_FACTS)
    assert summary == {
        "record": "summary",
        "schema": 1,
        "verdict": "FAILED",
        "headline": "FAILED: 1 file failed; 1 dataset result failed",
        "complete": True,
        "files": 5,
        "statuses": {"passed": 2, "failed": 1, "skipped": 1, "waived": 1, "not run": 0, "crashed": 0},
        "kinds": {"dicom": 4, "non-dicom": 1},
        "failed_without_a_rule": {},
        "earlier": 1,
        "rules": [
            {
                "id": "original-image",
                "severity": "error",
                "max_failing": None,
                "applicable": 4,
                "passed": 2,
                "failed": 1,
                "warned": 0,
                "waived": 1,
                "not_applicable": 1,
                "unchecked": 0,
                "failing": 1,
            },
            {
                "id": "enough-rows",
                "severity": "error",
                "max_failing": "1",
                "applicable": 4,
                "passed": 3,
                "failed": 1,
                "warned": 0,
                "waived": 0,
                "not_applicable": 1,
                "unchecked": 0,
                "failing": 1,
            },
            {
                "id": "sex-known",
                "severity": "warning",
                "max_failing": None,
                "applicable": 4,
                "passed": 3,
                "failed": 0,
                "warned": 1,
                "waived": 0,
                "not_applicable": 1,
                "unchecked": 0,
                "failing": 1,
            },
        ],
        "results": [
            {
                "name": "dicom-files",
                "status": "passed",
                "outcome": "passed",
                "message": "4 DICOM files checked in data/: 1 text file; at least 1 required",
            },
            {"name": "dataset::unique-sop", "status": "failed", "outcome": "failed", "message": verdict.message},
            {
                "name": "rule::enough-rows",
                "status": "passed",
                "outcome": "passed",
                "message": "1 of 4 applicable files fail rule 'enough-rows' (25.0%), within max_failing 1",
            },
        ],
        "dataset": [
            {
                "check": "unique-sop",
                "type": "unique",
                "status": "failed",
                "severity": "error",
                "scope": "4 files, 3 distinct values",
                "groups": 3,
                "files": 4,
                "left_out": 0,
                "problems": [
                    {"group": problem.group, "problem": problem.problem, "files": ["a.dcm", "b.dcm"], "waiver": None}
                ],
            }
        ],
        "waivers": [
            {
                "id": "legacy-reformats",
                "status": "active",
                "files": 1,
                "rules": ["original-image"],
                "path": "legacy/**",
                "sop_instance_uid": None,
                "reason": "Reformatted legacy series (DATA-142)",
                "expires": "2099-06-30",
                "defined_in": "rules.yaml:18",
            }
        ],
        "run": {"dataset": "data", "duration (s)": 1.5, "pytest exit status": 1},
    }


def test_the_summary_of_a_partial_run_judges_no_dataset_result() -> None:
    summary = summary_record(partial(), RUN_FACTS)
    assert (summary["verdict"], summary["complete"], summary["files"]) == ("FAILED", False, 7)
    assert summary["statuses"] == {"passed": 2, "failed": 1, "skipped": 1, "waived": 1, "not run": 1, "crashed": 1}
    assert [rule["unchecked"] for rule in summary["rules"]] == [2, 2, 2]
    assert [(r["name"], r["status"], r["outcome"]) for r in summary["results"]] == [
        ("dicom-files", "not judged", "skipped"),
        ("dataset::unique-sop", "not judged", "skipped"),
        ("rule::enough-rows", "not judged", "skipped"),
    ]
    assert summary["dataset"] == []


# -- the schema ------------------------------------------------------------------------------


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("conclusion", [complete(), partial()], ids=["complete", "partial"])
def test_every_line_validates_against_the_schema(conclusion: Conclusion) -> None:
    for text in lines_of(conclusion):
        VALIDATOR.validate(json.loads(text))


def test_the_schema_rejects_what_the_format_never_writes() -> None:
    record = file_record(CHECKED[1])
    for key, wrong in [("status", "PASSED"), ("kind", "dicm"), ("schema", 2), ("results", {"r": "OK"})]:
        assert not VALIDATOR.is_valid({**record, key: wrong}), key
    assert not VALIDATOR.is_valid({key: value for key, value in record.items() if key != "findings"})
    assert not VALIDATOR.is_valid({**record, "record": "summary"})


@pytest.mark.parametrize(
    ("definition", "vocabulary"),
    [
        ("status", STATUSES),
        ("kind", KINDS),
        ("cell", CELLS),
        ("severity", SEVERITIES),
        ("verdict", get_args(Verdict)),
        ("outcome", get_args(Outcome)),
        ("result_status", get_args(ResultStatus)),
        ("dataset_status", DATASET_STATUSES),
        ("check_type", DATASET_CHECK_TYPES),
        ("waiver_status", get_args(WaiverStatus)),
    ],
)
def test_schema_enums_are_the_vocabularies_of_the_code(definition: str, vocabulary: tuple[str, ...]) -> None:
    assert SCHEMA["$defs"][definition]["enum"] == list(vocabulary)


def test_the_schema_names_the_record_types_version_and_every_status() -> None:
    definitions = SCHEMA["$defs"]
    assert [definitions[kind]["properties"]["record"]["const"] for kind in RECORD_TYPES] == list(RECORD_TYPES)
    assert {definitions[kind]["properties"]["schema"]["const"] for kind in RECORD_TYPES} == {SCHEMA_VERSION}
    assert definitions["summary"]["properties"]["statuses"]["required"] == list(STATUSES)


def keys(value: Any, definition: str) -> None:
    """The keys written, in order, are the schema's required keys, and it describes each of them."""
    properties = SCHEMA["$defs"][definition]
    assert list(value) == properties["required"] == list(properties["properties"]), definition


def test_the_schema_describes_exactly_the_keys_written() -> None:
    keys(file_record(CHECKED[1]), "file")
    keys(file_record(CHECKED[1])["findings"][0], "finding")
    summary = summary_record(complete(), RUN_FACTS)
    keys(summary, "summary")
    for section, definition in [("rules", "rule"), ("results", "result"), ("dataset", "check"), ("waivers", "waiver")]:
        keys(summary[section][0], definition)
    keys(summary["dataset"][0]["problems"][0], "problem")


# -- numbers come from the conclusion --------------------------------------------------------

a_file = st.one_of(
    st.tuples(
        st.sampled_from(["passed", "failed", "waived", "skipped"]),
        st.lists(st.sampled_from(CELLS), min_size=3, max_size=3),
        st.sampled_from(["1.2.3", "1.2.4", "1.2.5"]),
        st.booleans(),
    ),
    st.tuples(st.sampled_from(["not run", "crashed"]), st.none(), st.none(), st.just(False)),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(a_file, max_size=20))
def test_the_summary_numbers_are_the_conclusions(files: list[tuple[str, list[str] | None, str | None, bool]]) -> None:
    rows = []
    for index, (status, cells, uid, earlier) in enumerate(files):
        path = f"f{index}.dcm"
        if cells is None or uid is None:
            rows.append(ReportRow(path, status))  # type: ignore[arg-type]
        else:
            record = dicom(path, status, cells, uid)
            rows.append(ReportRow(path, status, record, earlier=EARLIER if earlier else ""))  # type: ignore[arg-type]
    conclusion = conclude(rows, RULES, Scope("data/"))
    texts = lines_of(conclusion)
    for text in texts:
        VALIDATOR.validate(json.loads(text))
    summary = json.loads(texts[-1])
    assert summary["files"] == len(conclusion.rows) == len(texts) - 1
    assert summary["statuses"] == conclusion.statuses
    assert summary["kinds"] == conclusion.kinds
    assert (summary["earlier"], summary["verdict"], summary["headline"]) == (
        conclusion.earlier,
        conclusion.verdict,
        conclusion.headline,
    )
    counts = ("applicable", "passed", "failed", "warned", "waived", "not_applicable", "unchecked", "failing")
    assert [[rule[count] for count in counts] for rule in summary["rules"]] == [
        [getattr(tally, count) for count in counts] for tally in conclusion.tallies
    ]
    assert [(r["name"], r["status"], r["outcome"], r["message"]) for r in summary["results"]] == [
        (r.name, r.status, r.outcome, r.message) for r in conclusion.results
    ]
    assert [(c["status"], c["groups"], c["files"], c["left_out"], len(c["problems"])) for c in summary["dataset"]] == [
        (v.status, v.groups, v.files, v.left_out, len(v.findings)) for v in conclusion.dataset
    ]
    assert [(w["status"], w["files"]) for w in summary["waivers"]] == [(u.status, u.files) for u in conclusion.waivers]


# -- hostile text ----------------------------------------------------------------------------

NOT_UTF8_PATH = os.fsdecode(b"caf\xe9/\xff scan.dcm")
"""A file name that is not UTF-8, as Python gives it: lone surrogates (surrogateescape)."""
HOSTILE: dict[str, Scalar] = {
    "surrogate": "x\udcffy",
    "high surrogate": "\ud83d alone",
    "nul": "a\x00b",
    "esc": "\x1b$B\x1b(B",
    "newlines": "one\ntwo\r\nthree\x0bfour\x0cfive\x1cx\x1dy\x1ez",
    "unicode line breaks": "p\u2028q\u2029r\x85s",
    "long": "A" * 100_000,
    "megabyte": "é" * 1_000_000,
    "formula": "=cmd|' /C calc'!A0",
    "hyperlink": '=HYPERLINK("http://x","y")',
    "quote and backslash": '"\\',
}


def hostile_row() -> ReportRow:
    finding = Finding("original-image", "error", "\udcff\x00", "=1+1", "\u2028")
    results = {"original-image": FAIL}
    record = FileRecord(NOT_UTF8_PATH, "dicom", "failed", "bad\x00", dict(HOSTILE), results, (finding,))
    return ReportRow(NOT_UTF8_PATH, "failed", record)


def test_hostile_text_round_trips_in_one_valid_utf8_line() -> None:
    text = line(file_record(hostile_row()))
    data = text.encode("utf-8")  # strict: a raw lone surrogate would raise here
    assert data.count(b"\n") == 1 and text.endswith("\n")
    assert len(text.splitlines()) == 1  # no Unicode line break (NEL, U+2028) either
    back = json.loads(data)
    assert back == file_record(hostile_row())
    assert os.fsencode(back["path"]) == b"caf\xe9/\xff scan.dcm"
    assert back["values"]["formula"] == "=cmd|' /C calc'!A0"
    assert "\\udcff" in text and "\\u2028" in text and "\\u0085" in text  # escaped, the rest as UTF-8
    assert "é" * 1000 in text


def test_a_non_finite_float_is_written_as_text_and_never_crashes() -> None:
    values: dict[str, Scalar] = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "finite": 0.5}
    row = ReportRow("n.dcm", "passed", FileRecord("n.dcm", "dicom", "passed", "", values, {}, ()))
    back = json.loads(line(file_record(row)))
    assert back["values"] == {"nan": "nan", "inf": "inf", "-inf": "-inf", "finite": 0.5}
    VALIDATOR.validate(back)
    summary = json.loads(line(summary_record(complete(), [("duration (s)", math.nan), ("n", 1)])))
    assert summary["run"] == {"duration (s)": "nan", "n": 1}
    VALIDATOR.validate(summary)


def test_readers_read_the_file_back(tmp_path: Path) -> None:
    """What the README shows: ``pandas.read_json(path, lines=True)``, hostile text included."""
    path = tmp_path / "report.jsonl"
    texts = [line(file_record(hostile_row())), *lines_of(partial())]
    path.write_text("".join(texts), encoding="utf-8")
    frame = pandas.read_json(path, lines=True, dtype=False)
    assert len(frame) == len(texts) == len(path.read_text(encoding="utf-8").splitlines())
    assert frame["record"].tolist() == ["file"] * (len(texts) - 1) + ["summary"]
    assert frame["path"].tolist()[:2] == [NOT_UTF8_PATH, "a.dcm"]


def test_lines_are_compact_and_keep_the_order_built() -> None:
    text = line({"b": 1, "a": [1, 2], "c": {"z": None, "y": True}})
    assert text == '{"b":1,"a":[1,2],"c":{"z":null,"y":true}}\n'
