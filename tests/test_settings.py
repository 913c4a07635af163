"""Options and their ini twins: precedence, paths relative to where they were given, errors naming the source."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pytest_dicomqc.pipeline import CheckOptions, wanted_tags
from pytest_dicomqc.readahead import Job, ReadAhead
from pytest_dicomqc.rules.load import load_rules
from pytest_dicomqc.settings import Settings, readers
from tests.helpers import Runner, count_reads, read_sheet, write_dicom
from tests.processes import unprivileged

RULES = load_rules(Path(__file__).parent.parent / "rules.yaml")
STRICT_RULES = "version: 1\nrules:\n  - id: tiny\n    pixel: rows\n    max: 4\n"


def session_module() -> ModuleType:
    """``pytest_dicomqc.session`` as the next in-process run imports it: pytester drops the modules a
    run imported, while the package attribute keeps the old one."""
    return importlib.import_module("pytest_dicomqc.session")


@pytest.fixture
def project(pytester: pytest.Pytester) -> Path:
    write_dicom(pytester.path / "cfg" / "data" / "one.dcm")
    (pytester.path / "cfg" / "strict.yaml").write_text(STRICT_RULES)
    return pytester.path


def test_ini_twins_are_relative_to_the_ini_file(pytester: pytest.Pytester, project: Path) -> None:
    ini = project / "cfg" / "pytest.ini"
    ini.write_text("[pytest]\ndicom_dir = data\ndicom_rules = strict.yaml\ndicom_report = out/qc.xlsx\n")
    result = pytester.runpytest("-c", str(ini), "--rootdir", str(project / "cfg"), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=1)  # the ini's rules file, not the packaged default; dicom-files
    result.stdout.fnmatch_lines([f"dicomqc rules: {project / 'cfg' / 'strict.yaml'}"])
    rows = read_sheet(project / "cfg" / "out" / "qc.xlsx")
    assert [(r["path"], r["failed_rules"]) for r in rows] == [("one.dcm", "tiny")]


def test_missing_rules_file_names_its_source(pytester: pytest.Pytester, project: Path) -> None:
    ini = project / "cfg" / "pytest.ini"
    ini.write_text("[pytest]\ndicom_dir = data\ndicom_rules = nope.yaml\n")
    result = pytester.runpytest("-c", str(ini), "--rootdir", str(project / "cfg"))
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [f"ERROR: dicom_rules in {ini}: rules file {project / 'cfg' / 'nope.yaml'} does not exist"]
    )


def test_rules_yaml_in_rootdir_is_the_default(pytester: pytest.Pytester, project: Path) -> None:
    (project / "rules.yaml").write_text(STRICT_RULES)
    result = pytester.runpytest("--dicom-dir=cfg/data", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=1)  # the file, and dicomqc::dicom-files
    result.stdout.fnmatch_lines([f"dicomqc rules: {project / 'rules.yaml'}"])


# Every ini key on its own (no command line option), its effect read back; then the command line
# against each. Rules: "tiny" fails the 8x8 images write_dicom makes; "narrow" fails them too;
# "small" is the same check as a warning.
NARROW_RULES = "version: 1\nrules:\n  - id: narrow\n    pixel: columns\n    max: 4\n"
NO_RULES = "version: 1\nrules: []\n"
WARNING_RULES = "version: 1\nrules:\n  - id: small\n    pixel: rows\n    max: 4\n    severity: warning\n"


def waivers_file(waiver_id: str, path: str) -> str:
    return f"version: 1\nwaivers:\n  - id: {waiver_id}\n    path: '{path}'\n    rules: '*'\n    reason: known\n"


def statuses(report: Path) -> list[tuple[object, ...]]:
    return [(r["path"], r["status"], r["failed_rules"], r["warnings"]) for r in read_sheet(report)]


def test_ini_paths_are_taken_from_the_ini_folder_not_the_rootdir(run: Runner) -> None:
    """The ini file lies in cfg/, the rootdir and invocation folder above it, which holds decoys of
    the same names: every ini path must be found beside the ini file."""
    root = run.pytester.path
    write_dicom(root / "cfg" / "data" / "one.dcm")
    write_dicom(root / "cfg" / "data" / "two.dcm")
    (root / "cfg" / "strict.yaml").write_text(STRICT_RULES)
    (root / "cfg" / "waivers.yaml").write_text(waivers_file("beside-ini", "two.dcm"))
    ini = root / "cfg" / "pytest.ini"
    ini.write_text(
        "[pytest]\ndicom_dir = data\ndicom_rules = strict.yaml\ndicom_report = out/qc.xlsx\n"
        "dicom_waivers = waivers.yaml\n"
    )
    write_dicom(root / "data" / "decoy.dcm")  # decoys where the rootdir (or the invocation folder) would lead
    (root / "strict.yaml").write_text("version: 1\nrules: []\n")
    (root / "waivers.yaml").write_text(waivers_file("in-rootdir", "**"))
    result = run("-c", "cfg/pytest.ini", "--rootdir", str(root))
    assert result.ret == 1
    result.assert_outcomes(failed=1, xfailed=1, passed=1)  # the two files, and dicomqc::dicom-files
    result.stdout.fnmatch_lines(
        [f"dicomqc rules: {root / 'cfg' / 'strict.yaml'}", f"dicomqc report: {root}/cfg/out/qc.xlsx"]
    )
    assert statuses(root / "cfg" / "out" / "qc.xlsx") == [
        ("one.dcm", "failed", "tiny", None),
        ("two.dcm", "waived", None, None),
    ]
    assert [r["id"] for r in read_sheet(root / "cfg" / "out" / "qc.xlsx", "Waivers")] == ["beside-ini"]
    assert not (root / "out").exists()
    assert not (root / "metadata_dicom.xlsx").exists()


def test_ini_dicom_report_alone(run: Runner) -> None:
    write_dicom(run.pytester.path / "data" / "one.dcm")
    run.pytester.makeini("[pytest]\ndicom_dir = data\ndicom_report = reports/qc.xlsx\n")
    result = run()
    assert result.ret == 0
    assert statuses(run.pytester.path / "reports" / "qc.xlsx") == [("one.dcm", "passed", None, None)]
    assert not (run.pytester.path / "metadata_dicom.xlsx").exists()


def test_ini_dicom_rules_alone_decides_the_status(run: Runner) -> None:
    write_dicom(run.pytester.path / "data" / "one.dcm")
    (run.pytester.path / "narrow.yaml").write_text(NARROW_RULES)
    run.pytester.makeini("[pytest]\ndicom_dir = data\ndicom_rules = narrow.yaml\n")
    result = run()
    assert result.ret == 1
    result.assert_outcomes(failed=1, passed=1)  # the file, and dicomqc::dicom-files
    assert statuses(run.pytester.path / "metadata_dicom.xlsx") == [("one.dcm", "failed", "narrow", None)]


def test_ini_dicom_waivers_alone_waives(run: Runner) -> None:
    write_dicom(run.pytester.path / "data" / "one.dcm")
    write_dicom(run.pytester.path / "data" / "two.dcm")
    (run.pytester.path / "rules.yaml").write_text(NARROW_RULES)
    (run.pytester.path / "w.yaml").write_text(waivers_file("accepted", "one.dcm"))
    run.pytester.makeini("[pytest]\ndicom_dir = data\ndicom_waivers = w.yaml\n")
    result = run()
    assert result.ret == 1
    result.assert_outcomes(failed=1, xfailed=1, passed=1)  # the two files, and dicomqc::dicom-files
    report = run.pytester.path / "metadata_dicom.xlsx"
    assert statuses(report) == [("one.dcm", "waived", None, None), ("two.dcm", "failed", "narrow", None)]
    assert [(r["path"], r["rule"], r["waiver"]) for r in read_sheet(report, "Findings")] == [
        ("one.dcm", "narrow", "accepted"),
        ("two.dcm", "narrow", None),
    ]


@pytest.mark.parametrize(
    ("ini", "cli", "failed"), [("false", (), False), ("true", (), True), ("false", ("--dicom-strict",), True)]
)
def test_ini_dicom_strict_fails_a_warning_rule(run: Runner, ini: str, cli: tuple[str, ...], failed: bool) -> None:
    write_dicom(run.pytester.path / "data" / "one.dcm")
    (run.pytester.path / "rules.yaml").write_text(WARNING_RULES)
    run.pytester.makeini(f"[pytest]\ndicom_dir = data\ndicom_strict = {ini}\n")
    result = run(*cli)
    assert result.ret == (1 if failed else 0)
    result.assert_outcomes(**({"failed": 1, "passed": 1} if failed else {"passed": 2}))  # and dicom-files
    row = ("one.dcm", "failed", "small", None) if failed else ("one.dcm", "passed", None, "small")
    assert statuses(run.pytester.path / "metadata_dicom.xlsx") == [row]


@pytest.mark.parametrize(("ini", "read_again"), [("false", []), ("true", ["a.dcm", "b.dcm"])])
def test_ini_dicom_no_cache_reads_every_file_again(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ini: str, read_again: list[str]
) -> None:
    """In-process runs with the cache on: the reads are counted where the plugin reads a file."""
    write_dicom(pytester.path / "data" / "a.dcm")
    write_dicom(pytester.path / "data" / "b.dcm")
    (pytester.path / "rules.yaml").write_text(NO_RULES)  # the packaged default calls the two images copies
    pytester.makeini(f"[pytest]\ndicom_dir = data\ndicom_no_cache = {ini}\ndicom_workers = 0\n")
    reads = count_reads(monkeypatch)
    assert pytester.runpytest().ret == 0
    assert reads == ["a.dcm", "b.dcm"]
    reads.clear()
    assert pytester.runpytest().ret == 0
    assert reads == read_again
    assert statuses(pytester.path / "metadata_dicom.xlsx") == [
        ("a.dcm", "passed", None, None),
        ("b.dcm", "passed", None, None),
    ]


@pytest.mark.parametrize(
    ("ini", "cli", "pools"), [("2", (), [2]), ("0", (), []), ("lots", ("--dicom-workers=1",), [1])]
)
def test_ini_dicom_workers_sets_the_reading_processes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ini: str, cli: tuple[str, ...], pools: list[int]
) -> None:
    """The number of processes the read-ahead pool is started with (none for 0); the command line wins."""
    write_dicom(pytester.path / "data" / "a.dcm")
    write_dicom(pytester.path / "data" / "b.dcm")
    (pytester.path / "rules.yaml").write_text(NO_RULES)  # the packaged default calls the two images copies
    pytester.makeini(f"[pytest]\ndicom_dir = data\ndicom_workers = {ini}\n")
    started: list[int] = []

    def read_ahead(jobs: list[Job], options: CheckOptions, workers: int, **rest: Any) -> ReadAhead:
        started.append(workers)
        return ReadAhead(jobs, options, workers, **rest)

    monkeypatch.setattr(session_module(), "ReadAhead", read_ahead)
    result = pytester.runpytest("-p", "no:cacheprovider", *cli)
    assert result.ret == 0
    assert started == pools
    assert statuses(pytester.path / "metadata_dicom.xlsx") == [
        ("a.dcm", "passed", None, None),
        ("b.dcm", "passed", None, None),
    ]


@pytest.mark.parametrize("value", ["lots", "-1", "1.5"])
def test_ini_dicom_workers_rejects_a_bad_value_naming_the_key(pytester: pytest.Pytester, value: str) -> None:
    write_dicom(pytester.path / "data" / "a.dcm")
    pytester.makeini(f"[pytest]\ndicom_dir = data\ndicom_workers = {value}\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == 4
    ini = pytester.path / "tox.ini"
    result.stderr.fnmatch_lines(
        [f"ERROR: dicom_workers in {ini}: expected 'auto' or a number of processes >= 0, not '{value}'"]
    )
    assert not (pytester.path / "metadata_dicom.xlsx").exists()


def test_command_line_wins_over_ini(run: Runner) -> None:
    """Each path option and the workers given both ways: only the command line's take effect."""
    root = run.pytester.path
    write_dicom(root / "cfg" / "data" / "one.dcm")
    write_dicom(root / "other" / "two.dcm")
    write_dicom(root / "other" / "three.dcm")
    (root / "cfg" / "strict.yaml").write_text(STRICT_RULES)
    (root / "cfg" / "ini-waivers.yaml").write_text(waivers_file("from-ini", "**"))
    (root / "cfg" / "pytest.ini").write_text(
        "[pytest]\ndicom_dir = data\ndicom_rules = strict.yaml\ndicom_report = ini.xlsx\n"
        "dicom_waivers = ini-waivers.yaml\ndicom_workers = lots\n"
    )
    (root / "narrow.yaml").write_text(NARROW_RULES)
    (root / "cli-waivers.yaml").write_text(waivers_file("from-cli", "two.dcm"))
    cli = ("--dicom-dir=other", "--dicom-rules=narrow.yaml", "--dicom-report=cli.xlsx")
    result = run(
        "-c", "cfg/pytest.ini", "--rootdir", ".", *cli, "--dicom-waivers=cli-waivers.yaml", "--dicom-workers=0"
    )
    assert result.ret == 1
    result.assert_outcomes(failed=1, xfailed=1, passed=1)  # the two files, and dicomqc::dicom-files
    assert statuses(root / "cli.xlsx") == [("three.dcm", "failed", "narrow", None), ("two.dcm", "waived", None, None)]
    assert [r["id"] for r in read_sheet(root / "cli.xlsx", "Waivers")] == ["from-cli"]
    assert not (root / "cfg" / "ini.xlsx").exists()


def _readme_options() -> list[tuple[str, str]]:
    """(option, ini key) of every row of the README's options table; ini "" where it has none."""
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    table = readme.split("| option | ini key | meaning | default |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[1:3] for line in table.splitlines()[2:]]
    options = [
        (option.strip().strip("`").split("=")[0], ini.strip().split("`")[1] if "`" in ini else "")
        for option, ini in rows
    ]
    return options


def test_every_option_has_its_ini_twin_in_help_and_readme(pytester: pytest.Pytester) -> None:
    """``--help`` shows each option with the help text and ini key the settings declare, the ini
    section lists each key with its type, and the README's options table has the same rows."""
    from pytest_dicomqc import settings

    result = pytester.runpytest("--help")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["DICOM dataset quality gate (pytest-dicomqc):"])
    text = " ".join(" ".join(result.stdout.lines).split())  # help wraps lines: compare words
    declared = [(option, ini, f"{option}=PATH {help_text}; ini: {ini}") for option, ini, help_text in settings.OPTIONS]
    declared += [
        ("--dicom-strict", "dicom_strict", f"--dicom-strict {settings.STRICT_HELP}; ini: dicom_strict"),
        ("--dicom-no-cache", "dicom_no_cache", f"--dicom-no-cache {settings.NO_CACHE_HELP}; ini: dicom_no_cache"),
        ("--dicom-workers", "dicom_workers", f"--dicom-workers=N {settings.WORKERS_HELP}; ini: dicom_workers"),
        (
            "--dicom-file-timeout",
            "dicom_file_timeout",
            f"--dicom-file-timeout=S {settings.FILE_TIMEOUT_HELP}; ini: dicom_file_timeout",
        ),
        ("--dicom-cache", "dicom_cache", f"--dicom-cache=MODE {settings.CACHE_HELP}; ini: dicom_cache"),
        ("--dicom-shard", "dicom_shard", f"--dicom-shard=K/N {settings.SHARD_HELP}; ini: dicom_shard"),
        ("--dicom-rules-check", "", f"--dicom-rules-check {settings.RULES_CHECK_HELP}"),
    ]
    for _option, _ini, shown in declared:
        assert " ".join(shown.split()) in text
    types = {"dicom_strict": "bool", "dicom_no_cache": "bool"}
    for _option, ini, _shown in declared:
        if ini:
            assert f"{ini} ({types.get(ini, 'string')}):" in text
    assert sorted(_readme_options()) == sorted((option, ini) for option, ini, _shown in declared)


def settings_with(workers: int | None) -> Settings:
    return Settings(
        dataset=Path("data"),
        dataset_from_command_line=True,
        ruleset=RULES,
        tags=wanted_tags(RULES),
        report=Path("metadata_dicom.xlsx"),
        workers=workers,
    )


@pytest.mark.parametrize(
    ("workers", "cores", "files", "expected"),
    [
        (None, 2, 63, 0),  # auto: too few files to be worth starting processes
        (None, 2, 64, 2),  # auto: one per core from 64 files on
        (None, 8, 1000, 8),
        (None, 1, 64, 0),  # one core: the loop itself is the only reader worth having
        (None, None, 64, 0),  # cores unknown
        (3, 1, 0, 3),  # a number is taken as given
        (0, 8, 1000, 0),
    ],
)
def test_readers_auto_and_numbers(
    monkeypatch: pytest.MonkeyPatch, workers: int | None, cores: int | None, files: int, expected: int
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert readers(settings_with(workers), files) == expected


# --- usage errors: one ERROR line naming the option, exit 4, before any file is read ---


def test_missing_dicom_dir_is_usage_error(run: Runner, pytester: pytest.Pytester) -> None:
    result = run("--dicom-dir=nope")
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: --dicom-dir: dataset directory {pytester.path / 'nope'} does not exist"])
    assert "Traceback" not in result.stderr.str()


@pytest.mark.parametrize(
    ("report", "error"),
    [
        ("afile/r.xlsx", "ERROR: --dicom-report: cannot create the folder of report */afile/r.xlsx: */afile is a file"),
        (
            "report.csv",
            "ERROR: --dicom-report: report */report.csv must be an .xlsx file (an Excel workbook is written)",
        ),
        ("adir.xlsx", "ERROR: --dicom-report: report path */adir.xlsx is a directory"),
    ],
)
def test_unwritable_report_path_is_usage_error(run: Runner, pytester: pytest.Pytester, report: str, error: str) -> None:
    write_dicom(run.pytester.path / "data" / "ok.dcm")
    (run.pytester.path / "afile").write_text("")
    (run.pytester.path / "adir.xlsx").mkdir()
    result = run("--dicom-dir=data", f"--dicom-report={report}")
    assert result.ret == 4
    result.stderr.fnmatch_lines([error])


def test_dicom_dir_that_is_a_file_is_usage_error(run: Runner, pytester: pytest.Pytester) -> None:
    (pytester.path / "data").write_text("not a folder")
    result = run("--dicom-dir=data")
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: --dicom-dir: dataset directory {pytester.path / 'data'} is not a directory"])


def test_report_that_exists_read_only_is_usage_error(pytester: pytest.Pytester) -> None:
    """Also as root (CI): run without root's right to write any file (tests/processes.py)."""
    write_dicom(pytester.path / "data" / "ok.dcm")
    (pytester.path / "locked.xlsx").write_text("")
    (pytester.path / "locked.xlsx").chmod(0o444)
    pytester.path.chmod(0o777)  # the user nobody, where that is the way, may write its probe here
    way = unprivileged(pytester.path)
    assert way is not None, "no way to run pytest without the right to write any file"
    prefix, options = way
    environment = {name: value for name, value in os.environ.items() if name != "PYTEST_ADDOPTS"}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "--dicom-dir=data",
        "--dicom-report=locked.xlsx",
    ]
    done = subprocess.run(
        [*prefix, *command], cwd=pytester.path, env=environment, capture_output=True, text=True, timeout=120, **options
    )
    assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line]
    assert errors == [f"ERROR: --dicom-report: report {pytester.path / 'locked.xlsx'} is not writable"]


def test_without_options_warnings_pass_and_the_cache_is_used(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The defaults: not strict, and the records of unchanged files are taken from the cache."""
    (pytester.path / "rules.yaml").write_text(
        "version: 1\nrules:\n  - {id: tiny, pixel: rows, max: 4, severity: warning}\n"
    )
    write_dicom(pytester.path / "data" / "one.dcm")
    assert pytester.runpytest("--dicom-dir=data").ret == 0
    assert statuses(pytester.path / "metadata_dicom.xlsx") == [("one.dcm", "passed", None, "tiny")]
    reads = count_reads(monkeypatch)
    assert pytester.runpytest("--dicom-dir=data").ret == 0
    assert reads == []


def test_empty_dicom_dir_is_usage_error(run: Runner, pytester: pytest.Pytester) -> None:
    result = run("--dicom-dir=")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: --dicom-dir: empty dataset directory (give the folder to check)"])


@pytest.mark.parametrize("option", ["--help", "--markers"])
def test_help_works_where_the_ini_dataset_is_missing(pytester: pytest.Pytester, option: str) -> None:
    pytester.makeini("[pytest]\ndicom_dir = not-checked-out\n")
    result = pytester.runpytest(option)
    assert result.ret == 0
    assert "ERROR" not in result.stderr.str()


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (
            ("--dicom-workers=many",),
            "ERROR: --dicom-workers: expected 'auto' or a number of processes >= 0, not 'many'",
        ),
        (("--dicom-workers=-1",), "ERROR: --dicom-workers: expected 'auto' or a number of processes >= 0, not '-1'"),
        (("--dicom-waivers=nope.yaml",), "ERROR: --dicom-waivers: waivers file {root}/nope.yaml does not exist"),
        (("--dicom-rules=bad.yaml",), "ERROR: {root}/bad.yaml:2:8: 'rules' must be a list of rules"),
    ],
)
def test_option_errors_name_the_option(pytester: pytest.Pytester, arguments: tuple[str, ...], error: str) -> None:
    write_dicom(pytester.path / "data" / "one.dcm")
    (pytester.path / "bad.yaml").write_text("version: 1\nrules: 5\n")
    result = pytester.runpytest("--dicom-dir=data", *arguments)
    assert result.ret == 4
    assert [line for line in result.stderr.lines if line.startswith("ERROR")] == [error.format(root=pytester.path)]


def test_settings_are_resolved_once_from_the_command_line_or_the_ini(pytester: pytest.Pytester) -> None:
    """The frozen Settings every part of the plugin reads: where the dataset came from decides
    what is collected (the command line: only the dataset; the ini: added to the test paths)."""
    from pytest_dicomqc.state import SESSION_KEY

    write_dicom(pytester.path / "data" / "one.dcm")
    pytester.makeini("[pytest]\ndicom_dir = data\ndicom_workers = 3\ndicom_strict = true\n")
    from_ini = pytester.parseconfigure().stash[SESSION_KEY].settings
    assert (from_ini.dataset, from_ini.dataset_from_command_line, from_ini.workers) == (
        pytester.path / "data",
        False,
        3,
    )
    assert (from_ini.strict, from_ini.no_cache, from_ini.report) == (True, False, pytester.path / "metadata_dicom.xlsx")
    from_cli = (
        pytester.parseconfigure("--dicom-dir=data", "--dicom-workers=auto", "--dicom-no-cache")
        .stash[SESSION_KEY]
        .settings
    )
    assert (from_cli.dataset_from_command_line, from_cli.workers, from_cli.no_cache) == (True, None, True)
    assert 0x00080008 in from_cli.tags  # ImageType: a default column and a default rule's tag


@pytest.mark.parametrize(
    ("ini", "cli", "error"),
    [
        (
            "dicom_file_timeout = soon",
            (),
            "dicom_file_timeout in {ini}: expected seconds >= 0 (0: no limit), not 'soon'",
        ),
        ("", ("--dicom-file-timeout=-1",), "--dicom-file-timeout: expected seconds >= 0 (0: no limit), not '-1'"),
        ("", ("--dicom-file-timeout=nan",), "--dicom-file-timeout: expected seconds >= 0 (0: no limit), not 'nan'"),
        ("dicom_cache = hash", (), "dicom_cache in {ini}: expected 'stat' or 'content', not 'hash'"),
        ("dicom_cache = content", ("--dicom-cache=mtime",), "--dicom-cache: expected 'stat' or 'content', not 'mtime'"),
    ],
)
def test_file_timeout_and_cache_mode_reject_bad_values_naming_where(
    pytester: pytest.Pytester, ini: str, cli: tuple[str, ...], error: str
) -> None:
    write_dicom(pytester.path / "data" / "a.dcm")
    pytester.makeini(f"[pytest]\ndicom_dir = data\n{ini}\n")
    result = pytester.runpytest(*cli)
    assert result.ret == 4
    assert result.stderr.lines[0] == "ERROR: " + error.format(ini=pytester.path / "tox.ini")
    assert not (pytester.path / "metadata_dicom.xlsx").exists()
