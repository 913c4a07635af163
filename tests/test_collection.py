"""Collection: which files become items, their node ids, and how the dataset joins other tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import Runner, read_sheet, write_dicom


@pytest.fixture
def dataset(pytester: pytest.Pytester) -> Path:
    root = pytester.path / "data"
    write_dicom(root / "b.dcm")
    write_dicom(root / "a" / "CT0001")  # no extension
    write_dicom(root / ".hidden" / "x.dcm")
    write_dicom(root / "build" / "y.dcm")
    write_dicom(root / "venv" / "z.dcm")
    (root / "dist").mkdir()
    (root / "dist" / "notes.txt").write_text("plain text")
    return root


EXPECTED_IDS = [
    "data/.hidden/x.dcm::dicomqc",
    "data/a/CT0001::dicomqc",
    "data/b.dcm::dicomqc",
    "data/build/y.dcm::dicomqc",
    "data/dist/notes.txt::dicomqc",
    "data/venv/z.dcm::dicomqc",
]
RESULT_IDS = [
    "dicomqc::dicom-files",
    "dicomqc::dataset::unique-sop-instance-uid",
    "dicomqc::dataset::unique-pixels",
    "dicomqc::dataset::patient-split-leakage",
]
"""The results over the whole dataset (default rules): collected after every other test."""


def collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line and " " not in line]


def test_every_file_is_one_item_sorted(run: Runner, dataset: Path) -> None:
    result = run("--collect-only", "-q", "--dicom-dir=data")
    assert collected(result) == [*EXPECTED_IDS, *RESULT_IDS]
    result.stdout.fnmatch_lines(["10 tests collected in *"])
    assert result.ret == 0


def test_dicom_dir_alone_runs_only_the_dataset(pytester: pytest.Pytester, dataset: Path) -> None:
    pytester.makepyfile(test_unit="def test_unit(): pass")
    result = pytester.runpytest("--collect-only", "-q", "--dicom-dir=data")
    assert collected(result) == [*EXPECTED_IDS, *RESULT_IDS]


def test_dicom_dir_with_test_paths_runs_both(pytester: pytest.Pytester, dataset: Path) -> None:
    pytester.makepyfile(test_unit="def test_unit(): pass")
    result = pytester.runpytest("--collect-only", "-q", "--dicom-dir=data", "test_unit.py")
    assert collected(result) == ["test_unit.py::test_unit", *EXPECTED_IDS, *RESULT_IDS]


def test_ini_dicom_dir_adds_dataset_to_unit_tests(pytester: pytest.Pytester, dataset: Path) -> None:
    pytester.makeini("[pytest]\ndicom_dir = data\ntestpaths = tests\n")
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_unit.py").write_text("def test_unit(): pass\n")
    result = pytester.runpytest("--collect-only", "-q")
    assert collected(result) == ["tests/test_unit.py::test_unit", *EXPECTED_IDS, *RESULT_IDS]


def test_marker_not_dicomqc_leaves_dataset_out_and_no_report_is_written(
    pytester: pytest.Pytester, dataset: Path
) -> None:
    """``-m "not dicomqc"`` makes the plugin inactive: the ini's dataset is not even collected."""
    pytester.makeini("[pytest]\ndicom_dir = data\n")
    pytester.makepyfile(test_unit="def test_unit(): pass")
    for args in (("-m", "not dicomqc", "test_unit.py"), ("-m", "not dicomqc")):
        result = pytester.runpytest(*args)
        result.assert_outcomes(passed=1, deselected=0)
        assert not (pytester.path / "metadata_dicom.xlsx").exists()


def test_dataset_inside_collected_folder_is_collected_once(pytester: pytest.Pytester, dataset: Path) -> None:
    pytester.makepyfile(test_unit="def test_unit(): pass")
    result = pytester.runpytest("--collect-only", "-q", "--dicom-dir=data", ".")
    ids = collected(result)
    assert ids == [*EXPECTED_IDS, "test_unit.py::test_unit", *RESULT_IDS]


def test_ignore_and_k_work_inside_dataset(pytester: pytest.Pytester, dataset: Path) -> None:
    result = pytester.runpytest("--collect-only", "-q", "--dicom-dir=data", "--ignore=data/build", "-k", "not hidden")
    assert collected(result) == [i for i in EXPECTED_IDS if "build" not in i and "hidden" not in i] + RESULT_IDS


def test_k_matches_file_names(pytester: pytest.Pytester, dataset: Path) -> None:
    result = pytester.runpytest("--collect-only", "-q", "--dicom-dir=data", "-k", "CT0001 or notes")
    assert collected(result) == ["data/a/CT0001::dicomqc", "data/dist/notes.txt::dicomqc"]
    result = pytester.runpytest("--collect-only", "-q", "--dicom-dir=data", "-k", "b.dcm")
    assert collected(result) == ["data/b.dcm::dicomqc"]


def test_collect_only_tree_names_each_file(pytester: pytest.Pytester, dataset: Path) -> None:
    result = pytester.runpytest("--collect-only", "--dicom-dir=data", "--ignore=data/build", "-k", "not hidden")
    tree = ["  <DatasetFolder data>", "    <DatasetFolder a>", "      <DicomItem CT0001>", "    <DicomItem b.dcm>"]
    result.stdout.fnmatch_lines(tree, consecutive=True)


@pytest.mark.parametrize("where", ["data", "data/a", "../outside", "."])
def test_item_location_is_pytests_own(pytester: pytest.Pytester, where: str) -> None:
    """Items compute their location by text; it must equal what pytest derives from the path."""
    root = pytester.path / "rootdir"
    root.mkdir()
    write_dicom((root / where).resolve() / "sub" / "x.dcm")
    os.chdir(root)
    items, _ = pytester.inline_genitems(f"--dicom-dir={(root / where).resolve()}", f"--rootdir={root}")
    item, *results = items
    assert [result.nodeid for result in results] == RESULT_IDS
    assert item.location == (item.session._node_location_to_relpath(item.path), None, "dicomqc: sub/x.dcm")
    assert item.relpath == "sub/x.dcm"


def test_symlinked_directory_is_not_followed(pytester: pytest.Pytester, dataset: Path) -> None:
    os.symlink(dataset / "a", dataset / "a" / "loop")
    os.symlink(dataset / "b.dcm", dataset / "link.dcm")
    result = pytester.runpytest("--collect-only", "-q", "--dicom-dir=data")
    ids = collected(result)
    assert "data/link.dcm::dicomqc" in ids
    assert not any("loop" in i for i in ids)
    assert len(ids) == len(EXPECTED_IDS) + 1 + len(RESULT_IDS)


def test_dataset_outside_rootdir_uses_paths_relative_to_it(pytester: pytest.Pytester, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    write_dicom(outside / "one.dcm")
    result = pytester.runpytest("--collect-only", "-q", f"--dicom-dir={outside}")
    assert collected(result) == ["one.dcm::dicomqc", *RESULT_IDS]


def test_plugin_is_inactive_without_dicom_dir(pytester: pytest.Pytester, dataset: Path) -> None:
    pytester.makepyfile(test_unit="def test_unit(): pass")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "metadata_dicom.xlsx").exists()


@pytest.mark.parametrize("where", ["build/ds", ".data/train"])
def test_dataset_below_a_folder_pytest_skips_is_still_collected(pytester: pytest.Pytester, where: str) -> None:
    write_dicom(pytester.path / where / "one.dcm")
    parent = (pytester.path / where).parent
    (parent / "other").mkdir()
    (parent / "other" / "test_hidden.py").write_text("def test_never(): pass\n")  # pytest skips it, so do we
    pytester.makepyfile(test_unit="def test_unit(): pass")
    pytester.makeini(f"[pytest]\ndicom_dir = {where}\n")
    result = pytester.runpytest("--collect-only", "-q")
    # pytest's sorted walk, then the dataset's results
    assert collected(result) == [f"{where}/one.dcm::dicomqc", "test_unit.py::test_unit", *RESULT_IDS]
    result = pytester.runpytest("--collect-only", "-q", "--dicom-dir", where, ".")
    assert collected(result) == [f"{where}/one.dcm::dicomqc", "test_unit.py::test_unit", *RESULT_IDS]


def test_conftest_inside_dataset_is_not_run_but_root_conftest_hooks_apply(pytester: pytest.Pytester) -> None:
    write_dicom(pytester.path / "data" / "sub" / "one.dcm")
    (pytester.path / "data" / "sub" / "conftest.py").write_text("raise SystemExit('data ran code')\n")
    (pytester.path / "data" / "conftest.py").write_text("raise SystemExit('data ran code')\n")
    pytester.makeconftest(
        """
        def pytest_runtest_call(item):  # dataset files have no setup phase: pytest_dicomqc/protocol.py
            print("root conftest saw", item.nodeid)
        """
    )
    result = pytester.runpytest("--dicom-dir=data", "-s", "-q")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*root conftest saw data/sub/one.dcm::dicomqc"])
    ids = collected(pytester.runpytest("--dicom-dir=data", "--collect-only", "-q"))
    assert ids == [
        "data/conftest.py::dicomqc",
        "data/sub/conftest.py::dicomqc",
        "data/sub/one.dcm::dicomqc",
        *RESULT_IDS,
    ]


def test_path_inside_dataset_selects_just_that_file(pytester: pytest.Pytester, dataset: Path) -> None:
    for arg in ("data/a/CT0001::dicomqc", "data/a/CT0001"):
        result = pytester.runpytest("--collect-only", "-q", "--dicom-dir=data", arg)
        assert collected(result) == ["data/a/CT0001::dicomqc"]
    pytester.makeini("[pytest]\ndicom_dir = data\n")
    result = pytester.runpytest("--collect-only", "-q", "data/build")
    assert collected(result) == ["data/build/y.dcm::dicomqc"]


def test_dataset_is_the_rootdir(pytester: pytest.Pytester) -> None:
    write_dicom(pytester.path / "a.dcm", image_type="DERIVED")
    write_dicom(pytester.path / "b.dcm")
    result = pytester.runpytest("--dicom-dir=.", "-x", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["FAILED a.dcm::dicomqc - original-image*"])
    rows = read_sheet(pytester.path / "metadata_dicom.xlsx")
    assert [(r["path"], r["status"]) for r in rows] == [("a.dcm", "failed"), ("b.dcm", "not run")]


def test_the_runs_own_outputs_inside_the_dataset_are_not_collected(run: Runner) -> None:
    """A dataset holding the run's outputs (``--dicom-dir=.``): the report, JSON Lines, records,
    junitxml, partial files and pytest's cache are not data; a second run finds what the first did.
    (A subfolder stands for ``.``: ``-n 2`` runs leave pytester's stdout and stderr files in ``.``.)"""
    run.pytester.makeini("[pytest]\ncache_dir = d/.pytest_cache\n")
    data = run.pytester.mkdir("d")
    write_dicom(data / "a.dcm")
    (data / "notes.txt").write_text("data, not output\n")
    (data / ".metadata_dicom.xlsx.1.x.dicomqc-partial").write_bytes(b"")  # pid 1 lives: it is kept
    report = "--dicom-report=d/metadata_dicom.xlsx"
    outputs = (report, "--junitxml=d/out/j.xml", "--dicom-json=d/out.jsonl", "--dicom-records=d/part.jsonl.gz")
    for _ in range(2):
        result = run("--dicom-dir=d", "-p", "cacheprovider", *outputs)
        assert result.ret == 0
        rows = read_sheet(data / "metadata_dicom.xlsx")
        assert [(r["path"], r["status"]) for r in rows] == [("a.dcm", "passed"), ("notes.txt", "skipped")]
    assert {p.name for p in data.iterdir()} >= {".pytest_cache", "out", "out.jsonl", "part.jsonl.gz"}
    result = run("--dicom-dir=d", "--collect-only", "-q", "-p", "cacheprovider", report)  # not its outputs
    assert [i for i in collected(result) if not i.startswith("dicomqc::")] == [
        "d/a.dcm::dicomqc",
        "d/notes.txt::dicomqc",
        "d/out/j.xml::dicomqc",
        "d/out.jsonl::dicomqc",
        "d/part.jsonl.gz::dicomqc",
    ]


def test_collect_ignore_from_conftest_applies_inside_dataset(pytester: pytest.Pytester, dataset: Path) -> None:
    pytester.makeconftest('collect_ignore = ["data/build"]\ncollect_ignore_glob = ["*/venv"]\n')
    result = pytester.runpytest("--collect-only", "-q", "--dicom-dir=data")
    assert collected(result) == [i for i in EXPECTED_IDS if "/build/" not in i and "/venv/" not in i] + RESULT_IDS


def test_help_works_when_the_ini_dataset_is_missing(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ndicom_dir = not-here\n")
    assert pytester.runpytest("--help").ret == 0
    assert pytester.runpytest().ret == 4


def test_without_the_plugin_unit_tests_run_where_the_ini_dataset_is_missing(pytester: pytest.Pytester) -> None:
    """A checkout without the data: ``-p no:dicomqc`` runs the unit tests, a plain run is a usage error."""
    ini = pytester.makeini("[pytest]\ndicom_dir = data/missing\n")
    pytester.makepyfile(test_unit="def test_unit(): pass")
    result = pytester.runpytest_subprocess("-p", "no:dicomqc", "-p", "no:cacheprovider", timeout=120)
    assert result.ret == 0
    result.assert_outcomes(passed=1)
    assert not [line for line in result.outlines + result.errlines if "ERROR" in line]
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    assert result.ret == 4
    assert [line for line in result.errlines if line.startswith("ERROR")] == [
        f"ERROR: dicom_dir in {ini}: dataset directory {pytester.path / 'data' / 'missing'} does not exist"
        " (fetch the data first, e.g. git lfs pull or dvc pull;"
        " to run only the tests without it: pytest -m 'not dicomqc', or give test paths)"
    ]


def test_ignore_glob_inside_the_dataset_leaves_files_out_of_the_run(run: Runner, dataset: Path) -> None:
    """``--ignore-glob`` (a folder and a file pattern) drops files inside the dataset: no item, no report row."""
    (run.pytester.path / "rules.yaml").write_text("version: 1\nrules: []\n")  # no dataset checks
    result = run("--dicom-dir=data", "--ignore-glob=data/build", "--ignore-glob=*.txt")
    result.assert_outcomes(passed=5)  # 4 files and dicomqc::dicom-files
    paths = [row["path"] for row in read_sheet(run.pytester.path / "metadata_dicom.xlsx")]
    assert paths == [".hidden/x.dcm", "a/CT0001", "b.dcm", "venv/z.dcm"]


@pytest.mark.parametrize(("option", "what"), [("--dicom-rules", "rules"), ("--dicom-waivers", "waivers")])
def test_missing_rules_or_waivers_file_is_a_usage_error(
    pytester: pytest.Pytester, dataset: Path, option: str, what: str
) -> None:
    result = pytester.runpytest("--dicom-dir=data", f"{option}=qc/nope.yaml", "-p", "no:cacheprovider")
    assert result.ret == 4
    assert [line for line in result.errlines if line.startswith("ERROR")] == [
        f"ERROR: {option}: {what} file {pytester.path / 'qc' / 'nope.yaml'} does not exist"
    ]
    assert not (pytester.path / "metadata_dicom.xlsx").exists()


def test_paths_when_rootdir_and_invocation_folder_differ(pytester: pytest.Pytester) -> None:
    """Command-line paths and the default report follow the invocation folder; the default rules file and
    ini paths follow the rootdir (the ini file's folder)."""
    root = pytester.path
    pytester.makeini("[pytest]\n")
    (root / "rules.yaml").write_text("version: 1\nrules:\n  - {id: root-rules, tag: Modality, equals: CT}\n")
    sub = root / "sub"
    sub.mkdir()
    (sub / "rules.yaml").write_text("version: 1\nrules:\n  - {id: sub-rules, tag: Modality, equals: CT}\n")
    write_dicom(root / "data" / "one.dcm")
    write_dicom(sub / "data" / "two.dcm")
    pytester.chdir()
    os.chdir(sub)

    result = pytester.runpytest("--dicom-dir=data", "-p", "no:cacheprovider")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [f"rootdir: {root}", f"dicomqc rules: {root / 'rules.yaml'}", f"dicomqc report: {sub / 'metadata_dicom.xlsx'}"]
    )
    rows = read_sheet(sub / "metadata_dicom.xlsx")
    assert [(row["path"], row["root-rules"]) for row in rows] == [("two.dcm", "PASS")]
    assert not (root / "metadata_dicom.xlsx").exists()

    result = pytester.runpytest("--dicom-dir=../data", "--dicom-rules=rules.yaml", "--dicom-report=r.xlsx")
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"dicomqc rules: {sub / 'rules.yaml'}", f"dicomqc report: {sub / 'r.xlsx'}"])
    rows = read_sheet(sub / "r.xlsx")
    assert [(row["path"], row["sub-rules"]) for row in rows] == [("one.dcm", "PASS")]

    (root / "pytest.ini").write_text("[pytest]\ndicom_dir = data\ndicom_rules = sub/rules.yaml\n")
    (sub / "metadata_dicom.xlsx").unlink()
    result = pytester.runpytest("-p", "no:cacheprovider")  # like testpaths: not used below the rootdir
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert not (sub / "metadata_dicom.xlsx").exists()
    result = pytester.runpytest("-p", "no:cacheprovider", "../data")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [f"dicomqc rules: {sub / 'rules.yaml'}", f"dicomqc report: {sub / 'metadata_dicom.xlsx'}"]
    )
    rows = read_sheet(sub / "metadata_dicom.xlsx")
    assert [(row["path"], row["sub-rules"]) for row in rows] == [("one.dcm", "PASS")]

    # paths with .. inside the dataset: an --ignore, and a node id copied from the output
    write_dicom(root / "data" / "three.dcm")
    result = pytester.runpytest("-p", "no:cacheprovider", "--dicom-dir=../data", "--ignore=../data/three.dcm")
    assert result.ret == 0
    assert [row["path"] for row in read_sheet(sub / "metadata_dicom.xlsx")] == ["one.dcm"]
    result = pytester.runpytest("-p", "no:cacheprovider", "-rA", "--dicom-dir=../data", "../data/three.dcm::dicomqc")
    assert result.ret == 0
    assert [line for line in result.outlines if line.startswith("PASSED ")] == ["PASSED ../data/three.dcm::dicomqc"]
    rows = read_sheet(sub / "metadata_dicom.xlsx")
    assert [(row["path"], row["status"]) for row in rows] == [("one.dcm", "not run"), ("three.dcm", "passed")]
