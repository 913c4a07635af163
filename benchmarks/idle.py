"""What the installed plugin costs a pytest run that checks no dataset (issue 11, point 8).

Every pytest run in an environment where pytest-dicomqc is installed loads it: a unit-test run of
an ML repository must not pay for pydicom and numpy. Runs a one-test project ``--runs`` times
with the plugin and as often with ``-p no:dicomqc``, alternating, and compares the medians of
wall time. Target: at most 30 ms more, and none of the heavy modules imported (exit 1 if not).

    python benchmarks/idle.py [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 30.0
HEAVY = ("pydicom", "numpy", "yaml", "sqlite3")
"""What the plugin needs only for a dataset; other plugins may load other modules (concurrent.futures)."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="dicomqc-idle-") as folder:
        project = Path(folder)
        (project / "test_unit.py").write_text("def test_unit():\n    assert 1 + 1 == 2\n")
        probe = (
            "import sys\n"
            f"HEAVY = {HEAVY!r}\n"
            "def pytest_unconfigure(config):\n"
            "    loaded = sorted(m for m in HEAVY if m in sys.modules)\n"
            "    print('heavy modules loaded:', ', '.join(loaded) or 'none')\n"
        )
        (project / "conftest.py").write_text(probe)
        # the test extra's hypothesis and pytest-benchmark plugins: most of a run's start-up, and its noise
        others_off = ["-p", "no:hypothesispytest", "-p", "no:benchmark"]
        base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *others_off]
        commands = {"plugin installed": base, "-p no:dicomqc": [*base, "-p", "no:dicomqc"]}
        times: dict[str, list[float]] = {name: [] for name in commands}
        for command in commands.values():  # warm-up: .pyc files, page cache
            subprocess.run(command, cwd=project, capture_output=True, check=True)
        loaded = ""
        for _ in range(runs):
            for name, command in commands.items():
                start = time.perf_counter()
                done = subprocess.run(command, cwd=project, capture_output=True, text=True, check=True)
                times[name].append(time.perf_counter() - start)
                if name == "plugin installed":
                    loaded = next(line for line in done.stdout.splitlines() if line.startswith("heavy modules"))
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    for name, median in medians.items():
        print(f"{name:>18}: median {median:7.1f} ms over {runs} runs")
    extra = medians["plugin installed"] - medians["-p no:dicomqc"]
    verdict = "ok" if extra <= TARGET_MS else "FAIL"
    print(f"{'plugin costs':>18}: {extra:+7.1f} ms (target <= {TARGET_MS:.0f} ms): {verdict}")
    print(f"{'':>18}  {loaded}")
    return 0 if verdict == "ok" and loaded.endswith(": none") else 1


if __name__ == "__main__":
    sys.exit(main())
