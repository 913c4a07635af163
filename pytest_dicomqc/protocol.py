"""How a dataset file runs as a test: pytest's call phase alone, one report per file.

A dataset item has no fixtures, so pytest's setup and teardown phases do nothing for it, yet they
cost two of every item's three reports, and the terminal keeps the passed ones to the end of the
session. For each failure it then scans them all (pytest issue #13360): a run in which thousands
of files fail turned quadratic. Here a file runs as pytest-rerunfailures runs its tests, by
pytest's own steps: ``logstart``, the call phase (``pytest_runtest_call``, ``makereport``,
``logreport``, ``--pdb``), ``logfinish``. Hooks and plugins that act on those (output capture,
``-x``, ``--maxfail``, ``--lf``, ``--sw``, junitxml, xdist, pytest-timeout) see what they see for
any test; ``pytest_runtest_setup`` and ``pytest_runtest_teardown`` are not called.

pytest's standard protocol runs the item instead where setup or teardown would do something:
a ``skip``/``skipif`` mark on it, ``--setup-only``/``--setup-plan``/``--setup-show``, or a test of
another kind right after it (its collectors are set up and torn down as pytest does between tests).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

try:  # pytest's own pieces, private: without them every item runs by pytest's standard protocol
    from _pytest.logging import caplog_handler_key, caplog_records_key
    from _pytest.runner import call_and_report  # as pytest-rerunfailures uses it
except ImportError:  # pragma: no cover
    call_and_report = None  # type: ignore[assignment]

SETUP_MARKS = frozenset({"skip", "skipif"})
"""Marks pytest acts on in the setup phase (``xfail`` is also evaluated in the call phase)."""
SETUP_OPTIONS = ("setuponly", "setupplan", "setupshow")


def runs_alone(item: pytest.Item, nextitem: pytest.Item | None, dataset_nodes: tuple[type, ...]) -> bool:
    """Run ``item`` by its call phase alone, if nothing needs its setup or teardown; ``False``
    leaves it to pytest's standard protocol. ``dataset_nodes``: the node types of the dataset,
    whose setup and teardown do nothing."""
    if call_and_report is None or (nextitem is not None and not isinstance(nextitem, dataset_nodes)):
        return False
    option: Any = item.config.option
    if any(getattr(option, name, False) for name in SETUP_OPTIONS):
        return False
    if any(mark.name in SETUP_MARKS for mark in item.iter_markers()):
        return False
    _leave_folders_set_up_before(item, dataset_nodes)
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    stash = item.stash
    stash[caplog_records_key] = {}  # what pytest's logging plugin sets in the setup phase
    try:
        call_and_report(item, "call", log=True)
    finally:  # and what its and pytest's own teardown take away again
        del stash[caplog_records_key]
        if caplog_handler_key in stash:
            del stash[caplog_handler_key]
        os.environ.pop("PYTEST_CURRENT_TEST", None)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _leave_folders_set_up_before(item: pytest.Item, dataset_nodes: tuple[type, ...]) -> None:
    """A file run by the standard protocol (a ``skipif`` mark whose condition was false) left its
    folders set up for the next file, as pytest does; this file may be in another folder, and the
    next file pytest sets up would find the first one still there ("previous item was not torn
    down properly"). Tear down what this file does not descend from, as pytest would before it:
    dataset folders, whose teardown does nothing. Only then: most files find no dataset node set up."""
    stack = item.session._setupstate.stack
    if stack and isinstance(next(reversed(stack)), dataset_nodes):
        item.session._setupstate.teardown_exact(item)
