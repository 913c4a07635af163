"""Test helpers: small DICOM files made on the fly, running the three modes, reading the report back."""

from __future__ import annotations

import dataclasses
import importlib
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom import Dataset, FileMetaDataset, uid


def write_dicom(
    path: Path,
    *,
    image_type: str | None = "ORIGINAL\\PRIMARY\\AXIAL",
    modality: str = "CT",
    pixels: np.ndarray | None = None,
    multiframe: bool = False,
    **tags: Any,
) -> Path:
    """Write a small valid DICOM image (CT, int16, 8x8 ramp by default); ``tags`` override keywords.

    ``pixels`` is (rows, columns), (rows, columns, samples) or, with ``multiframe``, (frames, rows, columns).
    """
    array = np.arange(64, dtype=np.int16).reshape(8, 8) - 10 if pixels is None else pixels
    number = zlib.crc32(os.fsencode(path.name)) % 1_000_000_000  # same file, same UID: runs compare equal
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = uid.CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.10.999.{number}"
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.SOPClassUID = uid.CTImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.10.999.1"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.10.999.2"
    ds.Modality = modality
    ds.Manufacturer = "pytest-dicomqc tests"
    ds.InstanceNumber = number
    if image_type is not None:
        ds.ImageType = image_type.split("\\")
    if multiframe:
        ds.NumberOfFrames = array.shape[0]
    ds.Rows, ds.Columns = array.shape[-2:] if multiframe else array.shape[:2]
    ds.SamplesPerPixel = 1 if array.ndim == 2 or multiframe else array.shape[2]
    ds.PhotometricInterpretation = "MONOCHROME2" if ds.SamplesPerPixel == 1 else "RGB"
    if ds.SamplesPerPixel > 1:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = array.dtype.itemsize * 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if array.dtype.kind == "i" else 0
    ds.PixelData = array.tobytes()
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the dataset files the plugin reads from now on (not taken from its cache), in order."""
    # by name, not ``from pytest_dicomqc import session``: after an in-process pytester run that
    # attribute can be a stale module while the next run imports a fresh one
    session = importlib.import_module("pytest_dicomqc.session")
    reads: list[str] = []
    real = session.check
    monkeypatch.setattr(session, "check", lambda path, *rest: reads.append(path.name) or real(path, *rest))
    return reads


def read_sheet(report: Path, sheet: str = "Files") -> list[dict[str, Any]]:
    """A report sheet as one dict per row, keyed by the header (the Summary's table: below the
    verdict headline and a blank row)."""
    import openpyxl  # imported late: the tests' conftest imports this module (see test_schema_and_readme)

    workbook = openpyxl.load_workbook(report)
    rows = list(workbook[sheet].iter_rows(values_only=True))
    header_row = SUMMARY_HEADER_ROW if sheet == "Summary" else 0
    header = rows[header_row]
    return [dict(zip(header, row, strict=True)) for row in rows[header_row + 1 :]]


def dataset_checks_by_file(report: Path) -> dict[str, str | None]:
    """Per file of the Files sheet, the dataset checks that named it (the Findings sheet's
    ``dataset::<id>`` rows), comma-separated in the order found; ``None`` for none."""
    named: dict[str, list[str]] = {}
    for finding in read_sheet(report, "Findings"):
        rule = str(finding["rule"])
        if rule.startswith("dataset::") and rule[9:] not in named.setdefault(str(finding["path"]), []):
            named[str(finding["path"])].append(rule[9:])
    return {str(row["path"]): ",".join(named.get(str(row["path"]), [])) or None for row in read_sheet(report)}


def formula_cells(report: Path) -> int:
    import openpyxl  # test extra only: the tests' conftest imports this module (see test_schema_and_readme)

    workbook = openpyxl.load_workbook(report)
    return sum(1 for sheet in workbook for row in sheet.iter_rows() for cell in row if cell.data_type == "f")


SUMMARY_HEADER_ROW = 2
"""0-based row of the Summary sheet's table header (written out here: the tests check the layout)."""

MODES = {"plain": (), "no-xdist": ("-p", "no:xdist"), "xdist": ("-n", "2")}
SUBPROCESS_TIMEOUT = 300
"""Seconds a pytest subprocess may take: a hang fails its test instead of the whole CI run."""


class Runner:
    """Runs pytest on a pytester project in one of the three modes every report test uses."""

    def __init__(self, pytester: pytest.Pytester, mode: str) -> None:
        self.pytester = pytester
        self.mode = mode

    def __call__(self, *args: str, subprocess: bool = False) -> pytest.RunResult:
        # In-process runs see the plugin imported already by the outer session: nothing to rewrite.
        quiet = ("-W", "ignore::pytest.PytestAssertRewriteWarning")
        options = (*MODES[self.mode], "-p", "no:cacheprovider", *quiet, *args)
        if subprocess or self.mode == "xdist":
            return self.pytester.runpytest_subprocess(*options, timeout=SUBPROCESS_TIMEOUT)
        return self.pytester.runpytest(*options)


WIRE_TYPES = {str, int, float, bool, type(None), list, dict}


def wire_type_errors(value: Any, where: str = "wire") -> list[str]:
    """Every place in ``value`` whose type is not an exact builtin execnet can send."""
    errors = [] if type(value) in WIRE_TYPES else [f"{where}: {type(value).__qualname__}"]
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                errors.append(f"{where} key {key!r}: {type(key).__qualname__}")
            errors += wire_type_errors(item, f"{where}[{key!r}]")
    elif type(value) is list:
        for index, item in enumerate(value):
            errors += wire_type_errors(item, f"{where}[{index}]")
    return errors


def write_workbook(
    path: Path,
    conclusion: Any,
    ruleset: Any,
    value_columns: Any,
    run_facts: Any = (),
    **end: Any,
) -> Path:
    """The report of ``conclusion`` written whole, in this process, as pytest's process writes it
    when it does not stream: ``value_columns`` are names (typed as the pixel summary's) or
    :class:`ValueColumn` s."""
    from pytest_dicomqc.columns import PIXEL_TYPES, ValueColumn
    from pytest_dicomqc.writers.report import ReportPlan, write_report
    from pytest_dicomqc.writers.sheets import end_of_run, files_plan

    values = [
        column if isinstance(column, ValueColumn) else ValueColumn(column, PIXEL_TYPES.get(column, "text"))
        for column in value_columns
    ]
    json = end.pop("json", None)
    plan = ReportPlan(path, files_plan(ruleset, values), json=json)
    finished = end_of_run(conclusion, ruleset, list(run_facts), **end)
    write_report(plan, dataclasses.replace(finished, rows=list(conclusion.rows)))
    return path
