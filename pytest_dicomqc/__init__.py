"""pytest-dicomqc: a pytest plugin that checks every file of a DICOM dataset against YAML rules."""

from __future__ import annotations

__version__ = "0.1.0"
