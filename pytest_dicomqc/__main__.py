"""``python -m pytest_dicomqc lint|diff|merge``: see :mod:`pytest_dicomqc.cli`."""

from __future__ import annotations

import sys

from pytest_dicomqc.cli import main

sys.exit(main())
