"""Fixtures shared by the plugin tests."""

from __future__ import annotations

import contextlib

import pytest

from tests.helpers import MODES, Runner

# pytester restores sys.modules after every in-process run. hypothesis' pytest plugin imports
# hypothesis lazily at the end of each run, so without this import every inner run would import
# (and assertion-rewrite) it again: about a second per run. Optional: this conftest is also
# loaded by the README's first command (pytest --dicom-dir=... in the repo, testpaths = tests),
# where only the plugin's own dependencies are installed.
with contextlib.suppress(ImportError):
    import hypothesis  # noqa: F401

pytest_plugins = ["pytester"]


@pytest.fixture(params=list(MODES))
def run(request: pytest.FixtureRequest, pytester: pytest.Pytester) -> Runner:
    """Runs pytest plain, with ``-p no:xdist`` and with ``-n 2``: every report test runs all three."""
    return Runner(pytester, request.param)
