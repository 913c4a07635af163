"""Benchmark pytest-dicomqc against the naive script, pytest's floor, and itself on failing data.

Why: datasets for training are 10^4 to 10^6 files, and a quality gate that is slower than the
30-line script every user can write gets switched off (issue 5); and it must be as fast on bad data
as on good data, cost little more than pytest's own per-item floor, and stay flat in memory
(issue 13). This command generates its datasets (with failing twins of ``tiny`` and ``tiny100k``),
runs the plugin, ``benchmarks/naive.py``, the trivial-items floor (``benchmarks/floor_plugin.py``)
and the plugin's other variants alternately as subprocesses in the same process tree (so all see
the same machine state), and prints per dataset the median wall time, the medians of per-pair
ratios to naive and to the floor, the peak RSS, and every target of issue 13 with PASS/FAIL.

Usage (see benchmarks/README.md)::

    python benchmarks/run.py                       # ct, tiny, compressed; 3 repeats each
    python benchmarks/run.py --quick               # small sizes, 1 repeat: a smoke run
    python benchmarks/run.py --only tiny --repeats 5 --keep /tmp/bench-data
    python benchmarks/run.py --with-100k           # adds the 100,000-file memory checks
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Run as a script, so the sibling helper module is importable from sys.path[0] (this folder).
from datasets import ALL_NAMES, FAILING_TWINS, GeneratedDataset, ensure_dataset, prewarm, spec_for

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
PLUGIN_OK_CODES = frozenset({0, 1})  # 1: some files broke a rule, which is the gate working
NAIVE_OK_CODES = frozenset({0})
FLOOR_OK_CODES = frozenset({0})
REPORT_NAME = "report.xlsx"
RULES_NO_DATASET_NAME = "rules-no-dataset.yaml"


@dataclass(frozen=True)
class RatioTarget:
    """``variant / baseline`` on ``dataset``: median of per-repeat ratios, at most ``limit``."""

    point: int
    """The point of issue 13 the target belongs to; 14: issue 14's budget for the report."""
    dataset: str
    variant: str
    baseline: str
    limit: float
    note: str = ""

    @property
    def what(self) -> str:
        return f"{self.dataset}: {self.variant}/{self.baseline}{self.note}"


# Targets of issues 13 and 14, in their order. Time ratios: median over repeats of the per-repeat ratio.
TIME_TARGETS: tuple[RatioTarget, ...] = (
    RatioTarget(1, "tiny", "plugin-failing", "plugin", 1.05),
    RatioTarget(1, "tiny100k", "plugin-failing", "plugin", 1.05),
    RatioTarget(2, "tiny", "plugin", "floor", 1.0),
    RatioTarget(3, "tiny", "plugin", "naive", 0.8),
    RatioTarget(3, "ct", "plugin", "naive", 0.9),
    RatioTarget(3, "compressed", "plugin", "naive", 0.7, " (2 cores)"),
    RatioTarget(3, "tiny", "plugin-warm", "naive", 0.5),
    RatioTarget(5, "ct", "plugin", "plugin-no-dataset", 1.10),
    # issue 14: the report (workbook, JSON off) adds at most 10% to the run, on good and bad data
    RatioTarget(14, "tiny", "plugin", "plugin-no-report", 1.10),
    RatioTarget(14, "tiny", "plugin-failing", "plugin-failing-no-report", 1.10),
    RatioTarget(14, "tiny100k", "plugin", "plugin-no-report", 1.10),
    RatioTarget(14, "tiny100k", "plugin-failing", "plugin-failing-no-report", 1.10),
)
RSS_VS_FLOOR = RatioTarget(4, "tiny100k", "plugin", "floor", 1.0, " peak RSS")
"""Peak RSS, not time: median over repeats of plugin peak / floor peak."""
RSS_GROWTH_LIMIT_KIB = 3.0
"""(plugin peak RSS on tiny100k - on tiny) / (files of tiny100k - files of tiny), KiB per file."""


# --------------------------------------------------------------------------------------------
# What is run


@dataclass(frozen=True)
class Variant:
    """One way of producing the report (or, for the floor, of running pytest), run once per repeat."""

    name: str
    build: Callable[[Path, Path], list[str]]
    """(dataset dir, working dir) -> command line; may write files it needs into the working dir."""
    ok_codes: frozenset[int]
    prime: bool = False
    """Run once untimed in the same working dir first (the warm-cache variant)."""
    failing: bool = False
    """Run on the dataset's failing twin (``tiny-failing``) instead of the dataset itself."""
    report: bool = True
    """Writes ``WORKDIR/report.xlsx``; a run that wrote none failed."""
    pythonpath: Path | None = None
    """Put in front of ``PYTHONPATH`` for this variant's command only (the floor plugin's folder)."""
    expect: int | None = None
    """The exit code the data should give; another one of ``ok_codes`` is printed as a warning."""


def packaged_rules() -> Path:
    """The rules file the plugin uses when none is given: ``rules.yaml`` of the installed package."""
    spec = importlib.util.find_spec("pytest_dicomqc")
    if spec is None or spec.origin is None:
        raise RuntimeError("pytest_dicomqc is not importable")
    return Path(spec.origin).parent / "rules.yaml"


def without_dataset_section(text: str) -> str:
    """The rules text with its top-level ``dataset:`` section cut out, everything else as it was."""
    kept: list[str] = []
    cutting = False
    for line in text.splitlines(keepends=True):
        if re.match(r"dataset\s*:", line):
            cutting = True
        elif cutting and line.strip() and not line[0].isspace() and not line.startswith("#"):
            cutting = False  # the next top-level key
        if not cutting:
            kept.append(line)
    if len(kept) == len(text.splitlines()):
        raise RuntimeError("the packaged rules have no dataset section: plugin-no-dataset would measure nothing")
    return "".join(kept)


UNRELATED_PLUGINS = ("hypothesispytest", "benchmark")
"""pytest plugins that the test extra installs (hypothesis, pytest-benchmark) and that a dataset
gate's CI would not load: together about 0.8 s of start-up per pytest run here, which the naive
script never pays. The plugin and floor commands turn off those that are installed."""


def unrelated_plugins_off() -> list[str]:
    installed = {entry.name for entry in importlib.metadata.entry_points(group="pytest11")}
    return [option for name in UNRELATED_PLUGINS if name in installed for option in ("-p", f"no:{name}")]


def plugin_command(
    *extra: str, cache: bool = False, no_dataset_checks: bool = False
) -> Callable[[Path, Path], list[str]]:
    """The plugin as a user runs it in CI, with the packaged default rules (or those minus ``dataset:``)."""

    def build(dataset: Path, workdir: Path) -> list[str]:
        command = [sys.executable, "-m", "pytest", "-q", *unrelated_plugins_off()]
        if not cache:
            command += ["-p", "no:cacheprovider"]
        if no_dataset_checks:
            rules = workdir / RULES_NO_DATASET_NAME
            rules.write_text(without_dataset_section(packaged_rules().read_text(encoding="utf-8")), encoding="utf-8")
            command.append(f"--dicom-rules={rules}")
        return [*command, f"--dicom-dir={dataset}", f"--dicom-report={workdir / REPORT_NAME}", *extra]

    return build


def naive_command(dataset: Path, workdir: Path) -> list[str]:
    """The baseline script, see naive.py."""
    return [sys.executable, str(BENCH_DIR / "naive.py"), str(dataset), str(workdir / REPORT_NAME)]


def floor_command(dataset: Path, workdir: Path) -> list[str]:
    """pytest's floor: one do-nothing item per file (floor_plugin.py, importable through PYTHONPATH)."""
    return [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        *unrelated_plugins_off(),
        "-p",
        "no:cacheprovider",
        "-p",
        "floor_plugin",
        str(dataset),
    ]


PLUGIN = Variant("plugin", plugin_command(), PLUGIN_OK_CODES, expect=0)
PLUGIN_FAILING = Variant("plugin-failing", plugin_command(), PLUGIN_OK_CODES, failing=True, expect=1)
NAIVE = Variant("naive", naive_command, NAIVE_OK_CODES)
FLOOR = Variant("floor", floor_command, FLOOR_OK_CODES, report=False, pythonpath=BENCH_DIR)
PLUGIN_WARM = Variant("plugin-warm", plugin_command(cache=True), PLUGIN_OK_CODES, prime=True, expect=0)
PLUGIN_XDIST = Variant("plugin -n 2", plugin_command("-n", "2"), PLUGIN_OK_CODES, expect=0)
PLUGIN_NO_DATASET = Variant("plugin-no-dataset", plugin_command(no_dataset_checks=True), PLUGIN_OK_CODES, expect=0)
NO_REPORT = ("-p", "no_report_plugin")
PLUGIN_NO_REPORT = Variant(
    "plugin-no-report", plugin_command(*NO_REPORT), PLUGIN_OK_CODES, report=False, pythonpath=BENCH_DIR, expect=0
)
PLUGIN_FAILING_NO_REPORT = Variant(
    "plugin-failing-no-report",
    plugin_command(*NO_REPORT),
    PLUGIN_OK_CODES,
    failing=True,
    report=False,
    pythonpath=BENCH_DIR,
    expect=1,
)

VARIANTS: dict[str, list[Variant]] = {
    "ct": [PLUGIN, PLUGIN_NO_DATASET, NAIVE, FLOOR],
    "tiny": [PLUGIN, PLUGIN_NO_REPORT, PLUGIN_FAILING, PLUGIN_FAILING_NO_REPORT, NAIVE, FLOOR, PLUGIN_WARM],
    "compressed": [PLUGIN, NAIVE, FLOOR, PLUGIN_XDIST],
    "tiny100k": [PLUGIN, PLUGIN_NO_REPORT, PLUGIN_FAILING, PLUGIN_FAILING_NO_REPORT, NAIVE, FLOOR],
}
"""Per dataset, in the order of every repeat: a variant compared with the plugin follows it directly."""


def variants_for(dataset: str) -> list[Variant]:
    """The variants of one dataset, in the order they run in every repeat."""
    return VARIANTS[dataset]


# --------------------------------------------------------------------------------------------
# Running and measuring


@dataclass
class Run:
    """One measured subprocess."""

    dataset: str
    variant: str
    repeat: int
    wall_s: float
    maxrss_mb: float
    returncode: int
    error: str | None = None
    warning: str | None = None


@dataclass(frozen=True)
class DatasetPair:
    """A dataset and, for ``tiny`` and ``tiny100k``, its failing twin of the same size and layout."""

    passing: GeneratedDataset
    failing: GeneratedDataset | None

    def for_variant(self, variant: Variant) -> GeneratedDataset:
        if not variant.failing:
            return self.passing
        if self.failing is None:
            raise RuntimeError(f"{variant.name} needs a failing twin of {self.passing.spec.name}")
        return self.failing


def _measure(command: list[str], cwd: Path, log: Path, pythonpath: Path | None) -> dict[str, float]:
    """Run ``command`` through measure.py, a fresh process whose only child is the command."""
    launcher = [sys.executable, str(BENCH_DIR / "measure.py"), "--log", str(log), "--", *command]
    env = None
    if pythonpath is not None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    completed = subprocess.run(launcher, cwd=cwd, capture_output=True, text=True, check=True, env=env)
    result: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _tail(log: Path, lines: int = 15) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "(no output)"
    return "\n".join("      | " + line for line in text.splitlines()[-lines:])


def new_workdir(parent: Path, label: str) -> Path:
    """A working dir with a bare pytest.ini, so no config, conftest or rules file of the repo applies."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{label.replace(' ', '')}-", dir=parent))
    (workdir / "pytest.ini").write_text("[pytest]\n")
    return workdir


def run_variant(variant: Variant, pair: DatasetPair, repeat: int, scratch: Path) -> Run:
    """Run one variant once (after its untimed priming run, if any) and check its report."""
    name = pair.passing.spec.name
    workdir = new_workdir(scratch, f"{name}-{variant.name}-{repeat}")
    report = workdir / REPORT_NAME
    command = variant.build(pair.for_variant(variant).path, workdir)
    log = workdir / "output.log"
    if variant.prime:
        primed = _measure(command, workdir, workdir / "prime.log", variant.pythonpath)
        if int(primed["returncode"]) not in variant.ok_codes:
            return Run(name, variant.name, repeat, 0.0, 0.0, int(primed["returncode"]), "priming run failed")
        report.unlink(missing_ok=True)
    measured = _measure(command, workdir, log, variant.pythonpath)
    run = Run(name, variant.name, repeat, measured["wall_s"], measured["maxrss_mb"], int(measured["returncode"]))
    if run.returncode not in variant.ok_codes:
        run.error = f"exit code {run.returncode}"
    elif variant.report and (not report.is_file() or report.stat().st_size == 0):
        run.error = "no report written"
    elif variant.expect is not None and run.returncode != variant.expect:
        run.warning = f"exit {run.returncode}, the data should give {variant.expect}"
    if run.error is not None:
        print(f"    ERROR {variant.name} #{repeat}: {run.error}; output ends:\n{_tail(log)}", flush=True)
    elif run.warning is not None:
        print(f"    WARNING {variant.name} #{repeat}: {run.warning}; output ends:\n{_tail(log)}", flush=True)
    shutil.rmtree(workdir, ignore_errors=True)
    return run


def run_dataset(pair: DatasetPair, repeats: int, scratch: Path) -> list[Run]:
    """Alternate the variants ``repeats`` times: plugin, ..., naive, floor, ..., plugin, ..."""
    runs: list[Run] = []
    for repeat in range(1, repeats + 1):
        for variant in variants_for(pair.passing.spec.name):
            run = run_variant(variant, pair, repeat, scratch)
            status = run.error or f"exit {run.returncode}"
            print(
                f"    {variant.name:<17} #{repeat}  {run.wall_s:8.2f} s  {run.maxrss_mb:7.1f} MB  {status}",
                flush=True,
            )
            runs.append(run)
    return runs


# --------------------------------------------------------------------------------------------
# Summaries


@dataclass
class VariantSummary:
    """Per variant of one dataset: the numbers of the table."""

    variant: str
    runs: int
    median_s: float | None
    min_s: float | None
    max_s: float | None
    peak_rss_mb: float | None
    exit_codes: list[int]
    ratio_vs_naive: float | None
    ratio_vs_floor: float | None
    errors: int
    ratios: list[float] = field(default_factory=list)
    """Per-repeat time ratios to naive."""
    floor_ratios: list[float] = field(default_factory=list)
    """Per-repeat time ratios to the floor."""


def paired_ratios(runs: list[Run], variant: str, baseline: str, rss: bool = False) -> list[float]:
    """``variant / baseline`` (wall time, or peak RSS) for every repeat in which both succeeded."""
    ok = {(run.variant, run.repeat): run.maxrss_mb if rss else run.wall_s for run in runs if run.error is None}
    repeats = sorted({run.repeat for run in runs})
    return [
        ok[(variant, repeat)] / ok[(baseline, repeat)]
        for repeat in repeats
        if (variant, repeat) in ok and (baseline, repeat) in ok and ok[(baseline, repeat)] > 0
    ]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(runs: list[Run], variant: str) -> VariantSummary:
    """Median, spread and peak of one variant's successful runs, and its ratios to naive and the floor."""
    mine = [run for run in runs if run.variant == variant]
    good = [run.wall_s for run in mine if run.error is None]
    ratios = paired_ratios(runs, variant, NAIVE.name) if variant != NAIVE.name else []
    floor_ratios = paired_ratios(runs, variant, FLOOR.name) if variant != FLOOR.name else []
    return VariantSummary(
        variant=variant,
        runs=len(mine),
        median_s=_median(good),
        min_s=min(good) if good else None,
        max_s=max(good) if good else None,
        peak_rss_mb=max((run.maxrss_mb for run in mine if run.error is None), default=None),
        exit_codes=sorted({run.returncode for run in mine}),
        ratio_vs_naive=_median(ratios),
        ratio_vs_floor=_median(floor_ratios),
        errors=sum(run.error is not None for run in mine),
        ratios=ratios,
        floor_ratios=floor_ratios,
    )


def verdict(value: float | None, limit: float) -> str:
    """PASS/FAIL against an upper limit; ``n/a`` when there is no value (errors, dataset not run)."""
    if value is None:
        return "n/a"
    return "PASS" if value <= limit else "FAIL"


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(headers: list[str], rows: list[list[str]], left: int = 1) -> str:
    """The first ``left`` columns left-aligned, numbers right-aligned; plain text that pastes into Markdown code."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def dataset_table(summaries: list[VariantSummary]) -> str:
    """The per-dataset table: one row per variant."""
    headers = ["variant", "runs", "median s", "min s", "max s", "peak RSS MB", "exit", "ratio/naive", "ratio/floor"]
    rows = [
        [
            summary.variant,
            str(summary.runs) + (f" ({summary.errors} failed)" if summary.errors else ""),
            _fmt(summary.median_s, ".2f"),
            _fmt(summary.min_s, ".2f"),
            _fmt(summary.max_s, ".2f"),
            _fmt(summary.peak_rss_mb, ".1f"),
            ",".join(map(str, summary.exit_codes)),
            _fmt(summary.ratio_vs_naive, ".3f") if summary.variant != NAIVE.name else "",
            _fmt(summary.ratio_vs_floor, ".3f") if summary.variant != FLOOR.name else "",
        ]
        for summary in summaries
    ]
    return format_table(headers, rows)


@dataclass
class TargetResult:
    """One line of the target summary."""

    point: int
    dataset: str
    what: str
    value: str
    limit: str
    result: str


def _ratio_target(target: RatioTarget, runs: list[Run], rss: bool = False) -> TargetResult:
    mine = [run for run in runs if run.dataset == target.dataset]
    value = _median(paired_ratios(mine, target.variant, target.baseline, rss=rss))
    limit = f"<= {target.limit:.2f}"
    return TargetResult(
        target.point, target.dataset, target.what, _fmt(value, ".3f"), limit, verdict(value, target.limit)
    )


def target_results(
    summaries: dict[str, dict[str, VariantSummary]], runs: list[Run], files: dict[str, int]
) -> list[TargetResult]:
    """Every target of issue 13, evaluated on this run's numbers (``n/a`` for datasets not run)."""
    results = [_ratio_target(target, runs) for target in TIME_TARGETS]
    results.append(_ratio_target(RSS_VS_FLOOR, runs, rss=True))
    big = summaries.get("tiny100k", {}).get(PLUGIN.name)
    small = summaries.get("tiny", {}).get(PLUGIN.name)
    growth = None
    if big and small and big.peak_rss_mb and small.peak_rss_mb and files["tiny100k"] > files["tiny"]:
        growth = (big.peak_rss_mb - small.peak_rss_mb) * 1024 / (files["tiny100k"] - files["tiny"])
    results.append(
        TargetResult(
            4,
            "tiny100k",
            "plugin peak RSS growth tiny -> tiny100k, KiB per file",
            _fmt(growth, ".2f"),
            f"<= {RSS_GROWTH_LIMIT_KIB:.1f}",
            verdict(growth, RSS_GROWTH_LIMIT_KIB),
        )
    )
    xdist = _median(paired_ratios([r for r in runs if r.dataset == "compressed"], PLUGIN_XDIST.name, PLUGIN.name))
    results.append(TargetResult(3, "compressed", "compressed: (plugin -n 2)/plugin", _fmt(xdist, ".3f"), "(info)", ""))
    results.sort(key=lambda result: result.point)  # stable: the order within a point stays
    return results


def targets_table(results: list[TargetResult]) -> str:
    """The targets as a table: issue point, what, value, limit, PASS/FAIL."""
    return format_table(
        ["#", "target (issues 13, 14)", "value", "limit", "result"],
        [[str(t.point), t.what, t.value, t.limit, t.result] for t in results],
        left=2,
    )


# --------------------------------------------------------------------------------------------
# Machine facts


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown"


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git_state() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_DIR, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "pytest_dicomqc"], cwd=REPO_DIR, capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    if head.returncode != 0:
        return "not a git checkout"
    return head.stdout.strip() + (" + local changes in pytest_dicomqc/" if dirty.stdout.strip() else "")


def machine_facts() -> dict[str, str]:
    """What the numbers depend on, printed above them and kept in the JSON."""
    try:
        usable = str(len(os.sched_getaffinity(0)))
    except AttributeError:
        usable = "?"
    plugin_spec = importlib.util.find_spec("pytest_dicomqc")
    plugin_path = str(Path(plugin_spec.origin).parent) if plugin_spec and plugin_spec.origin else "not importable"
    facts = {
        "CPU": _cpu_model(),
        "cores": f"{os.cpu_count()} (usable by this process: {usable})",
        "memory": _memory_gib(),
        "OS": platform.platform(),
        "Python": f"{platform.python_version()} ({sys.executable})",
        "packages": ", ".join(
            f"{name} {_version(name)}"
            for name in (
                "pytest",
                "pytest-xdist",
                "pydicom",
                "numpy",
                "openpyxl",
                "pandas",
                "pyjpegls",
                "pylibjpeg-openjpeg",
            )
        ),
        "plugin": f"pytest-dicomqc {_version('pytest-dicomqc')} from {plugin_path}, git {_git_state()}",
    }
    tuning = {
        k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS_", "OMP_", "MKL_", "PYTEST_", "PYTHONHASH"))
    }
    if tuning:
        facts["environment"] = " ".join(f"{k}={v}" for k, v in sorted(tuning.items()))
    facts["plugins off"] = " ".join(unrelated_plugins_off()) or "none installed"
    return facts


# --------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Options: which datasets, how many repeats, where to keep the data, quick or full sizes."""
    parser = argparse.ArgumentParser(
        description="Benchmark pytest-dicomqc against the naive dcmread + pixel_array + pandas script, "
        "pytest's trivial-items floor, itself on failing data (issue 13) and itself without the report (issue 14).",
        epilog="Datasets: ct (2,000 x 512x512 int16), tiny (20,000 x 32x32, with its failing twin), compressed "
        "(500 x 256x256 JPEG-LS), tiny100k (100,000 x 32x32 with its failing twin, only with --with-100k or "
        "--only). See benchmarks/README.md.",
    )
    parser.add_argument("--only", type=_names, help="comma-separated datasets to run (default: ct,tiny,compressed)")
    parser.add_argument(
        "--repeats", type=_positive, help="repeats of every variant per dataset (default: 3; 1 with --quick)"
    )
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="keep datasets in DIR and reuse them (generate only if missing)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: ct 200, tiny 2,000, compressed 50, tiny100k 10,000 files"
    )
    parser.add_argument(
        "--with-100k",
        action="store_true",
        help="add tiny100k and its failing twin (100,000 files: peak RSS against the floor, growth from tiny)",
    )
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="also write machine facts, every run and the summaries as JSON"
    )
    args = parser.parse_args(argv)
    if args.only is None:
        args.only = ["ct", "tiny", "compressed"] + (["tiny100k"] if args.with_100k else [])
    elif args.with_100k and "tiny100k" not in args.only:
        args.only.append("tiny100k")
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    return args


def _names(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in ALL_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown dataset {unknown or value!r}; choose from {', '.join(ALL_NAMES)} "
            "(failing twins come with tiny and tiny100k)"
        )
    return names


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _print_block(title: str, lines: Iterable[str]) -> None:
    print(f"\n== {title} ==", flush=True)
    for line in lines:
        print(line, flush=True)


def _dataset_info(data: GeneratedDataset) -> dict[str, object]:
    return {
        "files": data.files,
        "bytes": data.total_bytes,
        "path": str(data.path),
        "description": data.spec.description,
    }


def _pair_info(pair: DatasetPair) -> dict[str, object]:
    info = _dataset_info(pair.passing)
    if pair.failing is not None:
        info["failing"] = _dataset_info(pair.failing)
    return info


def benchmark_dataset(
    name: str, args: argparse.Namespace, data_root: Path, scratch: Path
) -> tuple[dict[str, VariantSummary], list[Run], DatasetPair]:
    """Generate (or reuse) one dataset and its failing twin, run its repeats, print its table."""
    passing = ensure_dataset(data_root, spec_for(name, args.quick))
    twin = FAILING_TWINS.get(name)
    failing = ensure_dataset(data_root, spec_for(twin, args.quick)) if twin else None
    pair = DatasetPair(passing, failing)
    lines = []
    for data in filter(None, (passing, failing)):
        how = "reused" if data.reused else f"generated in {data.seconds:.1f} s"
        lines += [
            f"   {data.spec.name}: {data.files:,} files, {data.total_bytes / 1e6:,.1f} MB ({how})",
            f"      {data.spec.description}",
            f"      {data.path}",
        ]
    _print_block(name, lines)
    started = time.perf_counter()
    for data in filter(None, (passing, failing)):
        prewarm(data.path)
    print(f"   page cache warmed in {time.perf_counter() - started:.1f} s; runs:", flush=True)
    runs = run_dataset(pair, args.repeats, scratch)
    summaries = {variant.name: summarize(runs, variant.name) for variant in variants_for(name)}
    print()
    print(dataset_table(list(summaries.values())), flush=True)
    return summaries, runs, pair


def main(argv: list[str]) -> int:
    """Run the benchmark; exit 1 when a run failed (not when a target is missed: that is a result)."""
    args = parse_args(argv)
    if importlib.util.find_spec("pandas") is None:
        print("pandas is needed for the naive baseline: pip install -e '.[test]'", file=sys.stderr)
        return 2
    if importlib.util.find_spec("pytest_dicomqc") is None:
        print("pytest_dicomqc is not importable from here: pip install -e '.[test]'", file=sys.stderr)
        return 2
    facts = machine_facts()
    _print_block("machine", (f"{key:<12} {value}" for key, value in facts.items()))
    mode = "QUICK (reduced sizes: targets are indicative only)" if args.quick else "full"
    print(f"{'run':<12} {mode}, {args.repeats} repeat(s) per dataset, datasets: {', '.join(args.only)}", flush=True)

    scratch = Path(tempfile.mkdtemp(prefix="dicomqc-bench-"))
    data_root = args.keep if args.keep is not None else scratch / "data"
    data_root.mkdir(parents=True, exist_ok=True)
    summaries: dict[str, dict[str, VariantSummary]] = {}
    all_runs: list[Run] = []
    datasets: dict[str, dict[str, object]] = {}
    files: dict[str, int] = {}
    try:
        for name in args.only:
            summaries[name], runs, pair = benchmark_dataset(name, args, data_root, scratch)
            datasets[name] = _pair_info(pair)
            files[name] = pair.passing.files
            all_runs += runs
            mine = [t for t in target_results(summaries, all_runs, files) if t.dataset == name]
            print()
            print(targets_table(mine), flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    targets = target_results(summaries, all_runs, files)
    _print_block("targets of issues 13 and 14 (n/a: dataset not run, or its runs failed)", [targets_table(targets)])
    if args.json is not None:
        payload = {
            "facts": facts,
            "quick": args.quick,
            "repeats": args.repeats,
            "datasets": datasets,
            "runs": [asdict(run) for run in all_runs],
            "summaries": {name: {k: asdict(v) for k, v in s.items()} for name, s in summaries.items()},
            "targets": [asdict(t) for t in targets],
        }
        args.json.write_text(json.dumps(payload, indent=2))
    warned = [run for run in all_runs if run.warning is not None]
    if warned:
        print(f"\n{len(warned)} run(s) gave an unexpected exit code: " + ", ".join(_run_id(r) for r in warned))
    failed = [run for run in all_runs if run.error is not None]
    if failed:
        print(f"\n{len(failed)} run(s) failed: {', '.join(_run_id(r) for r in failed)}")
    return 1 if failed else 0


def _run_id(run: Run) -> str:
    return f"{run.dataset}/{run.variant}#{run.repeat}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
