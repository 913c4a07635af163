"""The trivial-items floor: pytest's own cost of one do-nothing item per file of a folder.

What any dataset plugin pays at least, whatever it checks: pytest collects one node per file,
runs it and reports it. ``benchmarks/run.py`` runs
``python -m pytest -q -p no:cacheprovider -p floor_plugin DATASET`` with this folder on
``PYTHONPATH`` (variant ``floor``) and holds the plugin's time and peak RSS against it (issue 13).
A copy of the workplace's ``shared/bench/floor_plugin.py``: keep the two the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


class FileItem(pytest.Item):
    """One item per file that does nothing."""

    def runtest(self) -> None:
        pass

    def reportinfo(self) -> tuple[Path, None, str]:
        return self.path, None, self.name


def pytest_collect_file(file_path: Path, parent: Any) -> FileItem:
    return FileItem.from_parent(parent, name=file_path.name, path=file_path)
