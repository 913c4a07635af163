"""Options and their ini twins, resolved once into a frozen :class:`Settings`.

Every bad value is a :class:`pytest.UsageError` that says where it came from (the command
line option or the ini key and file), raised before any dataset file is read.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_dicomqc.rules.model import RuleSet
    from pytest_dicomqc.shard import Shard

DEFAULT_REPORT = "metadata_dicom.xlsx"
DEFAULT_RULES = "rules.yaml"
OPTIONS = (
    # (command line option, ini key, help)
    ("--dicom-dir", "dicom_dir", "dataset root: every file below it becomes one test item"),
    ("--dicom-rules", "dicom_rules", "YAML rules file (default: rules.yaml in rootdir, else the packaged default)"),
    ("--dicom-report", "dicom_report", f"Excel report path (default: {DEFAULT_REPORT} in the invocation directory)"),
    ("--dicom-waivers", "dicom_waivers", "YAML file of waivers (accepted findings), added to the rules file's own"),
    ("--dicom-json", "dicom_json", "also write JSON Lines: one record per file, then a summary record"),
    (
        "--dicom-baseline",
        "dicom_baseline",
        "an earlier report (.xlsx) to compare with: a Changes sheet, a terminal section, and exit 1 when a file"
        " that passed then fails now",
    ),
    (
        "--dicom-records",
        "dicom_records",
        "also write this run's records to a part file (JSON Lines, gzip-compressed when the name ends in .gz),"
        " for python -m pytest_dicomqc merge",
    ),
)
STRICT_HELP = "treat warning rules as errors: a file that breaks one fails"
WORKERS_HELP = (
    "processes that read files ahead of the test loop: auto (the cores, for 64 files or more), "
    "or a number; 0 reads in the test loop"
)
AUTO_MIN_FILES = 64
NO_CACHE_HELP = "read every file, not only those changed since the last run (--cache-clear also empties the cache)"
FILE_TIMEOUT_HELP = (
    "seconds one file may take to read and judge; a slower file fails ('timed out after S s') "
    "and the run goes on; 0: no limit"
)
DEFAULT_FILE_TIMEOUT = 60.0
CACHE_MODES = {
    "stat": "a file is unchanged when its size, times, device, inode and link target are",
    "content": "a file is unchanged when a hash of its bytes is: release gates, caches from elsewhere",
}
CACHE_HELP = "how the record cache recognises an unchanged file: " + "; ".join(
    f"{mode}: {meaning}" for mode, meaning in CACHE_MODES.items()
)
SHARD_HELP = (
    "check only shard K of N of the dataset (every file in exactly one shard, by its path); dataset checks"
    " and max_failing are then judged by python -m pytest_dicomqc merge. auto: the CI's variables"
    " (GitLab parallel:, CircleCI, Buildkite, Azure), else the whole dataset"
)
RULES_CHECK_HELP = "validate the rules and waivers files, run their examples, and exit (0 valid, 4 invalid)"


@dataclass(frozen=True)
class Settings:
    """What the plugin needs to know, fixed for the whole session in every process."""

    dataset: Path
    dataset_from_command_line: bool
    ruleset: RuleSet
    """The rules with the waivers of both the rules file and ``--dicom-waivers``."""
    tags: frozenset[int]
    report: Path
    strict: bool = False
    no_cache: bool = False
    workers: int | None = None
    """Reading processes; None: decided from the number of files and cores (see :func:`readers`)."""
    file_timeout: float = DEFAULT_FILE_TIMEOUT
    """Seconds a file may take to read and judge; 0: no limit."""
    cache_mode: str = "stat"
    """A key of :data:`CACHE_MODES`."""
    json: Path | None = None
    """``--dicom-json``: where the JSON Lines go; None: not written."""
    baseline: Path | None = None
    """``--dicom-baseline``: the earlier report this run is compared with."""
    shard: Shard | None = None
    """``--dicom-shard``: the part of the dataset this run checks; None: all of it."""
    records: Path | None = None
    """``--dicom-records``: where this run's part file goes; None: not written."""
    rules_text: tuple[tuple[str, str], ...] = ()
    """(source, YAML text) of the rules file and of the waivers file, as loaded: a part file
    carries them, so that the merge judges with exactly these rules."""

    @property
    def judged_here(self) -> bool:
        """Whether this run judges the dataset checks and thresholds: not a shard of several."""
        return self.shard is None or self.shard.whole


def _dest(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("dicomqc", "DICOM dataset quality gate (pytest-dicomqc)")
    for option, ini, help_text in OPTIONS:
        group.addoption(option, dest=_dest(option), default=None, metavar="PATH", help=f"{help_text}; ini: {ini}")
        parser.addini(ini, help_text, default=None)
    group.addoption("--dicom-strict", action="store_true", default=None, help=f"{STRICT_HELP}; ini: dicom_strict")
    parser.addini("dicom_strict", STRICT_HELP, type="bool", default=False)
    group.addoption("--dicom-no-cache", action="store_true", default=None, help=f"{NO_CACHE_HELP}; ini: dicom_no_cache")
    parser.addini("dicom_no_cache", NO_CACHE_HELP, type="bool", default=False)
    group.addoption("--dicom-workers", default=None, metavar="N", help=f"{WORKERS_HELP}; ini: dicom_workers")
    parser.addini("dicom_workers", WORKERS_HELP, default="auto")
    group.addoption(
        "--dicom-file-timeout", default=None, metavar="S", help=f"{FILE_TIMEOUT_HELP}; ini: dicom_file_timeout"
    )
    parser.addini("dicom_file_timeout", FILE_TIMEOUT_HELP, default=str(DEFAULT_FILE_TIMEOUT))
    group.addoption("--dicom-cache", default=None, metavar="MODE", help=f"{CACHE_HELP}; ini: dicom_cache")
    parser.addini("dicom_cache", CACHE_HELP, default="stat")
    group.addoption("--dicom-shard", default=None, metavar="K/N", help=f"{SHARD_HELP}; ini: dicom_shard")
    parser.addini("dicom_shard", SHARD_HELP, default=None)
    group.addoption("--dicom-rules-check", action="store_true", default=False, help=RULES_CHECK_HELP)


class _Value:
    """A path-valued setting and where it came from, for error messages."""

    def __init__(self, config: pytest.Config, option: str, ini: str) -> None:
        cli = config.getoption(_dest(option))
        ini_value = config.getini(ini)
        self.from_command_line = cli is not None
        if cli is not None:
            self.raw: str | None = str(cli)
            self.origin = option
            self.base = config.invocation_params.dir
        elif ini_value:
            self.raw = str(ini_value)
            self.origin = f"{ini} in {config.inipath}" if config.inipath else ini
            self.base = config.inipath.parent if config.inipath else config.rootpath
        else:
            self.raw = None
            self.origin = option
            self.base = config.invocation_params.dir

    @property
    def path(self) -> Path:
        assert self.raw is not None
        return (self.base / os.path.expanduser(self.raw)).absolute()


def resolve(config: pytest.Config) -> Settings | None:
    """The session's settings, or ``None`` when no dataset is configured (plugin inactive)."""
    if config.getoption("help") or config.getoption("markers"):
        return None  # help must work even where the configured dataset is missing
    dataset = _Value(config, "--dicom-dir", "dicom_dir")
    if dataset.raw is None or _deselects_dataset(config):
        return None
    if not dataset.raw.strip():
        raise pytest.UsageError(f"{dataset.origin}: empty dataset directory (give the folder to check)")
    if (
        not dataset.from_command_line
        and not _uses_testpaths(config)
        and not any(args_reaching(config, _root(dataset.path)))
    ):
        return None  # the ini file's dataset is collected as testpaths are: not here, present or not
    if not dataset.path.is_dir():
        what = "does not exist" if not dataset.path.exists() else "is not a directory"
        fix = "" if dataset.from_command_line else _WITHOUT_DATA
        raise pytest.UsageError(f"{dataset.origin}: dataset directory {dataset.path} {what}{fix}")
    from pytest_dicomqc.pipeline import wanted_tags  # pydicom: only when a dataset is checked

    ruleset, rules_text = _configured_rules(config)
    report = _Value(config, "--dicom-report", "dicom_report")
    report_path = report.path if report.raw is not None else config.invocation_params.dir / DEFAULT_REPORT
    json = _Value(config, "--dicom-json", "dicom_json")
    baseline = _Value(config, "--dicom-baseline", "dicom_baseline")
    records = _Value(config, "--dicom-records", "dicom_records")
    if not hasattr(config, "workerinput"):
        check_writable(report_path, report.origin)
        if json.raw is not None:
            check_writable(json.path, json.origin, suffix=None, what="JSON Lines file")
            if json.path == report_path:
                raise pytest.UsageError(f"{json.origin}: {json.path} is the Excel report's path too")
        if baseline.raw is not None:
            _check_baseline(baseline.path, baseline.origin)
        if records.raw is not None:
            check_writable(records.path, records.origin, suffix=None, what="records part file")
            if records.path in (report_path, json.path if json.raw is not None else None):
                raise pytest.UsageError(f"{records.origin}: {records.path} is another output's path too")
    return Settings(
        dataset=_root(dataset.path),
        dataset_from_command_line=dataset.from_command_line,
        ruleset=ruleset,
        tags=wanted_tags(ruleset),
        report=report_path,
        strict=bool(config.getoption("dicom_strict") or config.getini("dicom_strict")),
        no_cache=bool(config.getoption("dicom_no_cache") or config.getini("dicom_no_cache")),
        workers=_workers(config),
        file_timeout=_file_timeout(config),
        cache_mode=_cache_mode(config),
        json=json.path if json.raw is not None else None,
        baseline=baseline.path if baseline.raw is not None else None,
        shard=_shard(config),
        records=records.path if records.raw is not None else None,
        rules_text=rules_text,
    )


def _root(path: Path) -> Path:
    return Path(os.path.normpath(path))


def _uses_testpaths(config: pytest.Config) -> bool:
    """Whether pytest collects ``testpaths`` (or the rootdir) in this run: no test paths are
    given and it runs in the rootdir. From a subfolder (``cd tests && pytest``) it collects that
    folder instead, and ``dicom_dir`` from the ini file, like ``testpaths``, is not used."""
    return config.args_source != pytest.Config.ArgsSource.ARGS and config.invocation_params.dir == config.rootpath


def path_given(config: pytest.Config, arg: str) -> Path:
    """The path of a test argument (``../data/x.dcm::dicomqc``), absolute and normalised as the
    dataset's is (``..`` resolved, symlinks kept)."""
    return _root(config.invocation_params.dir / arg.split("::")[0])


def args_reaching(config: pytest.Config, dataset: Path) -> Iterator[str]:
    """The test paths given that select part of the dataset, all of it, or a folder holding it."""
    for arg in config.args:
        given = path_given(config, arg)
        if given == dataset or dataset in given.parents or (given.is_dir() and given in dataset.parents):
            yield arg


_WITHOUT_DATA = (
    " (fetch the data first, e.g. git lfs pull or dvc pull; to run only the tests without it:"
    " pytest -m 'not dicomqc', or give test paths)"
)


def _deselects_dataset(config: pytest.Config) -> bool:
    """``-m "not dicomqc"`` (or any marker expression a dataset file does not match): the dataset
    would be collected only to be deselected, so it is not configured at all, and need not exist."""
    expression = config.getoption("markexpr", "")
    if not expression:
        return False
    try:
        from _pytest.mark.expression import Expression  # pytest's own parser of -m

        compiled = Expression.compile(expression)
    except Exception:  # noqa: BLE001 - a bad expression is pytest's to report, when it deselects
        return False
    return not compiled.evaluate(lambda name, /, **kwargs: name == "dicomqc" and not kwargs)


def readers(settings: Settings, files: int) -> int:
    """How many reading processes a run of ``files`` dataset files gets."""
    if settings.workers is not None:
        return settings.workers
    cores = os.cpu_count() or 1
    return cores if cores > 1 and files >= AUTO_MIN_FILES else 0


def load_configured_rules(config: pytest.Config) -> RuleSet:
    """The rules file the options name (or the default), with the waivers file's waivers added."""
    return _configured_rules(config)[0]


def _configured_rules(config: pytest.Config) -> tuple[RuleSet, tuple[tuple[str, str], ...]]:
    """:func:`load_configured_rules`, and each file's (source, text) as it was read."""
    from pytest_dicomqc.rules.load import RulesError, parse_rules, parse_waivers, read_text

    rules = _Value(config, "--dicom-rules", "dicom_rules")
    waivers = _Value(config, "--dicom-waivers", "dicom_waivers")
    for value, what in ((rules, "rules"), (waivers, "waivers")):
        if value.raw is not None and not value.path.is_file():
            raise pytest.UsageError(f"{value.origin}: {what} file {value.path} does not exist")
    try:
        path = str(rules.path if rules.raw is not None else _default_rules(config))
        text = read_text(Path(path), "rules")
        texts: tuple[tuple[str, str], ...] = ((path, text),)
        ruleset = parse_rules(text, path)
        if waivers.raw is not None:
            text = read_text(waivers.path, "waivers")
            texts += ((str(waivers.path), text),)
            ruleset = parse_waivers(text, str(waivers.path), ruleset)
    except RulesError as exc:
        raise pytest.UsageError(str(exc)) from None
    return ruleset, texts


def _default_rules(config: pytest.Config) -> Path:
    from importlib import resources

    in_rootdir = config.rootpath / DEFAULT_RULES
    return in_rootdir if in_rootdir.is_file() else Path(str(resources.files("pytest_dicomqc") / DEFAULT_RULES))


def _check_baseline(baseline: Path, origin: str) -> None:
    """A baseline that is not there, or is no workbook at all, is a mistake in the command: said
    now. Its content is read, and judged, when the run is compared with it."""
    import zipfile

    if not baseline.is_file():
        what = "does not exist" if not baseline.exists() else "is not a file"
        raise pytest.UsageError(f"{origin}: baseline report {baseline} {what}")
    try:
        is_workbook = zipfile.is_zipfile(baseline)
    except OSError as exc:
        raise pytest.UsageError(f"{origin}: cannot read baseline report {baseline}: {exc.strerror or exc}") from None
    if not is_workbook:
        raise pytest.UsageError(f"{origin}: baseline {baseline} is not an Excel report (.xlsx)")


def check_writable(report: Path, origin: str, suffix: str | None = ".xlsx", what: str = "report") -> None:
    """Fail now, not after an hour of reading, if the report cannot be written.

    Missing folders are fine (the writer creates them, as junitxml does) when the nearest
    existing one is writable.
    """
    if suffix is not None and report.suffix.lower() != suffix:
        raise pytest.UsageError(f"{origin}: report {report} must be an .xlsx file (an Excel workbook is written)")
    if report.is_dir():
        raise pytest.UsageError(f"{origin}: {what} path {report} is a directory")
    folder = report.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise pytest.UsageError(f"{origin}: cannot create the folder of {what} {report}: {folder} is a file")
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".dicomqc-", suffix=".probe"):
            pass
    except OSError as exc:
        raise pytest.UsageError(f"{origin}: cannot write {what} {report}: {exc.strerror or exc}") from None
    if report.exists() and not os.access(report, os.W_OK):
        raise pytest.UsageError(f"{origin}: {what} {report} is not writable")


def _raw(config: pytest.Config, option: str, ini: str) -> tuple[str, str]:
    """A setting's text and where it came from: the command line option, else the ini key and file."""
    cli = config.getoption(_dest(option))
    if cli is not None:
        return str(cli), option
    return str(config.getini(ini) or "").strip(), f"{ini} in {config.inipath}" if config.inipath else ini


def _workers(config: pytest.Config) -> int | None:
    raw, origin = _raw(config, "--dicom-workers", "dicom_workers")
    if raw.strip() == "auto":
        return None
    try:
        workers = int(raw)
    except ValueError:
        workers = -1
    if workers < 0:
        raise pytest.UsageError(f"{origin}: expected 'auto' or a number of processes >= 0, not {raw!r}")
    return workers


def _file_timeout(config: pytest.Config) -> float:
    raw, origin = _raw(config, "--dicom-file-timeout", "dicom_file_timeout")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise pytest.UsageError(f"{origin}: expected seconds >= 0 (0: no limit), not {raw!r}")
    return seconds


def _shard(config: pytest.Config) -> Shard | None:
    raw, origin = _raw(config, "--dicom-shard", "dicom_shard")
    if not raw:
        return None
    from pytest_dicomqc.shard import ShardError, parse_shard

    try:
        return parse_shard(raw, os.environ)
    except ShardError as exc:
        raise pytest.UsageError(f"{origin}: {exc}") from None


def _cache_mode(config: pytest.Config) -> str:
    raw, origin = _raw(config, "--dicom-cache", "dicom_cache")
    if raw not in CACHE_MODES:
        modes = " or ".join(repr(mode) for mode in CACHE_MODES)
        raise pytest.UsageError(f"{origin}: expected {modes}, not {raw!r}")
    return raw
