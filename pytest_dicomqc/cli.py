"""``python -m pytest_dicomqc COMMAND``: the commands that work on a project's files without a test run.

``lint`` checks a rules file (:mod:`pytest_dicomqc.lint`); ``diff`` compares two reports
(:mod:`pytest_dicomqc.compare`); ``merge`` judges the shards of one run as one
(:mod:`pytest_dicomqc.merge`). One subparser per command, one entry in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_dicomqc.compare import compare, terminal_lines
from pytest_dicomqc.lint import summary
from pytest_dicomqc.rules.load import RulesError, load_rules, load_waivers
from pytest_dicomqc.settings import DEFAULT_REPORT, check_writable

EXIT_VALID = 0
EXIT_INVALID = 4  # pytest's usage error, as for the same mistake found by a test run
EXIT_INTERNAL = 3  # pytest's internal error
DIFF_LIMIT = 50
"""Changes ``diff`` lists by default; ``--limit 0`` lists all."""


@dataclass(frozen=True)
class Command:
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    """Returns the exit status."""


def _lint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rules", type=Path, help="the rules file, e.g. rules.yaml")
    parser.add_argument("--waivers", type=Path, help="a waivers file to validate against the rules")


def _lint(arguments: argparse.Namespace) -> int:
    try:
        ruleset = load_rules(arguments.rules)
        if arguments.waivers is not None:
            ruleset = load_waivers(arguments.waivers, ruleset)
    except RulesError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(summary(ruleset))
    return EXIT_VALID


def _diff_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", type=Path, help="the baseline report, e.g. main/metadata_dicom.xlsx")
    parser.add_argument("new", type=Path, help="the report to compare with it")
    parser.add_argument(
        "--limit", type=_count, default=DIFF_LIMIT, help=f"changes to list (default {DIFF_LIMIT}; 0: all)"
    )


def _count(text: str) -> int:
    number = int(text)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return number


def _diff(arguments: argparse.Namespace) -> int:
    from pytest_dicomqc.readback import ReportError, load_tables  # pandas: only for this command

    try:
        old, new = load_tables(arguments.old), load_tables(arguments.new)
    except ReportError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return EXIT_INVALID
    comparison = compare(old, new)
    print("\n".join(terminal_lines(comparison, arguments.limit or None, rest="--limit 0 lists all")))
    return comparison.exit_status


def _merge_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("parts", type=Path, nargs="+", help="the part files of every shard (--dicom-records)")
    parser.add_argument(
        "--dicom-report", type=Path, default=Path(DEFAULT_REPORT), metavar="PATH", help="Excel report to write"
    )
    parser.add_argument("--dicom-json", type=Path, metavar="PATH", help="also write JSON Lines")
    parser.add_argument("--junitxml", type=Path, metavar="PATH", help="also write JUnit XML")


def _merge(arguments: argparse.Namespace) -> int:
    from pytest_dicomqc.merge import Outputs, merge  # pydicom: only for this command
    from pytest_dicomqc.parts import PartError

    outputs = Outputs(
        arguments.dicom_report.absolute(),
        arguments.dicom_json.absolute() if arguments.dicom_json else None,
        arguments.junitxml.absolute() if arguments.junitxml else None,
    )
    try:  # what a test run checks of its outputs, checked before an hour of reading
        check_writable(outputs.report, "--dicom-report")
        for option, path in (("--dicom-json", outputs.json), ("--junitxml", outputs.junitxml)):
            if path is not None:
                check_writable(path, option, suffix=None, what="output")
    except pytest.UsageError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        return merge(arguments.parts, outputs)
    except PartError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
    except OSError as exc:
        print(f"ERROR: cannot write {exc.filename or 'the report'}: {exc.strerror or exc}", file=sys.stderr)
    except Exception:  # noqa: BLE001 - a bug, or the writing process killed: never "the gate failed"
        print(f"ERROR: internal error while merging:\n{traceback.format_exc()}", file=sys.stderr)
        return EXIT_INTERNAL
    return EXIT_INVALID


COMMANDS = {
    "lint": Command("validate a rules file (and waivers) and run its rule examples", _lint_arguments, _lint),
    "diff": Command(
        "compare two reports: exit 1 when a file that passed (or was waived or skipped) now fails",
        _diff_arguments,
        _diff,
    ),
    "merge": Command(
        "judge the shards of one run (--dicom-shard, --dicom-records) as one: the report a single run writes,"
        " exit 0 or 1 like the gate, 4 when the parts do not form one run",
        _merge_arguments,
        _merge,
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_dicomqc", description="pytest-dicomqc's commands that need no test run"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        command.arguments(commands.add_parser(name, help=command.help, description=command.help))
    arguments = parser.parse_args(argv)
    return COMMANDS[arguments.command].run(arguments)
