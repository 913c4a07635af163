"""Which optional decoders this environment has, decided once at test time.

Expectations that depend on what decodes (a 12-bit JPEG fails without pylibjpeg-libjpeg, as
the README says, and decodes with it, as ``pip install pylibjpeg-libjpeg`` promises) read this
module, so installing a decoder changes the expectation instead of failing a test.
"""

from __future__ import annotations

from importlib import metadata


def installed(distribution: str) -> bool:
    try:
        metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


JPEG_12_BIT = installed("pylibjpeg-libjpeg")
"""12-bit JPEG Extended has one decoder, GPL-3.0 and so not a dependency."""
