"""Checking a rules file (and a waivers file) without reading any dataset.

``python -m pytest_dicomqc lint rules.yaml [--waivers waivers.yaml]`` (:mod:`pytest_dicomqc.cli`)
and ``pytest --dicom-rules-check`` both load the files exactly as a run would: the YAML, the
schema, the DICOM keywords, the regular expressions and every rule's ``examples``.
"""

from __future__ import annotations

from pytest_dicomqc.rules.model import RuleSet


def summary(ruleset: RuleSet) -> str:
    """One line: what the files hold, for the person who just fixed them."""
    warnings = sum(1 for rule in ruleset.rules if rule.severity == "warning")
    thresholds = sum(1 for rule in ruleset.rules if rule.max_failing is not None)
    expired = sum(1 for waiver in ruleset.waivers if waiver.expired)
    return (
        f"{ruleset.source}: valid: {len(ruleset.rules)} rules ({warnings} warning, {thresholds} with max_failing), "
        f"{len(ruleset.dataset)} dataset checks, {len(ruleset.waivers)} waivers ({expired} expired)"
    )
