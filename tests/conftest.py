"""Fixtures shared by the plugin tests."""

from __future__ import annotations

import pytest

from tests.helpers import MODES, Runner

pytest_plugins = ["pytester"]


@pytest.fixture(params=list(MODES))
def run(request: pytest.FixtureRequest, pytester: pytest.Pytester) -> Runner:
    """Runs pytest plain, with ``-p no:xdist`` and with ``-n 2``: every report test runs all three."""
    return Runner(pytester, request.param)
