"""Checking a rules file (and a waivers file) without reading any dataset.

``python -m pytest_dicomqc lint rules.yaml [--waivers waivers.yaml]`` and
``pytest --dicom-rules-check`` both load the files exactly as a run would: the YAML, the
schema, the DICOM keywords, the regular expressions and every rule's ``examples``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_dicomqc.rules.load import RulesError, load_rules, load_waivers
from pytest_dicomqc.rules.model import RuleSet

EXIT_VALID = 0
EXIT_INVALID = 4  # pytest's usage error, as for the same mistake found by a test run


def summary(ruleset: RuleSet) -> str:
    """One line: what the files hold, for the person who just fixed them."""
    warnings = sum(1 for rule in ruleset.rules if rule.severity == "warning")
    thresholds = sum(1 for rule in ruleset.rules if rule.max_failing is not None)
    expired = sum(1 for waiver in ruleset.waivers if waiver.expired)
    return (
        f"{ruleset.source}: valid: {len(ruleset.rules)} rules ({warnings} warning, {thresholds} with max_failing), "
        f"{len(ruleset.dataset)} dataset checks, {len(ruleset.waivers)} waivers ({expired} expired)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_dicomqc", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    lint = commands.add_parser("lint", help="validate a rules file (and waivers) and run its rule examples")
    lint.add_argument("rules", type=Path, help="the rules file, e.g. rules.yaml")
    lint.add_argument("--waivers", type=Path, help="a waivers file to validate against the rules")
    arguments = parser.parse_args(argv)
    try:
        ruleset = load_rules(arguments.rules)
        if arguments.waivers is not None:
            ruleset = load_waivers(arguments.waivers, ruleset)
    except RulesError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(summary(ruleset))
    return EXIT_VALID
