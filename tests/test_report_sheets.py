"""The report's newer parts through pytest, in the three modes: the Series sheet, the comparison
with a baseline, JSON Lines, load_report, and a dataset large enough to stream to the writing process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import pytest_dicomqc.readback  # noqa: F401 - pandas imported before any pytester run, see below
from pytest_dicomqc import load_report
from tests.helpers import Runner, read_sheet, write_dicom

SERIES_A = "1.2.826.0.1.3680043.10.999.7.1"
SERIES_B = "1.2.826.0.1.3680043.10.999.7.2"
STUDY = "1.2.826.0.1.3680043.10.999.1"


def series_dataset(data: Path) -> None:
    def ct(path: str, value: int, **tags: object) -> None:
        pixels = np.full((8, 8), value, dtype=np.int16)
        write_dicom(data / path, pixels=pixels, SeriesInstanceUID=SERIES_A, PixelSpacing=[0.5, 0.5], **tags)

    ct("train/p1/a1.dcm", 1, SliceThickness=1.0)
    ct("train/p1/a2.dcm", 2, SliceThickness=1.0, ImageType=["DERIVED", "SECONDARY"])  # fails original-image
    ct("train/p1/a3.dcm", 3, SliceThickness=2.0)
    mr = np.full((4, 4), 7, dtype=np.uint8)  # fails pixel-dtype-ct-mr
    write_dicom(data / "train/p1/b1.dcm", modality="MR", pixels=mr, SeriesInstanceUID=SERIES_B)
    ct("test/p2/a4.dcm", 1)  # the same pixels as train/p1/a1.dcm: unique-pixels names both
    ct("test/p2/a5.dcm", 5)
    (data / "notes.txt").write_text("not an image")


def test_series_sheet_by_hand(run: Runner) -> None:
    """One row per SeriesInstanceUID in a folder, in the order of its first file; every number
    counted by hand from the files above."""
    series_dataset(run.pytester.path / "data")
    result = run("--dicom-dir=data")
    assert result.ret == 1
    report = run.pytester.path / "metadata_dicom.xlsx"
    assert [tuple(row.values()) for row in read_sheet(report, "Series")] == [
        # series, folder, uid, modality, study, files, failed, warned, waived, failing rules,
        # dataset problems, rows x columns, slices, pixel spacing, slice thickness
        (". | (no series)", ".", None, None, None, 1, 0, 0, 0, None, None, None, 0, None, None),
        (
            f"test/p2 | {SERIES_A}",
            "test/p2",
            SERIES_A,
            "CT",
            STUDY,
            2,
            0,
            0,
            0,
            None,
            "unique-pixels: 1",
            "8x8",
            2,
            "0.5\\0.5",
            None,
        ),
        (
            f"train/p1 | {SERIES_A}",
            "train/p1",
            SERIES_A,
            "CT",
            STUDY,
            3,
            1,
            0,
            0,
            "original-image: 1",
            "unique-pixels: 1",
            "8x8",
            3,
            "0.5\\0.5",
            "1.0 (2), 2.0 (1)",
        ),
        (
            f"train/p1 | {SERIES_B}",
            "train/p1",
            SERIES_B,
            "MR",
            STUDY,
            1,
            1,
            0,
            0,
            "pixel-dtype-ct-mr: 1",
            None,
            "4x4",
            1,
            None,
            None,
        ),
    ]
    files = {row["path"]: (row["split"], row["series"]) for row in read_sheet(report)}
    assert files["train/p1/b1.dcm"] == ("train", f"train/p1 | {SERIES_B}")
    assert files["test/p2/a4.dcm"] == ("test", f"test/p2 | {SERIES_A}")
    assert files["notes.txt"] == (None, ". | (no series)")


def dataset_v1(data: Path) -> None:
    for index, name in enumerate(("x1", "x2", "x3")):
        write_dicom(data / f"{name}.dcm", pixels=np.full((4, 4), index, dtype=np.int16))


def dataset_v2(data: Path) -> None:
    """x2 now fails (DERIVED), x3 is gone, x4 is new."""
    write_dicom(data / "x2.dcm", image_type="DERIVED", pixels=np.full((4, 4), 1, dtype=np.int16))
    (data / "x3.dcm").unlink()
    write_dicom(data / "x4.dcm", pixels=np.full((4, 4), 4, dtype=np.int16))


CHANGES = [
    ("new failure", "x2.dcm", "status", "passed", "failed"),
    ("added", "x4.dcm", "status", None, "passed"),
    ("removed", "x3.dcm", "status", "passed", None),
    ("value changed", "x2.dcm", "ImageType", "ORIGINAL\\PRIMARY\\AXIAL", "DERIVED"),
]


def test_baseline_changes_sheet_terminal_and_exit_status(run: Runner) -> None:
    """x2 passed in the baseline and fails now, x3 is gone, x4 is new: the Changes sheet and the
    terminal list exactly these changes; exit 1."""
    data = run.pytester.path / "data"
    dataset_v1(data)
    assert run("--dicom-dir=data").ret == 0
    shutil.copy(run.pytester.path / "metadata_dicom.xlsx", run.pytester.path / "old.xlsx")
    dataset_v2(data)
    result = run("--dicom-dir=data", "--dicom-baseline=old.xlsx")
    assert result.ret == 1
    report = run.pytester.path / "metadata_dicom.xlsx"
    assert [tuple(row.values()) for row in read_sheet(report, "Changes")] == CHANGES
    result.stdout.fnmatch_lines(
        [
            "dicomqc diff: 1 new failure, 1 added, 1 removed, 1 value changed",
            "  new failure x2.dcm: passed -> failed (original-image)",
            "  added x4.dcm: passed",
            "  removed x3.dcm: passed",
            "  value changed x2.dcm ImageType: ORIGINAL\\PRIMARY\\AXIAL -> DERIVED",
        ]
    )
    summary = {(row["section"], row["item"]): row["value"] for row in read_sheet(report, "Summary")}
    assert summary[("run", "baseline")].endswith("old.xlsx")


def test_baseline_alone_decides_exit_1_and_ini_twin(run: Runner) -> None:
    """An unchanged dataset against its own earlier report (the ini twin names it): no change, an
    empty Changes sheet, exit 0."""
    data = run.pytester.path / "data"
    dataset_v1(data)
    assert run("--dicom-dir=data").ret == 0
    shutil.copy(run.pytester.path / "metadata_dicom.xlsx", run.pytester.path / "old.xlsx")
    run.pytester.makeini("[pytest]\ndicom_baseline = old.xlsx\n")
    result = run("--dicom-dir=data")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["dicomqc diff: no change"])
    assert read_sheet(run.pytester.path / "metadata_dicom.xlsx", "Changes") == []


def test_a_baseline_that_is_no_report(pytester: pytest.Pytester) -> None:
    dataset_v1(pytester.path / "data")
    missing = pytester.runpytest("--dicom-dir=data", "--dicom-baseline=nowhere.xlsx", "-p", "no:cacheprovider")
    assert missing.ret == 4
    missing.stderr.fnmatch_lines(["ERROR: --dicom-baseline: baseline report */nowhere.xlsx does not exist"])
    (pytester.path / "text.xlsx").write_text("not a workbook")
    text = pytester.runpytest("--dicom-dir=data", "--dicom-baseline=text.xlsx", "-p", "no:cacheprovider")
    assert text.ret == 4
    text.stderr.fnmatch_lines(["ERROR: --dicom-baseline: baseline */text.xlsx is not an Excel report (.xlsx)"])
    import zipfile

    with zipfile.ZipFile(pytester.path / "other.xlsx", "w") as other:
        other.writestr("hello.txt", "a zip, not a report")
    result = pytester.runpytest("--dicom-dir=data", "--dicom-baseline=other.xlsx", "-p", "no:cacheprovider")
    assert result.ret == 4
    result.stdout.fnmatch_lines(["ERROR: cannot compare with baseline: *other.xlsx: *", "dicomqc report: *"])
    workbook = load_report(pytester.path / "metadata_dicom.xlsx")
    assert "Changes" not in workbook and len(workbook["Files"]) == 3


def test_json_lines_option_and_ini_twin(run: Runner) -> None:
    series_dataset(run.pytester.path / "data")
    run.pytester.makeini("[pytest]\ndicom_json = out/qc.jsonl\n")
    result = run("--dicom-dir=data")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["dicomqc json: */out/qc.jsonl"])
    lines = [json.loads(line) for line in (run.pytester.path / "out" / "qc.jsonl").read_text().splitlines()]
    files = [row["path"] for row in read_sheet(run.pytester.path / "metadata_dicom.xlsx")]
    assert [line["path"] for line in lines[:-1]] == files  # the report's order
    assert [line["record"] for line in lines] == ["file"] * 7 + ["summary"]
    summary = lines[-1]
    assert (summary["verdict"], summary["files"], summary["statuses"]["failed"]) == ("FAILED", 7, 2)
    by_path = {line["path"]: line for line in lines[:-1]}
    assert by_path["train/p1/a2.dcm"]["failed_rules"] == ["original-image"]
    assert by_path["notes.txt"]["kind"] == "non-dicom"


def test_json_path_that_is_a_folder(pytester: pytest.Pytester) -> None:
    dataset_v1(pytester.path / "data")
    (pytester.path / "out").mkdir()
    result = pytester.runpytest("--dicom-dir=data", "--dicom-json=out", "-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: --dicom-json: JSON Lines file path */out is a directory"])


def test_load_report_round_trips_a_run(pytester: pytest.Pytester) -> None:
    series_dataset(pytester.path / "data")
    pytester.runpytest("--dicom-dir=data", "-p", "no:cacheprovider")
    frames = load_report(pytester.path / "metadata_dicom.xlsx")
    assert list(frames) == ["Summary", "Files", "Series", "Findings", "Dataset", "Rules", "Waivers"]
    files = frames["Files"]
    assert frames["Summary"].attrs["verdict"] == "FAILED: 2 files failed; 1 dataset result failed"
    assert list(files["path"]) == [row["path"] for row in read_sheet(pytester.path / "metadata_dicom.xlsx")]
    assert (str(files["rows"].dtype), str(files["mean"].dtype), str(files["status"].dtype)) == (
        "Int64",
        "Float64",
        "string",
    )
    assert set(files["original-image"].dropna()) == {"PASS", "FAIL", "N/A"}
    assert int(frames["Series"]["files"].sum()) == 7


# pytester puts sys.modules back after each test that uses it: pandas first imported inside such a
# test (by load_report) would be imported again by the next one, whose C extensions still hold the
# first import's classes ("AssertionError: <class 'pandas.arrays.StringArray'>"). Imported above.

STREAMED_FILES = 1_050


@pytest.fixture(scope="module")
def large_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,050 tiny files (the writing process takes datasets of 1,000 files or more), every 50th
    failing; made once, copied into each run's folder."""
    root = tmp_path_factory.mktemp("large") / "data"
    for index in range(STREAMED_FILES):
        failing = index % 50 == 7
        write_dicom(
            root / f"s{index // 100:02d}" / f"{index:05d}.dcm",
            image_type="DERIVED" if failing else "ORIGINAL\\PRIMARY\\AXIAL",
            pixels=np.full((2, 2), index, dtype=np.int16),
        )
    return root


def test_a_large_dataset_streams_its_rows_to_the_writing_process(
    run: Runner, large_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows in collection order, each with its own status, whichever process ran the file; in
    process (plain, no xdist) the writing process is seen starting."""
    shutil.copytree(large_dataset, run.pytester.path / "data")
    from pytest_dicomqc.writers import stream

    started: list[int] = []
    real_start = stream.ReportStream._start
    monkeypatch.setattr(stream.ReportStream, "_start", lambda self: started.append(1) or real_start(self))
    result = run("--dicom-dir=data", "--dicom-json=qc.jsonl", "-p", "no:randomly")
    assert result.ret == 1
    rows = read_sheet(run.pytester.path / "metadata_dicom.xlsx")
    expected = [f"s{index // 100:02d}/{index:05d}.dcm" for index in range(STREAMED_FILES)]
    assert [row["path"] for row in rows] == expected
    failing = {row["path"] for row in rows if row["status"] == "failed"}
    assert failing == {path for index, path in enumerate(expected) if index % 50 == 7}
    assert len((run.pytester.path / "qc.jsonl").read_text().splitlines()) == STREAMED_FILES + 1
    if run.mode != "xdist":  # in this process: the writing process was started
        assert started == [1]


def test_a_baseline_read_is_not_waited_for_when_nothing_is_compared(pytester: pytest.Pytester) -> None:
    """``--collect-only`` (or the dataset deselected) compares nothing: the reading process is
    stopped with the session, none is left behind (found in review: it was waited for at exit)."""
    import multiprocessing

    dataset_v1(pytester.path / "data")
    pytester.runpytest("--dicom-dir=data", "-p", "no:cacheprovider")
    shutil.copy(pytester.path / "metadata_dicom.xlsx", pytester.path / "old.xlsx")
    before = set(multiprocessing.active_children())
    result = pytester.runpytest("--dicom-dir=data", "--dicom-baseline=old.xlsx", "--collect-only", "-q")
    assert result.ret == 0
    assert set(multiprocessing.active_children()) <= before


def test_text_like_an_excel_escape_round_trips(pytester: pytest.Pytester) -> None:
    """``_x0041_`` in a file name is escaped in the workbook as Excel wants; read back, it is the
    same name (found in review: a baseline run called the unchanged file added and removed)."""
    write_dicom(pytester.path / "data" / "a_x0041_b.dcm")
    pytester.runpytest("--dicom-dir=data", "-p", "no:cacheprovider")
    assert list(load_report(pytester.path / "metadata_dicom.xlsx")["Files"]["path"]) == ["a_x0041_b.dcm"]
    shutil.copy(pytester.path / "metadata_dicom.xlsx", pytester.path / "old.xlsx")
    result = pytester.runpytest("--dicom-dir=data", "--dicom-baseline=old.xlsx", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["dicomqc diff: no change"])
