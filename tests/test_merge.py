"""Shards and their merge through pytest, in the three modes: each file in one shard, the part
file, every refusal of the merge, and a merge that equals a single run over the same dataset."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import yaml

import pytest_dicomqc.readback  # noqa: F401 - pandas imported before any pytester run (test_report_sheets)
from pytest_dicomqc import __version__, cli, load_report, merge
from pytest_dicomqc.parts import PartHeader, _loads, read_header
from pytest_dicomqc.shard import order_key, shard_of
from pytest_dicomqc.writers.report import ReportPlan
from pytest_dicomqc.writers.stream import ReportStream
from tests.helpers import SUBPROCESS_TIMEOUT, Runner, read_sheet, write_dicom

RULES = """\
version: 1
rules:
  - id: original-image
    tag: ImageType
    contains: ORIGINAL
    max_failing: 10%
  - id: pixel-dtype
    pixel: dtype
    in: [int16]
    severity: warning
dataset:
  - id: unique-sop-instance-uid
    unique: SOPInstanceUID
  - id: unique-pixels
    unique_pixels: true
  - id: patient-split-leakage
    disjoint: PatientID
    split: '(train|test)/'
  - id: series-consistency
    consistent: [Rows, Columns]
    instance_numbers: unique
  - id: enough-per-split
    count: {min: 100}
    severity: warning
waivers:
  - id: legacy-reformats
    path: "train/legacy/**"
    rules: [original-image]
    reason: accepted by the data board
    expires: 2999-01-01
"""
WAIVERS = """\
version: 1
waivers:
  - id: phantom
    path: "test/p3/phantom.dcm"
    rules: "*"
    reason: calibration phantom
    expires: 2999-01-01
"""
SERIES = "1.2.826.0.1.3680043.10.999.8.1"


def bad_dataset(data: Path) -> None:
    """Duplicates, a leak, a broken series, unreadable and non-DICOM files, waived files, a
    warning, and names whose text order is not collection order (``p1-x.dcm`` and ``p1/``)."""

    def ct(path: str, value: int, patient: str, **tags: object) -> None:
        pixels = tags.pop("pixels", np.full((8, 8), value, dtype=np.int16))
        write_dicom(data / path, pixels=pixels, PatientID=patient, **tags)  # type: ignore[arg-type]

    for number in range(1, 5):
        ct(
            f"train/p1/s{number}.dcm",
            number,
            "P1",
            SeriesInstanceUID=SERIES,
            InstanceNumber=number,
            PixelSpacing=[0.5, 0.5],
            SliceThickness=1.0 + number % 2,
        )
    # the broken series: another size, and an instance number used twice
    ct("train/p1/s5.dcm", 5, "P1", SeriesInstanceUID=SERIES, InstanceNumber=4, pixels=np.zeros((4, 4), np.int16))
    ct("train/p1-x.dcm", 6, "P1")
    ct("train/p2/a.dcm", 7, "P2")
    ct("train/p2/derived.dcm", 8, "P2", image_type="DERIVED\\SECONDARY")  # fails original-image
    ct("train/legacy/old.dcm", 9, "P4", image_type="DERIVED\\SECONDARY")  # waived
    (data / "test/p3").mkdir(parents=True)
    shutil.copy(data / "train/p2/a.dcm", data / "test/p3/copy.dcm")  # same SOP Instance UID and pixels; P2 leaks
    ct("test/p3/b.dcm", 10, "P3")
    ct("test/p3/phantom.dcm", 11, "P3", image_type="DERIVED\\SECONDARY")  # waived by the waivers file
    write_dicom(data / "test/p3/mr.dcm", modality="MR", pixels=np.full((4, 4), 3, np.uint8), PatientID="P3")  # warns
    (data / "test/p3/broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00garbage")  # unreadable
    (data / "train/notes.txt").write_text("not an image")  # non-dicom: skipped
    (data / 'train/odd & "name" <1>.txt').write_text("a name JUnit XML must escape")
    (data / "train/photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 64)


@pytest.fixture
def project(pytester: pytest.Pytester) -> Path:
    bad_dataset(pytester.path / "data")
    (pytester.path / "rules.yaml").write_text(RULES)
    (pytester.path / "waivers.yaml").write_text(WAIVERS)
    return pytester.path


def shard_runs(run: Runner, shards: int, *options: str) -> list[pytest.RunResult]:
    return [
        run(
            "--dicom-dir=data",
            f"--dicom-shard={k}/{shards}",
            f"--dicom-records=part{k}.jsonl.gz",
            f"--dicom-report=shard{k}.xlsx",
            *options,
        )
        for k in range(1, shards + 1)
    ]


def run_merge(*args: str | Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()  # what in-process pytest runs printed before
    status = cli.main(["merge", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out, err


def section(lines: list[str]) -> list[str]:
    """The plugin's summary section, without the lines naming output files."""
    start = next(index for index, line in enumerate(lines) if " dicomqc " in line and line.startswith("---"))
    shown = []
    for line in lines[start + 1 :]:
        if not line.startswith("dicomqc"):
            break
        if not line.startswith(("dicomqc report:", "dicomqc junit xml:", "dicomqc json:")):
            shown.append(line)
    return shown


def junit_outcomes(path: Path) -> dict[str, str]:
    """Test name -> passed, failure, skipped (its type) as CI views read them."""
    outcomes = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        child = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        outcome = "passed" if child is None else child.tag + (f" {child.get('type')}" if child.tag == "skipped" else "")
        outcomes[case.get("name", "")] = outcome
    return outcomes


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_three_shards_and_merge_equal_a_single_run(
    run: Runner, project: Path, strict: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    options = ("--dicom-waivers=waivers.yaml", *(["--dicom-strict"] if strict else []))
    single = run("--dicom-dir=data", "--dicom-report=single.xlsx", "--junitxml=single.xml", "-v", *options)
    shards = shard_runs(run, 3, *options)
    status, out, err = run_merge(
        *(project / f"part{k}.jsonl.gz" for k in (1, 2, 3)),
        "--dicom-report",
        project / "merged.xlsx",
        "--junitxml",
        project / "merged.xml",
        capsys=capsys,
    )
    assert err == ""
    assert single.ret == status == 1
    # per-file rules give each shard its exit code; the shards' files are the dataset's
    shard_files = [read_sheet(project / f"shard{k}.xlsx") for k in (1, 2, 3)]
    assert [shard.ret for shard in shards] == [
        1 if any(row["status"] == "failed" for row in files) else 0 for files in shard_files
    ]
    assert sorted(row["path"] for files in shard_files for row in files) == sorted(
        row["path"] for row in read_sheet(project / "single.xlsx")
    )
    one, merged = load_report(project / "single.xlsx"), load_report(project / "merged.xlsx")
    assert list(one) == list(merged)
    for sheet in ("Files", "Series", "Findings", "Dataset", "Rules", "Waivers"):
        assert one[sheet].equals(merged[sheet]), sheet
    summary = {
        name: frame[frame["section"] != "run"].reset_index(drop=True)
        for name, frame in (("one", one["Summary"]), ("merged", merged["Summary"]))
    }
    assert summary["one"].equals(summary["merged"])
    assert one["Summary"].attrs["verdict"] == merged["Summary"].attrs["verdict"]
    assert junit_outcomes(project / "merged.xml") == junit_outcomes(project / "single.xml")
    # the summary section the single run printed (-v: lines not cut), the report's path aside
    assert section(single.outlines) == section(out.splitlines())
    files = {row["path"]: row for row in read_sheet(project / "merged.xlsx")}
    assert files["train/legacy/old.dcm"]["status"] == "waived"
    assert files["test/p3/mr.dcm"]["status"] == ("failed" if strict else "passed")
    assert files["test/p3/broken.dcm"]["kind"] == "unreadable"
    dataset = {row["check"]: row["status"] for row in read_sheet(project / "merged.xlsx", "Dataset")}
    checks = ("unique-sop-instance-uid", "unique-pixels", "patient-split-leakage", "series-consistency")
    assert {check: dataset[check] for check in checks} == dict.fromkeys(checks, "failed")
    assert dataset["enough-per-split"] == ("failed" if strict else "warning")  # a warning check
    results = {
        row["item"]: row["value"]
        for row in read_sheet(project / "merged.xlsx", "Summary")
        if row["section"] == "dataset"
    }
    assert results["enough-per-split"] == ("failed" if strict else "warning")


def test_shards_collect_each_file_once_in_the_same_order(pytester: pytest.Pytester, project: Path) -> None:
    """Every file in exactly one shard, the same in every run; a shard collects no dataset result."""

    def collected(*options: str) -> list[str]:
        result = pytester.runpytest("-p", "no:cacheprovider", "--dicom-dir=data", "--collect-only", "-q", *options)
        assert result.ret == 0
        return [line for line in result.outlines if "::" in line]

    whole = collected()
    shards = [collected(f"--dicom-shard={k}/3") for k in (1, 2, 3)]
    assert shards == [collected(f"--dicom-shard={k}/3") for k in (1, 2, 3)]
    files = [nodeid for nodeid in whole if nodeid.endswith("::dicomqc")]
    assert sorted(nodeid for shard in shards for nodeid in shard) == sorted(files)
    assert len(files) == 17
    assert all(shard for shard in shards)
    for shard in shards:
        assert shard == [nodeid for nodeid in files if nodeid in shard]  # collection order kept
    assert any(nodeid.startswith("dicomqc::dataset::") for nodeid in whole)
    assert collected("--dicom-shard=1/1") == whole


def test_part_header_and_rows(run: Runner, project: Path) -> None:
    result = run("--dicom-dir=data", "--dicom-shard=2/3", "--dicom-records=out/part2.jsonl.gz")
    report_rows = read_sheet(project / "metadata_dicom.xlsx")
    with gzip.open(project / "out/part2.jsonl.gz", "rt", encoding="ascii") as part:
        lines = [json.loads(line) for line in part]
    header, rows, end = lines[0], lines[1:-1], lines[-1]
    assert header == {
        "type": "header",
        "format": "pytest-dicomqc records",
        "version": 1,
        "fingerprint": PartHeader(
            2, 3, 0, ((str(project / "rules.yaml"), RULES),), False, "", "", "", "", ""
        ).fingerprint,
        "shard": 2,
        "shards": 3,
        "files": len(report_rows),
        "rules": [[str(project / "rules.yaml"), RULES]],
        "strict": False,
        "dataset": "data/",
        "root": str(project / "data"),
        "plugin": __version__,
        "pydicom": metadata.version("pydicom"),
        "created": header["created"],
    }
    assert end == {"type": "end", "files": len(report_rows)}
    assert [row["path"] for row in rows] == [row["path"] for row in report_rows]
    assert [row["status"] for row in rows] == [row["status"] for row in report_rows]
    assert all(row["type"] == "row" and row["record"]["path"] == row["path"] for row in rows)
    # identifying values are pseudonyms already
    keys = [row["record"]["dataset"].get("patient-split-leakage") for row in rows if row["record"]["kind"] == "dicom"]
    assert all(key is None or key[0].startswith("sha256:") for key in keys)
    assert "P1" not in json.dumps(rows) and "P2" not in json.dumps(rows)
    assert result.ret in (0, 1)
    result.stdout.fnmatch_lines(
        [
            "dicomqc: dataset *data, report *metadata_dicom.xlsx, records *part2.jsonl.gz, shard 2/3",
            "dicomqc: shard 2/3: 7 dataset results judged at merge",
            "dicomqc records: *out/part2.jsonl.gz",
        ]
    )
    assert "dicomqc::dataset" not in result.stdout.str()


def test_a_shard_without_files_writes_an_empty_part(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    """More shards than files: the shards that hold none pass with a part of no row, and the
    merge is the single run again."""
    write_dicom(pytester.path / "data/only.dcm")
    single = pytester.runpytest("-p", "no:cacheprovider", "--dicom-dir=data", "--dicom-report=single.xlsx")
    runs = [
        pytester.runpytest(
            "-p", "no:cacheprovider", "--dicom-dir=data", f"--dicom-shard={k}/3", f"--dicom-records=p{k}.jsonl"
        )
        for k in (1, 2, 3)
    ]
    holder = shard_of("only.dcm", 3)
    assert [run.ret for run in runs] == [0, 0, 0]
    for k in (1, 2, 3):
        lines = (pytester.path / f"p{k}.jsonl").read_text().splitlines()
        assert len(lines) == (3 if k == holder else 2)  # header, the file's row, end
        assert json.loads(lines[-1]) == {"type": "end", "files": 1 if k == holder else 0}
    status, _, _ = run_merge(
        *(pytester.path / f"p{k}.jsonl" for k in (1, 2, 3)), "--dicom-report", pytester.path / "m.xlsx", capsys=capsys
    )
    assert status == single.ret == 0
    assert read_sheet(pytester.path / "m.xlsx") == read_sheet(pytester.path / "single.xlsx")


def test_part_rows_in_dataset_order_whatever_order_items_ran(pytester: pytest.Pytester, project: Path) -> None:
    """``--ff`` runs the failed files first; the report and the part keep the dataset's order,
    which the merge relies on."""
    first = pytester.runpytest("--dicom-dir=data", "--dicom-report=first.xlsx")
    assert first.ret == 1
    again = pytester.runpytest("--dicom-dir=data", "--ff", "--dicom-no-cache", "--dicom-records=p.jsonl", "-v")
    assert again.ret == 1
    ran = [line.split("::")[0] for line in again.outlines if "::dicomqc " in line and line.startswith("data/")]
    assert ran[0] == "data/test/p3/broken.dcm"  # the failed file first
    rows = [json.loads(line)["path"] for line in (project / "p.jsonl").read_text().splitlines()[1:-1]]
    assert rows == sorted(rows, key=order_key)
    assert rows == [row["path"] for row in read_sheet(project / "first.xlsx")]


def test_records_without_shard_is_one_part(run: Runner, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A run that is not sharded writes a part of one shard; merged alone it is the run again."""
    single = run("--dicom-dir=data", "--dicom-records=all.jsonl", "--dicom-report=single.xlsx")
    first = json.loads((project / "all.jsonl").read_text().splitlines()[0])
    assert (first["shard"], first["shards"]) == (1, 1)
    status, _, _ = run_merge(project / "all.jsonl", "--dicom-report", project / "merged.xlsx", capsys=capsys)
    assert status == single.ret == 1
    assert read_sheet(project / "merged.xlsx") == read_sheet(project / "single.xlsx")


def test_ini_twins(pytester: pytest.Pytester, project: Path) -> None:
    pytester.makeini("[pytest]\ndicom_shard = 3/3\ndicom_records = parts/p3.jsonl\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--dicom-dir=data")
    first = json.loads((project / "parts/p3.jsonl").read_text().splitlines()[0])
    assert (first["shard"], first["shards"]) == (3, 3)
    result.stdout.fnmatch_lines(["dicomqc: shard 3/3: 7 dataset results judged at merge"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--dicom-shard=4/3"], "ERROR: --dicom-shard: shard '4/3' needs 1 <= K <= N"),
        (["--dicom-shard=half"], "ERROR: --dicom-shard: expected K/N (e.g. 2/3) or 'auto', not 'half'"),
        (["--dicom-records=data"], "ERROR: --dicom-records: records part file path */data is a directory"),
        (
            ["--dicom-records=r.xlsx", "--dicom-report=r.xlsx"],
            "ERROR: --dicom-records: */r.xlsx is another output's path too",
        ),
    ],
)
def test_bad_shard_options_are_usage_errors(
    pytester: pytest.Pytester, project: Path, options: list[str], message: str
) -> None:
    result = pytester.runpytest("--dicom-dir=data", *options)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_bad_ini_shard_names_the_ini_file(pytester: pytest.Pytester, project: Path) -> None:
    pytester.makeini("[pytest]\ndicom_shard = 0/2\n")
    result = pytester.runpytest("--dicom-dir=data")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: dicom_shard in */tox.ini: shard '0/2' needs 1 <= K <= N"])


def test_auto_takes_gitlab_variables(pytester: pytest.Pytester, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_NODE_INDEX", "2")
    monkeypatch.setenv("CI_NODE_TOTAL", "3")
    auto = pytester.runpytest(
        "-p", "no:cacheprovider", "--dicom-dir=data", "--dicom-shard=auto", "--collect-only", "-q"
    )
    given = pytester.runpytest(
        "-p", "no:cacheprovider", "--dicom-dir=data", "--dicom-shard=2/3", "--collect-only", "-q"
    )
    assert auto.ret == given.ret == 0
    assert [line for line in auto.outlines if "::" in line] == [line for line in given.outlines if "::" in line]
    header = pytester.runpytest("-p", "no:cacheprovider", "--dicom-dir=data", "--dicom-shard=auto", "-k", "nothing")
    header.stdout.fnmatch_lines(["*shard 2/3 (GitLab CI (parallel:): CI_NODE_INDEX=2, CI_NODE_TOTAL=3)"])


# -- refusals -------------------------------------------------------------------------------------


@pytest.fixture
def parts(pytester: pytest.Pytester, project: Path) -> list[Path]:
    for k in (1, 2, 3):
        result = pytester.runpytest(
            "-p", "no:cacheprovider", "--dicom-dir=data", f"--dicom-shard={k}/3", f"--dicom-records=part{k}.jsonl.gz"
        )
        assert result.ret in (0, 1)
    return [project / f"part{k}.jsonl.gz" for k in (1, 2, 3)]


def refused(capsys: pytest.CaptureFixture[str], project: Path, *parts: Path) -> str:
    status, out, err = run_merge(*parts, "--dicom-report", project / "merged.xlsx", capsys=capsys)
    assert status == 4
    assert out == ""
    assert not (project / "merged.xlsx").exists()  # nothing half-written
    assert [line for line in err.splitlines() if line] == [err.strip()]
    return err.strip()


def test_merge_refuses_a_missing_shard(parts: list[Path], project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert refused(capsys, project, parts[0], parts[2]) == "ERROR: missing shard 2/3 of the run"
    assert refused(capsys, project, parts[0]) == "ERROR: missing shards 2/3, 3/3 of the run"


def test_merge_refuses_a_shard_given_twice(
    parts: list[Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    again = project / "again.jsonl.gz"
    shutil.copy(parts[1], again)
    assert refused(capsys, project, *parts, again) == f"ERROR: shard 2/3 given twice: {parts[1]} and {again}"


def test_merge_refuses_other_rules(
    pytester: pytest.Pytester, parts: list[Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "rules.yaml").write_text(RULES.replace("max_failing: 10%", "max_failing: 20%"))
    pytester.runpytest(
        "-p", "no:cacheprovider", "--dicom-dir=data", "--dicom-shard=3/3", "--dicom-records=other.jsonl.gz"
    )
    other = project / "other.jsonl.gz"
    message = refused(capsys, project, parts[0], parts[1], other)
    assert message.startswith(f"ERROR: {other} and {parts[0]} are not of one run: other rules (fingerprint): ")


def test_merge_refuses_another_dataset(
    pytester: pytest.Pytester, parts: list[Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(project / "data", project / "data2")
    pytester.runpytest(
        "-p", "no:cacheprovider", "--dicom-dir=data2", "--dicom-shard=3/3", "--dicom-records=other.jsonl.gz"
    )
    other = project / "other.jsonl.gz"
    assert refused(capsys, project, parts[0], parts[1], other) == (
        f"ERROR: {other} and {parts[0]} are not of one run: other dataset: data2/ and data/"
    )


def test_merge_refuses_a_truncated_part(parts: list[Path], project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with gzip.open(parts[1], "rb") as part:
        lines = part.read().splitlines(keepends=True)
    files = json.loads(lines[0])["files"]
    cut = project / "cut.jsonl.gz"
    with gzip.open(cut, "wb") as part:
        part.write(b"".join(lines[:-2]))  # the last row and the end line lost
    assert refused(capsys, project, parts[0], cut, parts[2]) == (
        f"ERROR: {cut}: truncated after {files - 1} of {files} files (no end line)"
    )
    raw = parts[1].read_bytes()
    broken = project / "broken.jsonl.gz"
    broken.write_bytes(raw[:-60])  # an upload cut short: the gzip stream ends early
    assert refused(capsys, project, parts[0], broken, parts[2]).startswith(f"ERROR: {broken}: damaged after ")


def test_merge_refuses_what_is_no_part(parts: list[Path], project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = project / "notes.jsonl"
    text.write_text('{"hello": 1}\n')
    assert refused(capsys, project, parts[0], text) == (
        f"ERROR: {text}: not a pytest-dicomqc records part file (written by --dicom-records)"
    )
    missing = project / "missing.jsonl.gz"
    assert refused(capsys, project, missing) == f"ERROR: {missing}: cannot read part file: No such file or directory"


def test_merge_refuses_a_file_in_two_parts(
    parts: list[Path], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Parts edited, or written from two checkouts that shard differently: a file twice is refused."""
    with gzip.open(parts[0], "rb") as part:
        lines = part.read().splitlines(keepends=True)
    with gzip.open(parts[1], "rb") as part:
        second = part.read().splitlines(keepends=True)
    forged = project / "forged.jsonl.gz"
    header = json.loads(second[0])
    header["files"] += 1
    row = lines[1]
    rows = sorted([row, *second[1:-1]], key=lambda line: order_key(json.loads(line)["path"]))
    with gzip.open(forged, "wb") as part:
        part.write(json.dumps(header).encode() + b"\n" + b"".join(rows))
        part.write(json.dumps({"type": "end", "files": header["files"]}).encode() + b"\n")
    path = json.loads(row)["path"]
    assert refused(capsys, project, parts[0], forged, parts[2]) == (
        f"ERROR: {path} is in two parts: the parts are not the shards of one run"
    )


def test_merge_checks_its_outputs_first(parts: list[Path], project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As a test run checks its outputs: before any part is read, exit 4, one line."""
    (project / "out.xlsx").mkdir()
    status, out, err = run_merge(*parts, "--dicom-report", project / "out.xlsx", capsys=capsys)
    assert (status, out, err) == (4, "", f"ERROR: --dicom-report: report path {project / 'out.xlsx'} is a directory\n")
    status, out, err = run_merge(*parts, "--dicom-report", project / "m.csv", capsys=capsys)
    assert (status, out) == (4, "")
    assert err.startswith(f"ERROR: --dicom-report: report {project / 'm.csv'} must be an .xlsx file")
    status, out, err = run_merge(*parts, "--junitxml", project, capsys=capsys)
    assert (status, out, err) == (4, "", f"ERROR: --junitxml: output path {project} is a directory\n")


def test_merge_says_why_its_writing_process_failed(
    parts: list[Path], project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writing process cannot write (its folder became a file after the check): the merge
    stops at the next batch with the path and the reason, exit 4."""
    monkeypatch.setattr(merge, "BATCH", 2)
    monkeypatch.setattr(cli, "check_writable", lambda *args, **kwargs: None)
    (project / "gone").write_text("a file where the report's folder should be")
    status, out, err = run_merge(*parts, "--dicom-report", project / "gone/m.xlsx", capsys=capsys)
    assert (status, out) == (4, "")
    assert err == f"ERROR: cannot write {project / 'gone'}: File exists\n"


def test_merge_whose_writing_process_dies(
    parts: list[Path], project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed (the OOM killer): the merge says so and exits 3, without waiting for it, and
    leaves no report behind."""
    started = ReportStream.of_parts

    def doomed(plan: ReportPlan) -> ReportStream:
        stream = started(plan)
        stream._process.kill()
        return stream

    monkeypatch.setattr(ReportStream, "of_parts", doomed)
    monkeypatch.setattr(merge, "BATCH", 2)
    status, out, err = run_merge(*parts, "--dicom-report", project / "m.xlsx", capsys=capsys)
    assert (status, out) == (3, "")
    assert err.startswith("ERROR: internal error while merging:\nTraceback")
    assert err.endswith("RuntimeError: the report writing process ended before the report was written\n\n")
    assert not (project / "m.xlsx").exists()


def test_merge_command_line(parts: list[Path], project: Path) -> None:
    """``python -m pytest_dicomqc merge`` as CI runs it: the report where asked, exit 1 (the
    dataset checks fail), the progress display not shown for a merge this short."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest_dicomqc", "merge", *map(str, parts), "--dicom-json", "out/m.jsonl"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    assert f"dicomqc report: {project / 'metadata_dicom.xlsx'}" in result.stdout.splitlines()
    assert f"dicomqc json: {project / 'out/m.jsonl'}" in result.stdout.splitlines()
    last = json.loads((project / "out/m.jsonl").read_text().splitlines()[-1])
    assert last["record"] == "summary"
    assert last["verdict"] == "FAILED"


def test_merge_shows_progress(
    parts: list[Path], project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(merge, "PROGRESS_AFTER", 0.0)
    monkeypatch.setattr(merge, "PROGRESS_EVERY", 0.0)
    monkeypatch.setattr(merge, "BATCH", 5)
    status, _, err = run_merge(*parts, "--dicom-report", project / "m.xlsx", capsys=capsys)
    assert status == 1
    total = sum(read_header(part).files for part in parts)
    assert total == 17
    assert err.splitlines() == [f"dicomqc merge: {n} of 17 files ({100 * n // 17}%)" for n in (5, 10, 15)]


README = Path(__file__).parent.parent / "README.md"


def test_readme_ci_examples_parse_and_install_what_the_build_makes() -> None:
    """The CI examples are valid YAML, install the wheel this version builds (no release on PyPI
    yet), and give the options as the plugin spells them."""
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.DOTALL)
    workflows = [block for block in blocks if "jobs:" in block or "parallel:" in block]
    assert len(workflows) == 3
    wheel = f"ci/pytest_dicomqc-{__version__}-py3-none-any.whl"
    for block in workflows:
        yaml.safe_load(block)
        installs = [line.strip() for line in block.splitlines() if "pip install" in line]
        assert installs and all(wheel in line for line in installs), installs
        assert "pip install pytest-dicomqc" not in block
    sharded = "\n".join(workflows[1:])
    assert sharded.count("python -m pytest_dicomqc merge parts/*.jsonl.gz") == 2
    assert "--dicom-shard=${{ matrix.shard }}/4" in sharded and "--dicom-shard=auto" in sharded


def test_part_lines_read_back_what_json_wrote() -> None:
    """orjson reads rows fast; what it refuses (NaN, a lone surrogate from a name that is not
    UTF-8, an integer past 64 bits) is read by json, which wrote it."""
    value = {"path": "caf\udce9.dcm", "mean": float("nan"), "size": 10**30, "text": "é\n<&>"}
    read = _loads(json.dumps(value).encode("ascii"))
    assert read.pop("mean") != read.get("mean")  # NaN
    assert read == {"path": "caf\udce9.dcm", "size": 10**30, "text": "é\n<&>"}
    assert _loads(b'{"a": [1, 2.5, null, true]}') == {"a": [1, 2.5, None, True]}
