"""What the user counts and reads: progress, node ids, collected results, junitxml, the terminal
section, one row per file, and a plugin that costs nothing when no dataset is configured."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import Runner, read_sheet, write_dicom

PERCENT = re.compile(r"\[\s*(\d+)%\]")
PROGRESS_LINE = re.compile(r"(.*?) +\[\s*(\d+)%\]")
"""A progress line: what pytest wrote for a file (or a result) and the percentage at the end."""
XDIST_VERBOSE_LINE = re.compile(r"\[gw\d\] \[\s*(\d+)%\] (\w+) (\S+) ?")
"""``-n 2 -v`` writes a worker's result as ``[gw0] [ 14%] PASSED data/a/1.dcm::dicomqc``."""


def image(value: int) -> np.ndarray:
    """A small image of its own: files with different values are not duplicates (unique-pixels)."""
    return np.full((4, 4), value, dtype=np.int16)


def progress(result: pytest.RunResult) -> list[tuple[str, int]]:
    """Each progress line as (its text before the padding, percentage)."""
    lines = []
    for line in result.outlines:
        match = XDIST_VERBOSE_LINE.fullmatch(line)
        if match:
            lines.append((f"{match[3]} {match[2]}", int(match[1])))
            continue
        match = PROGRESS_LINE.fullmatch(line)
        if match:
            lines.append((match[1], int(match[2])))
    return lines


def plugin_section(result: pytest.RunResult) -> list[str]:
    """The lines between the ``-- dicomqc --`` separator and the short test summary."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if re.fullmatch(r"-+ dicomqc -+", line))
    end = next(i for i, line in enumerate(lines) if "short test summary info" in line)
    return lines[start + 1 : end]


@pytest.fixture
def folders(pytester: pytest.Pytester) -> Path:
    """``data/a/1.dcm data/a/2.dcm data/b/3.dcm``: every file passes, two dataset checks hold and the
    leakage check, with no split folder to compare, is empty: skipped."""
    root = pytester.path / "data"
    write_dicom(root / "a" / "1.dcm", pixels=image(1))
    write_dicom(root / "a" / "2.dcm", pixels=image(2))
    write_dicom(root / "b" / "3.dcm", pixels=image(3))
    return root


RESULT_LINES = [
    ("dicomqc::dicom-files PASSED", 57),
    ("dicomqc::dataset::unique-sop-instance-uid PASSED", 71),
    ("dicomqc::dataset::unique-pixels PASSED", 85),
    ("dicomqc::dataset::patient-split-leakage SKIPPED (empty: no file took...)", 100),
]


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_progress_never_passes_100_percent(run: Runner, folders: Path, verbose: bool) -> None:
    """3 files and 4 results are 7 items: the results are counted when collected, not added on top."""
    result = run("--dicom-dir=data", *(["-v"] if verbose else []))
    result.assert_outcomes(passed=6, skipped=1)
    assert result.ret == 0
    percentages = [int(p) for p in PERCENT.findall(result.stdout.str())]
    assert max(percentages) == 100
    assert percentages[-1] == 100
    lines = progress(result)
    if verbose:
        files = [(f"data/{name}::dicomqc PASSED", p) for name, p in [("a/1.dcm", 14), ("a/2.dcm", 28), ("b/3.dcm", 42)]]
        if run.mode == "xdist":  # in the order the workers finish
            assert [p for _, p in lines[:3]] == [14, 28, 42]
            assert sorted(text for text, _ in lines[:3]) == [text for text, _ in files]
        else:
            assert lines[:3] == files
        assert lines[3:] == RESULT_LINES
    elif run.mode == "xdist":
        assert lines == [("......s", 100)]
    else:
        assert lines == [("data/a ..", 28), ("data/b .", 42), ("dicomqc ...s", 100)]


def test_progress_is_per_folder_not_per_file(run: Runner, folders: Path) -> None:
    result = run("--dicom-dir=data")
    result.assert_outcomes(passed=6, skipped=1)
    if run.mode == "xdist":  # workers report in any order: pytest-xdist shows no file names
        assert progress(result) == [("......s", 100)]
    else:
        assert progress(result) == [("data/a ..", 28), ("data/b .", 42), ("dicomqc ...s", 100)]
    assert not [line for line in result.outlines if line.startswith(("data/a/", "data/b/"))]


@pytest.mark.parametrize("dataset_first", [False, True], ids=["tests-then-data", "data-then-tests"])
def test_results_print_on_their_own_line_after_unit_tests(
    run: Runner, pytester: pytest.Pytester, dataset_first: bool
) -> None:
    """An ML repo: ``tests/test_model.py`` and ``data/``. The two files have the same pixels, so
    ``unique-pixels`` fails: its F belongs on the ``dicomqc`` line, not after anyone's dots."""
    write_dicom(pytester.path / "data" / "x" / "1.dcm")
    write_dicom(pytester.path / "data" / "x" / "2.dcm")
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_model.py").write_text("def test_a(): pass\n\ndef test_b(): pass\n")
    paths = ["data", "tests/test_model.py"] if dataset_first else ["tests/test_model.py"]
    result = run("--dicom-dir=data", *paths)
    result.assert_outcomes(passed=6, failed=1, skipped=1)
    assert result.ret == 1
    if run.mode == "xdist":
        assert progress(result) == [("......Fs", 100)]  # the controller reports the results last
        assert not [line for line in result.outlines if line.startswith(("tests/", "data/"))]
    elif dataset_first:
        assert progress(result) == [("data/x ..", 25), ("tests/test_model.py ..", 50), ("dicomqc ..Fs", 100)]
    else:
        assert progress(result) == [("tests/test_model.py ..", 25), ("data/x ..", 50), ("dicomqc ..Fs", 100)]


RULES_WITH_THRESHOLD = """\
version: 1
rules:
  - id: original
    tag: ImageType
    contains: ORIGINAL
    max_failing: 1
  - id: ct
    tag: Modality
    equals: CT
dataset:
  - id: unique-sop
    unique: SOPInstanceUID
  - id: unique-pixels
    unique_pixels: true
"""

COLLECTED = [
    "data/a/1.dcm::dicomqc",
    "data/a/2.dcm::dicomqc",
    "data/b/3.dcm::dicomqc",
    "data/b/notes.txt::dicomqc",
    "dicomqc::dicom-files",
    "dicomqc::dataset::unique-sop",
    "dicomqc::dataset::unique-pixels",
    "dicomqc::rule::original",
]


@pytest.fixture
def thresholds(pytester: pytest.Pytester, folders: Path) -> Path:
    """One derived image (tolerated by ``max_failing: 1``), one MR image (fails ``ct``), one text file."""
    (pytester.path / "rules.yaml").write_text(RULES_WITH_THRESHOLD)
    write_dicom(folders / "a" / "2.dcm", pixels=image(2), image_type="DERIVED")
    write_dicom(folders / "b" / "3.dcm", pixels=image(3), modality="MR")
    (folders / "b" / "notes.txt").write_text("hello")
    return folders


def test_collect_only_lists_every_file_and_result_and_counts_what_runs(run: Runner, thresholds: Path) -> None:
    listed = run("--dicom-dir=data", "--collect-only", "-q")
    assert listed.ret == 0
    assert [line for line in listed.outlines if "::" in line] == COLLECTED
    assert re.match(r"8 tests collected in [\d.]+s$", listed.outlines[-1])
    result = run("--dicom-dir=data", "-rA")
    result.assert_outcomes(passed=6, failed=1, skipped=1)  # 8, as --collect-only said
    assert sorted(line.split(" - ")[0] for line in result.outlines if line.startswith(("PASSED ", "FAILED "))) == [
        "FAILED data/b/3.dcm::dicomqc",
        "PASSED data/a/1.dcm::dicomqc",
        "PASSED data/a/2.dcm::dicomqc",
        "PASSED dicomqc::dataset::unique-pixels",
        "PASSED dicomqc::dataset::unique-sop",
        "PASSED dicomqc::dicom-files",
        "PASSED dicomqc::rule::original",
    ]


def test_deselect_drops_one_result_and_keeps_the_others(run: Runner, thresholds: Path) -> None:
    deselect = ("--deselect", "dicomqc::dataset::unique-pixels")
    listed = run("--dicom-dir=data", "--collect-only", "-q", *deselect)
    assert [line for line in listed.outlines if "::" in line] == [
        nodeid for nodeid in COLLECTED if nodeid != "dicomqc::dataset::unique-pixels"
    ]
    assert re.match(r"7/8 tests collected \(1 deselected\) in [\d.]+s$", listed.outlines[-1])
    result = run("--dicom-dir=data", "-rA", *deselect)
    result.assert_outcomes(passed=5, failed=1, skipped=1)
    reported = sorted(line.split(" - ")[0] for line in result.outlines if line.startswith(("PASSED ", "FAILED ")))
    assert [line for line in reported if "dicomqc::" in line and ".dcm" not in line] == [
        "PASSED dicomqc::dataset::unique-sop",
        "PASSED dicomqc::dicom-files",
        "PASSED dicomqc::rule::original",
    ]
    dataset = {
        row["check"]: (row["status"], row["checked"])
        for row in read_sheet(run.pytester.path / "metadata_dicom.xlsx", "Dataset")
    }
    assert dataset == {
        "dicom-files": ("passed", "3 DICOM files checked in data/: 1 text file; at least 1 required"),
        "unique-sop": ("passed", "3 files, 3 distinct values"),
        "unique-pixels": ("not run", "deselected (-k, -m, --deselect, --lf)"),
    }


@pytest.fixture
def split_dataset(pytester: pytest.Pytester) -> Path:
    root = pytester.path / "ds"
    write_dicom(root / "train" / "a.dcm", pixels=image(1), PatientID="p1")
    (root / "train" / "notes.txt").write_text("hello")
    return root


def junit_cases(path: Path) -> dict[tuple[str | None, str | None], ET.Element]:
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    return {(case.get("classname"), case.get("name")): case for case in suite.iter("testcase")}


def test_junitxml_names_files_by_dataset_path(run: Runner, split_dataset: Path) -> None:
    result = run("--dicom-dir=ds", "--junitxml=out.xml")
    result.assert_outcomes(passed=5, skipped=1)
    xml = run.pytester.path / "out.xml"
    assert "None" not in xml.read_text()
    cases = junit_cases(xml)
    assert list(cases) == [
        ("dicomqc", "train/a.dcm"),
        ("dicomqc", "train/notes.txt"),
        ("dicomqc", "dicom-files"),
        ("dicomqc", "dataset::unique-sop-instance-uid"),
        ("dicomqc", "dataset::unique-pixels"),
        ("dicomqc", "dataset::patient-split-leakage"),
    ]
    assert [child.tag for child in cases[("dicomqc", "train/a.dcm")]] == []
    skipped = cases[("dicomqc", "train/notes.txt")].find("skipped")
    assert skipped is not None
    assert (skipped.get("type"), skipped.get("message")) == ("pytest.skip", "non-dicom: text file")
    assert skipped.text == "train/notes.txt: non-dicom: text file"
    assert skipped.text.endswith("non-dicom: text file")
    properties = {
        name: {p.get("name"): p.get("value") for p in case.iter("property")}
        for (_, name), case in cases.items()
        if not name.startswith("train/")
    }
    assert properties == {
        "dicom-files": {
            "dicomqc_status": "passed",
            "dicomqc_message": "1 DICOM file checked in ds/: 1 text file; at least 1 required",
        },
        "dataset::unique-sop-instance-uid": {
            "dicomqc_status": "passed",
            "dicomqc_message": "no problem in 1 file, 1 distinct value",
        },
        "dataset::unique-pixels": {
            "dicomqc_status": "passed",
            "dicomqc_message": "no problem in 1 file, 1 distinct image",
        },
        "dataset::patient-split-leakage": {
            "dicomqc_status": "passed",
            "dicomqc_message": "no problem in 1 file, 1 distinct value",
        },
    }


def test_junitxml_skip_text_is_path_and_reason(run: Runner, split_dataset: Path) -> None:
    run("--dicom-dir=ds", "--junitxml=out.xml")
    skipped = junit_cases(run.pytester.path / "out.xml")[("dicomqc", "train/notes.txt")].find("skipped")
    assert skipped is not None
    assert skipped.text == "train/notes.txt: non-dicom: text file"


RULES_A_B = """\
version: 1
rules:
  - id: original
    tag: ImageType
    contains: ORIGINAL
  - id: ct-only
    tag: Modality
    equals: CT
    severity: warning
dataset:
  - id: unique-sop
    unique: SOPInstanceUID
"""
DUPLICATE_UID = "1.2.826.0.1.3680043.10.999.555"


def test_terminal_section_is_one_line_per_rule_within_the_width(
    run: Runner, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """300 files: 120 fail ``original``, 60 warn on ``ct-only``, two share a SOPInstanceUID."""
    monkeypatch.setenv("COLUMNS", "80")
    (pytester.path / "rules.yaml").write_text(RULES_A_B)
    for i in range(300):
        write_dicom(
            pytester.path / "big" / f"f{i:03d}.dcm",
            image_type="DERIVED\\SECONDARY" if i < 120 else "ORIGINAL\\PRIMARY",
            modality="MR" if 120 <= i < 180 else "CT",
            pixels=image(i),
            **({"SOPInstanceUID": DUPLICATE_UID} if i >= 298 else {}),
        )
    result = run("--dicom-dir=big")
    result.assert_outcomes(passed=181, failed=121)
    assert result.ret == 1
    section = plugin_section(result)
    assert section == [
        "dicomqc: FAILED: 120 files failed; 1 dataset result failed",
        "dicomqc: 300 files: 180 passed, 120 failed",
        "dicomqc rule original (error): 120 failed of 300 applicable files",
        "dicomqc rule ct-only (warning): 60 warned of 300 applicable files",
        "dicomqc dicom-files passed: 300 DICOM files checked in big/; at least 1 requir…",
        "dicomqc dataset unique-sop failed: 1 problem in 300 files, 299 distinct values…",
        f"dicomqc rules: {pytester.path / 'rules.yaml'}",
        f"dicomqc report: {pytester.path / 'metadata_dicom.xlsx'}",
    ]
    assert [line for line in section[:-2] if len(line) > 80] == []
    output = result.stdout.str()
    assert output.count(DUPLICATE_UID) == 1
    assert output.count("SOPInstanceUID 1.2.826.0.1.3680043.10.999.555: 2 files have the same value") == 1
    short = [line for line in result.outlines if line.startswith("FAILED dicomqc::")]
    # pytest cuts the line to the terminal's width, except on CI (CI=true), where it shows it whole:
    # either way it is the failure's first line only, the count, never the problem
    full = "FAILED dicomqc::dataset::unique-sop - 1 problem in 300 files, 299 distinct values"
    assert short in ([full], [full[:77] + "..."])


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_dataset_problem_is_printed_once(run: Runner, pytester: pytest.Pytester, verbose: bool) -> None:
    """``-v`` does not cut the section's lines: the problem is still printed only in its failure."""
    write_dicom(pytester.path / "data" / "a.dcm", pixels=image(1), SOPInstanceUID=DUPLICATE_UID)
    write_dicom(pytester.path / "data" / "b.dcm", pixels=image(2), SOPInstanceUID=DUPLICATE_UID)
    result = run("--dicom-dir=data", *(["-v"] if verbose else []))
    result.assert_outcomes(passed=4, failed=1, skipped=1)
    assert result.stdout.str().count(DUPLICATE_UID) == 1
    result.stdout.fnmatch_lines(
        [
            "*_ dataset unique-sop-instance-uid _*",
            "1 problem in 2 files, 1 distinct value:",
            f"  SOPInstanceUID {DUPLICATE_UID}: 2 files have the same value (a.dcm, b.dcm)",
        ],
        consecutive=True,
    )
    shown = [line for line in result.outlines if line.startswith("dicomqc dataset unique-sop-instance-uid")]
    if verbose:
        assert shown == [
            "dicomqc dataset unique-sop-instance-uid failed: 1 problem in 2 files, 1 distinct value"
            " (above: dicomqc::dataset::unique-sop-instance-uid)"
        ]
    else:
        assert shown == ["dicomqc dataset unique-sop-instance-uid failed: 1 problem in 2 files, 1 distin…"]


BYTE_NAME = os.fsdecode(b"caf\xe9.dcm")
TEXT_NAME = "caf\\xe9.dcm"  # a backslash, then x, e, 9


def test_every_regular_file_gets_one_row(run: Runner, pytester: pytest.Pytester) -> None:
    root = pytester.path / "data"
    write_dicom(root / "__pycache__" / "x.dcm", pixels=image(1))
    write_dicom(root / "s" / BYTE_NAME, pixels=image(2), SOPInstanceUID=DUPLICATE_UID)
    write_dicom(root / "s" / TEXT_NAME, pixels=image(3), SOPInstanceUID=DUPLICATE_UID)
    listed = run("--dicom-dir=data", "--collect-only", "-q")
    assert [line for line in listed.outlines if line.endswith("::dicomqc")] == [
        "data/__pycache__/x.dcm::dicomqc",
        "data/s/caf\\\\xe9.dcm::dicomqc",
        "data/s/caf\\xe9.dcm::dicomqc",
    ]
    result = run("--dicom-dir=data")
    result.assert_outcomes(passed=5, failed=1, skipped=1)
    report = run.pytester.path / "metadata_dicom.xlsx"
    rows = read_sheet(report)
    assert [(row["path"], row["status"], row["SOPInstanceUID"]) for row in rows] == [
        ("__pycache__/x.dcm", "passed", rows[0]["SOPInstanceUID"]),
        ("s/caf\\\\xe9.dcm", "passed", DUPLICATE_UID),
        ("s/caf\\xe9.dcm", "passed", DUPLICATE_UID),
    ]
    unique = [row for row in read_sheet(report, "Dataset") if row["check"] == "unique-sop-instance-uid"]
    assert [(row["status"], row["checked"], row["files"], row["file count"]) for row in unique] == [
        ("failed", "3 files, 2 distinct values", "s/caf\\\\xe9.dcm\ns/caf\\xe9.dcm", 2)
    ]


HEAVY = ("pydicom", "numpy", "yaml", "sqlite3")
IDLE_TEST = f"""
import sys

def test_plugin_loaded_and_idle():
    assert "pytest_dicomqc.plugin" in sys.modules
    assert [name for name in {HEAVY!r} if name in sys.modules] == []
"""


def test_plugin_imports_nothing_heavy_without_a_dataset(run: Runner, pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_idle=IDLE_TEST)
    result = run(subprocess=True)  # a fresh process: the outer session has imported them all
    result.assert_outcomes(passed=1)
    assert result.ret == 0


def test_plugin_loads_pydicom_with_a_dataset(run: Runner, pytester: pytest.Pytester) -> None:
    write_dicom(pytester.path / "data" / "a.dcm")
    pytester.makepyfile(test_loaded="import sys\n\ndef test_loaded():\n    assert 'pydicom' in sys.modules\n")
    result = run("--dicom-dir=data", "test_loaded.py", subprocess=True)
    result.assert_outcomes(passed=5, skipped=1)
    assert result.ret == 0
