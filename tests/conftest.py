"""Fixtures shared by the plugin tests."""

from __future__ import annotations

import contextlib
import os

import pytest

from tests.helpers import MODES, Runner

# pytester restores sys.modules after every in-process run. hypothesis' pytest plugin imports
# hypothesis lazily at the end of each run, so without this import every inner run would import
# (and assertion-rewrite) it again: about a second per run. Optional: this conftest is also
# loaded by the README's first command (pytest --dicom-dir=... in the repo, testpaths = tests),
# where only the plugin's own dependencies are installed.
with contextlib.suppress(ImportError):
    import hypothesis  # noqa: F401
# Likewise for the read-ahead pool: after an inner run pytester drops the modules that run imported,
# but ``concurrent.futures`` keeps the ``ProcessPoolExecutor`` of the dropped module, and the next
# run's pool (64 files or more start one) fails to pickle its worker function ("not the same object").
import concurrent.futures.process  # noqa: F401  isort: skip

pytest_plugins = ["pytester"]


INNER_RUN_OPTIONS = "-p no:benchmark -p no:hypothesispytest"
"""Plugins an inner pytest run (pytester, a started process) never uses: pytest-benchmark, where
installed, and hypothesis' plugin doubled the time of a ``-n 2`` run (5.5 s -> 2.8 s), loaded in
each of its three processes."""


@pytest.fixture(autouse=True)
def lean_inner_runs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")  # it clears PYTEST_ADDOPTS for its runs: set it after
    monkeypatch.setenv("PYTEST_ADDOPTS", f"{os.environ.get('PYTEST_ADDOPTS', '')} {INNER_RUN_OPTIONS}".strip())


@pytest.fixture(params=list(MODES))
def run(request: pytest.FixtureRequest, pytester: pytest.Pytester) -> Runner:
    """Runs pytest plain, with ``-p no:xdist`` and with ``-n 2``: every report test runs all three."""
    return Runner(pytester, request.param)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under mutation testing (mutmut sets MUTANT_UNDER_TEST in every phase) the pure modules are
    tested by their fast tests: whole pytest runs through pytester are left out, except the
    settings tests, which is the only way settings are reached. One such run costs what a hundred
    unit tests cost, and mutmut runs every test that reaches a mutant (tests/README.md)."""
    if "MUTANT_UNDER_TEST" not in os.environ:
        return
    plugin_runs = [
        i for i in items if "pytester" in getattr(i, "fixturenames", ()) and i.path.name != "test_settings.py"
    ]
    if plugin_runs:
        config.hook.pytest_deselected(items=plugin_runs)
        items[:] = [item for item in items if item not in plugin_runs]
