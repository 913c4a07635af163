"""pytest-dicomqc: a pytest plugin that checks every file of a DICOM dataset against YAML rules."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pandas import DataFrame

__version__ = "0.1.0"
__all__ = ["__version__", "load_report"]


def load_report(path: str | os.PathLike[str]) -> dict[str, DataFrame]:
    """A report workbook as one pandas frame per sheet: see :func:`pytest_dicomqc.readback.load_report`.

    pandas is imported on the first call, never by ``import pytest_dicomqc`` (every pytest run).
    """
    from pytest_dicomqc import readback

    return readback.load_report(path)
