"""Hostile reading end to end: a NUL inside a value, sequences nested deeply, huge files of zeros
or random bytes. Every run is a pytest subprocess (a crash must not take this test run with it),
in the three places files are read, with a timeout and a bound on its memory."""

from __future__ import annotations

import random
import resource
import struct
import warnings
from pathlib import Path
from typing import Any

import pytest

from pytest_dicomqc.reader import MAX_NESTING, START_SIZE
from tests.helpers import read_sheet, write_dicom

TIMEOUT = 120
"""Seconds a run may take: generous, yet far below what a full parse of the huge files takes."""
MAX_RSS = 1536 * 2**20
"""Bytes the largest process of a run may hold: less than reading the huge random file whole takes."""
MODES = {"plain": (), "xdist": ("-n", "2"), "readers": ("--dicom-workers=1",)}
"""Where files are read: in pytest's loop, in xdist workers, in a reading process."""


def run(pytester: pytest.Pytester, mode: str) -> tuple[dict[Any, dict[str, Any]], str]:
    """pytest on ``data`` in a subprocess: the Files sheet's rows by path, and the terminal output."""
    result = pytester.runpytest_subprocess(
        *MODES[mode], "-p", "no:cacheprovider", "--dicom-dir=data", f"--dicom-report={mode}.xlsx", timeout=TIMEOUT
    )
    output = result.stdout.str() + result.stderr.str()
    # in KiB on Linux: the largest of the processes this one has waited for (runs of earlier tests
    # too), and of theirs (xdist workers, reading processes)
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 < MAX_RSS
    assert result.ret == 1, output[-3000:]
    assert "INTERNALERROR" not in output and "crashed" not in output and "Traceback" not in output, output[-3000:]
    return {row["path"]: row for row in read_sheet(pytester.path / f"{mode}.xlsx")}, output


def outcomes(rows: dict[Any, dict[str, Any]]) -> dict[Any, tuple[Any, ...]]:
    return {path: (row["kind"], row["status"], row["error"]) for path, row in rows.items()}


# --- a NUL inside a value -----------------------------------------------------------------------

NUL_RULES = """\
version: 1
columns: [ImageComments]
rules:
  - id: original-image
    tag: ImageType
    contains: ORIGINAL
  - id: as-shown
    tag: ImageType
    equals: 'ORIG\\x00INAL\\PRIMARY'
"""


@pytest.mark.parametrize("mode", MODES)
def test_a_nul_in_a_value_is_shown_as_the_rules_saw_it(pytester: pytest.Pytester, mode: str) -> None:
    """The cell, the failure message and the terminal show ``\\x00`` where the value holds a NUL,
    and a rule comparing with that text holds; the four characters ``\\x00`` typed into a text
    value stay apart from it (``\\\\x00``)."""
    (pytester.path / "rules.yaml").write_text(NUL_RULES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns of the NUL: that is the point
        write_dicom(pytester.path / "data" / "nul.dcm", image_type="ORIG\x00INAL\\PRIMARY")
    write_dicom(pytester.path / "data" / "typed.dcm", image_type="ORIGINAL\\PRIMARY", ImageComments="ORIG\\x00INAL")
    rows, output = run(pytester, mode)
    shown = {
        path: (row["status"], row["ImageType"], row["ImageComments"], row["original-image"], row["as-shown"])
        for path, row in rows.items()
    }
    assert shown == {
        "nul.dcm": ("failed", "ORIG\\x00INAL\\PRIMARY", None, "FAIL", "PASS"),
        "typed.dcm": ("failed", "ORIGINAL\\PRIMARY", "ORIG\\\\x00INAL", "PASS", "FAIL"),
    }
    assert "\x00" not in output
    lines = output.splitlines()
    assert "original-image: ImageType = ORIG\\x00INAL\\PRIMARY, expected to contain 'ORIGINAL'" in lines
    assert "as-shown: ImageType = ORIGINAL\\PRIMARY, expected equal to 'ORIG\\x00INAL\\PRIMARY'" in lines


# --- sequences nested deeply --------------------------------------------------------------------

UNDEFINED = 0xFFFFFFFF
OPENING = struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, UNDEFINED) + struct.pack("<HHI", 0xFFFE, 0xE000, UNDEFINED)
"""ContentSequence and its item, both of undefined length (explicit VR little endian)."""
INNERMOST = struct.pack("<HH2sH", 0x0008, 0x0100, b"SH", 2) + b"X "
CLOSING = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
"""Item and sequence delimiters."""


def nest(path: Path, depth: int) -> Path:
    """Put a ContentSequence nested ``depth`` deep into the explicit VR little endian file at ``path``."""
    raw = path.read_bytes()
    pixels = raw.rindex(b"\xe0\x7f\x10\x00OW")  # (0040,A730) goes before the pixel data
    path.write_bytes(raw[:pixels] + OPENING * depth + INNERMOST + CLOSING * depth + raw[pixels:])
    return path


TOO_DEEP = ("unreadable", "failed", f"cannot parse DICOM: sequences nested deeper than {MAX_NESTING} levels")
DEEP = {200: ("dicom", "passed", None), MAX_NESTING: ("dicom", "passed", None), 5_000: TOO_DEEP, 100_000: TOO_DEEP}


@pytest.mark.parametrize("mode", MODES)
def test_deeply_nested_sequences_read_or_fail_with_the_reason(pytester: pytest.Pytester, mode: str) -> None:
    """Read up to MAX_NESTING levels; deeper files fail with the reason, and no depth crashes a
    process (a C stack overflow ends it: under xdist its files would be ``crashed``)."""
    for depth in DEEP:
        nest(write_dicom(pytester.path / "data" / f"deep-{depth}.dcm"), depth)
    rows, _ = run(pytester, mode)
    assert outcomes(rows) == {f"deep-{depth}.dcm": expected for depth, expected in DEEP.items()}


# --- huge files of zeros or random bytes --------------------------------------------------------

ZEROS_SIZE = 200 * 2**20
RANDOM_SIZE = 1600 * 2**20
NO_DATA_SET = "no DICOM data elements found: empty or truncated data set"
HUGE_FILES = {
    "zeros.dcm": (
        "unreadable",
        "failed",
        # zeros are valid UTF-8: discover.describe_non_dicom calls them text
        f"not a valid DICOM file (DICOM file extension): {NO_DATA_SET} ({ZEROS_SIZE} bytes); "
        "content looks like: text file",
    ),
    "dicm-zeros.dcm": (
        "unreadable",
        "failed",
        f"not a valid DICOM file (DICM marker at byte 128): {NO_DATA_SET} ({ZEROS_SIZE} bytes)",
    ),
    "random.dcm": (
        "unreadable",
        "failed",
        f"not a valid DICOM file (DICOM file extension): {NO_DATA_SET} ({RANDOM_SIZE} bytes); "
        "content looks like: unknown binary format",
    ),
    "zeros": ("non-dicom", "skipped", None),
    "random": ("non-dicom", "skipped", None),
}


def sparse(path: Path, start: bytes, size: int) -> None:
    """``start``, then zeros up to ``size`` bytes: written at once, on (almost) no disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(start)
        handle.truncate(size)


@pytest.mark.parametrize("mode", MODES)
def test_huge_files_of_zeros_or_random_bytes_are_judged_from_their_start(pytester: pytest.Pytester, mode: str) -> None:
    """Zeros parse as endless empty elements (minutes for 200 MB read whole) and random bytes as
    elements of random length, read into memory. The random files are random for their first
    START_SIZE bytes and sparse beyond: the first element of this seed claims more than the
    whole 1.6 GB, which a reader that follows it holds in memory at once."""
    data = pytester.path / "data"
    noise = random.Random(3).randbytes(START_SIZE)
    sparse(data / "zeros.dcm", b"", ZEROS_SIZE)
    sparse(data / "zeros", b"", ZEROS_SIZE)
    sparse(data / "dicm-zeros.dcm", b"\0" * 128 + b"DICM", ZEROS_SIZE)
    sparse(data / "random.dcm", noise, RANDOM_SIZE)
    sparse(data / "random", noise, RANDOM_SIZE)
    rows, _ = run(pytester, mode)
    assert outcomes(rows) == HUGE_FILES
