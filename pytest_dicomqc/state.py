"""Where the plugin keeps its one piece of state per process: the config's stash, under one key.

A module of its own, light enough for every pytest run to import: the state itself
(:class:`~pytest_dicomqc.session.DicomQCSession`) is created, and its modules imported, only when
a dataset is configured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pytest_dicomqc.record import ITEM_NAME

__all__ = ["ITEM_NAME", "SESSION_KEY"]

if TYPE_CHECKING:
    from pytest_dicomqc.session import DicomQCSession  # noqa: F401 - named in SESSION_KEY's type

SESSION_KEY = pytest.StashKey["DicomQCSession"]()
