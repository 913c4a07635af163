"""``python -m pytest_dicomqc lint rules.yaml``: see :mod:`pytest_dicomqc.lint`."""

from __future__ import annotations

import sys

from pytest_dicomqc.lint import main

sys.exit(main())
