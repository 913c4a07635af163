"""A dataset of every odd file a real dataset folder can hold, for the hostile-input tests.

Each case is named for what it is; ``EXPECTED`` says what the report must say about it. Files
that a conftest makes vanish or turn into a FIFO between collection and run are listed too.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import warnings
from pathlib import Path

import pydicom
from pydicom import Dataset
from pydicom.data import get_testdata_file
from pydicom.sequence import Sequence

from tests.helpers import write_dicom

HOSTILE_VALUES = {
    "formula": '=HYPERLINK("http://evil.invalid","click")',
    "plus": "+1+2",
    "minus": "-3-4",
    "at": "@SUM(A1:A9)",
    "tab": "\tstarts with tab",
    "carriage": "\rstarts with CR",
    "controls": "a\x07b\x1bc",
}
NON_UTF8_NAME = os.fsdecode(b"latin1-\xe9.dcm")
LONG_NAME = "x" * 200 + ".dcm"
#: (path, kind, status, how the error column starts: "" means no error at all); None: no row (not a regular file)
EXPECTED: dict[str, tuple[str, str, str] | None] = {
    "empty.dcm": (
        "unreadable",
        "failed",
        "not a valid DICOM file (DICOM file extension): no DICOM data elements found: empty or truncated data set"
        " (0 bytes); content looks like: empty file",
    ),
    "random.dcm": (
        "unreadable",
        "failed",
        "not a valid DICOM file (DICOM file extension): no DICOM data elements found: empty or truncated data set"
        " (2000 bytes); content looks like: unknown binary format",
    ),
    "dicm-garbage.dcm": (
        "unreadable",
        "failed",
        "not a valid DICOM file (DICM marker at byte 128): no DICOM data elements found: empty or truncated data set"
        " (632 bytes)",
    ),
    "truncated/header.dcm": (
        "unreadable",
        "failed",
        "not a valid DICOM file (DICOM file extension): no DICOM data elements found: empty or truncated data set"
        " (100 bytes); content looks like: text file",
    ),
    "truncated/element.dcm": (
        "dicom",
        "failed",
        "file is truncated or corrupt: element (0008,0018) declares 36 bytes but only 6 follow",
    ),
    "truncated/pixels.dcm": (
        "dicom",
        "failed",
        "file is truncated or corrupt: element (7FE0,0010) declares 128 bytes but only 88 follow",
    ),
    "absurd-length.dcm": (
        "dicom",
        "failed",
        "file is truncated or corrupt: element (7FE0,0010) declares 4294967280 bytes but only 128 follow",
    ),
    "deep-sequence.dcm": ("dicom", "passed", ""),
    # pydicom's own words follow the prefix
    "frames-mismatch.dcm": (
        "dicom",
        "failed",
        "pixel data cannot be decoded: The number of bytes of pixel data is less than expected",
    ),
    "rows-mismatch.dcm": (
        "dicom",
        "failed",
        "pixel data cannot be decoded: The number of bytes of pixel data is less than expected",
    ),
    # read and decoded without error; they fail only on the default rules (DERIVED), see FAILED_RULES
    "big-endian.dcm": ("dicom", "failed", ""),
    "implicit-vr.dcm": ("dicom", "failed", ""),
    "no-preamble.dcm": ("dicom", "passed", ""),
    "DICOMDIR": ("dicom", "passed", ""),
    "vanishing.dcm": ("unreadable", "failed", "cannot open file: No such file or directory"),
    "becomes-fifo.dcm": ("unreadable", "failed", "not a regular file (FIFO, socket or device)"),
    "names/with space.dcm": ("dicom", "passed", ""),
    "names/日本語.dcm": ("dicom", "passed", ""),
    f"names/{LONG_NAME}": ("dicom", "passed", ""),
    "names/latin1-\\xe9.dcm": ("dicom", "passed", ""),
    "values/iso2022.dcm": ("dicom", "passed", ""),
    "values/long-text.dcm": ("dicom", "passed", ""),
    **{f"values/{name}.dcm": ("dicom", "passed", "") for name in HOSTILE_VALUES},
    "pipe": None,
    "socket": None,
    "loop": None,
}
#: Files that are read and decoded but break a default rule: their failed rules, and the dtype decoded.
FAILED_RULES = {"big-endian.dcm": ("original-image", "int16"), "implicit-vr.dcm": ("original-image", "int16")}
#: A conftest for the project around the dataset: files that change between collection and run.
CONFTEST = """
import os

import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):  # just before the file's check: dataset files have no setup phase
    if item.path.name == "vanishing.dcm":
        item.path.unlink(missing_ok=True)
    elif item.path.name == "becomes-fifo.dcm" and not os.path.exists(str(item.path) + ".done"):
        item.path.unlink()
        os.mkfifo(item.path)
        open(str(item.path) + ".done", "w").close()
"""


def build(root: Path) -> Path:
    """Create the hostile dataset at ``root`` (replacing it); returns the folder that holds it."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    good = write_dicom(root / "names" / "with space.dcm")
    raw = good.read_bytes()
    (root / "empty.dcm").write_bytes(b"")
    (root / "random.dcm").write_bytes(random.Random(4).randbytes(2000))
    (root / "dicm-garbage.dcm").write_bytes(b"\0" * 128 + b"DICM" + random.Random(5).randbytes(500))
    (root / "truncated").mkdir()
    (root / "truncated" / "header.dcm").write_bytes(raw[:100])
    (root / "truncated" / "element.dcm").write_bytes(raw[:400])
    (root / "truncated" / "pixels.dcm").write_bytes(raw[:-40])
    pixel_length = raw.rindex(b"\xe0\x7f\x10\x00OW\x00\x00") + 8
    (root / "absurd-length.dcm").write_bytes(raw[:pixel_length] + b"\xf0\xff\xff\xff" + raw[pixel_length + 4 :])
    _deep_sequence(write_dicom(root / "deep-sequence.dcm"))
    write_dicom(root / "frames-mismatch.dcm", NumberOfFrames=5)
    write_dicom(root / "rows-mismatch.dcm", Rows=512)
    for name, source in (
        ("big-endian.dcm", "MR_small_bigendian.dcm"),
        ("implicit-vr.dcm", "MR_small_implicit.dcm"),
        ("no-preamble.dcm", "ExplVR_LitEndNoMeta.dcm"),
        ("DICOMDIR", "DICOMDIR"),
    ):
        shutil.copy(get_testdata_file(source, download=False), root / name)
    write_dicom(root / "vanishing.dcm")
    write_dicom(root / "becomes-fifo.dcm")
    for name in ("日本語.dcm", LONG_NAME, NON_UTF8_NAME):
        shutil.copy(good, root / "names" / name)
    for name, text in HOSTILE_VALUES.items():
        write_dicom(root / "values" / f"{name}.dcm", Manufacturer=text, StudyDescription=text)
    _iso2022(write_dicom(root / "values" / "iso2022.dcm"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LT is 10,240 characters at most: that is the point
        write_dicom(root / "values" / "long-text.dcm", ImageComments="L" * 40_000)
    os.mkfifo(root / "pipe")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(root / "socket"))
    listener.close()
    os.symlink("loop", root / "loop")
    os.symlink("..", root / "names" / "up")  # a folder link: not followed
    return root


def _deep_sequence(path: Path) -> None:
    ds = pydicom.dcmread(path)
    inner = Dataset()
    inner.CodeValue = "X"
    for _ in range(150):
        outer = Dataset()
        outer.ConceptNameCodeSequence = Sequence([inner])
        outer.ConceptNameCodeSequence.is_undefined_length = True
        inner = outer
    ds.ContentSequence = Sequence([inner])
    ds.ContentSequence.is_undefined_length = True
    ds.save_as(path)


def _iso2022(path: Path) -> None:
    ds = pydicom.dcmread(path)
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.StudyDescription = "山田\x1b(Bx"
    ds.Manufacturer = "ヤマダ"
    ds.save_as(path)


REGULAR_FILES = sorted(path for path, expected in EXPECTED.items() if expected is not None)
