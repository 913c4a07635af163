"""The workbook, read back with openpyxl: one row per collected file in every mode and every ending."""

from __future__ import annotations

import os
import re
import shutil
import stat
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from tests.helpers import MODES, Runner, formula_cells, read_sheet, write_dicom

FILES_HEADER = [
    "path",
    "kind",
    "status",
    "failed_rules",
    "warnings",
    "error",
    "checked",
    "split",
    "series",
    "ImageType",
    "VOILUTFunction",
    "rows",
    "columns",
    "frames",
    "samples_per_pixel",
    "dtype",
    "mean",
    "min",
    "max",
    "transfer_syntax",
]


@pytest.fixture
def small_dataset(pytester: pytest.Pytester) -> Path:
    root = pytester.path / "data"
    write_dicom(root / "ct" / "ok.dcm", VOILUTFunction="LINEAR")
    write_dicom(root / "ct" / "derived.dcm", image_type="DERIVED\\SECONDARY")
    write_dicom(root / "mr" / "u8", modality="MR", pixels=np.full((4, 6), 7, dtype=np.uint8))
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "photo.jpg")
    return root


def test_files_sheet_exact_values(run: Runner, small_dataset: Path) -> None:
    result = run("--dicom-dir=data", "--dicom-report=out.xlsx")
    assert result.ret == 1
    report = run.pytester.path / "out.xlsx"
    rows = read_sheet(report)
    header = list(rows[0])
    assert header[: len(FILES_HEADER)] == FILES_HEADER
    assert header[-4:] == ["original-image", "voi-lut-function", "pixel-dtype-ct-mr", "pixel-dtype-xray"]
    by_path = {row["path"]: row for row in rows}
    assert list(by_path) == ["ct/derived.dcm", "ct/ok.dcm", "mr/u8", "photo.jpg"]
    assert [row["checked"] for row in rows] == ["this run"] * 4

    ok = by_path["ct/ok.dcm"]
    assert (ok["kind"], ok["status"], ok["failed_rules"], ok["error"]) == ("dicom", "passed", None, None)
    assert (ok["ImageType"], ok["VOILUTFunction"], ok["dtype"]) == ("ORIGINAL\\PRIMARY\\AXIAL", "LINEAR", "int16")
    assert (ok["rows"], ok["columns"], ok["frames"], ok["samples_per_pixel"]) == (8, 8, 1, 1)
    assert (ok["min"], ok["max"], ok["mean"]) == (-10, 53, 21.5)
    assert ok["transfer_syntax"] == "Explicit VR Little Endian"
    assert (ok["Modality"], ok["SOPClass"]) == ("CT", "CT Image Storage")
    assert [ok[r] for r in ("original-image", "voi-lut-function", "pixel-dtype-ct-mr", "pixel-dtype-xray")] == [
        "PASS",
        "PASS",
        "PASS",
        "N/A",
    ]

    derived = by_path["ct/derived.dcm"]
    assert (derived["status"], derived["failed_rules"], derived["original-image"]) == (
        "failed",
        "original-image",
        "FAIL",
    )
    u8 = by_path["mr/u8"]
    assert (u8["status"], u8["failed_rules"], u8["dtype"], u8["mean"]) == ("failed", "pixel-dtype-ct-mr", "uint8", 7)
    photo = by_path["photo.jpg"]
    assert (photo["kind"], photo["status"], photo["ImageType"], photo["rows"]) == ("non-dicom", "skipped", None, None)
    assert photo["notes"] == "JPEG image"

    findings = read_sheet(report, "Findings")
    assert [(f["path"], f["rule"], f["observed"], f["expected"]) for f in findings] == [
        ("ct/derived.dcm", "original-image", "DERIVED\\SECONDARY", "to contain 'ORIGINAL'"),
        ("mr/u8", "pixel-dtype-ct-mr", "uint8", "one of [int16, uint16]"),
        # after the files' own findings, every file a dataset problem named (the same pixels twice)
        ("ct/derived.dcm", "dataset::unique-pixels", "pixel data xxh3-128:804156fb7d00b6ea", None),
        ("ct/ok.dcm", "dataset::unique-pixels", "pixel data xxh3-128:804156fb7d00b6ea", None),
    ]
    assert {f["message"] for f in findings[2:]} == {"2 files have identical pixel data"}
    assert (ok["split"], ok["series"]) == (None, "ct | 1.2.826.0.1.3680043.10.999.2")
    assert (photo["split"], photo["series"]) == (None, ". | (no series)")
    summary_rows = read_sheet(report, "Summary")
    assert summary_rows[0] == {
        "section": "verdict",
        "item": "FAILED",
        "value": "FAILED: 2 files failed; 1 dataset result failed",
        "detail": None,
    }
    assert [(r["section"], r["item"]) for r in summary_rows[1:3]] == [("files", "total"), ("status", "passed")]
    summary = {(r["section"], r["item"]): r["value"] for r in summary_rows}
    assert summary[("files", "total")] == 4
    assert (summary[("status", "passed")], summary[("status", "failed")], summary[("status", "skipped")]) == (1, 2, 1)
    assert summary[("rule", "original-image")] == 1
    details = {r["item"]: r["detail"] for r in summary_rows if r["section"] == "rule"}
    assert details["original-image"] == (
        "error; applicable 3, passed 2, failed 1, warned 0, waived 0, not applicable 1, not checked 0"
    )
    results = [(r["section"], r["item"], r["value"]) for r in summary_rows if r["section"] in ("dataset", "threshold")]
    assert results == [
        ("dataset", "dicom-files", "passed"),
        ("dataset", "unique-sop-instance-uid", "passed"),
        ("dataset", "unique-pixels", "failed"),
        ("dataset", "patient-split-leakage", "empty"),
    ]
    rules = read_sheet(report, "Rules")
    assert [r["id"] for r in rules] == ["original-image", "voi-lut-function", "pixel-dtype-ct-mr", "pixel-dtype-xray"]
    assert formula_cells(report) == 0
    result.stdout.fnmatch_lines(
        [
            "dicomqc: FAILED: 2 files failed; 1 dataset result failed",
            "dicomqc: 4 files: 1 passed, 2 failed, 1 skipped",
            f"dicomqc report: {report}",
        ]
    )


def test_default_report_path_is_invocation_dir_with_normal_permissions(run: Runner, small_dataset: Path) -> None:
    run("--dicom-dir=data")
    report = run.pytester.path / "metadata_dicom.xlsx"
    assert len(read_sheet(report)) == 4
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(report.stat().st_mode) == 0o666 & ~umask  # readable by the data managers' group too
    assert [p.name for p in run.pytester.path.iterdir() if p.name.endswith(".dicomqc-partial")] == []


@pytest.mark.parametrize("stop", ["-x", "--maxfail=1"])
def test_stopping_early_lists_the_rest_as_not_run(run: Runner, small_dataset: Path, stop: str) -> None:
    result = run("--dicom-dir=data", stop)
    assert result.ret == (2 if run.mode == "xdist" else 1)  # xdist stops early by interrupting its workers
    rows = {
        r["path"]: (r["status"], r["kind"], r["ImageType"])
        for r in read_sheet(run.pytester.path / "metadata_dicom.xlsx")
    }
    not_run = ("not run", None, None)
    ran = {
        "ct/derived.dcm": ("failed", "dicom", "DERIVED\\SECONDARY"),
        "ct/ok.dcm": ("passed", "dicom", "ORIGINAL\\PRIMARY\\AXIAL"),
        "mr/u8": ("failed", "dicom", "ORIGINAL\\PRIMARY\\AXIAL"),
        "photo.jpg": ("skipped", "non-dicom", None),
    }
    if run.mode == "xdist":
        # which files a worker finished before the stop reached it depends on timing: every row is
        # either what a full run says of that file or `not run`, and a failure is there
        assert list(rows) == list(ran)
        assert all(row in (ran[path], not_run) for path, row in rows.items()), rows
        assert any(row[0] == "failed" for row in rows.values()), rows
    else:  # one process runs in collection order: it stops at the first failure
        assert rows == {
            "ct/derived.dcm": ran["ct/derived.dcm"],
            "ct/ok.dcm": not_run,
            "mr/u8": not_run,
            "photo.jpg": not_run,
        }


def test_keyboard_interrupt_writes_not_run_rows(run: Runner, small_dataset: Path) -> None:
    run.pytester.makeconftest(
        """
        def pytest_runtest_call(item):
            if item.path.name == "ok.dcm":
                raise KeyboardInterrupt
        """
    )
    result = run("--dicom-dir=data", subprocess=True)  # in-process, pytester re-raises the interrupt
    assert result.ret == 2
    statuses = {r["path"]: r["status"] for r in read_sheet(run.pytester.path / "metadata_dicom.xlsx")}
    if run.mode == "xdist":  # the interrupted worker is reported as crashed; the other may finish first
        assert list(statuses) == ["ct/derived.dcm", "ct/ok.dcm", "mr/u8", "photo.jpg"]
        assert statuses["ct/ok.dcm"] == "crashed"
        full_run = {"ct/derived.dcm": "failed", "mr/u8": "failed", "photo.jpg": "skipped"}
        assert all(statuses[path] in (status, "not run") for path, status in full_run.items()), statuses
    else:
        assert statuses == {
            "ct/derived.dcm": "failed",
            "ct/ok.dcm": "not run",
            "mr/u8": "not run",
            "photo.jpg": "not run",
        }


def test_crashed_worker_gives_crashed_row(pytester: pytest.Pytester, small_dataset: Path) -> None:
    pytester.makeconftest(
        """
        import os
        def pytest_runtest_call(item):
            if item.path.name == "ok.dcm":
                os._exit(1)
        """
    )
    result = Runner(pytester, "xdist")("--dicom-dir=data")
    assert result.ret == 1
    statuses = {r["path"]: r["status"] for r in read_sheet(pytester.path / "metadata_dicom.xlsx")}
    assert statuses == {"ct/derived.dcm": "failed", "ct/ok.dcm": "crashed", "mr/u8": "failed", "photo.jpg": "skipped"}


FAILING_DECODER = """
import os
import resource

from pydicom.uid import RLELossless

DECODER_DEPENDENCIES = {RLELossless: ()}


def is_available(syntax):
    return True


class PanicException(BaseException):
    \"\"\"What pyo3 raises for a Rust panic (pylibjpeg-rle on corrupt data): not an Exception.\"\"\"


def panic(src, runner):
    raise PanicException("index out of bounds: the len is 3 but the index is 7")


def abort(src, runner):
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
    os.abort()  # a C decoder giving up on corrupt data
"""
ONLY_FAILING_DECODER = """
from pydicom.pixels.decoders import RLELosslessDecoder

def pytest_configure(config):
    for label in list(RLELosslessDecoder.available_plugins):
        RLELosslessDecoder.remove_plugin(label)
    RLELosslessDecoder.add_plugin("failing", ("failing_decoder", "{function}"))
"""


def rle_file(path: Path) -> None:
    """A valid RLE Lossless image: only the decoder the test installs makes it fail."""
    write_dicom(path, pixels=np.full((8, 8), 5, dtype=np.int16))
    ds = pydicom.dcmread(path)
    ds.compress(pydicom.uid.RLELossless)
    ds.save_as(path)


def test_decoder_panic_fails_the_file_with_the_reason(run: Runner, small_dataset: Path) -> None:
    """A Rust decoder's panic is a BaseException, not an Exception: the file fails, the run goes on."""
    rle_file(small_dataset / "ct" / "rle.dcm")
    run.pytester.makepyfile(failing_decoder=FAILING_DECODER)
    run.pytester.makeconftest(ONLY_FAILING_DECODER.format(function="panic"))
    result = run("--dicom-dir=data", subprocess=True)  # the conftest changes pydicom's decoders for the process
    output = result.stdout.str()
    assert result.ret == 1, output[-3000:]
    assert "INTERNALERROR" not in output and "PanicException" not in output
    rows = {r["path"]: r for r in read_sheet(run.pytester.path / "metadata_dicom.xlsx")}
    rle = rows["ct/rle.dcm"]
    assert (rle["kind"], rle["status"], rle["error"], rle["dtype"]) == (
        "dicom",
        "failed",
        "pixel data cannot be decoded: index out of bounds: the len is 3 but the index is 7 [RLE Lossless]",
        None,
    )
    assert {path: row["status"] for path, row in rows.items()} == {
        "ct/derived.dcm": "failed",
        "ct/ok.dcm": "passed",
        "ct/rle.dcm": "failed",
        "mr/u8": "failed",
        "photo.jpg": "skipped",
    }
    result.stdout.fnmatch_lines(
        [
            "*_ dicomqc: ct/rle.dcm _*",
            "dicom: pixel data cannot be decoded: index out of bounds: the len is 3 but the index is 7 [RLE Lossless]",
            "dicomqc: 5 files: 1 passed, 3 failed, 1 skipped",
        ]
    )


def test_decoder_abort_under_xdist_gives_crashed_and_the_run_goes_on(
    pytester: pytest.Pytester, small_dataset: Path
) -> None:
    """A C decoder calling abort() takes its xdist worker down: its file is ``crashed``, every other
    file is read (by the worker xdist starts in its place) and reported as usual."""
    rle_file(small_dataset / "ct" / "rle.dcm")
    pytester.makepyfile(failing_decoder=FAILING_DECODER)
    pytester.makeconftest(ONLY_FAILING_DECODER.format(function="abort"))
    result = Runner(pytester, "xdist")("--dicom-dir=data")
    output = result.stdout.str()
    assert result.ret == 1, output[-3000:]
    rows = {r["path"]: r for r in read_sheet(pytester.path / "metadata_dicom.xlsx")}
    assert {path: (row["status"], row["kind"]) for path, row in rows.items()} == {
        "ct/derived.dcm": ("failed", "dicom"),
        "ct/ok.dcm": ("passed", "dicom"),
        "ct/rle.dcm": ("crashed", None),
        "mr/u8": ("failed", "dicom"),
        "photo.jpg": ("skipped", "non-dicom"),
    }
    crash = str(rows["ct/rle.dcm"]["error"])
    assert re.fullmatch(r"worker 'gw[01]' crashed while running 'data/ct/rle\.dcm::dicomqc'", crash), crash
    result.stdout.fnmatch_lines(["dicomqc: 5 files: 1 passed, 2 failed, 1 skipped, 1 crashed"])


def test_hostile_text_stays_text(run: Runner, pytester: pytest.Pytester) -> None:
    root = pytester.path / "data"
    own = [np.full((8, 8), value, dtype=np.int16) for value in range(4)]  # no duplicates for unique-pixels
    write_dicom(
        root / "=cmd.dcm", pixels=own[0], Manufacturer='=HYPERLINK("http://evil","x")', StudyDescription="a\x1bb"
    )
    write_dicom(root / "+plus.dcm", pixels=own[1], Manufacturer="+1+2", InstitutionName="@SUM(A1)")
    write_dicom(root / "minus.dcm", pixels=own[2], Manufacturer="-2-3")
    write_dicom(root / os.fsdecode(b"not-utf8-\xff.dcm"), pixels=own[3], Manufacturer="bytes")
    result = run("--dicom-dir=data", "-rA")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["PASSED data/not-utf8-\\xff.dcm::dicomqc"])
    report = pytester.path / "metadata_dicom.xlsx"
    assert formula_cells(report) == 0
    manufacturers = {r["path"]: r["Manufacturer"] for r in read_sheet(report)}
    assert manufacturers == {
        "+plus.dcm": "+1+2",
        "=cmd.dcm": '=HYPERLINK("http://evil","x")',
        "minus.dcm": "-2-3",
        "not-utf8-\\xff.dcm": "bytes",
    }


def _pixel_truth(path: Path) -> tuple[pydicom.Dataset, np.ndarray] | None:
    """What a training loader sees: ``dcmread(f)`` and its ``pixel_array``, or None where pydicom fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path)
            return ds, ds.pixel_array
        except Exception:
            return None


def test_every_bundled_pydicom_file_gets_one_true_row_in_every_mode(pytester: pytest.Pytester) -> None:
    root = pytester.path / "data"
    shutil.copytree(Path(get_testdata_file("CT_small.dcm", download=False)).parent, root)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "extra.jpg")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "extra.png")
    (root / "extra.txt").write_text("not dicom\n")
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert len(files) > 170

    reports = {}
    for mode in MODES:
        result = Runner(pytester, mode)("--dicom-dir=data", f"--dicom-report={mode}.xlsx")
        assert result.ret == 1
        assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
        reports[mode] = read_sheet(pytester.path / f"{mode}.xlsx")

    rows = reports["plain"]
    assert sorted(r["path"] for r in rows) == files
    kinds = {r["path"]: r["kind"] for r in rows}
    assert {kinds[f] for f in ("README.txt", "test1.json", "zipMR.gz", "extra.jpg", "extra.png")} == {"non-dicom"}
    assert (kinds["no_meta.dcm"], kinds["ExplVR_LitEndNoMeta.dcm"], kinds["dicomdirtests/DICOMDIR"]) == (
        "unreadable",
        "dicom",
        "dicom",
    )
    checked = 0
    for row in rows:
        assert row["status"] in {"passed", "failed", "skipped"}
        assert (row["status"] == "skipped") == (row["kind"] == "non-dicom")
        loaded = _pixel_truth(root / row["path"]) if row["kind"] == "dicom" else None
        if loaded is None:
            continue
        checked += 1
        ds, truth = loaded
        assert row["dtype"] == truth.dtype.name, row["path"]
        assert (row["min"], row["max"]) == (truth.min().item(), truth.max().item()), row["path"]
        assert row["mean"] == pytest.approx(truth.mean(), rel=1e-6), row["path"]
        assert row["rows"] == ds.Rows and row["columns"] == ds.Columns, row["path"]
        assert row["ImageType"] == ("\\".join(ds.ImageType) if "ImageType" in ds else None), row["path"]
        assert row["VOILUTFunction"] == ds.get("VOILUTFunction"), row["path"]
    assert checked > 80
    for mode in ("no-xdist", "xdist"):
        assert reports[mode] == rows, mode


def test_summary_run_facts_and_lists_of_rule_ids(run: Runner) -> None:
    """The packaged default rules on a flat folder: a DX image with int16 pixels breaks the x-ray
    dtype rule, a derived one two rules at once (comma-separated), and with no split folders no file
    takes part in the leakage check: ``empty``, with the reason. The Summary's run facts say what ran."""
    data = run.pytester.path / "data"
    write_dicom(data / "dx-int16.dcm", modality="DX", pixels=np.full((4, 4), 3, dtype=np.int16))
    write_dicom(data / "dx-derived.dcm", image_type="DERIVED", modality="DX", pixels=np.full((4, 4), 4, np.int16))
    write_dicom(data / "ct.dcm", pixels=np.full((4, 4), 5, dtype=np.int16))
    result = run("--dicom-dir=data", "--dicom-report=qc.xlsx")
    assert result.ret == 1
    report = run.pytester.path / "qc.xlsx"
    rows = {r["path"]: (r["status"], r["failed_rules"], r["pixel-dtype-xray"]) for r in read_sheet(report)}
    assert rows == {
        "ct.dcm": ("passed", None, "N/A"),
        "dx-derived.dcm": ("failed", "original-image,pixel-dtype-xray", "FAIL"),
        "dx-int16.dcm": ("failed", "pixel-dtype-xray", "FAIL"),
    }
    summary = read_sheet(report, "Summary")
    dataset = {r["item"]: (r["value"], r["detail"]) for r in summary if r["section"] == "dataset"}
    assert dataset == {
        "dicom-files": ("passed", "3 DICOM files checked in data/; at least 1 required"),
        "unique-sop-instance-uid": ("passed", "no problem in 3 files, 3 distinct values"),
        "unique-pixels": ("passed", "no problem in 3 files, 3 distinct images"),
        "patient-split-leakage": (
            "empty",
            "no file took part: no path matched the split pattern"
            " '(?i)(train|training|val|valid|validation|dev|test|testing|holdout)/'",
        ),
    }
    facts = {r["item"]: r["value"] for r in summary if r["section"] == "run"}
    assert list(facts) == [
        "dataset",
        "rules file",
        "report",
        "started",
        "finished",
        "duration (s)",
        "pytest arguments",
        "pytest exit status",
        "xdist workers",
        "pytest-dicomqc",
        "pydicom",
        "pytest",
        "python",
    ]
    assert (facts["dataset"], facts["report"]) == (str(data), str(report))
    assert facts["rules file"].endswith("pytest_dicomqc/rules.yaml")  # the packaged default
    assert (facts["pytest exit status"], facts["xdist workers"]) == (1, "2" if run.mode == "xdist" else "none")
    assert "--dicom-dir=data --dicom-report=qc.xlsx" in facts["pytest arguments"]
    for moment in ("started", "finished"):  # ISO 8601 with the time zone
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", facts[moment])
    assert (facts["pydicom"], facts["pytest"]) == (pydicom.__version__, pytest.__version__)
