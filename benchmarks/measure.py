"""Run one command and print its wall time and the peak RSS of its largest process, as JSON.

Why a separate launcher: ``getrusage(RUSAGE_CHILDREN)`` accumulates over every child a process
has ever waited for, so in ``run.py`` it would give the peak of all runs so far. A fresh launcher
per run has exactly one child, the measured command, and the kernel folds in that command's own
waited-for children (xdist workers, process pools). ``ru_maxrss`` is the largest single process
among them, not their sum.

Usage: ``python benchmarks/measure.py [--log FILE] -- COMMAND [ARGS...]``; the command's output
goes to FILE (default: discarded), and one JSON line goes to stdout:
``{"returncode": 0, "wall_s": 1.23, "maxrss_mb": 140.2}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def measure(command: list[str], log: Path | None) -> dict[str, float | int]:
    """Wall time around ``subprocess.run`` and the children's peak RSS afterwards."""
    with contextlib.ExitStack() as stack:
        output = stack.enter_context(log.open("wb")) if log is not None else subprocess.DEVNULL
        start = time.perf_counter()
        completed = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, check=False)
        wall = time.perf_counter() - start
    maxrss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return {"returncode": completed.returncode, "wall_s": wall, "maxrss_mb": maxrss_kib / 1024}


def main(argv: list[str]) -> int:
    """Parse ``[--log FILE] -- COMMAND...``, run it, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--log", type=Path, help="file for the command's stdout and stderr")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to measure")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    print(json.dumps(measure(command, args.log)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
