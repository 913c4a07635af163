"""Benchmark pytest-dicomqc against the naive "dcmread + pixel_array + pandas.to_excel" script.

Why: datasets for training are 10^4 to 10^6 files, and a quality gate that is slower than the
30-line script every user can write gets switched off (issue 5). This command generates its
datasets, runs the plugin and ``benchmarks/naive.py`` alternately as subprocesses in the same
process tree (so both see the same machine state), and prints per dataset the median wall time,
the median of per-pair ratios plugin/naive, the peak RSS, and the issue's targets with PASS/FAIL.

Usage (see benchmarks/README.md)::

    python benchmarks/run.py                       # ct, tiny, compressed; 3 pairs each
    python benchmarks/run.py --quick               # small sizes, 1 pair: a smoke run
    python benchmarks/run.py --only tiny --repeats 5 --keep /tmp/bench-data
    python benchmarks/run.py --with-100k           # adds the 100,000-file memory check
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
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
from datasets import ALL_NAMES, GeneratedDataset, ensure_dataset, prewarm, spec_for

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
PLUGIN_OK_CODES = frozenset({0, 1})  # 1: some files broke a rule, which is the gate working
NAIVE_OK_CODES = frozenset({0})

# Targets of issue 5: (dataset, variant) -> largest acceptable median ratio variant/naive.
TIME_TARGETS: dict[tuple[str, str], float] = {
    ("ct", "plugin"): 0.6,
    ("tiny", "plugin"): 0.8,
    ("compressed", "plugin"): 0.6,
    ("tiny", "plugin-warm"): 0.7,
}
RSS_LIMIT_MB = 400.0  # peak RSS of the plugin on tiny100k
RSS_GROWTH_LIMIT = 2.0  # plugin peak RSS tiny100k / tiny, strictly below


# --------------------------------------------------------------------------------------------
# What is run


@dataclass(frozen=True)
class Variant:
    """One way of producing the report, run once per repeat."""

    name: str
    build: Callable[[Path, Path], list[str]]
    """(dataset dir, report path) -> command line."""
    ok_codes: frozenset[int]
    prime: bool = False
    """Run once untimed in the same working dir first (the warm-cache variant)."""


def plugin_command(*extra: str, cache: bool = False) -> Callable[[Path, Path], list[str]]:
    """The plugin as a user runs it in CI, with the packaged default rules."""

    def build(dataset: Path, report: Path) -> list[str]:
        command = [sys.executable, "-m", "pytest", "-q"]
        if not cache:
            command += ["-p", "no:cacheprovider"]
        return [*command, f"--dicom-dir={dataset}", f"--dicom-report={report}", *extra]

    return build


def naive_command(dataset: Path, report: Path) -> list[str]:
    """The baseline script, see naive.py."""
    return [sys.executable, str(BENCH_DIR / "naive.py"), str(dataset), str(report)]


PLUGIN = Variant("plugin", plugin_command(), PLUGIN_OK_CODES)
NAIVE = Variant("naive", naive_command, NAIVE_OK_CODES)
PLUGIN_WARM = Variant("plugin-warm", plugin_command(cache=True), PLUGIN_OK_CODES, prime=True)
PLUGIN_XDIST = Variant("plugin -n 2", plugin_command("-n", "2"), PLUGIN_OK_CODES)


def variants_for(dataset: str) -> list[Variant]:
    """Plugin and naive alternate first in every repeat; the extra variants follow."""
    extras = {"tiny": [PLUGIN_WARM], "compressed": [PLUGIN_XDIST]}
    return [PLUGIN, NAIVE, *extras.get(dataset, [])]


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


def _measure(command: list[str], cwd: Path, log: Path) -> dict[str, float]:
    """Run ``command`` through measure.py, a fresh process whose only child is the command."""
    launcher = [sys.executable, str(BENCH_DIR / "measure.py"), "--log", str(log), "--", *command]
    completed = subprocess.run(launcher, cwd=cwd, capture_output=True, text=True, check=True)
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


def run_variant(variant: Variant, data: GeneratedDataset, repeat: int, scratch: Path) -> Run:
    """Run one variant once (after its untimed priming run, if any) and check its report."""
    workdir = new_workdir(scratch, f"{data.spec.name}-{variant.name}-{repeat}")
    report = workdir / "report.xlsx"
    command = variant.build(data.path, report)
    log = workdir / "output.log"
    if variant.prime:
        primed = _measure(command, workdir, workdir / "prime.log")
        if int(primed["returncode"]) not in variant.ok_codes:
            return Run(data.spec.name, variant.name, repeat, 0.0, 0.0, int(primed["returncode"]), "priming run failed")
        report.unlink(missing_ok=True)
    measured = _measure(command, workdir, log)
    run = Run(
        data.spec.name, variant.name, repeat, measured["wall_s"], measured["maxrss_mb"], int(measured["returncode"])
    )
    if run.returncode not in variant.ok_codes:
        run.error = f"exit code {run.returncode}"
    elif not report.is_file() or report.stat().st_size == 0:
        run.error = "no report written"
    if run.error is not None:
        print(f"    ERROR {variant.name} #{repeat}: {run.error}; output ends:\n{_tail(log)}", flush=True)
    shutil.rmtree(workdir, ignore_errors=True)
    return run


def run_dataset(data: GeneratedDataset, repeats: int, scratch: Path) -> list[Run]:
    """Alternate the variants ``repeats`` times: plugin, naive, extras, plugin, naive, ..."""
    runs: list[Run] = []
    for repeat in range(1, repeats + 1):
        for variant in variants_for(data.spec.name):
            run = run_variant(variant, data, repeat, scratch)
            status = run.error or f"exit {run.returncode}"
            print(
                f"    {variant.name:<12} #{repeat}  {run.wall_s:8.2f} s  {run.maxrss_mb:7.1f} MB  {status}",
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
    errors: int
    ratios: list[float] = field(default_factory=list)


def _paired_ratios(runs: list[Run], variant: str, baseline: str) -> list[float]:
    """``variant / baseline`` for every repeat in which both succeeded."""
    ok = {(run.variant, run.repeat): run.wall_s for run in runs if run.error is None}
    repeats = sorted({run.repeat for run in runs})
    return [
        ok[(variant, repeat)] / ok[(baseline, repeat)]
        for repeat in repeats
        if (variant, repeat) in ok and (baseline, repeat) in ok and ok[(baseline, repeat)] > 0
    ]


def summarize(runs: list[Run], variant: str) -> VariantSummary:
    """Median, spread and peak of one variant's successful runs, and its ratio to naive."""
    mine = [run for run in runs if run.variant == variant]
    good = [run.wall_s for run in mine if run.error is None]
    ratios = _paired_ratios(runs, variant, NAIVE.name) if variant != NAIVE.name else []
    return VariantSummary(
        variant=variant,
        runs=len(mine),
        median_s=statistics.median(good) if good else None,
        min_s=min(good) if good else None,
        max_s=max(good) if good else None,
        peak_rss_mb=max((run.maxrss_mb for run in mine if run.error is None), default=None),
        exit_codes=sorted({run.returncode for run in mine}),
        ratio_vs_naive=statistics.median(ratios) if ratios else None,
        errors=sum(run.error is not None for run in mine),
        ratios=ratios,
    )


def verdict(value: float | None, limit: float, strict: bool = False) -> str:
    """PASS/FAIL against an upper limit; ``n/a`` when there is no value (errors, dataset not run)."""
    if value is None:
        return "n/a"
    return "PASS" if (value < limit if strict else value <= limit) else "FAIL"


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """Left-aligned first column, right-aligned numbers; plain text that pastes into Markdown code."""
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def dataset_table(name: str, summaries: list[VariantSummary]) -> str:
    """The per-dataset table: one row per variant."""
    headers = [
        "variant",
        "runs",
        "median s",
        "min s",
        "max s",
        "peak RSS MB",
        "exit",
        "ratio/naive",
        "target",
        "result",
    ]
    rows = []
    for summary in summaries:
        limit = TIME_TARGETS.get((name, summary.variant))
        rows.append(
            [
                summary.variant,
                str(summary.runs) + (f" ({summary.errors} failed)" if summary.errors else ""),
                _fmt(summary.median_s, ".2f"),
                _fmt(summary.min_s, ".2f"),
                _fmt(summary.max_s, ".2f"),
                _fmt(summary.peak_rss_mb, ".1f"),
                ",".join(map(str, summary.exit_codes)),
                _fmt(summary.ratio_vs_naive, ".3f") if summary.variant != NAIVE.name else "",
                f"<= {limit:.2f}" if limit is not None else "",
                verdict(summary.ratio_vs_naive, limit) if limit is not None else "",
            ]
        )
    return format_table(headers, rows)


@dataclass
class TargetResult:
    """One line of the final target summary."""

    what: str
    value: str
    limit: str
    result: str


def target_results(summaries: dict[str, dict[str, VariantSummary]], runs: list[Run]) -> list[TargetResult]:
    """Every target of the issue, evaluated on this run's numbers (``n/a`` for datasets not run)."""
    results = []
    for (dataset, variant), limit in TIME_TARGETS.items():
        ratio = summaries.get(dataset, {}).get(variant)
        value = ratio.ratio_vs_naive if ratio else None
        results.append(
            TargetResult(f"{dataset}: {variant}/naive", _fmt(value, ".3f"), f"<= {limit}", verdict(value, limit))
        )
    big = summaries.get("tiny100k", {}).get(PLUGIN.name)
    small = summaries.get("tiny", {}).get(PLUGIN.name)
    big_rss = big.peak_rss_mb if big else None
    results.append(
        TargetResult(
            "tiny100k: plugin peak RSS MB",
            _fmt(big_rss, ".1f"),
            f"<= {RSS_LIMIT_MB:.0f}",
            verdict(big_rss, RSS_LIMIT_MB),
        )
    )
    growth = big_rss / small.peak_rss_mb if big_rss and small and small.peak_rss_mb else None
    results.append(
        TargetResult(
            "plugin peak RSS tiny100k/tiny",
            _fmt(growth, ".2f"),
            f"< {RSS_GROWTH_LIMIT:.0f}",
            verdict(growth, RSS_GROWTH_LIMIT, strict=True),
        )
    )
    xdist = _paired_ratios(runs, PLUGIN_XDIST.name, PLUGIN.name)
    results.append(
        TargetResult(
            "compressed: (plugin -n 2)/plugin", _fmt(statistics.median(xdist) if xdist else None, ".3f"), "(info)", ""
        )
    )
    return results


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
    return facts


# --------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Options: which datasets, how many pairs, where to keep the data, quick or full sizes."""
    parser = argparse.ArgumentParser(
        description="Benchmark pytest-dicomqc against the naive dcmread + pixel_array + pandas script.",
        epilog="Datasets: ct (2,000 x 512x512 int16), tiny (20,000 x 32x32), compressed (500 x 256x256 "
        "JPEG-LS), tiny100k (100,000 x 32x32, only with --with-100k or --only). See benchmarks/README.md.",
    )
    parser.add_argument("--only", type=_names, help="comma-separated datasets to run (default: ct,tiny,compressed)")
    parser.add_argument("--repeats", type=_positive, help="plugin/naive pairs per dataset (default: 3; 1 with --quick)")
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="keep datasets in DIR and reuse them (generate only if missing)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: ct 200, tiny 2,000, compressed 50, tiny100k 10,000 files"
    )
    parser.add_argument(
        "--with-100k", action="store_true", help="add tiny100k (100,000 files: peak RSS and its growth from tiny)"
    )
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="also write machine facts, every run and the summaries as JSON"
    )
    args = parser.parse_args(argv)
    if args.only is None:
        args.only = ["ct", "tiny", "compressed"] + (["tiny100k"] if args.with_100k else [])
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    return args


def _names(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in ALL_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown dataset {unknown or value!r}; choose from {', '.join(ALL_NAMES)}")
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


def benchmark_dataset(
    name: str, args: argparse.Namespace, data_root: Path, scratch: Path
) -> tuple[dict[str, VariantSummary], list[Run], dict[str, object]]:
    """Generate (or reuse) one dataset, run its pairs, print its table."""
    spec = spec_for(name, args.quick)
    data = ensure_dataset(data_root, spec)
    how = "reused" if data.reused else f"generated in {data.seconds:.1f} s"
    _print_block(
        f"{name}: {data.files:,} files, {data.total_bytes / 1e6:,.1f} MB ({how})",
        [f"   {spec.description}", f"   {data.path}"],
    )
    started = time.perf_counter()
    prewarm(data.path)
    print(f"   page cache warmed in {time.perf_counter() - started:.1f} s; runs:", flush=True)
    runs = run_dataset(data, args.repeats, scratch)
    summaries = {variant.name: summarize(runs, variant.name) for variant in variants_for(name)}
    print()
    print(dataset_table(name, list(summaries.values())), flush=True)
    info: dict[str, object] = {
        "files": data.files,
        "bytes": data.total_bytes,
        "path": str(data.path),
        "description": spec.description,
    }
    return summaries, runs, info


def main(argv: list[str]) -> int:
    """Run the benchmark; exit 1 when a run failed (not when a target is missed: that is a result)."""
    args = parse_args(argv)
    if importlib.util.find_spec("pandas") is None:
        print("pandas is needed for the naive baseline: pip install -e '.[test]'", file=sys.stderr)
        return 2
    facts = machine_facts()
    _print_block("machine", (f"{key:<12} {value}" for key, value in facts.items()))
    mode = "QUICK (reduced sizes: targets are indicative only)" if args.quick else "full"
    print(f"{'run':<12} {mode}, {args.repeats} pair(s) per dataset, datasets: {', '.join(args.only)}", flush=True)

    scratch = Path(tempfile.mkdtemp(prefix="dicomqc-bench-"))
    data_root = args.keep if args.keep is not None else scratch / "data"
    data_root.mkdir(parents=True, exist_ok=True)
    summaries: dict[str, dict[str, VariantSummary]] = {}
    all_runs: list[Run] = []
    datasets: dict[str, object] = {}
    try:
        for name in args.only:
            summaries[name], runs, datasets[name] = benchmark_dataset(name, args, data_root, scratch)
            all_runs += runs
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    targets = target_results(summaries, all_runs)
    print()
    print(
        format_table(
            ["target (issue 5)", "value", "limit", "result"], [[t.what, t.value, t.limit, t.result] for t in targets]
        )
    )
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
    failed = [run for run in all_runs if run.error is not None]
    if failed:
        print(f"\n{len(failed)} run(s) failed: {', '.join(f'{r.dataset}/{r.variant}#{r.repeat}' for r in failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
