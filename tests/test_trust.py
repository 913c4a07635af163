"""Trust in a green run: a run that checked nothing never passes, a partial run keeps the full
picture (earlier results from the cache, or ``not run``), and ``dicom_dir`` in the ini file
follows pytest's ``testpaths`` rule."""

from __future__ import annotations

import re
import shutil
import time
from xml.etree import ElementTree

import numpy as np
import pydicom
import pytest

from tests.helpers import MODES, SUBPROCESS_TIMEOUT, Runner, read_sheet, write_dicom

LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:" + "ab" * 32 + "\nsize 1234\n"
LFS_ERROR = "Git LFS pointer file, not the data: its 1234 bytes of content were never downloaded; run git lfs pull"
SPLIT_PATTERN = "'(?i)(train|training|val|valid|validation|dev|test|testing|holdout)/'"
NO_SPLIT = f"no file took part: no path matched the split pattern {SPLIT_PATTERN}"
DEFAULT_CHECKS = ["unique-sop-instance-uid", "unique-pixels", "patient-split-leakage"]
NO_DICOM = "no file took part: no DICOM file was checked"
YELLOW, GREEN, RESET = "\x1b[33m", "\x1b[32m", "\x1b[0m"


def with_cache(run: Runner, *args: str) -> pytest.RunResult:
    """``run`` with pytest's cacheprovider on (the Runner turns it off): ``--lf`` and earlier results need it."""
    options = (*MODES[run.mode], "-W", "ignore::pytest.PytestAssertRewriteWarning", *args)
    if run.mode == "xdist":
        return run.pytester.runpytest_subprocess(*options, timeout=SUBPROCESS_TIMEOUT)
    return run.pytester.runpytest(*options)


def failure(result: pytest.RunResult, title: str) -> list[str]:
    """The text of one failure section (``___ title ___``), less xdist's ``[gw0] linux -- …`` line:
    under xdist the sections come in the order the workers finished."""
    lines = result.outlines
    [start] = [i for i, line in enumerate(lines) if re.fullmatch(rf"_+ {re.escape(title)} _+", line)]
    end = next(i for i in range(start + 1, len(lines)) if re.fullmatch(r"(_+ .* _+|=+ .* =+|-+ .* -+)", lines[i]))
    return [line for line in lines[start + 1 : end] if not line.startswith("[gw")]


def passed(result: pytest.RunResult) -> list[str]:
    """Node ids of the ``-rA`` summary's PASSED lines, sorted (xdist reports in the order workers finish)."""
    return sorted(line.removeprefix("PASSED ") for line in result.outlines if line.startswith("PASSED "))


def pixels(seed: int) -> np.ndarray:
    return np.full((4, 4), seed, np.int16)


def files_sheet(pytester: pytest.Pytester, *columns: str) -> list[tuple[object, ...]]:
    return [tuple(row[c] for c in columns) for row in read_sheet(pytester.path / "metadata_dicom.xlsx")]


def sheet_rows(pytester: pytest.Pytester, sheet: str, *columns: str) -> list[tuple[object, ...]]:
    return [tuple(row[c] for c in columns) for row in read_sheet(pytester.path / "metadata_dicom.xlsx", sheet)]


def summary(pytester: pytest.Pytester, section: str) -> list[tuple[object, ...]]:
    rows = read_sheet(pytester.path / "metadata_dicom.xlsx", "Summary")
    return [(r["item"], r["value"], r["detail"]) for r in rows if r["section"] == section]


def started(pytester: pytest.Pytester) -> str:
    """When the run that wrote the workbook started, as its Summary sheet says (ISO 8601 with offset)."""
    [(_, value, _)] = [row for row in summary(pytester, "run") if row[0] == "started"]
    assert isinstance(value, str)
    return value


# -- 1. no vacuous pass ------------------------------------------------------------------------


def test_a_dataset_of_only_gitkeep_fails(run: Runner) -> None:
    (run.pytester.path / "data").mkdir()
    (run.pytester.path / "data" / ".gitkeep").touch()
    result = run("--dicom-dir=data", "-rA")
    message = "0 DICOM files checked in data/: 1 empty file; at least 1 required"
    assert result.ret == 1
    result.assert_outcomes(failed=1, skipped=1 + 3)  # .gitkeep; the three checks checked nothing
    assert failure(result, "dicom-files") == [message]
    result.stdout.fnmatch_lines(["dicomqc: FAILED: 1 dataset result failed", "dicomqc: 1 file: 1 skipped"])
    assert files_sheet(run.pytester, "path", "kind", "status", "error") == [(".gitkeep", "non-dicom", "skipped", None)]
    assert summary(run.pytester, "dataset") == [
        ("dicom-files", "failed", message),
        *((check, "empty", NO_DICOM) for check in DEFAULT_CHECKS),
    ]


def test_a_dataset_of_git_lfs_pointers_fails_every_file_and_the_run(run: Runner) -> None:
    names = ["a.dcm", "b.png", "c"]
    for name in names:
        (run.pytester.path / "data").mkdir(exist_ok=True)
        (run.pytester.path / "data" / name).write_text(LFS_POINTER)
    result = run("--dicom-dir=data", "-rA")
    message = (
        "0 DICOM files checked in data/: 3 Git LFS pointers (not downloaded: run git lfs pull); at least 1 required"
    )
    assert result.ret == 1
    result.assert_outcomes(failed=4, skipped=3)  # the files, dicom-files; the checks checked nothing
    assert {name: failure(result, f"dicomqc: {name}") for name in names} == {
        name: [f"non-dicom: {LFS_ERROR}"] for name in names
    }
    assert failure(result, "dicom-files") == [message]
    for name in names:  # xdist lists them in the order the workers finished
        result.stdout.fnmatch_lines([f"FAILED data/{name}::dicomqc - non-dicom: Git LFS pointer*"])
    result.stdout.fnmatch_lines(["FAILED dicomqc::dicom-files - 0 DICOM files checked in data/: 3 Git LFS*"])
    assert files_sheet(run.pytester, "path", "kind", "status", "failed_rules", "error") == [
        (name, "non-dicom", "failed", None, LFS_ERROR) for name in names
    ]
    assert summary(run.pytester, "dataset")[0] == ("dicom-files", "failed", message)
    assert summary(run.pytester, "verdict") == [("FAILED", "FAILED: 3 files failed; 1 dataset result failed", None)]


UNRULED_RULES = """\
version: 1
non_dicom: fail
rules:
  - id: original-image
    tag: ImageType
    contains: ORIGINAL
    when: {Modality: [CT]}
"""


def test_files_that_failed_with_no_rule_failing_are_counted_by_why(run: Runner) -> None:
    """The rule tallies count files a rule failed; the others that failed are counted apart, by
    why, so the numbers add up to the failed count."""
    data = run.pytester.path / "data"
    write_dicom(data / "a-good.dcm", pixels=pixels(1))
    write_dicom(data / "b-derived.dcm", pixels=pixels(2), image_type="DERIVED\\SECONDARY")
    for name in ("c-broken.dcm", "d-broken.dcm"):
        (data / name).write_bytes(b"not a data set\n")
    (data / "e-pointer.dcm").write_text(LFS_POINTER)
    (data / "f-notes.txt").write_text("notes\n")
    shutil.copy(pydicom.data.get_testdata_file("MR_truncated.dcm", download=False), data / "g-truncated.dcm")
    (run.pytester.path / "rules.yaml").write_text(UNRULED_RULES)
    result = run("--dicom-dir=data", "-v")  # -v: whole lines
    why = (
        "2 unreadable files, 1 Git LFS pointer (not downloaded: run git lfs pull),"
        " 1 non-DICOM file (non_dicom: fail), 1 DICOM file (read error)"
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "dicomqc: FAILED: 6 files failed",
            "dicomqc: 7 files: 1 passed, 6 failed",
            "dicomqc rule original-image (error): 1 failed of 2 applicable files",
            f"dicomqc: 5 files failed with no rule failing: {why}",
        ]
    )
    assert ("files", "failed with no rule failing", 5, why) in [
        ("files", *row) for row in summary(run.pytester, "files")
    ]


THRESHOLD_RULES = """\
version: 1
rules:
  - id: ct-only
    tag: ImageType
    contains: ORIGINAL
    when: {Modality: [CT]}
    max_failing: 2%
  - id: big-enough
    pixel: rows
    min: 100
    max_failing: 1
dataset: []
"""


@pytest.mark.parametrize("strict", [False, True])
def test_a_threshold_over_no_file_is_empty_not_passed(run: Runner, strict: bool) -> None:
    """``max_failing`` on a rule that applied to no file checked nothing: skipped, failed under
    strict; a threshold some files failed, within bounds, is named by the PASSED verdict."""
    write_dicom(run.pytester.path / "data" / "a.dcm", modality="MR", pixels=pixels(1))  # 4 rows
    (run.pytester.path / "rules.yaml").write_text(THRESHOLD_RULES)
    result = run("--dicom-dir=data", "-rA", "-v", *(["--dicom-strict"] if strict else []))
    empty = "no file took part: the rule applied to no file"
    within = "1 of 1 applicable files fail rule 'big-enough' (100.0%), within max_failing 1"
    if strict:
        assert result.ret == 1
        result.assert_outcomes(passed=3, failed=1)
        result.stdout.fnmatch_lines([f"FAILED dicomqc::rule::ct-only - {empty}"])
        headline = "FAILED: 1 dataset result failed"
    else:
        assert result.ret == 0
        result.assert_outcomes(passed=3, skipped=1)
        result.stdout.fnmatch_lines([f"SKIPPED [[]1] dicomqc: empty: {empty}"])
        headline = (
            "PASSED with 2 warnings: rule::ct-only empty, rule::big-enough failed on 1 file, within max_failing 1"
        )
    result.stdout.fnmatch_lines([f"dicomqc: {headline}"])
    assert summary(run.pytester, "verdict") == [("FAILED" if strict else "PASSED", headline, None)]
    assert summary(run.pytester, "threshold") == [
        ("ct-only", "failed" if strict else "empty", empty),
        ("big-enough", "passed", within),
    ]


def test_an_empty_dataset_folder_fails(run: Runner) -> None:
    (run.pytester.path / "data").mkdir()
    result = run("--dicom-dir=data", "-rA")
    message = "0 DICOM files checked in data/; at least 1 required"
    assert result.ret == 1
    result.assert_outcomes(failed=1, skipped=3)
    assert failure(result, "dicom-files") == [message]
    result.stdout.fnmatch_lines(["dicomqc: FAILED: 1 dataset result failed", "dicomqc: 0 files: none"])
    assert read_sheet(run.pytester.path / "metadata_dicom.xlsx") == []
    assert summary(run.pytester, "dataset")[0] == ("dicom-files", "failed", message)


@pytest.mark.parametrize(
    ("minimum", "folder", "ret", "outcomes", "message"),
    [
        (3, "data", 1, {"failed": 1, "passed": 2}, "2 DICOM files checked in data/; at least 3 required"),
        (
            0,
            "text",
            0,
            {"passed": 1, "skipped": 2},
            "0 DICOM files checked in text/: 2 text files; at least 0 required",
        ),
    ],
    ids=["3-with-2-dicom-fails", "0-with-text-only-passes"],
)
def test_min_dicom_files_sets_how_many_are_required(
    run: Runner, minimum: int, folder: str, ret: int, outcomes: dict[str, int], message: str
) -> None:
    root = run.pytester.path
    write_dicom(root / "data" / "a.dcm", pixels=pixels(1))
    write_dicom(root / "data" / "b.dcm", pixels=pixels(2))
    (root / "text").mkdir()
    (root / "text" / "notes.txt").write_text("hello\n")
    (root / "text" / "readme.md").write_text("# a dataset\n")
    (root / "rules.yaml").write_text(f"version: 1\nmin_dicom_files: {minimum}\nrules: []\n")
    result = run(f"--dicom-dir={folder}", "-rA")
    assert result.ret == ret
    result.assert_outcomes(**outcomes)
    outcome = "failed" if ret else "passed"
    result.stdout.fnmatch_lines([f"{outcome.upper()} dicomqc::dicom-files*"])
    assert summary(run.pytester, "dataset") == [("dicom-files", outcome, message)]
    assert sheet_rows(run.pytester, "Dataset", "check", "status", "checked") == [("dicom-files", outcome, message)]


@pytest.mark.parametrize(
    ("folder", "text"),
    [
        (
            "",
            [
                "1 problem in 0 files; 2 files left out (path matches no split pattern '([^/]+)/' (default)):",
                "  split: 0 files, expected at least 100",
            ],
        ),
        (
            "train/",
            [
                "1 problem in 2 files, 1 group:",
                "  split train: 2 files, expected at least 100 (train/a.dcm, train/b.dcm)",
            ],
        ),
    ],
    ids=["no-split-folder", "one-split-folder"],
)
def test_a_count_check_that_no_group_meets_fails(run: Runner, folder: str, text: list[str]) -> None:
    """Two files against ``count: {min: 100}``: failed, also when no file is in any group."""
    write_dicom(run.pytester.path / "data" / f"{folder}a.dcm", pixels=pixels(1))
    write_dicom(run.pytester.path / "data" / f"{folder}b.dcm", pixels=pixels(2))
    (run.pytester.path / "rules.yaml").write_text(
        "version: 1\nrules: []\ndataset:\n  - id: enough\n    count: {min: 100}\n"
    )
    result = run("--dicom-dir=data", "-rA")
    assert result.ret == 1
    result.assert_outcomes(failed=1, passed=3)
    assert failure(result, "dataset enough") == text
    result.stdout.fnmatch_lines(["PASSED dicomqc::dicom-files", "FAILED dicomqc::dataset::enough - 1 problem in *"])
    assert [(item, value) for item, value, _ in summary(run.pytester, "dataset")] == [
        ("dicom-files", "passed"),
        ("enough", "failed"),
    ]


def test_split_leakage_without_split_folders_is_empty_not_passed(run: Runner) -> None:
    """It checked nothing: skipped, not passed, in pytest's words, and every output says why."""
    write_dicom(run.pytester.path / "data" / "a.dcm", pixels=pixels(1), PatientID="p1")
    write_dicom(run.pytester.path / "data" / "b.dcm", pixels=pixels(2), PatientID="p1")
    result = run("--dicom-dir=data", "-rA", "-v", "--color=yes", "--junitxml=j.xml")
    assert result.ret == 0
    result.assert_outcomes(passed=5, skipped=1)
    assert f"{YELLOW}dicomqc dataset patient-split-leakage empty: {NO_SPLIT}{RESET}" in result.outlines
    headline = "PASSED with 1 warning: dataset::patient-split-leakage empty"
    assert f"{GREEN}dicomqc: {headline}{RESET}" in result.outlines
    result.stdout.fnmatch_lines([f"*SKIPPED*[[]1] dicomqc: empty: {NO_SPLIT}"])
    cases = ElementTree.parse(run.pytester.path / "j.xml").getroot().iter("testcase")
    leakage = [case for case in cases if case.get("name") == "dataset::patient-split-leakage"]
    assert [{p.get("name"): p.get("value") for p in case.iter("property")} for case in leakage] == [
        {"dicomqc_status": "empty", "dicomqc_message": NO_SPLIT}
    ]
    assert [skip.get("message") for skip in leakage[0].iter("skipped")] == [f"empty: {NO_SPLIT}"]
    assert summary(run.pytester, "verdict") == [("PASSED", headline, None)]
    assert summary(run.pytester, "dataset")[-1] == ("patient-split-leakage", "empty", NO_SPLIT)
    rows = sheet_rows(run.pytester, "Dataset", "check", "status", "checked", "files")
    assert rows[-1] == ("patient-split-leakage", "empty", NO_SPLIT, None)


def test_an_empty_check_fails_the_run_under_strict(run: Runner) -> None:
    """``--dicom-strict``: a check that checked nothing fails, and the verdict says so."""
    write_dicom(run.pytester.path / "data" / "a.dcm", pixels=pixels(1), PatientID="p1")
    result = run("--dicom-dir=data", "--dicom-strict", "-rA", "-v")  # -v: whole lines
    assert result.ret == 1
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(
        [
            "dicomqc: FAILED: 1 dataset result failed",
            f"dicomqc dataset patient-split-leakage failed: {NO_SPLIT}"
            " (above: dicomqc::dataset::patient-split-leakage)",
        ]
    )
    assert summary(run.pytester, "verdict") == [("FAILED", "FAILED: 1 dataset result failed", None)]
    assert summary(run.pytester, "dataset")[-1] == ("patient-split-leakage", "failed", NO_SPLIT)
    rows = sheet_rows(run.pytester, "Dataset", "check", "status", "checked", "files")
    assert rows[-1] == ("patient-split-leakage", "failed", NO_SPLIT, None)


# -- 2. partial runs keep the full picture ---------------------------------------------------

PARTIAL_RULES = """\
version: 1
rules:
  - id: original-image
    tag: ImageType
    contains: ORIGINAL
dataset:
  - id: unique-sop
    unique: SOPInstanceUID
"""
NAMES = ["a.dcm", "b.dcm", "c.dcm", "d.dcm"]
STATUS = {"a.dcm": "passed", "b.dcm": "failed", "c.dcm": "passed", "d.dcm": "passed"}
PARTIAL = "3 files shown with their results from the run of {} (the report's checked column)"
DESELECTED = "deselected (-k, -m, --deselect, --lf)"
NOT_JUDGED = "3 files of the dataset not checked in this run nor in the cache"
SELECTIONS = {
    "lf": (("--lf",), "b.dcm", DESELECTED),
    "k": (("-k", "c.dcm"), "c.dcm", DESELECTED),
    "path": (("data/c.dcm",), "c.dcm", "only part of the dataset was collected"),
}


@pytest.fixture
def four_files(pytester: pytest.Pytester) -> pytest.Pytester:
    """Four files, ``b.dcm`` failing its rule; distinct SOP instances."""
    (pytester.path / "rules.yaml").write_text(PARTIAL_RULES)
    for index, name in enumerate(NAMES):
        image_type = "DERIVED\\SECONDARY" if name == "b.dcm" else "ORIGINAL\\PRIMARY"
        write_dicom(pytester.path / "data" / name, image_type=image_type, pixels=pixels(index))
    return pytester


def full_run(run: Runner) -> str:
    """The first run, over every file, fills the cache; returns when it started. It returns in
    the next second of the clock: the next run's time is not the earlier run's (shown to the second)."""
    result = with_cache(run, "--dicom-dir=data")
    assert result.ret == 1
    result.assert_outcomes(failed=1, passed=5)
    time.sleep(1 - time.time() % 1)
    return started(run.pytester)


@pytest.mark.parametrize("selection", list(SELECTIONS))
def test_a_partial_run_shows_earlier_results_of_the_other_files(
    run: Runner, four_files: pytest.Pytester, selection: str
) -> None:
    first = full_run(run)
    args, rerun, reason = SELECTIONS[selection]
    # warnings as errors (many projects set filterwarnings = error): the full picture of a partial
    # run walks the dataset, whose hook calls once made pluggy warn, crashing the session
    as_errors = ("-W", "error::UserWarning", "-W", "ignore:Benchmarks are automatically disabled")
    result = with_cache(run, "--dicom-dir=data", "-rA", "-v", *as_errors, *args)
    assert result.ret == (1 if rerun == "b.dcm" else 0)
    assert result.parseoutcomes() == ({"failed": 1} if rerun == "b.dcm" else {"passed": 1}) | (
        {} if run.mode == "xdist" or selection == "path" else {"deselected": 5}
    )
    result.stdout.fnmatch_lines([f"{STATUS[rerun].upper()} data/{rerun}::dicomqc*"])
    assert "dicomqc::dicom-files" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "dicomqc: partial run: 3 files shown with their results from 1 earlier run",
            f"dicomqc: from the run of {first}",
        ]
    )
    assert summary(four_files, "files")[-1] == ("from earlier runs", 3, PARTIAL.format(first))
    assert files_sheet(four_files, "path", "kind", "status", "checked") == [
        (name, "dicom", STATUS[name], "this run" if name == rerun else f"earlier run {first}") for name in NAMES
    ]
    assert sheet_rows(four_files, "Dataset", "check", "status", "checked") == [
        ("dicom-files", "not run", reason),
        ("unique-sop", "not run", reason),
    ]
    # the failing file is b.dcm: re-run by --lf, else its failure is an earlier run's
    earlier = "" if rerun == "b.dcm" else " (1 in an earlier run)"
    headline = f"FAILED: 1 file failed{earlier}; 2 dataset results not run"  # and what it could not say
    assert summary(four_files, "verdict") == [("FAILED", headline, None)]
    assert [(item, value) for item, value, _ in summary(four_files, "status")] == [
        ("passed", 3),
        ("failed", 1),
        ("skipped", 0),
        ("waived", 0),
        ("not run", 0),
        ("crashed", 0),
    ]


@pytest.mark.parametrize(
    "no_cache", [("-p", "no:cacheprovider"), ("--dicom-no-cache",)], ids=["no-cacheprovider", "dicom-no-cache"]
)
def test_without_the_cache_the_other_files_are_not_run_and_nothing_is_judged(
    run: Runner, four_files: pytest.Pytester, no_cache: tuple[str, ...]
) -> None:
    full_run(run)  # the cache holds every file: turned off, it must not be used
    result = with_cache(run, "--dicom-dir=data", "-rA", "-v", "-k", "c.dcm or dataset or dicom-files", *no_cache)
    assert result.ret == 0
    assert result.parseoutcomes() == {"passed": 1, "skipped": 2} | ({} if run.mode == "xdist" else {"deselected": 3})
    result.stdout.fnmatch_lines(
        [
            f"dicomqc dicom-files not judged: {NOT_JUDGED}",
            f"dicomqc dataset unique-sop not judged: {NOT_JUDGED}",
            "*short test summary info*",
            "PASSED data/c.dcm::dicomqc",
            f"SKIPPED [2] dicomqc: not judged: {NOT_JUDGED}",
        ]
    )
    headline = "INCOMPLETE: 3 files not checked; 2 dataset results not judged"
    result.stdout.fnmatch_lines([f"dicomqc: {headline}", "dicomqc: 4 files: 1 passed, 3 not run"], consecutive=True)
    assert "partial run:" not in result.stdout.str()
    not_selected = "not selected in this run, and the cache holds no result of the file as it is now"
    assert files_sheet(four_files, "path", "kind", "status", "checked", "error") == [
        ("a.dcm", None, "not run", None, not_selected),
        ("b.dcm", None, "not run", None, not_selected),
        ("c.dcm", "dicom", "passed", "this run", None),
        ("d.dcm", None, "not run", None, not_selected),
    ]
    assert sheet_rows(four_files, "Dataset", "check", "status", "checked") == [
        ("dicom-files", "not judged", NOT_JUDGED),
        ("unique-sop", "not judged", NOT_JUDGED),
    ]
    assert summary(four_files, "verdict") == [("INCOMPLETE", headline, None)]
    assert summary(four_files, "dataset") == [
        ("dicom-files", "not judged", NOT_JUDGED),
        ("unique-sop", "not judged", NOT_JUDGED),
    ]


def test_dataset_checks_after_k_are_judged_over_cached_files_too(run: Runner, four_files: pytest.Pytester) -> None:
    """c.dcm, changed to copy a.dcm's SOPInstanceUID, is re-read alone; a.dcm's cached record still takes part."""
    first = full_run(run)
    a_uid = pydicom.dcmread(four_files.path / "data" / "a.dcm").SOPInstanceUID
    write_dicom(
        four_files.path / "data" / "c.dcm", image_type="ORIGINAL\\PRIMARY", pixels=pixels(2), SOPInstanceUID=a_uid
    )
    result = with_cache(run, "--dicom-dir=data", "-rA", "-v", "-k", "c.dcm or dataset or dicom-files")
    assert result.ret == 1
    assert failure(result, "dataset unique-sop") == [
        "1 problem in 4 files, 3 distinct values:",
        f"  SOPInstanceUID {a_uid}: 2 files have the same value (a.dcm, c.dcm)",
    ]
    result.stdout.fnmatch_lines(
        [
            "dicomqc: partial run: 3 files shown with their results from 1 earlier run",
            f"dicomqc: from the run of {first}",
        ]
    )
    assert files_sheet(four_files, "path", "status", "checked") == [
        (name, STATUS[name], "this run" if name == "c.dcm" else f"earlier run {first}") for name in NAMES
    ]
    assert sheet_rows(four_files, "Dataset", "check", "status", "files") == [
        ("dicom-files", "passed", None),
        ("unique-sop", "failed", "a.dcm\nc.dcm"),
    ]
    # --lf: the files and the results that failed last (b.dcm from the first run, unique-sop from
    # the second); the check is judged again over every file, three of them from the cache
    second = started(four_files)
    result = with_cache(run, "--dicom-dir=data", "-rA", "-v", "--lf")
    assert result.ret == 1
    assert result.parseoutcomes() == {"failed": 2} | ({} if run.mode == "xdist" else {"deselected": 4})
    assert sorted(line.split(" - ")[0] for line in result.outlines if line.startswith("FAILED ")) == [
        "FAILED data/b.dcm::dicomqc",
        "FAILED dicomqc::dataset::unique-sop",
    ]
    assert failure(result, "dataset unique-sop")[1:] == [
        f"  SOPInstanceUID {a_uid}: 2 files have the same value (a.dcm, c.dcm)"
    ]
    result.stdout.fnmatch_lines(
        [
            "dicomqc: partial run: 3 files shown with their results from 2 earlier runs",
            f"dicomqc: from 2 runs, {first} to {second}",
        ]
    )
    assert files_sheet(four_files, "path", "status", "checked") == [
        ("a.dcm", "passed", f"earlier run {first}"),
        ("b.dcm", "failed", "this run"),
        ("c.dcm", "passed", f"earlier run {second}"),
        ("d.dcm", "passed", f"earlier run {first}"),
    ]
    assert sheet_rows(four_files, "Dataset", "check", "status", "checked") == [
        ("dicom-files", "not run", DESELECTED),
        ("unique-sop", "failed", "4 files, 3 distinct values"),
    ]


# -- 3. dicom_dir in the ini file: pytest's testpaths rule -------------------------------------

MODEL_TESTS = "def test_one():\n    pass\n\n\ndef test_two():\n    pass\n"


@pytest.fixture
def ml_repo(pytester: pytest.Pytester) -> pytest.Pytester:
    """An ML repository: ``dicom_dir = data`` and ``testpaths = tests`` in pytest.ini, two unit tests, two images."""
    (pytester.path / "pytest.ini").write_text("[pytest]\ndicom_dir = data\ntestpaths = tests\n")
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_model.py").write_text(MODEL_TESTS)
    write_dicom(pytester.path / "data" / "a.dcm", pixels=pixels(1))
    write_dicom(pytester.path / "data" / "b.dcm", pixels=pixels(2))
    return pytester


def test_ini_dicom_dir_runs_with_the_test_paths_unless_paths_are_given(run: Runner, ml_repo: pytest.Pytester) -> None:
    report = ml_repo.path / "metadata_dicom.xlsx"
    result = run("-rA")
    assert result.ret == 0
    result.assert_outcomes(passed=7, skipped=1)  # data/ has no split folders: the leakage check is empty
    assert passed(result) == sorted(
        [
            "tests/test_model.py::test_one",
            "tests/test_model.py::test_two",
            "data/a.dcm::dicomqc",
            "data/b.dcm::dicomqc",
            "dicomqc::dicom-files",
            *(f"dicomqc::dataset::{check}" for check in DEFAULT_CHECKS if check != "patient-split-leakage"),
        ]
    )
    assert files_sheet(ml_repo, "path", "status") == [("a.dcm", "passed"), ("b.dcm", "passed")]
    report.unlink()
    result = run("-rA", "tests/test_model.py::test_one")
    assert result.ret == 0
    assert result.parseoutcomes() == {"passed": 1}
    assert passed(result) == ["tests/test_model.py::test_one"]
    assert [line for line in result.outlines if "dicomqc" in line and not line.startswith("plugins:")] == []
    assert not report.exists()
    result = run("-rA", "-m", "not dicomqc")
    assert result.ret == 0
    assert result.parseoutcomes() == {"passed": 2}
    assert passed(result) == ["tests/test_model.py::test_one", "tests/test_model.py::test_two"]
    assert not report.exists()


def test_ini_dicom_dir_is_not_used_from_a_subfolder(
    run: Runner, ml_repo: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``cd tests && pytest`` collects that folder, not ``testpaths``: nor the ini file's dataset,
    whether the data is there or not."""
    monkeypatch.chdir(ml_repo.path / "tests")
    for with_data in (True, False):
        if not with_data:
            shutil.rmtree(ml_repo.path / "data")
        result = run("-rA")
        assert result.ret == 0, with_data
        assert result.parseoutcomes() == {"passed": 2}, with_data
        assert passed(result) == ["test_model.py::test_one", "test_model.py::test_two"], with_data
        assert [line for line in result.outlines if "dicomqc" in line and not line.startswith("plugins:")] == []
        assert not list(ml_repo.path.rglob("*.xlsx"))


def test_ini_dicom_dir_without_the_data(run: Runner, ml_repo: pytest.Pytester) -> None:
    """A checkout without the data: the tests run alone when asked; a plain run says what to do."""
    shutil.rmtree(ml_repo.path / "data")
    for args in (["-m", "not dicomqc"], ["tests/test_model.py"]):
        result = run("-rA", *args)
        assert result.ret == 0, args
        assert result.parseoutcomes() == {"passed": 2}, args
        assert passed(result) == ["tests/test_model.py::test_one", "tests/test_model.py::test_two"], args
    result = run()
    assert result.ret == 4
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert errors == [
        f"ERROR: dicom_dir in {ml_repo.path / 'pytest.ini'}: dataset directory {ml_repo.path / 'data'} does not exist"
        " (fetch the data first, e.g. git lfs pull or dvc pull; to run only the tests without it:"
        " pytest -m 'not dicomqc', or give test paths)"
    ]
    assert not (ml_repo.path / "metadata_dicom.xlsx").exists()


def test_files_a_stopped_run_never_reached_are_not_run_even_with_a_warm_cache(
    run: Runner, four_files: pytest.Pytester
) -> None:
    """The cache stands in only for files the run did not select: ``-x`` selects every file, so
    those it never reached are ``not run`` (the workbook contract), not an earlier run's result."""
    full_run(run)
    result = with_cache(run, "--dicom-dir=data", "-x", "-p", "no:randomly")
    assert result.ret == (2 if run.mode == "xdist" else 1)  # xdist stops its workers by interrupting
    rows = files_sheet(four_files, "path", "status", "checked")
    assert rows[1] == ("b.dcm", "failed", "this run")
    if run.mode != "xdist":  # under -n 2 the other worker may have reached c.dcm and d.dcm
        assert rows[2:] == [("c.dcm", "not run", None), ("d.dcm", "not run", None)]
    assert all(checked in ("this run", None) for _, _, checked in rows)
    assert sheet_rows(four_files, "Dataset", "status") == [("not run",), ("not run",)]


def test_cached_results_of_another_dataset_root_are_not_shown(run: Runner, four_files: pytest.Pytester) -> None:
    """A record stored for ``data/`` names its file ``c.dcm``; under the root ``./`` the same file
    is ``data/c.dcm``: another dataset, whose keys (splits, paths) differ. It is not reused."""
    full_run(run)
    result = with_cache(run, "--dicom-dir=.", "-k", "a.dcm", "-p", "no:randomly")
    assert result.ret == 0
    rows = {path: (status, checked) for path, status, checked in files_sheet(four_files, "path", "status", "checked")}
    assert rows["data/a.dcm"] == ("passed", "this run")
    assert rows["data/c.dcm"] == ("not run", None)
