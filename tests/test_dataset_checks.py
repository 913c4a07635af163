"""Dataset checks through pytest (every mode) and as pure functions: the files at fault are named."""

from __future__ import annotations

import hashlib
import re
import shutil
import zlib
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pydicom
import pytest
import xxhash
from pydicom import uid

# Imported here, in the outer session, so that pytester's in-process runs do not import it anew:
# after an inner run pytester drops the modules that run imported, but ``concurrent.futures`` keeps
# the ``ProcessPoolExecutor`` of the dropped module, and the next run's read-ahead pool (90 files
# start one) then fails to pickle its worker function ("not the same object as ...").
import concurrent.futures.process  # noqa: F401  isort: skip

import pytest_dicomqc
from pytest_dicomqc.dataset_checks import DatasetVerdict, judge, split_of
from pytest_dicomqc.rules.load import RulesError, parse_rules
from pytest_dicomqc.rules.model import DatasetCheck
from tests.decoders import installed
from tests.helpers import Runner, dataset_checks_by_file, read_sheet, write_dicom

RULES = """\
version: 1
rules: []
dataset:
  - id: unique-sop
    unique: SOPInstanceUID
  - id: unique-pixels
    unique_pixels: true
  - id: patient-leakage
    disjoint: PatientID
  - id: series-consistent
    consistent: [Rows, Columns, dtype]
    instance_numbers: unique
    slice_spacing: {tolerance: 0.01}
"""
IDS = ["unique-sop", "unique-pixels", "patient-leakage", "series-consistent"]
RESULTS = ["dicom-files", *IDS]
"""The results over the dataset in report order (``min_dicom_files`` first), as the sheets name them."""
DESELECTED = "deselected (-k, -m, --deselect, --lf)"
NOT_COLLECTED = "only part of the dataset was collected"
NOT_JUDGED = "1 file of the dataset not checked in this run nor in the cache"


def shown(name: str) -> str:
    """A result as the terminal's section names it: ``dicom-files``, ``dataset unique-sop``."""
    return name if name == "dicom-files" else f"dataset {name}"


def result_lines(status: str, reason: str) -> list[str]:
    """The terminal's line for each result of RULES, none judged (whole lines: the run has ``-v``)."""
    return [f"dicomqc {shown(name)} {status}: {reason}" for name in RESULTS]


ORIENTATION = [1, 0, 0, 0, 1, 0]
AXIAL = "1.0000\\0.0000\\0.0000\\0.0000\\1.0000\\0.0000"  # ORIENTATION as a key holds it


def image(seed: int, rows: int = 8) -> np.ndarray:
    """Pixels of their own for every file, so that only deliberate copies are duplicates."""
    return (np.arange(rows * 8, dtype=np.int16).reshape(rows, 8) + seed * 100).astype(np.int16)


def slice_file(path: Path, seed: int, z: float, number: int, series: str, patient: str, rows: int = 8) -> None:
    write_dicom(
        path,
        pixels=image(seed, rows),
        SeriesInstanceUID=series,
        PatientID=patient,
        InstanceNumber=number,
        ImagePositionPatient=[0, 0, z],
        ImageOrientationPatient=ORIENTATION,
    )


def clean_dataset(root: Path) -> None:
    """Two splits, three patients, evenly spaced series: every check passes."""
    for index, z in enumerate([0.0, 2.5, 5.0, 7.5]):
        slice_file(root / "train" / "a" / f"IM{index}.dcm", index, z, index + 1, "1.2.3.1", "P-TRAIN-1")
    for index, z in enumerate([10.0, 12.0, 14.0]):
        slice_file(root / "test" / "b" / f"T{index}.dcm", 10 + index, z, index + 1, "1.2.3.4", "P-TEST-1")
    slice_file(root / "val" / "c.dcm", 20, 0.0, 1, "1.2.3.5", "P-VAL-1")


def faulty_dataset(root: Path) -> None:
    """Each acceptance case once: a missing and a duplicated slice, a renamed copy, a patient in
    two splits, mixed Rows in a series."""
    series_a = [(0.0, 1), (2.0, 2), (6.0, 3), (8.0, 4), (10.0, 5)]  # 4.0 is missing
    for index, (z, number) in enumerate(series_a):
        slice_file(root / "train" / "a" / f"IM{index}.dcm", index, z, number, "1.2.3.1", "P-TRAIN-1")
    slice_file(root / "train" / "a" / "IM3-again.dcm", 30, 8.0, 4, "1.2.3.1", "P-TRAIN-1")  # duplicated slice
    write_dicom(root / "train" / "dup-original.dcm", pixels=image(40), SeriesInstanceUID="1.2.3.2", PatientID="P2")
    shutil.copy(root / "train" / "dup-original.dcm", root / "train" / "dup-renamed.dcm")
    write_dicom(root / "test" / "leak.dcm", pixels=image(50), SeriesInstanceUID="1.2.3.3", PatientID="P-TRAIN-1")
    for index in range(3):
        rows = 16 if index == 2 else 8
        slice_file(root / "test" / "b" / f"R{index}.dcm", 60 + index, 2.0 * index, index + 1, "1.2.3.4", "P3", rows)


def digest(text: str) -> str:
    """The pseudonym the README promises, computed here and not with the plugin's own function."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def shown_pixels(pixels: bytes) -> str:
    """A unique_pixels group as the report names it: xxh3-128 of the frames' bytes with dtype,
    shape and frame count, its first 16 hex digits, computed here and not with the plugin's code."""
    return "xxh3-128:" + xxhash.xxh3_128(pixels).hexdigest()[:16]


def test_digest_is_a_fixed_literal() -> None:
    """The README's example pseudonym (``PatientID sha256:1f05f80bc8a0ac93``) is this value's."""
    assert digest("P-TRAIN-1") == "sha256:1f05f80bc8a0ac93"


def dataset_sheet(report: Path) -> list[tuple[object, ...]]:
    return [(r["check"], r["status"], r["group"], r["problem"], r["files"]) for r in read_sheet(report, "Dataset")]


def checked(report: Path) -> dict[str, str]:
    return {r["check"]: r["checked"] for r in read_sheet(report, "Dataset")}


def test_clean_dataset_passes_every_check(run: Runner) -> None:
    (run.pytester.path / "rules.yaml").write_text(RULES)
    clean_dataset(run.pytester.path / "data")
    result = run("--dicom-dir=data", "-rA")
    assert result.ret == 0
    result.assert_outcomes(passed=8 + 1 + 4)  # the files, dicom-files, the checks
    result.stdout.fnmatch_lines(
        ["PASSED dicomqc::dicom-files", *(f"PASSED dicomqc::dataset::{check_id}" for check_id in IDS)],
        consecutive=True,
    )
    report = run.pytester.path / "metadata_dicom.xlsx"
    assert [row[:2] for row in dataset_sheet(report)] == [(name, "passed") for name in RESULTS]
    assert checked(report) == {
        "dicom-files": "8 DICOM files checked in data/; at least 1 required",
        "unique-sop": "8 files, 8 distinct values",
        "unique-pixels": "8 files, 8 distinct images",
        "patient-leakage": "8 files, 3 distinct values",
        "series-consistent": "8 files, 3 groups",
    }
    assert {row["dataset_checks"] for row in files_with_checks(run.pytester.path / "metadata_dicom.xlsx")} == {None}


def test_faulty_dataset_names_groups_and_files(run: Runner) -> None:
    (run.pytester.path / "rules.yaml").write_text(RULES)
    faulty_dataset(run.pytester.path / "data")
    result = run("--dicom-dir=data", "-rA")
    assert result.ret == 1
    result.assert_outcomes(passed=12 + 1, failed=4)  # the files and dicom-files pass
    result.stdout.fnmatch_lines(
        ["PASSED dicomqc::dicom-files", *(f"FAILED dicomqc::dataset::{check_id} - *" for check_id in IDS)],
        consecutive=True,
    )
    leak = digest("P-TRAIN-1")
    assert "P-TRAIN-1" not in result.stdout.str()
    report = run.pytester.path / "metadata_dicom.xlsx"
    number = zlib.crc32(b"dup-original.dcm") % 1_000_000_000  # write_dicom's UID and InstanceNumber
    pixels = shown_pixels(image(40).tobytes() + b"|int16|(8, 8)|1")
    a = [f"train/a/IM{i}.dcm" for i in range(5)]
    copies = "train/dup-original.dcm\ntrain/dup-renamed.dcm"
    assert dataset_sheet(report) == [
        ("dicom-files", "passed", None, None, None),
        ("unique-sop", "failed", f"SOPInstanceUID 1.2.826.0.1.3680043.10.999.{number}", "2 files have the same value",
         copies),
        ("unique-pixels", "failed", f"pixel data {pixels}", "2 files have identical pixel data", copies),
        ("patient-leakage", "failed", f"PatientID {leak}", "in 2 splits: test (1 file), train (6 files)",
         "\n".join(["test/leak.dcm", *a[:3], "train/a/IM3-again.dcm", *a[3:]])),
        # groups in collection order: test/b (1.2.3.4), then train/a (1.2.3.1), then the copies (1.2.3.2)
        ("series-consistent", "failed", "SeriesInstanceUID 1.2.3.4 (test/b/)",
         "Rows differs: 8 (2 files), 16 (1 file)", "test/b/R2.dcm"),
        ("series-consistent", "failed", "SeriesInstanceUID 1.2.3.1 (train/a/)", "InstanceNumber 4 appears 2 times",
         "train/a/IM3-again.dcm\ntrain/a/IM3.dcm"),
        ("series-consistent", "failed", "SeriesInstanceUID 1.2.3.1 (train/a/)",
         "2 slices at position 8 mm (duplicated slice)", "train/a/IM3-again.dcm\ntrain/a/IM3.dcm"),
        ("series-consistent", "failed", "SeriesInstanceUID 1.2.3.1 (train/a/)",
         "spacing 4 mm where the series has 2 mm (1 missing slice?)", "train/a/IM1.dcm\ntrain/a/IM2.dcm"),
        # a renamed copy repeats its series' InstanceNumber too
        ("series-consistent", "failed", "SeriesInstanceUID 1.2.3.2 (train/)",
         f"InstanceNumber {number} appears 2 times", copies),
    ]  # fmt: skip
    summary = [(r["item"], r["value"]) for r in read_sheet(report, "Summary") if r["section"] == "dataset"]
    assert summary == [("dicom-files", "passed"), *((check_id, "failed") for check_id in IDS)]
    involved = {row["path"]: row["dataset_checks"] for row in files_with_checks(report)}
    assert involved["train/dup-renamed.dcm"] == "unique-sop,unique-pixels,series-consistent"
    assert involved["train/a/IM3.dcm"] == "patient-leakage,series-consistent"
    assert involved["test/b/R2.dcm"] == "series-consistent"
    assert involved["test/b/R0.dcm"] is None


def test_partial_run_does_not_judge_the_dataset(pytester: pytest.Pytester) -> None:
    (pytester.path / "rules.yaml").write_text(RULES)
    faulty_dataset(pytester.path / "data")
    result = pytester.runpytest("--dicom-dir=data", "-k", "dup", "-p", "no:cacheprovider", "-v")
    assert result.ret == 0
    result.assert_outcomes(passed=2, deselected=10 + 5)  # the other files and every result: -k names none
    result.stdout.fnmatch_lines(result_lines("not run", DESELECTED), consecutive=True)
    rows = read_sheet(pytester.path / "metadata_dicom.xlsx", "Dataset")
    assert [(r["check"], r["status"], r["checked"]) for r in rows] == [
        (name, "not run", DESELECTED) for name in RESULTS
    ]
    files = read_sheet(pytester.path / "metadata_dicom.xlsx")  # every file has its row, run or not
    data = pytester.path / "data"
    every_file = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.dcm"))
    assert [(r["path"], r["status"]) for r in files] == [
        (path, "passed" if "dup-" in path else "not run") for path in every_file
    ]


def test_warning_check_passes_unless_strict(pytester: pytest.Pytester) -> None:
    (pytester.path / "rules.yaml").write_text(
        "version: 1\nrules: []\ndataset:\n  - id: enough\n    count: {min: 3}\n    group_by: split\n"
        "    severity: warning\n"
    )
    clean_dataset(pytester.path / "data")
    result = pytester.runpytest("--dicom-dir=data", "-p", "no:cacheprovider", "-rA", "-v")
    assert result.ret == 0
    result.assert_outcomes(passed=8 + 1 + 1)  # the files, dicom-files and the check, a warning
    warning = (
        "dicomqc dataset enough warning: 1 problem in 8 files, 3 groups: split val: 1 file, expected at least 3"
        " (val/c.dcm)"
    )
    result.stdout.fnmatch_lines([warning, "PASSED dicomqc::dataset::enough"])
    assert [(r["status"], r["group"]) for r in read_sheet(pytester.path / "metadata_dicom.xlsx", "Dataset")] == [
        ("passed", None),  # dicom-files
        ("warning", "split val"),
    ]
    result = pytester.runpytest("--dicom-dir=data", "-p", "no:cacheprovider", "--dicom-strict")
    assert result.ret == 1
    result.assert_outcomes(passed=8 + 1, failed=1)
    result.stdout.fnmatch_lines(["FAILED dicomqc::dataset::enough - 1 problem in 8 files, 3 groups*"])
    assert [(r["status"], r["group"]) for r in read_sheet(pytester.path / "metadata_dicom.xlsx", "Dataset")] == [
        ("passed", None),  # dicom-files
        ("failed", "split val"),
    ]


def check(yaml_text: str) -> DatasetCheck:
    return parse_rules("version: 1\nrules: []\ndataset:\n" + yaml_text, "rules.yaml").dataset[0]


def keyed(*entries: tuple[str, list[object]]) -> list[tuple[str, dict[str, list[object]]]]:
    return [(path, {"c": key}) for path, key in entries]


def test_split_of() -> None:
    default = check("  - id: c\n    disjoint: PatientID\n").split
    assert [split_of(default, p) for p in ("train/a/x.dcm", "test/y.dcm", "top.dcm")] == ["train", "test", None]
    custom = check("  - id: c\n    disjoint: PatientID\n    split: '(?:site\\d+/)?(train|val)/'\n").split
    assert [split_of(custom, p) for p in ("site1/train/x", "val/y", "other/z")] == ["train", "val", None]


def test_count_bounds_per_group() -> None:
    count = check("  - id: c\n    count: {min: 2, max: 3}\n    group_by: Modality\n")
    files = keyed(("a", ["CT"]), ("b", ["MR"]), ("c", ["MR"]), ("d", ["US"]), *[(f"u{i}", ["US"]) for i in range(3)])
    (verdict,) = judge([count], files)  # type: ignore[arg-type]
    assert [(f.group, f.problem, f.files) for f in verdict.findings] == [
        ("Modality CT", "1 file, expected at least 2", ("a",)),
        ("Modality US", "4 files, expected at most 3", ("d", "u0", "u1", "u2")),
    ]
    assert verdict.status == "failed"


def test_spacing_needs_three_positions() -> None:
    series = check("  - id: c\n    consistent: [Rows]\n    slice_spacing: {tolerance: 0.1}\n")
    two = keyed(("a", ["s", 1, 0.0, AXIAL, 8]), ("b", ["s", 2, 9.0, AXIAL, 8]))
    assert judge([series], two)[0].findings == ()  # type: ignore[arg-type]
    positions = zip("abcd", (0.0, 1.0, 2.05, 3.5), strict=True)
    irregular = keyed(*[(path, ["s", None, z, AXIAL, 8]) for path, z in positions])
    (finding,) = judge([series], irregular)[0].findings  # type: ignore[arg-type]
    assert (finding.problem, finding.files) == ("spacing 1.45 mm where the series has 1 mm", ("c", "d"))


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "  - id: c\n",
            "rules.yaml:4:5: dataset check 'c' needs exactly one of unique, unique_pixels, disjoint, consistent, count",
        ),
        (
            "  - id: c\n    unique: PatientNme\n",
            "rules.yaml:5:13: unknown DICOM keyword 'PatientNme' (did you mean 'PatientName'?)",
        ),
        ("  - id: c\n    unique_pixels: yes\n", "rules.yaml:5:20: 'unique_pixels' takes true"),
        (
            "  - id: c\n    unique: PatientID\n    split: x/\n",
            "rules.yaml:6:5: 'split' goes with disjoint or count, not unique",
        ),
        (
            "  - id: c\n    disjoint: PatientID\n    split: '('\n",
            "rules.yaml:6:12: invalid regular expression '(': missing ), unterminated subpattern at position 0",
        ),
        (
            "  - id: c\n    consistent: Rows\n",
            "rules.yaml:5:17: 'consistent' needs a list of tags or pixel fields, e.g. [Rows, dtype]",
        ),
        (
            "  - id: c\n    consistent: [pixel.colour]\n",
            "rules.yaml:5:17: unknown pixel field 'colour' (did you mean 'columns'?); "
            "known: rows, columns, frames, samples_per_pixel, dtype, mean, min, max",
        ),
        ("  - id: c\n    count: {min: 3, max: 2}\n", "rules.yaml:5:12: 'count' min 3 is above max 2"),
        (
            "  - id: c\n    count: {least: 3}\n",
            "rules.yaml:5:12: 'count' is a mapping with 'min' and/or 'max' files per group",
        ),
        (
            "  - id: c\n    consistent: [Rows]\n    slice_spacing: 0.1\n",
            "rules.yaml:6:20: 'slice_spacing' is a mapping with a 'tolerance' in mm >= 0, e.g. {tolerance: 0.01}",
        ),
        (
            "  - id: c\n    consistent: [Rows]\n    instance_numbers: yes\n",
            "rules.yaml:6:23: 'instance_numbers' takes 'unique'",
        ),
        (
            "  - id: c\n    unique: PatientID\n  - id: c\n    unique_pixels: true\n",
            "rules.yaml:6:9: duplicate id 'c' (rules and dataset checks share ids)",
        ),
        (
            "  - id: c\n    unique: PatientID\n    groupby: x\n",
            "rules.yaml:6:5: unknown dataset check key 'groupby' (did you mean 'group_by'?)",
        ),
        (
            "  - id: c\n    consistent: [Rows]\n    slice_spacing: {tolerance: .nan}\n",
            "rules.yaml:6:20: 'slice_spacing' is a mapping with a 'tolerance' in mm >= 0, e.g. {tolerance: 0.01}",
        ),
        (
            "  - id: c\n    disjoint: PatientID\n    split: ''\n",
            "rules.yaml:6:12: 'split' is a regular expression matched at the start of the path, e.g. '(train|test)/'",
        ),
        (
            "  - id: c\n    count: {min: 1}\n    group_by: Modality\n    split: x/\n",
            "rules.yaml:7:5: 'split' goes with group_by: split, not with a tag",
        ),
        ("  - id: c\n    unique: ''\n", "rules.yaml:5:13: a tag is a DICOM keyword or '(gggg,eeee)', not ''"),
        (
            "  - just text\n",
            "rules.yaml:4:5: each dataset check is a mapping with 'id' and one of "
            "unique, unique_pixels, disjoint, consistent, count",
        ),
        ("  - {unique: PatientID}\n", "rules.yaml:4:5: check 'id' must be lowercase letters, digits and '-'"),
        (
            "  - {id: Bad_Id, unique: PatientID}\n",
            "rules.yaml:4:10: check 'id' must be lowercase letters, digits and '-'",
        ),
        (
            "  - {id: c, unique: PatientID, severity: fatal}\n",
            "rules.yaml:4:42: 'severity' must be 'error' or 'warning', not 'fatal'",
        ),
        ("  - {id: c, unique: PatientID, description: [a]}\n", "rules.yaml:4:45: 'description' must be text"),
        (
            "  - {id: c, unique: PatientID, unique_pixels: true}\n",
            "rules.yaml:4:5: dataset check 'c' needs exactly one of unique, unique_pixels, disjoint, consistent, count",
        ),
    ],
)
def test_dataset_section_errors_name_the_line(text: str, error: str) -> None:
    """The whole message, with the line and column in the rules file (the dataset section starts on line 4)."""
    with pytest.raises(RulesError) as raised:
        check(text)
    assert str(raised.value) == error


def test_selecting_every_file_still_judges_the_dataset(pytester: pytest.Pytester) -> None:
    """Partial means files left out. ``-m dicomqc`` selects every file and every result; ``--lf``
    after only dataset checks failed re-runs those checks, judged on every file's record from the
    cache; ``-k dcm`` selects every file but no result: the results are deselected, not run."""
    (pytester.path / "rules.yaml").write_text(RULES)
    faulty_dataset(pytester.path / "data")
    assert pytester.runpytest("--dicom-dir=data").ret == 1
    selections: list[tuple[list[str], int, dict[str, int]]] = [
        (["-m", "dicomqc"], 1, {"passed": 12 + 1, "failed": 4}),
        (["--lf"], 1, {"failed": 4, "deselected": 12 + 1}),
        (["-k", "dcm"], 0, {"passed": 12, "deselected": 1 + 4}),
    ]
    for selection, ret, outcomes in selections:
        result = pytester.runpytest("--dicom-dir=data", *selection)
        assert result.ret == ret, selection
        result.assert_outcomes(**outcomes)
    rows = read_sheet(pytester.path / "metadata_dicom.xlsx", "Dataset")
    assert [(r["check"], r["status"], r["checked"]) for r in rows] == [
        (name, "not run", DESELECTED) for name in RESULTS
    ]
    skip_one = ["--deselect", "dicomqc::dataset::unique-pixels"]
    result = pytester.runpytest("--dicom-dir=data", *skip_one, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=12 + 1, failed=3, deselected=1)
    rows = read_sheet(pytester.path / "metadata_dicom.xlsx", "Dataset")
    assert [(r["status"], r["checked"]) for r in rows if r["check"] == "unique-pixels"] == [("not run", DESELECTED)]


@pytest.mark.parametrize("mode", ["plain", "xdist"])
def test_deselected_files_make_the_run_partial(pytester: pytest.Pytester, mode: str) -> None:
    (pytester.path / "rules.yaml").write_text(RULES)
    faulty_dataset(pytester.path / "data")
    options = ["--dicom-dir=data", "-p", "no:cacheprovider", "--deselect", "data/train/dup-renamed.dcm::dicomqc"]
    extra = ["-n", "2"] if mode == "xdist" else ["-p", "no:xdist"]
    result = pytester.runpytest_subprocess(*options, *extra, "-v", "-rs", timeout=300)
    assert result.ret == 0
    # xdist's controller does not count the deselected file; the five results are skipped, not judged
    result.assert_outcomes(passed=11, skipped=5, deselected=0 if mode == "xdist" else 1)
    result.stdout.fnmatch_lines([f"SKIPPED [5] dicomqc: not judged: {NOT_JUDGED}"])
    result.stdout.fnmatch_lines(result_lines("not judged", NOT_JUDGED), consecutive=True)
    report = pytester.path / "metadata_dicom.xlsx"
    # every row, keyed by path: whichever worker ran a file, the report has it once, the file not run too
    files = sorted(p.relative_to(pytester.path / "data").as_posix() for p in (pytester.path / "data").rglob("*.dcm"))
    rows = files_with_checks(report)
    assert len(rows) == 12
    assert {r["path"]: (r["status"], r["dataset_checks"]) for r in rows} == {
        path: ("not run" if path == "train/dup-renamed.dcm" else "passed", None) for path in files
    }
    assert [(r["check"], r["status"], r["checked"]) for r in read_sheet(report, "Dataset")] == [
        (name, "not judged", NOT_JUDGED) for name in RESULTS
    ]


def test_positions_orientations_and_stacks() -> None:
    series = check("  - id: c\n    consistent: [Rows]\n    slice_spacing: {tolerance: 0.01}\n")

    def problems(*slices: tuple[str, object, object]) -> list[tuple[str, tuple[str, ...]]]:
        files = keyed(*[(path, ["s", None, position, orientation, 8]) for path, position, orientation in slices])
        return [(f.problem, f.files) for f in judge([series], files)[0].findings]  # type: ignore[arg-type]

    axial = "1\\0\\0\\0\\1\\0"
    sagittal = "0\\1\\0\\0\\0\\-1"
    assert problems(("a", 0.0, axial), ("b", 0.0, axial)) == [
        ("2 slices at position 0 mm (duplicated slice)", ("a", "b"))
    ]
    assert problems(("a", 5.0, axial), ("b", 5.0, axial), ("c", 5.0, axial)) == [
        ("3 slices at position 5 mm (duplicated slice)", ("a", "b", "c"))
    ]
    assert problems(("a", 0.0, axial), ("b", 2.5, axial), ("c", 7.5, axial)) == [
        ("spacing 5 mm where the series has 2.5 mm (1 missing slice?)", ("b", "c"))
    ]
    unusable = "1 file without a usable ImagePositionPatient/ImageOrientationPatient: slice spacing not checked"
    assert problems(("a", 0.0, axial), ("b", None, None), ("c", 4.0, axial)) == [(unusable, ("b",))]
    assert problems(("a", 0.0, axial), ("b", 2.0, sagittal), ("c", 4.0, axial)) == [
        ("ImageOrientationPatient differs from the series' usual one: slice spacing not checked", ("b",))
    ]
    assert problems(("a", None, None), ("b", None, None)) == []  # two images without geometry: nothing to stack


def test_degenerate_orientation_takes_no_part(run: Runner) -> None:
    (run.pytester.path / "rules.yaml").write_text(RULES)
    for index, z in enumerate([0.0, 2.0, 4.0, 6.0]):
        slice_file(run.pytester.path / "data" / "s" / f"{index}.dcm", index, z, index + 1, "1.2.3.9", "P9")
    zero = {"ImagePositionPatient": [0, 0, 8], "ImageOrientationPatient": [0] * 6}
    path = run.pytester.path / "data" / "s" / "4.dcm"
    write_dicom(path, pixels=image(9), SeriesInstanceUID="1.2.3.9", PatientID="P9", InstanceNumber=5, **zero)
    result = run("--dicom-dir=data")
    assert result.ret == 1
    result.assert_outcomes(passed=5 + 1 + 3, failed=1)  # five files, dicom-files, three checks pass
    rows = read_sheet(run.pytester.path / "metadata_dicom.xlsx", "Dataset")
    unusable = "1 file without a usable ImagePositionPatient/ImageOrientationPatient: slice spacing not checked"
    assert [(r["check"], r["status"], r["problem"], r["files"]) for r in rows] == [
        ("dicom-files", "passed", None, None),
        ("unique-sop", "passed", None, None),
        ("unique-pixels", "passed", None, None),
        ("patient-leakage", "passed", None, None),
        ("series-consistent", "failed", unusable, "s/4.dcm"),
    ]


def test_disjoint_values_are_always_hashed(pytester: pytest.Pytester) -> None:
    (pytester.path / "rules.yaml").write_text("version: 1\nrules: []\ndataset:\n  - id: study\n    disjoint: StudyID\n")
    write_dicom(pytester.path / "data" / "train" / "a.dcm", pixels=image(1), StudyID="ST-SECRET-42")
    write_dicom(pytester.path / "data" / "test" / "b.dcm", pixels=image(2), StudyID="ST-SECRET-42")
    result = pytester.runpytest("--dicom-dir=data", "-p", "no:cacheprovider", "--junitxml=j.xml")
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"*StudyID {digest('ST-SECRET-42')}: in 2 splits: test (1 file), train (1 file)*"])
    assert "ST-SECRET" not in result.stdout.str() + (pytester.path / "j.xml").read_text()


def test_undecodable_pixels_take_no_part(pytester: pytest.Pytester) -> None:
    rules = "version: 1\nrules: []\ndataset:\n  - id: c\n    consistent: [dtype]\n"
    (pytester.path / "rules.yaml").write_text(rules)
    for index in range(3):
        write_dicom(pytester.path / "data" / f"{index}.dcm", pixels=image(index))
    write_dicom(pytester.path / "data" / "bad.dcm", pixels=image(5), BitsAllocated=12)
    result = pytester.runpytest("--dicom-dir=data", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=3 + 1 + 1, failed=1)  # bad.dcm fails on its own; dicom-files and the check pass
    result.stdout.fnmatch_lines(
        [
            "dicomqc dicom-files passed: 4 DICOM files checked in data/; at least 1 required",
            "dicomqc dataset c passed: no problem in 3 files, 1 group; 1 file left out (no decodable pixel data)",
        ],
        consecutive=True,
    )


def test_waivers_accept_dataset_problems_by_path(run: Runner) -> None:
    waivers = (
        "waivers:\n"
        "  - id: known-copy\n    path: 'train/dup-*'\n    rules: [unique-sop, unique-pixels]\n"
        "    reason: the copy is kept on purpose\n"
        "  - id: nothing\n    path: 'val/**'\n    rules: [patient-leakage]\n    reason: matches no problem\n"
    )
    (run.pytester.path / "rules.yaml").write_text(RULES + waivers)
    faulty_dataset(run.pytester.path / "data")
    result = run("--dicom-dir=data", "-v")  # -v: the section's lines are not cut to the terminal width
    assert result.ret == 1
    result.assert_outcomes(passed=12 + 1 + 2, failed=2)  # the files, dicom-files, the two waived checks
    result.stdout.fnmatch_lines(
        [
            "dicomqc dataset unique-sop waived: 1 problem in 12 files, 11 distinct values: *[[]waived: known-copy[]]",
            "dicomqc dataset unique-pixels waived: 1 problem in 12 files, 11 distinct images: "
            "*[[]waived: known-copy[]]",
        ],
        consecutive=True,
    )
    report = run.pytester.path / "metadata_dicom.xlsx"
    rows = read_sheet(report, "Dataset")
    assert [(r["check"], r["status"], r["waiver"]) for r in rows if r["check"].startswith("unique")] == [
        ("unique-sop", "waived", "known-copy"),
        ("unique-pixels", "waived", "known-copy"),
    ]
    uses = {r["id"]: (r["status"], r["files"]) for r in read_sheet(report, "Waivers")}
    assert uses == {"known-copy": ("active", 2), "nothing": ("stale", 0)}


def test_waiver_must_match_every_file_of_a_problem() -> None:
    ruleset = parse_rules(
        RULES + "waivers:\n  - id: w\n    path: 'train/dup-original.dcm'\n    rules: [unique-sop]\n    reason: r\n",
        "rules.yaml",
    )
    files = [("train/dup-original.dcm", {"unique-sop": ["1.2"]}), ("train/dup-renamed.dcm", {"unique-sop": ["1.2"]})]
    (verdict,) = judge(ruleset.dataset[:1], files, waivers=ruleset.waivers)  # type: ignore[arg-type]
    assert (verdict.status, verdict.findings[0].waiver) == ("failed", "")


def test_spacing_edge_cases_from_review() -> None:
    def problems(tolerance: float, *slices: tuple[str, float, str]) -> list[str]:
        series = check(f"  - id: c\n    consistent: [Rows]\n    slice_spacing: {{tolerance: {tolerance}}}\n")
        files = keyed(*[(path, ["s", None, z, orientation, 8]) for path, z, orientation in slices])
        return [f.problem for f in judge([series], files)[0].findings]  # type: ignore[arg-type]

    axial, minus_zero = (
        "1.0000\\0.0000\\0.0000\\0.0000\\1.0000\\0.0000",
        "1.0000\\-0.0000\\0.0000\\0.0000\\1.0000\\0.0000",
    )
    # a step far below a micrometre is one position, even with tolerance 0 (it divided by zero)
    assert problems(0, ("a", 0.0, axial), ("b", 0.0001, axial), ("c", 2.5, axial)) == [
        "2 slices at position 0 mm (duplicated slice)"
    ]
    # positions written to 2 decimals: 0.63 - 0.62 is 0.0100000000000026, within a 0.01 tolerance
    zs = [-60.0, -59.38, -58.75, -58.12, -57.5]
    assert problems(0.01, *[(f"{i}", z, axial) for i, z in enumerate(zs)]) == []
    # -0 and 0 are one orientation
    assert problems(0.01, ("a", 0.0, axial), ("b", 1.0, minus_zero), ("c", 2.0, axial)) == []


def test_a_conftest_that_drops_files_makes_the_run_partial(pytester: pytest.Pytester) -> None:
    (pytester.path / "rules.yaml").write_text(RULES)
    faulty_dataset(pytester.path / "data")
    pytester.makeconftest(
        "def pytest_collection_modifyitems(items):\n"
        "    items[:] = [item for item in items if 'leak' not in item.nodeid]\n"
    )
    result = pytester.runpytest("--dicom-dir=data", "-p", "no:cacheprovider", "-v")
    assert result.ret == 0
    # 'leak' also drops dicomqc::dataset::patient-leakage: not run; the other results are skipped, not judged
    result.assert_outcomes(passed=11, skipped=4)
    expected = [
        (name, "not run", DESELECTED) if name == "patient-leakage" else (name, "not judged", NOT_JUDGED)
        for name in RESULTS
    ]
    lines = [f"dicomqc {shown(name)} {status}: {reason}" for name, status, reason in expected]
    result.stdout.fnmatch_lines(lines, consecutive=True)
    rows = read_sheet(pytester.path / "metadata_dicom.xlsx", "Dataset")
    assert [(r["check"], r["status"], r["checked"]) for r in rows] == expected


def test_deselected_check_keeps_its_waiver_from_going_stale(pytester: pytest.Pytester) -> None:
    waiver = "waivers:\n  - id: w\n    path: 'train/dup-*'\n    rules: [unique-pixels]\n    reason: kept\n"
    (pytester.path / "rules.yaml").write_text(RULES + waiver)
    faulty_dataset(pytester.path / "data")
    result = pytester.runpytest(
        "--dicom-dir=data", "-p", "no:cacheprovider", "--deselect", "dicomqc::dataset::unique-pix"
    )
    result.stdout.no_fnmatch_line("*matched no finding (stale)*")
    uses = {r["id"]: r["status"] for r in read_sheet(pytester.path / "metadata_dicom.xlsx", "Waivers")}
    assert uses == {"w": "unused in this partial run"}


def test_waived_problem_row_says_waived_beside_failing_ones(pytester: pytest.Pytester) -> None:
    waiver = "waivers:\n  - id: w\n    path: 'test/b/**'\n    rules: [series-consistent]\n    reason: known\n"
    (pytester.path / "rules.yaml").write_text(RULES + waiver)
    faulty_dataset(pytester.path / "data")
    result = pytester.runpytest("--dicom-dir=data", "-p", "no:cacheprovider")
    assert result.ret == 1
    result.assert_outcomes(passed=12 + 1, failed=4)  # one problem waived, four not: the check still fails
    rows = [
        r for r in read_sheet(pytester.path / "metadata_dicom.xlsx", "Dataset") if r["check"] == "series-consistent"
    ]
    assert [(r["status"], r["waiver"], r["files"]) for r in rows] == [
        ("waived", "w", "test/b/R2.dcm"),
        ("failed", None, "train/a/IM3-again.dcm\ntrain/a/IM3.dcm"),
        ("failed", None, "train/a/IM3-again.dcm\ntrain/a/IM3.dcm"),
        ("failed", None, "train/a/IM1.dcm\ntrain/a/IM2.dcm"),
        ("failed", None, "train/dup-original.dcm\ntrain/dup-renamed.dcm"),
    ]


def files_with_checks(report: Path) -> list[dict[str, Any]]:
    """The Files sheet's rows, each with the dataset checks that named the file (``dataset_checks``:
    comma-separated, None for none) as the Findings sheet lists them."""
    named = dataset_checks_by_file(report)
    return [{**row, "dataset_checks": named[row["path"]]} for row in read_sheet(report)]


def test_dicomqc_is_not_an_id() -> None:
    """A check is no column of the report (``id: series`` is fine), but ``dicomqc`` names its items."""
    check("  - id: series\n    unique_pixels: true\n")
    with pytest.raises(RulesError, match="check id 'dicomqc' is the plugin's item name; choose another"):
        check("  - id: dicomqc\n    unique_pixels: true\n")


@pytest.mark.parametrize(
    ("argument", "outcomes"),
    [("data/train/dup-original.dcm::dicomqc", {"passed": 1}), ("data/train", {"passed": 8})],
)
def test_a_path_inside_the_dataset_makes_the_run_partial(run: Runner, argument: str, outcomes: dict[str, int]) -> None:
    """Only that part is collected, so no file is deselected: the path itself makes the run partial.
    Judged on that part alone, the checks would pass (one file) or fail (the copies in train/)."""
    (run.pytester.path / "rules.yaml").write_text(RULES)
    faulty_dataset(run.pytester.path / "data")
    result = run(argument, "--dicom-dir=data", "-rA", "-v")
    assert result.ret == 0
    result.assert_outcomes(**outcomes)  # the results are not collected: nothing deselected, skipped or failed
    result.stdout.fnmatch_lines(result_lines("not run", NOT_COLLECTED), consecutive=True)
    result.stdout.no_fnmatch_line("*dicomqc::dicom-files*")
    result.stdout.no_fnmatch_line("*dicomqc::dataset::*")
    report = run.pytester.path / "metadata_dicom.xlsx"
    run_now = ["train/dup-original.dcm"] if argument.endswith("::dicomqc") else [
        *(f"train/a/IM{i}.dcm" for i in range(3)), "train/a/IM3-again.dcm", "train/a/IM3.dcm", "train/a/IM4.dcm",
        "train/dup-original.dcm", "train/dup-renamed.dcm",
    ]  # fmt: skip
    data = run.pytester.path / "data"
    every_file = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.dcm"))  # each has its row
    assert [(r["path"], r["status"], r["dataset_checks"]) for r in files_with_checks(report)] == [
        (path, "passed" if path in run_now else "not run", None) for path in every_file
    ]
    assert [(r["check"], r["status"], r["checked"]) for r in read_sheet(report, "Dataset")] == [
        (name, "not run", NOT_COLLECTED) for name in RESULTS
    ]


IDENTIFYING_RULES = """\
version: 1
rules: []
dataset:
  - id: same-name
    unique: PatientName
  - id: one-patient-per-series
    consistent: [PatientID]
  - id: per-patient
    consistent: [Rows]
    group_by: PatientID
"""


def test_identifying_values_are_hashed_in_unique_and_consistent(run: Runner) -> None:
    """PatientName as the ``unique`` tag, PatientID as a ``consistent`` tag and as ``group_by``:
    the clear values appear nowhere, their pseudonyms (fixed digests) where the values would."""
    (run.pytester.path / "rules.yaml").write_text(IDENTIFYING_RULES)
    data = run.pytester.path / "data"
    for name, patient, rows in (("a", "PID-7731", 8), ("b", "PID-7731", 16), ("c", "PID-7732", 8)):
        write_dicom(data / f"{name}.dcm", pixels=image(ord(name), rows), PatientID=patient, PatientName="Zyx^Qwv")
    result = run("--dicom-dir=data", "--junitxml=j.xml")
    assert result.ret == 1
    result.assert_outcomes(passed=3 + 1, failed=3)  # the files and dicom-files pass
    name, first, second = "sha256:1bf15c31124ba326", "sha256:f6293f0cc4fb8bc1", "sha256:fffa1581b1660966"
    assert (name, first, second) == (digest("Zyx^Qwv"), digest("PID-7731"), digest("PID-7732"))
    # each problem once, in its check's failure section
    result.stdout.fnmatch_lines(
        [
            "_* dataset same-name _*",
            "1 problem in 3 files, 1 distinct value:",
            f"  PatientName {name}: 3 files have the same value (a.dcm, b.dcm, c.dcm)",
            "_* dataset one-patient-per-series _*",
            "1 problem in 3 files, 1 group:",
            f"  SeriesInstanceUID 1.2.826.0.1.3680043.10.999.2: PatientID differs: {first} (2 files), {second} (1 file)"
            " (c.dcm)",
            "_* dataset per-patient _*",
            "1 problem in 3 files, 2 groups:",
            f"  PatientID {first}: Rows differs: 8 (1 file), 16 (1 file) (b.dcm)",
        ],
        consecutive=True,
    )
    report = run.pytester.path / "metadata_dicom.xlsx"
    series = "SeriesInstanceUID 1.2.826.0.1.3680043.10.999.2"
    assert [(r["check"], r["group"], r["problem"], r["files"]) for r in read_sheet(report, "Dataset")] == [
        ("dicom-files", None, None, None),
        ("same-name", f"PatientName {name}", "3 files have the same value", "a.dcm\nb.dcm\nc.dcm"),
        ("one-patient-per-series", series, f"PatientID differs: {first} (2 files), {second} (1 file)", "c.dcm"),
        ("per-patient", f"PatientID {first}", "Rows differs: 8 (1 file), 16 (1 file)", "b.dcm"),
    ]
    import openpyxl

    cells = [
        str(cell)
        for sheet in openpyxl.load_workbook(report)
        for row in sheet.iter_rows(values_only=True)
        for cell in row
    ]
    everything = "\n".join(
        [result.stdout.str(), result.stderr.str(), (run.pytester.path / "j.xml").read_text(), *cells]
    )
    for clear in ("PID-773", "Zyx", "Qwv"):
        assert clear not in everything
    assert {name, first, second} <= set(re.findall(r"sha256:[0-9a-f]{16}", everything))


def test_unique_pixels_hashes_every_frame(run: Runner) -> None:
    """Multi-frame files alike in their first frame are not copies; files alike in every frame are."""
    (run.pytester.path / "rules.yaml").write_text(
        "version: 1\nrules: []\ndataset:\n  - id: px\n    unique_pixels: true\n"
    )
    first, second, other = image(1), image(2), image(3)
    data = run.pytester.path / "data"
    write_dicom(data / "m1.dcm", pixels=np.stack([first, second]), multiframe=True)
    write_dicom(data / "m2.dcm", pixels=np.stack([first, other]), multiframe=True)
    write_dicom(data / "m3.dcm", pixels=np.stack([first, second]), multiframe=True)  # m1's frames, another UID
    write_dicom(data / "s.dcm", pixels=first)  # m1's first frame alone
    result = run("--dicom-dir=data")
    assert result.ret == 1
    result.assert_outcomes(passed=4 + 1, failed=1)  # the files and dicom-files pass
    pixels = shown_pixels(first.tobytes() + second.tobytes() + b"|int16|(8, 8)|2")
    report = run.pytester.path / "metadata_dicom.xlsx"
    rows = read_sheet(report, "Dataset")
    assert [(r["status"], r["group"], r["problem"], r["files"]) for r in rows] == [
        ("passed", None, None, None),  # dicom-files
        ("failed", f"pixel data {pixels}", "2 files have identical pixel data", "m1.dcm\nm3.dcm"),
    ]
    assert checked(report) == {
        "dicom-files": "4 DICOM files checked in data/; at least 1 required",
        "px": "4 files, 3 distinct images",
    }
    assert [(r["path"], r["frames"], r["dataset_checks"]) for r in files_with_checks(report)] == [
        ("m1.dcm", 2, "px"), ("m2.dcm", 2, None), ("m3.dcm", 2, "px"), ("s.dcm", 1, None)
    ]  # fmt: skip


def test_junitxml_properties_for_every_status(run: Runner) -> None:
    """Each check's test case carries its status and message, passed, failed, warning and waived alike."""
    (run.pytester.path / "rules.yaml").write_text(
        "version: 1\nrules: []\ndataset:\n"
        "  - id: patients\n    disjoint: PatientID\n"
        "  - id: unique-sop\n    unique: SOPInstanceUID\n"
        "  - id: unique-pixels\n    unique_pixels: true\n"
        "  - id: enough\n    count: {min: 2}\n    group_by: split\n    severity: warning\n"
        "waivers:\n  - id: w\n    path: 'train/dup-*'\n    rules: [unique-sop]\n    reason: kept\n"
    )
    data = run.pytester.path / "data"
    write_dicom(data / "train" / "a.dcm", pixels=image(1), PatientID="PA")
    write_dicom(data / "train" / "dup-original.dcm", pixels=image(2), PatientID="PB")
    shutil.copy(data / "train" / "dup-original.dcm", data / "train" / "dup-renamed.dcm")
    write_dicom(data / "test" / "b.dcm", pixels=image(3), PatientID="PC")
    result = run("--dicom-dir=data", "--junitxml=j.xml")
    assert result.ret == 1
    result.assert_outcomes(passed=4 + 1 + 3, failed=1)  # the files, dicom-files, the checks but unique-pixels
    number = zlib.crc32(b"dup-original.dcm") % 1_000_000_000
    pixels = shown_pixels(image(2).tobytes() + b"|int16|(8, 8)|1")
    copies = "(train/dup-original.dcm, train/dup-renamed.dcm)"
    duplicated = (
        f"1 problem in 4 files, 3 distinct images: pixel data {pixels}: 2 files have identical pixel data {copies}"
    )
    expected = {
        "dicom-files": ("passed", "4 DICOM files checked in data/; at least 1 required", False),
        "dataset::patients": ("passed", "no problem in 4 files, 3 distinct values", False),
        "dataset::unique-sop": (
            "waived",
            f"1 problem in 4 files, 3 distinct values: SOPInstanceUID 1.2.826.0.1.3680043.10.999.{number}: "
            f"2 files have the same value {copies} [waived: w]",
            False,
        ),
        "dataset::unique-pixels": ("failed", duplicated, True),
        "dataset::enough": (
            "warning",
            "1 problem in 4 files, 2 groups: split test: 1 file, expected at least 2 (test/b.dcm)",
            False,
        ),
    }
    cases = ElementTree.parse(run.pytester.path / "j.xml").getroot().iter("testcase")
    found = {
        case.get("name"): (
            *(
                dict((p.get("name"), p.get("value")) for p in case.iter("property")).get(key)
                for key in ("dicomqc_status", "dicomqc_message")
            ),
            case.find("failure") is not None,
        )
        for case in cases
        if case.get("classname") == "dicomqc" and not case.get("name", "").endswith(".dcm")
    }
    assert found == expected
    properties = [
        list(case.iter("property"))
        for case in ElementTree.parse(run.pytester.path / "j.xml").getroot().iter("testcase")
    ]
    assert sorted(len(p) for p in properties) == [0, 0, 0, 0, 2, 2, 2, 2, 2]  # only the results carry properties


@pytest.mark.parametrize(("size", "problem"), [
    (1, "1 file, expected at least 2"), (2, None), (3, None), (4, "4 files, expected at most 3"),
])  # fmt: skip
def test_count_bounds_are_inclusive(size: int, problem: str | None) -> None:
    """``count: {min: 2, max: 3}``: a group of exactly 2 or exactly 3 files passes; 1 and 4 do not."""
    count = check("  - id: c\n    count: {min: 2, max: 3}\n    group_by: Modality\n")
    entries: list[tuple[str, list[object]]] = [(f"f{index}", ["CT"]) for index in range(size)]
    files = keyed(*entries)
    (verdict,) = judge([count], files)  # type: ignore[arg-type]
    found = [(f.group, f.problem, f.files) for f in verdict.findings]
    assert found == ([] if problem is None else [("Modality CT", problem, tuple(f"f{i}" for i in range(size)))])
    assert (verdict.status, verdict.groups, verdict.files) == ("passed" if problem is None else "failed", 1, size)


def test_spacing_boundaries() -> None:
    """Where a stack starts to count, and how close two orientations must be to be one."""
    series = check(
        "  - id: c\n    consistent: [Rows]\n    group_by: SeriesInstanceUID\n    slice_spacing: {tolerance: 0.1}\n"
    )

    def findings(*slices: tuple[str, float | None, str | None, object]) -> list[tuple[str, str, tuple[str, ...]]]:
        files = keyed(*[(path, ["1.2.3", None, z, orientation, rows]) for path, z, orientation, rows in slices])
        return [(f.group, f.problem, f.files) for f in judge([series], files)[0].findings]  # type: ignore[arg-type]

    group = "SeriesInstanceUID 1.2.3"
    unplaced = "without a usable ImagePositionPatient/ImageOrientationPatient: slice spacing not checked"
    # one or two slices, none placed: no stack to check; three: a stack whose geometry is missing
    assert findings(("a", None, None, 8), ("b", None, None, 8)) == []
    assert findings(("a", None, None, 8), ("b", None, None, 8), ("c", None, None, 8)) == [
        (group, f"3 files {unplaced}", ("a", "b", "c"))
    ]
    # two slices, one placed: the other one is the finding
    assert findings(("a", 0.0, AXIAL, 8), ("b", None, None, 8)) == [(group, f"1 file {unplaced}", ("b",))]
    # cosines 0.001 apart are one orientation; beyond that the orientation differs
    within = "1.0000\\0.0000\\0.0010\\0.0000\\1.0000\\0.0000"
    beyond = "1.0000\\0.0000\\0.0011\\0.0000\\1.0000\\0.0000"
    assert findings(("a", 0.0, AXIAL, 8), ("b", 1.0, within, 8), ("c", 2.0, AXIAL, 8)) == []
    assert findings(("a", 0.0, AXIAL, 8), ("b", 1.0, beyond, 8), ("c", 2.0, AXIAL, 8)) == [
        (group, "ImageOrientationPatient differs from the series' usual one: slice spacing not checked", ("b",))
    ]
    # a value missing in one file is shown as <missing> beside the others
    assert findings(("a", 0.0, AXIAL, 8), ("b", 1.0, AXIAL, None), ("c", 2.0, AXIAL, 8)) == [
        (group, "Rows differs: 8 (2 files), <missing> (1 file)", ("b",))
    ]


def same_pixels() -> np.ndarray:
    """32 x 32 signed values: big enough for every encoder (OpenJPEG refuses 8 x 8)."""
    return (np.arange(32 * 32, dtype=np.int16).reshape(32, 32) * 3 - 500).astype(np.int16)


def compressed(path: Path, pixels: np.ndarray, syntax: uid.UID) -> Path:
    """A file whose pixel data pydicom's own encoders stored in ``syntax`` (lossless)."""
    write_dicom(path, pixels=pixels)
    ds = pydicom.dcmread(path)
    ds.compress(syntax)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_unique_pixels_finds_copies_whatever_the_transfer_syntax(run: Runner) -> None:
    """The same pixels stored uncompressed, RLE, JPEG-LS and JPEG 2000 (lossless): one problem
    naming every copy; another image, also compressed, is not among them."""
    (run.pytester.path / "rules.yaml").write_text(
        "version: 1\nrules: []\ndataset:\n  - id: px\n    unique_pixels: true\n"
    )
    data = run.pytester.path / "data"
    pixels = same_pixels()
    assert installed("pyjpegls") and installed("pylibjpeg-openjpeg")  # dependencies: they encode the copies
    syntaxes = {"rle.dcm": uid.RLELossless, "jpeg-ls.dcm": uid.JPEGLSLossless, "j2k.dcm": uid.JPEG2000Lossless}
    write_dicom(data / "plain.dcm", pixels=pixels)
    for name, syntax in syntaxes.items():
        compressed(data / name, pixels, syntax)
    compressed(data / "other.dcm", pixels + 1, uid.RLELossless)
    result = run("--dicom-dir=data")
    assert result.ret == 1
    result.assert_outcomes(passed=len(syntaxes) + 2 + 1, failed=1)  # the files and dicom-files pass
    report = run.pytester.path / "metadata_dicom.xlsx"
    digest_ = shown_pixels(pixels.tobytes() + b"|int16|(32, 32)|1")
    copies = sorted(["plain.dcm", *syntaxes])
    rows = read_sheet(report, "Dataset")
    assert [(r["status"], r["group"], r["problem"], r["files"], r["file count"]) for r in rows] == [
        ("passed", None, None, None, 0),  # dicom-files
        ("failed", f"pixel data {digest_}", f"{len(copies)} files have identical pixel data", "\n".join(copies),
         len(copies)),
    ]  # fmt: skip
    files = {r["path"]: (r["transfer_syntax"], r["error"], r["dataset_checks"]) for r in files_with_checks(report)}
    assert files == {
        "plain.dcm": ("Explicit VR Little Endian", None, "px"),
        **{name: (syntax.name, None, "px") for name, syntax in syntaxes.items()},
        "other.dcm": ("RLE Lossless", None, None),
    }


SERIES_PROBLEMS = [
    "5 problems in 12 files, 4 groups:",
    "  SeriesInstanceUID 1.2.3.4 (test/b/): Rows differs: 8 (2 files), 16 (1 file) (test/b/R2.dcm)",
    "  SeriesInstanceUID 1.2.3.1 (train/a/): InstanceNumber 4 appears 2 times (train/a/IM3-again.dcm, train/a/IM3.dcm)",
    "  SeriesInstanceUID 1.2.3.1 (train/a/): 2 slices at position 8 mm (duplicated slice) "
    "(train/a/IM3-again.dcm, train/a/IM3.dcm)",
    "  SeriesInstanceUID 1.2.3.1 (train/a/): spacing 4 mm where the series has 2 mm (1 missing slice?) "
    "(train/a/IM1.dcm, train/a/IM2.dcm)",
    "  SeriesInstanceUID 1.2.3.2 (train/): InstanceNumber {number} appears 2 times "
    "(train/dup-original.dcm, train/dup-renamed.dcm)",
]


def test_failure_text_lists_every_problem(run: Runner) -> None:
    """The failure text (terminal and junitxml) counts the problems, then has every one of the
    five on a line of its own, printed once: the section's line says how many and where they are."""
    (run.pytester.path / "rules.yaml").write_text(RULES)
    faulty_dataset(run.pytester.path / "data")
    result = run("--dicom-dir=data", "--junitxml=j.xml", "-v")
    assert result.ret == 1
    number = zlib.crc32(b"dup-original.dcm") % 1_000_000_000
    lines = [line.replace("{number}", str(number)) for line in SERIES_PROBLEMS]
    escaped = [line.replace("[", "[[]").replace("?", "[?]") for line in lines]  # fnmatch: these literally
    result.stdout.fnmatch_lines(["_* dataset series-consistent _*", *escaped], consecutive=True)
    result.stdout.fnmatch_lines(
        [
            "dicomqc dataset series-consistent failed: 5 problems in 12 files, 4 groups"
            " (above: dicomqc::dataset::series-consistent)"
        ]
    )
    output = result.stdout.str()
    assert [output.count(line) for line in lines[1:]] == [1] * 5
    cases = ElementTree.parse(run.pytester.path / "j.xml").getroot().iter("testcase")
    failure = next(case for case in cases if case.get("name") == "dataset::series-consistent").find("failure")
    assert failure is not None
    assert failure.text == "\n".join(lines)


def test_when_scopes_a_check_and_count_groups_by_split(run: Runner) -> None:
    """Files where ``when`` does not hold, or without a split, are left out and counted as such;
    ``count`` without ``group_by`` counts per split."""
    (run.pytester.path / "rules.yaml").write_text(
        "version: 1\nrules: []\ndataset:\n"
        "  - id: ct-per-split\n    count: {min: 2}\n    when: {Modality: CT}\n"
        "  - id: mr-per-split\n    count: {max: 1}\n    when: {Modality: MR}\n"
    )
    data = run.pytester.path / "data"
    layout = [("train/ct1", "CT"), ("train/ct2", "CT"), ("train/mr", "MR"), ("test/ct", "CT"), ("test/mr", "MR")]
    for index, (name, modality) in enumerate([*layout, ("top", "CT")]):  # top.dcm: in no split
        write_dicom(data / f"{name}.dcm", pixels=image(index), modality=modality)
    result = run("--dicom-dir=data", "-rA", "-v")  # -v: the section's lines are not cut to the terminal width
    assert result.ret == 1
    result.assert_outcomes(passed=6 + 1 + 1, failed=1)  # the files, dicom-files, mr-per-split
    no_split = "1 path matching no split pattern '([^/]+)/' (default)"
    ct_scope = f"3 files, 2 groups; 3 files left out ('when' does not hold for 2 files, {no_split})"
    mr_scope = "2 files, 2 groups; 4 files left out ('when' does not hold)"
    result.stdout.fnmatch_lines(
        [
            "_* dataset ct-per-split _*",
            f"1 problem in {ct_scope}:",
            "  split test: 1 file, expected at least 2 (test/ct.dcm)",
        ],
        consecutive=True,
    )
    result.stdout.fnmatch_lines(
        [
            f"dicomqc dataset ct-per-split failed: 1 problem in {ct_scope} (above: dicomqc::dataset::ct-per-split)",
            f"dicomqc dataset mr-per-split passed: no problem in {mr_scope}",
        ],
        consecutive=True,
    )
    result.stdout.fnmatch_lines(["PASSED dicomqc::dataset::mr-per-split", "FAILED dicomqc::dataset::ct-per-split - *"])
    rows = read_sheet(run.pytester.path / "metadata_dicom.xlsx", "Dataset")
    assert [(r["check"], r["status"], r["checked"], r["group"], r["problem"], r["files"]) for r in rows] == [
        ("dicom-files", "passed", "6 DICOM files checked in data/; at least 1 required", None, None, None),
        ("ct-per-split", "failed", ct_scope, "split test", "1 file, expected at least 2", "test/ct.dcm"),
        ("mr-per-split", "passed", mr_scope, None, None, None),
    ]


def test_deselecting_a_prefix_leaves_out_every_check_it_starts(run: Runner) -> None:
    """``--deselect dicomqc::dataset::unique`` leaves out unique-sop and unique-pixels, as pytest
    matches ``--deselect``; the other checks are judged as ever."""
    (run.pytester.path / "rules.yaml").write_text(RULES)
    faulty_dataset(run.pytester.path / "data")
    result = run("--dicom-dir=data", "-rA", "--deselect", "dicomqc::dataset::unique")
    assert result.ret == 1
    result.assert_outcomes(passed=12 + 1, failed=2, deselected=0 if run.mode == "xdist" else 2)
    result.stdout.fnmatch_lines(
        [
            "dicomqc dicom-files passed: *",
            f"dicomqc dataset unique-sop not run: {DESELECTED}",
            f"dicomqc dataset unique-pixels not run: {DESELECTED}",
            "dicomqc dataset patient-leakage failed: *",
            "dicomqc dataset series-consistent failed: *",
        ],
        consecutive=True,
    )
    result.stdout.fnmatch_lines(
        [
            "PASSED dicomqc::dicom-files",
            "FAILED dicomqc::dataset::patient-leakage - *",
            "FAILED dicomqc::dataset::series-consistent - *",
        ],
        consecutive=True,
    )
    result.stdout.no_fnmatch_line("*dicomqc::dataset::unique*")
    report = run.pytester.path / "metadata_dicom.xlsx"
    assert [(r["check"], r["status"]) for r in read_sheet(report, "Dataset")] == [
        ("dicom-files", "passed"),
        ("unique-sop", "not run"),
        ("unique-pixels", "not run"),
        ("patient-leakage", "failed"),
        ("series-consistent", "failed"),
        ("series-consistent", "failed"),
        ("series-consistent", "failed"),
        ("series-consistent", "failed"),
        ("series-consistent", "failed"),
    ]
    summary = [(r["item"], r["value"]) for r in read_sheet(report, "Summary") if r["section"] == "dataset"]
    assert summary == [
        ("dicom-files", "passed"),
        ("unique-sop", "not run"),
        ("unique-pixels", "not run"),
        ("patient-leakage", "failed"),
        ("series-consistent", "failed"),
    ]
    involved = {row["path"]: row["dataset_checks"] for row in files_with_checks(report)}
    assert involved["train/dup-renamed.dcm"] == "series-consistent"  # no unique-* there: not judged


def test_dataset_sheet_every_column(run: Runner) -> None:
    """Each column of a failed, a passed, a warning and a not-run row, read back exactly."""
    (run.pytester.path / "rules.yaml").write_text(
        "version: 1\nrules: []\ndataset:\n"
        "  - id: unique-sop\n    unique: SOPInstanceUID\n    description: a copy under another name\n"
        "  - id: patients\n    disjoint: PatientID\n    description: no patient in two splits\n"
        "  - id: enough\n    count: {min: 3}\n    severity: warning\n    description: enough files per split\n"
        "  - id: pixels\n    unique_pixels: true\n    description: no image twice\n"
    )
    data = run.pytester.path / "data"
    write_dicom(data / "train" / "a.dcm", pixels=image(1), PatientID="PA")
    write_dicom(data / "train" / "dup-original.dcm", pixels=image(2), PatientID="PB")
    shutil.copy(data / "train" / "dup-original.dcm", data / "train" / "dup-renamed.dcm")
    write_dicom(data / "test" / "b.dcm", pixels=image(3), PatientID="PC")
    result = run("--dicom-dir=data", "--deselect", "dicomqc::dataset::pixels")
    assert result.ret == 1
    result.assert_outcomes(passed=4 + 1 + 2, failed=1, deselected=0 if run.mode == "xdist" else 1)
    number = zlib.crc32(b"dup-original.dcm") % 1_000_000_000
    header = ["check", "type", "status", "severity", "checked", "group", "problem", "files", "file count", "waiver",
              "description"]  # fmt: skip
    rows = [
        ["dicom-files", "min_dicom_files", "passed", "error", "4 DICOM files checked in data/; at least 1 required",
         None, None, None, 0, None, None],
        ["unique-sop", "unique", "failed", "error", "4 files, 3 distinct values",
         f"SOPInstanceUID 1.2.826.0.1.3680043.10.999.{number}", "2 files have the same value",
         "train/dup-original.dcm\ntrain/dup-renamed.dcm", 2, None, "a copy under another name"],
        ["patients", "disjoint", "passed", "error", "4 files, 3 distinct values", None, None, None, 0, None,
         "no patient in two splits"],
        ["enough", "count", "warning", "warning", "4 files, 2 groups", "split test", "1 file, expected at least 3",
         "test/b.dcm", 1, None, "enough files per split"],
        ["pixels", "unique_pixels", "not run", "error", DESELECTED, None, None, None, 0, None, "no image twice"],
    ]  # fmt: skip
    assert read_sheet(run.pytester.path / "metadata_dicom.xlsx", "Dataset") == [
        dict(zip(header, row, strict=True)) for row in rows
    ]


def test_files_cell_is_cut_at_excel_limit_while_every_file_is_named(run: Runner) -> None:
    """90 files of about 400 characters share a value: the ``files`` cell holds Excel's 32,767
    characters, ending visibly cut; the Files sheet names the check on every one of them."""
    (run.pytester.path / "rules.yaml").write_text(
        "version: 1\nrules: []\ndataset:\n  - id: same-study\n    unique: StudyInstanceUID\n"
    )
    folder = "d" * 200
    paths = [f"{folder}/{index:03d}{'x' * 200}.dcm" for index in range(90)]
    for index, path in enumerate(paths):
        write_dicom(run.pytester.path / "data" / path, pixels=image(index))
    result = run("--dicom-dir=data")
    assert result.ret == 1
    result.assert_outcomes(passed=90 + 1, failed=1)  # the files and dicom-files pass
    report = run.pytester.path / "metadata_dicom.xlsx"
    dicom_files, row = read_sheet(report, "Dataset")
    assert (dicom_files["check"], dicom_files["status"]) == ("dicom-files", "passed")
    whole = "\n".join(paths)
    assert len(whole) > 32_767
    marker = "…[truncated]"
    assert row["files"] == whole[: 32_767 - len(marker)] + marker
    assert len(row["files"]) == 32_767
    assert (row["problem"], row["file count"]) == ("90 files have the same value", 90)
    assert {r["path"]: r["dataset_checks"] for r in files_with_checks(report)} == dict.fromkeys(paths, "same-study")


def test_a_check_no_file_took_part_in_is_empty_and_says_why(run: Runner) -> None:
    """0 files took part (``when`` never holds; no split folder): the check is ``empty``, and its
    message and ``checked`` cell say why, and pytest reports it skipped: it checked nothing."""
    (run.pytester.path / "rules.yaml").write_text(
        "version: 1\nrules: []\ndataset:\n"
        "  - id: mr-patients\n    unique: PatientID\n    when: {Modality: MR}\n"
        "  - id: leakage\n    disjoint: PatientID\n"
    )
    for name in "abc":
        write_dicom(run.pytester.path / "data" / f"{name}.dcm", pixels=image(ord(name)), PatientID="P1")
    result = run("--dicom-dir=data", "-rA", "--junitxml=j.xml", "-v")  # -v: whole lines in the section
    assert result.ret == 0
    result.assert_outcomes(passed=3 + 1, skipped=2)  # the files and dicom-files; the two empty checks
    when = "no file took part: 'when' held for no file"
    split = "no file took part: no path matched the split pattern '([^/]+)/' (default)"
    result.stdout.fnmatch_lines(
        [
            f"dicomqc dataset mr-patients empty: {when}",
            f"dicomqc dataset leakage empty: {split}",
            f"SKIPPED [1] dicomqc: empty: {when}",
            f"SKIPPED [1] dicomqc: empty: {split}",
        ]
    )
    rows = read_sheet(run.pytester.path / "metadata_dicom.xlsx", "Dataset")
    assert [(r["check"], r["status"], r["checked"], r["file count"]) for r in rows] == [
        ("dicom-files", "passed", "3 DICOM files checked in data/; at least 1 required", 0),
        ("mr-patients", "empty", when, 0),
        ("leakage", "empty", split, 0),
    ]
    cases = ElementTree.parse(run.pytester.path / "j.xml").getroot().iter("testcase")
    statuses = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}.get("dicomqc_status")
        for case in cases
        if case.get("classname") == "dicomqc" and not case.get("name", "").endswith(".dcm")
    }
    assert statuses == {"dicom-files": "passed", "dataset::mr-patients": "empty", "dataset::leakage": "empty"}


def test_slice_position_along_an_oblique_normal() -> None:
    """The position is ImagePositionPatient · (row × column) / |row × column|, recomputed here with
    numpy for an oblique plane where every cosine counts (and not of unit length)."""
    from pytest_dicomqc.dataset_checks import _slice_position
    from pytest_dicomqc.rules.evaluate import Facts

    row, column, position = np.array([2, 2, 1]) / 1.5, np.array([-2, 1, 2]) / 1.5, np.array([3.0, -6.5, 9.25])
    normal = np.cross(row, column)
    expected = float(position @ normal / np.linalg.norm(normal))
    facts = Facts(tags={0x00200032: position.tolist(), 0x00200037: [*row.tolist(), *column.tolist()]})
    distance, orientation = _slice_position(facts)
    assert distance == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(11.5)  # by hand: (3, -6.5, 9.25) · (1, -2, 2) / 3
    assert orientation == "1.3333\\1.3333\\0.6667\\-1.3333\\0.6667\\1.3333"


def test_stacks_gaps_and_folders() -> None:
    series = check(
        "  - id: c\n    consistent: [Rows]\n    group_by: SeriesInstanceUID\n    slice_spacing: {tolerance: 0.5}\n"
    )

    def findings(*slices: tuple[str, float]) -> list[tuple[str, str, tuple[str, ...]]]:
        files = keyed(*[(path, ["1.2.3", None, z, AXIAL, 8]) for path, z in slices])
        return [(f.group, f.problem, f.files) for f in judge([series], files)[0].findings]  # type: ignore[arg-type]

    # slices exactly the tolerance apart are one position
    assert findings(("p/s/a", 0.0), ("p/s/b", 0.5), ("p/s/c", 3.0), ("p/s/d", 6.0)) == [
        ("SeriesInstanceUID 1.2.3 (p/s/)", "2 slices at position 0 mm (duplicated slice)", ("p/s/a", "p/s/b"))
    ]
    # a gap of three steps: two slices missing; the group names the folder the series' files share
    assert findings(("p/s1/a", 0.0), ("p/s2/b", 2.0), ("p/s1/c", 4.0), ("p/s2/d", 10.0)) == [
        (
            "SeriesInstanceUID 1.2.3 (p/)",
            "spacing 6 mm where the series has 2 mm (2 missing slices?)",
            ("p/s1/c", "p/s2/d"),
        )
    ]
    # files with no folder in common: no folder in the group
    assert findings(("a/x", 0.0), ("b/y", 2.0), ("c/z", 5.0), ("d/w", 7.0))[0][0] == "SeriesInstanceUID 1.2.3"


KEY_RULES = """\
version: 1
rules: []
dataset:
  - {id: sop, unique: SOPInstanceUID}
  - {id: name, unique: PatientName}
  - {id: px, unique_pixels: true}
  - {id: leak, disjoint: StudyID}
  - {id: leak-whole-match, disjoint: StudyID, split: 'train/|test/'}
  - id: series
    consistent: [Rows, dtype]
    group_by: SeriesInstanceUID
    instance_numbers: unique
    slice_spacing: {tolerance: 0.1}
  - {id: rows-by-study, consistent: [Rows], group_by: StudyID}
  - {id: per-split, count: {min: 1}}
  - {id: per-modality, count: {max: 9}, group_by: Modality}
  - {id: ct-only, unique: SOPInstanceUID, when: {Modality: CT}}
"""
TAG = {
    "SOPInstanceUID": 0x00080018,
    "Modality": 0x00080060,
    "PatientName": 0x00100010,
    "StudyID": 0x00200010,
    "SeriesInstanceUID": 0x0020000E,
    "InstanceNumber": 0x00200013,
    "ImagePositionPatient": 0x00200032,
    "ImageOrientationPatient": 0x00200037,
    "Rows": 0x00280010,
}
MR_FILE = {
    "SOPInstanceUID": "1.2.3",
    "Modality": "MR",
    "PatientName": "DOE^JANE",
    "StudyID": "S1",
    "SeriesInstanceUID": "1.2.9",
    "InstanceNumber": 7,
    "ImagePositionPatient": [10.0, -4.0, 2.5],
    "ImageOrientationPatient": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
    "Rows": 8,
}
PIXEL_HASH = "xxh3-128:" + "ab" * 16


def keys(
    relpath: str = "train/p1/a.dcm", pixels: dict[str, object] | None = None, **changed: object
) -> dict[str, object]:
    """The keys one file contributes to each check of KEY_RULES."""
    from pytest_dicomqc.dataset_checks import keys_of
    from pytest_dicomqc.rules.evaluate import Facts

    pixel_hash = "" if changed.pop("no_hash", False) else PIXEL_HASH
    values = {**MR_FILE, **changed}
    facts = Facts(
        tags={TAG[name]: value for name, value in values.items() if value is not None},
        pixels={"dtype": "int16"} if pixels is None else pixels,
    )
    checks = parse_rules(KEY_RULES, "rules.yaml").dataset
    return keys_of(checks, facts, relpath, pixel_hash)  # type: ignore[arg-type]


def test_keys_of_every_check_type() -> None:
    """What a file contributes: values as shown (identifying ones and every disjoint value as a
    pseudonym), its split, and for consistency its group, instance number, position and values."""
    assert keys() == {
        "sop": ["1.2.3"],
        "name": [digest("DOE^JANE")],
        "px": [PIXEL_HASH],
        "leak": [digest("S1"), "train"],
        "leak-whole-match": [digest("S1"), "train/"],  # no group in the pattern: the whole match
        "series": ["1.2.9", 7, 2.5, "1.0000\\0.0000\\0.0000\\0.0000\\1.0000\\0.0000", 8, "int16"],
        "rows-by-study": ["S1", 7, None, None, 8],  # no slice_spacing: no position
        "per-split": ["train"],
        "per-modality": ["MR"],
        "ct-only": [None, "when"],  # its 'when' does not hold: no part, and why
    }


def left_out(file_keys: dict[str, object]) -> dict[str, object]:
    """Per check in which the file takes no part, why (a key ``[None, why]``)."""
    return {check_id: key[1] for check_id, key in file_keys.items() if key[0] is None}  # type: ignore[index]


def test_keys_left_out_where_a_value_is_missing() -> None:
    when = {"ct-only": "when"}
    assert left_out(keys()) == when
    assert left_out(keys(SOPInstanceUID=None)) == {"sop": "value", **when}
    assert left_out(keys(PatientName="")) == {"name": "value", **when}
    assert left_out(keys(StudyID=None)) == {"leak": "value", "leak-whole-match": "value", "rows-by-study": "value",
                                            **when}  # fmt: skip
    assert left_out(keys(SeriesInstanceUID=None)) == {"series": "value", **when}
    assert left_out(keys(Modality="CT")) == {}
    assert left_out(keys(Modality="CT", SOPInstanceUID=None)) == {"sop": "value", "ct-only": "value"}
    assert left_out(keys(SOPInstanceUID=None, Modality="MR")) == {"sop": "value", **when}  # 'when' first
    assert (keys(Modality="CT")["ct-only"], keys(Modality="CT")["per-modality"]) == (["1.2.3"], ["CT"])
    # a file in no split folder takes no part in what is judged by split, whatever its values
    in_no_split = {"leak": "split", "leak-whole-match": "split", "per-split": "split", **when}
    assert left_out(keys("a.dcm")) == in_no_split
    assert left_out(keys("a.dcm", StudyID=None)) == {**in_no_split, "rows-by-study": "value"}
    assert keys("test/b.dcm")["leak-whole-match"] == [digest("S1"), "test/"]
    # no pixel hash (nothing decoded): no part in unique_pixels; a pixel field missing is a value
    undecodable = keys(no_hash=True, pixels={})
    assert left_out(undecodable) == {"px": "pixels", **when} and undecodable["series"][-1] is None
    # every key, of files taking part or not, is made of exact builtins (they cross xdist)
    for file_keys in (keys(), keys("a.dcm", StudyID=None), undecodable):
        for key in file_keys.values():
            assert type(key) is list and {type(v) for v in key} <= {str, int, float, bool, type(None)}  # type: ignore[attr-defined]


def test_keys_of_files_whose_pixels_could_not_be_read() -> None:
    from pytest_dicomqc.dataset_checks import keys_of
    from pytest_dicomqc.rules.evaluate import Facts

    checks = parse_rules(KEY_RULES, "rules.yaml").dataset
    facts = Facts(tags={TAG[name]: value for name, value in MR_FILE.items()}, pixels=None)  # None: undecodable
    unread = keys_of(checks, facts, "train/p1/a.dcm", "")
    assert left_out(unread) == {"px": "pixels", "series": "pixels", "ct-only": "when"}  # type: ignore[arg-type]
    # an InstanceNumber that is not a whole number is no number to compare
    assert keys(InstanceNumber="7")["series"][1] is None
    assert keys(InstanceNumber=7.0)["series"][1] is None


def test_judge_names_every_group_and_file() -> None:
    """Every check type over hand-made keys: each finding's group, problem and files, the verdict's
    scope and message, and waivers that accept a problem only when they match all of its files."""
    checks = parse_rules(
        "version: 1\nrules: []\ndataset:\n"
        "  - {id: sop, unique: SOPInstanceUID}\n"
        "  - {id: px, unique_pixels: true}\n"
        "  - {id: leak, disjoint: PatientID}\n"
        "  - {id: series, consistent: [Rows], instance_numbers: unique}\n"
        "  - {id: per-split, count: {max: 2}}\n"
        "waivers:\n"
        "  - {id: dups, path: 'train/dup-*', rules: [px], reason: kept on purpose}\n"
        "  - {id: gone, path: 'train/**', rules: [sop], reason: expired, expires: 2001-01-01}\n",
        "rules.yaml",
    ).dataset
    waivers = parse_rules(
        "version: 1\nrules: []\ndataset:\n  - {id: px, unique_pixels: true}\n  - {id: sop, unique: SOPInstanceUID}\n"
        "waivers:\n"
        "  - {id: dups, path: 'train/dup-*', rules: [px], reason: kept on purpose}\n"
        "  - {id: gone, path: 'train/**', rules: [sop], reason: expired, expires: 2001-01-01}\n",
        "rules.yaml",
    ).waivers
    a, b = "xxh3-128:" + "a" * 32, "xxh3-128:" + "b" * 32
    T1, D1, D2, X, V1, V2 = (
        "test/t1.dcm",
        "train/dup-1.dcm",
        "train/dup-2.dcm",
        "train/x.dcm",
        "val/v1.dcm",
        "val/v2.dcm",
    )
    files = [
        (T1, {"sop": ["1.1"], "leak": ["P1", "test"], "series": ["S", 1, None, None, 8], "per-split": ["test"]}),
        (
            D1,
            {
                "sop": ["1.2"],
                "px": [a],
                "leak": ["P1", "train"],
                "series": ["S", 2, None, None, 8],
                "per-split": ["train"],
            },
        ),
        (
            D2,
            {
                "sop": ["1.2"],
                "px": [a],
                "leak": ["P1", "train"],
                "series": ["S", 2, None, None, 9],
                "per-split": ["train"],
            },
        ),
        (
            X,
            {
                "sop": ["1.3"],
                "px": [b],
                "leak": ["P2", "train"],
                "series": ["S", 3, None, None, 8],
                "per-split": ["train"],
            },
        ),
        (V1, {"sop": ["1.2"], "px": [b], "leak": ["P1", "val"], "series": ["S", 3, None, None, 8]}),
        (V2, {"sop": ["1.4"], "leak": ["P2", "val"], "series": ["S", 3, None, None, 8]}),
        ("other.dcm", {}),
    ]
    verdicts = {v.check.id: v for v in judge(checks, files, waivers=waivers)}
    found = {check: [(f.group, f.problem, f.files, f.waiver) for f in v.findings] for check, v in verdicts.items()}
    assert found == {
        "sop": [("SOPInstanceUID 1.2", "3 files have the same value", (D1, D2, V1), "")],
        "px": [
            ("pixel data xxh3-128:aaaaaaaaaaaaaaaa", "2 files have identical pixel data", (D1, D2), "dups"),
            ("pixel data xxh3-128:bbbbbbbbbbbbbbbb", "2 files have identical pixel data", (X, V1), ""),
        ],
        "leak": [
            (
                "PatientID P1",
                "in 3 splits: test (1 file), train (2 files), val (1 file)",
                (T1, V1, D1, D2),  # the smallest split's first
                "",
            ),
            ("PatientID P2", "in 2 splits: train (1 file), val (1 file)", (X, V2), ""),
        ],
        "series": [
            ("SeriesInstanceUID S", "Rows differs: 8 (5 files), 9 (1 file)", (D2,), ""),
            ("SeriesInstanceUID S", "InstanceNumber 2 appears 2 times", (D1, D2), ""),
            ("SeriesInstanceUID S", "InstanceNumber 3 appears 3 times", (X, V1, V2), ""),
        ],
        "per-split": [("split train", "3 files, expected at most 2", (D1, D2, X), "")],
    }
    assert [(v.files, v.left_out, v.groups, v.status) for v in verdicts.values()] == [
        (6, 1, 4, "failed"),
        (4, 3, 2, "failed"),  # one problem waived, one not
        (6, 1, 2, "failed"),
        (6, 1, 1, "failed"),
        (4, 3, 2, "failed"),
    ]
    assert verdicts["sop"].message == (
        "1 problem in 6 files, 4 distinct values; 1 file left out (no value to check, or 'when' does not hold): "
        "SOPInstanceUID 1.2: 3 files have the same value (train/dup-1.dcm, train/dup-2.dcm, val/v1.dcm)"
    )
    assert verdicts["px"].findings[0].text() == (
        f"pixel data xxh3-128:aaaaaaaaaaaaaaaa: 2 files have identical pixel data ({D1}, {D2}) [waived: dups]"
    )
    assert verdicts["leak"].findings[0].text(files=2) == (
        "PatientID P1: in 3 splits: test (1 file), train (2 files), val (1 file) (test/t1.dcm, val/v1.dcm and 2 more)"
    )
    assert verdicts["series"].details.splitlines() == [
        f"3 problems in {verdicts['series'].scope}:",
        "  SeriesInstanceUID S: Rows differs: 8 (5 files), 9 (1 file) (train/dup-2.dcm)",
        "  SeriesInstanceUID S: InstanceNumber 2 appears 2 times (train/dup-1.dcm, train/dup-2.dcm)",
        "  SeriesInstanceUID S: InstanceNumber 3 appears 3 times (train/x.dcm, val/v1.dcm, val/v2.dcm)",
    ]
    # every problem waived: the check is waived
    only_px_a = [(path, keys) for path, keys in files if path.startswith("train/dup")]
    (waived,) = judge([checks[1]], only_px_a, waivers=waivers)
    assert (waived.status, waived.findings[0].waiver) == ("waived", "dups")


def test_dataset_section_must_be_a_list() -> None:
    with pytest.raises(RulesError) as excinfo:
        parse_rules("version: 1\nrules: []\ndataset: {id: c}\n", "rules.yaml")
    assert str(excinfo.value) == "rules.yaml:3:10: 'dataset' must be a list of dataset checks"


def test_dataset_checks_as_loaded() -> None:
    """Every key of a dataset check reaches the loaded check; targets by keyword, pixel field or
    ``pixel.`` name; the defaults where a key is absent."""
    from pytest_dicomqc.rules.model import PIXEL, TAG, Check, Condition, Target

    series, study = parse_rules(
        "version: 1\nrules: []\ndataset:\n"
        "  - {id: c, consistent: [Rows, dtype, pixel.mean], when: {Modality: CT}, description: why,"
        " severity: warning}\n"
        "  - {id: d, consistent: [Rows], group_by: StudyInstanceUID, instance_numbers: unique}\n",
        "rules.yaml",
    ).dataset
    rows = Target(TAG, "Rows", 0x00280010)
    assert series.targets == (rows, Target(PIXEL, "dtype"), Target(PIXEL, "mean"))
    assert series.when == (Condition(Target(TAG, "Modality", 0x00080060), Check("equals", "CT")),)
    assert (series.description, series.severity, series.instance_numbers) == ("why", "warning", False)
    assert (series.group_by, series.slice_spacing) == (Target(TAG, "SeriesInstanceUID", 0x0020000E), None)
    assert (study.group_by, study.instance_numbers, study.severity, study.description, study.when) == (
        Target(TAG, "StudyInstanceUID", 0x0020000D),
        True,
        "error",
        "",
        (),
    )


def test_judge_strictness_expired_waivers_and_what_files_are_named() -> None:
    from pytest_dicomqc.dataset_checks import _slice_position, involvement, waivers_used
    from pytest_dicomqc.rules.evaluate import Facts

    ruleset = parse_rules(
        "version: 1\nrules: []\ndataset:\n"
        "  - {id: sop, unique: SOPInstanceUID, severity: warning}\n"
        "  - {id: px, unique_pixels: true}\n"
        "waivers:\n"
        "  - {id: old, path: '**', rules: '*', reason: r, expires: 2001-01-01}\n"
        "  - {id: kept, path: 'b*', rules: [px], reason: r}\n",
        "rules.yaml",
    )
    files = [
        ("a", {"sop": ["1"], "px": ["h1"]}),
        ("a2", {"sop": ["1"]}),
        ("b1", {"px": ["h2"]}),
        ("b2", {"px": ["h2"]}),
    ]
    default, strict = (
        judge(ruleset.dataset, files, waivers=ruleset.waivers),
        judge(ruleset.dataset, files, strict=True, waivers=ruleset.waivers),
    )
    assert [v.status for v in default] == ["warning", "waived"]  # the expired waiver accepts nothing
    assert [v.status for v in strict] == ["failed", "waived"]
    assert involvement(default) == {"a": ["sop"], "a2": ["sop"]}  # b1 and b2: their problem is waived
    assert waivers_used(default) == {"kept": 1}
    # parallel cosines span no plane: no position (not a division by zero)
    facts = Facts(tags={0x00200032: [0.0, 0.0, 1.0], 0x00200037: [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]})
    assert _slice_position(facts) == (None, None)


def test_pseudonym_of_text_that_is_not_utf8() -> None:
    """A value holding a lone surrogate (bytes that were not text) is hashed as its escaped form."""
    from pytest_dicomqc.dataset_checks import pseudonym

    assert pseudonym("caf\udce9") == digest("caf\\udce9") == "sha256:b38e4d2820ffbc0b"


def judged(
    yaml_text: str, *files: tuple[str, dict[str, object], str], strict: bool = False, waivers: str = ""
) -> list[DatasetVerdict]:
    """The checks of a ``dataset:`` section judged over files made of (path, tags, pixel hash),
    their keys made by keys_of as in a run."""
    from pydicom.datadict import tag_for_keyword

    from pytest_dicomqc.dataset_checks import keys_of
    from pytest_dicomqc.rules.evaluate import Facts

    ruleset = parse_rules(f"version: 1\nrules: []\ndataset:\n{yaml_text}{waivers}", "rules.yaml")
    keyed_files = []
    for path, tags, pixel_hash in files:
        facts = Facts(tags={tag_for_keyword(k): v for k, v in tags.items()}, pixels=None if not pixel_hash else {})
        keyed_files.append((path, keys_of(ruleset.dataset, facts, path, pixel_hash)))
    return judge(ruleset.dataset, keyed_files, strict, ruleset.waivers)


CT = {"Modality": "CT", "SOPInstanceUID": "1.1", "PatientID": "P1", "SeriesInstanceUID": "1.9"}
DEFAULT_LEAKAGE = "(?i)(train|training|val|valid|validation|dev|test|testing|holdout)/"


def test_statuses_are_declared_once() -> None:
    from pytest_dicomqc.dataset_checks import DATASET_STATUSES

    assert DATASET_STATUSES == ("passed", "failed", "warning", "waived", "empty")


def test_packaged_leakage_check_on_a_folder_without_splits_is_empty() -> None:
    """``--dicom-dir=data/train``: no path starts with a split folder, so nothing was compared,
    and the verdict says so with the pattern as the packaged rules file writes it."""
    text = (Path(pytest_dicomqc.__file__).parent / "rules.yaml").read_text()
    ruleset = parse_rules(text, "rules.yaml")
    from pydicom.datadict import tag_for_keyword

    from pytest_dicomqc.dataset_checks import keys_of
    from pytest_dicomqc.rules.evaluate import Facts

    facts = Facts(tags={tag_for_keyword(k): v for k, v in CT.items()}, pixels={})
    files = [(path, keys_of(ruleset.dataset, facts, path, f"h{path}")) for path in ("a.dcm", "ct/b.dcm")]
    verdicts = {v.check.id: v for v in judge(ruleset.dataset, files)}
    leakage = verdicts["patient-split-leakage"]
    assert (leakage.status, leakage.files, leakage.left_out, leakage.findings) == ("empty", 0, 2, ())
    assert leakage.message == f"no file took part: no path matched the split pattern '{DEFAULT_LEAKAGE}'"
    assert leakage.scope == f"0 files; 2 files left out (path matches no split pattern '{DEFAULT_LEAKAGE}')"
    assert leakage.left_out_why == (("split", 2),)
    assert verdicts["unique-pixels"].status == "passed"  # the other defaults did compare files


@pytest.mark.parametrize(
    ("yaml_text", "files", "reason"),
    [
        pytest.param("  - {id: c, unique: SOPInstanceUID}\n", [("a", {"Modality": "CT"}, "h")],
                     "no DICOM file has SOPInstanceUID", id="unique-value"),
        pytest.param("  - {id: c, unique_pixels: true}\n", [("a", CT, ""), ("b", CT, "")],
                     "no DICOM file has decodable pixel data", id="unique-pixels"),
        pytest.param("  - {id: c, unique: SOPInstanceUID, when: {Modality: MR}}\n", [("a", CT, "h")],
                     "'when' held for no file", id="when"),
        pytest.param("  - {id: c, unique: SOPInstanceUID}\n", [], "no DICOM file was checked", id="no-file"),
        pytest.param("  - {id: c, disjoint: PatientID, split: '(train|val)/'}\n",
                     [("train/a", {"Modality": "CT"}, "h"), ("val/b", {}, "h")],
                     "no DICOM file has PatientID", id="disjoint-value"),
        pytest.param("  - {id: c, disjoint: PatientID, split: '(train|val)/'}\n",
                     [("test/a", CT, "h"), ("b", {}, "h")],  # no split comes first, also without a value
                     "no path matched the split pattern '(train|val)/'", id="disjoint-split"),
        pytest.param("  - {id: c, disjoint: PatientID}\n", [("a", CT, "h")],
                     "no path matched the split pattern '([^/]+)/' (default)", id="default-split"),
        pytest.param("  - {id: c, count: {max: 3}, split: '(?i)(train|val)/'}\n", [("TEST/a", CT, "h")],
                     "no path matched the split pattern '(?i)(train|val)/'", id="count-split"),
        pytest.param("  - {id: c, count: {max: 3}, group_by: BodyPartExamined}\n", [("a", CT, "h")],
                     "no DICOM file has BodyPartExamined", id="count-value"),
        pytest.param("  - {id: c, consistent: [Rows]}\n", [("a", {"Modality": "CT"}, "h")],
                     "no DICOM file has SeriesInstanceUID", id="consistent-value"),
        pytest.param("  - {id: c, consistent: [dtype]}\n", [("a", CT, "")],
                     "no DICOM file has decodable pixel data", id="consistent-pixels"),
        pytest.param("  - {id: c, disjoint: PatientID, split: '(train|val)/', when: {Modality: CT}}\n",
                     [("train/a", {"Modality": "MR"}, "h"), ("test/b", CT, "h"), ("val/c", {"Modality": "CT"}, "h"),
                      ("val/d", {"Modality": "CT"}, "h")],
                     "'when' does not hold for 1 file, 1 path matching no split pattern '(train|val)/', "
                     "2 files without PatientID", id="mixed"),
    ],
)  # fmt: skip
def test_empty_check_says_why_no_file_took_part(
    yaml_text: str, files: list[tuple[str, dict[str, object], str]], reason: str
) -> None:
    """No file took part: the check is ``empty``, not passed, whatever its severity (``failed``
    under ``--dicom-strict``), and its message and scope say why in the rules file's words."""
    (verdict,) = judged(yaml_text, *files)
    assert (verdict.status, verdict.files, verdict.groups, verdict.findings) == ("empty", 0, 0, ())
    assert verdict.message == f"no file took part: {reason}"
    left = f"; {len(files)} file{'s' * (len(files) > 1)} left out (" if files else ""
    assert verdict.scope.startswith(f"0 files{left}") and verdict.scope.endswith(")" if files else "0 files")
    assert verdict.details == f"0 problems in {verdict.scope}:"
    warning = yaml_text.replace("}\n", ", severity: warning}\n")
    for strict in (False, True):
        (again,) = judged(warning, *files, strict=strict)
        assert (again.status, again.message) == ("failed" if strict else "empty", verdict.message)


def test_files_with_no_key_at_all_are_left_out_for_a_reason_unknown() -> None:
    (verdict,) = judge([check("  - id: c\n    unique: SOPInstanceUID\n")], [("a", {}), ("b", {"other": ["x"]})])
    assert (verdict.status, verdict.left_out_why) == ("empty", (("unknown", 2),))
    assert verdict.message == "no file took part: no value to check, or 'when' does not hold"


@pytest.mark.parametrize(
    ("yaml_text", "files", "message"),
    [
        pytest.param("  - {id: c, count: {min: 100}, split: '(train|val)/'}\n", [("a", CT, "h"), ("test/b", CT, "h")],
                     "0 files; 2 files left out (path matches no split pattern '(train|val)/'): "
                     "split: 0 files, expected at least 100", id="split"),
        pytest.param("  - {id: c, count: {min: 100}}\n", [], "0 files: split: 0 files, expected at least 100",
                     id="no-file"),
        pytest.param("  - {id: c, count: {min: 1}, group_by: Modality, when: {Modality: MR}}\n", [("a", CT, "h")],
                     "0 files; 1 file left out ('when' does not hold): Modality: 0 files, expected at least 1",
                     id="when"),
    ],
)  # fmt: skip
def test_count_min_fails_on_no_file(
    yaml_text: str, files: list[tuple[str, dict[str, object], str]], message: str
) -> None:
    """``count: {min: N}`` with no group at all is short of N files: it fails (a warning check
    warns, and fails with --dicom-strict), and no path waiver accepts a problem of no file."""
    always = "waivers:\n  - {id: all, path: '**', rules: [c], reason: any}\n"
    (verdict,) = judged(yaml_text, *files, waivers=always)
    assert (verdict.status, verdict.files, verdict.groups) == ("failed", 0, 0)
    assert [(f.problem, f.files, f.waiver) for f in verdict.findings] == [
        (f"0 files, expected at least {1 if 'min: 1}' in yaml_text else 100}", (), "")
    ]
    assert verdict.message == f"1 problem in {message}"
    warning = yaml_text.replace("}\n", ", severity: warning}\n")
    assert [judged(warning, *files, strict=strict)[0].status for strict in (False, True)] == ["warning", "failed"]


def test_count_min_zero_on_no_file_is_empty() -> None:
    (verdict,) = judged("  - {id: c, count: {min: 0}}\n")
    assert (verdict.status, verdict.message) == ("empty", "no file took part: no DICOM file was checked")


@pytest.mark.parametrize(
    ("yaml_text", "files", "left_out"),
    [
        pytest.param("  - {id: c, disjoint: PatientID, split: '(train|val)/'}\n",
                     [("train/a", CT, "h"), ("train/b", CT, "h"), ("c", CT, "h")],
                     "1 file left out (path matches no split pattern '(train|val)/')", id="split"),
        pytest.param("  - {id: c, unique: SOPInstanceUID}\n", [("a", CT, "h"), ("b", {}, "h"), ("c", {}, "h")],
                     "2 files left out (no SOPInstanceUID)", id="value"),
        pytest.param("  - {id: c, unique_pixels: true}\n", [("a", CT, "h"), ("b", CT, "")],
                     "1 file left out (no decodable pixel data)", id="pixels"),
        pytest.param("  - {id: c, unique: SOPInstanceUID, when: {Modality: CT}}\n", [("a", CT, "h"), ("b", {}, "h")],
                     "1 file left out ('when' does not hold)", id="when"),
        pytest.param("  - {id: c, disjoint: PatientID, split: '(train|val)/', when: {Modality: CT}}\n",
                     [("train/a", CT, "h"), ("train/b", {}, "h"), ("c", CT, "h"), ("val/d", {"Modality": "CT"}, "h")],
                     "3 files left out ('when' does not hold for 1 file, 1 path matching no split pattern "
                     "'(train|val)/', 1 file without PatientID)", id="mixed"),
    ],
)  # fmt: skip
def test_partial_scope_says_why_files_were_left_out(
    yaml_text: str, files: list[tuple[str, dict[str, object], str]], left_out: str
) -> None:
    (verdict,) = judged(yaml_text, *files)
    noun = "image" if "pixels" in yaml_text else "value"
    assert verdict.status == "passed"
    assert (
        verdict.message
        == f"no problem in {verdict.files} file{'s' * (verdict.files > 1)}, 1 distinct {noun}; {left_out}"
    )
