"""Walking the dataset and telling DICOM from other files by their first bytes.

No pydicom here: the sniff looks at the 128-byte preamble's ``DICM`` marker and, for files
written without a preamble, at whether the first element looks like a DICOM data set start.
"""

from __future__ import annotations

import enum
import os
import struct
from pathlib import Path

DICOM_EXTENSIONS = frozenset({".dcm", ".dicom", ".dic"})
HEAD_SIZE = 132
# Groups a data set written without preamble starts with: file meta, or the identifying group.
_FIRST_GROUPS = frozenset({0x0002, 0x0008})

_MAGIC = (
    (b"\xff\xd8\xff", "JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"GIF8", "GIF image"),
    (b"II*\x00", "TIFF image"),
    (b"MM\x00*", "TIFF image"),
    (b"BM", "BMP image"),
    (b"%PDF", "PDF document"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"\x1f\x8b", "gzip archive"),
    (b"\x93NUMPY", "NumPy array"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000 image"),
    (b"\x00\x00\x00\x18ftyp", "MP4/HEIF media"),
)


class Claim(enum.Enum):
    """How strongly a file's bytes and name say it is DICOM."""

    PREAMBLE = "DICM marker at byte 128"
    HEADERLESS = "starts like a DICOM data set without preamble"
    EXTENSION = "DICOM file extension"
    NONE = "no sign of DICOM"


def sorted_entries(folder: Path) -> list[os.DirEntry[str]]:
    """Directory entries sorted by name, the same in every process; unreadable folders are empty."""
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda e: e.name)
    except OSError:
        return []


def is_folder(entry: os.DirEntry[str]) -> bool:
    """A real folder: symbolic links to folders are not followed, so link loops cannot trap a walk."""
    return entry.is_dir(follow_symlinks=False)


def is_regular_file(entry: os.DirEntry[str]) -> bool:
    """A regular file, or a link to one. FIFOs, sockets, devices and broken or looping links are not
    dataset files: reading a FIFO would block, and a link loop raises instead of answering."""
    try:
        return entry.is_file()
    except OSError:
        return False


def printable(name: str) -> str:
    """A file name as valid UTF-8 text: bytes that are not UTF-8 are shown as ``\\xNN``.

    Python keeps such bytes as lone surrogates, which execnet (xdist), terminals and XML refuse.
    """
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def claim_of(head: bytes, name: str) -> Claim:
    """Classify a file from its first :data:`HEAD_SIZE` bytes and its name."""
    if head[128:132] == b"DICM":
        return Claim.PREAMBLE
    if os.path.splitext(name)[1].lower() in DICOM_EXTENSIONS:
        return Claim.EXTENSION  # a .dcm that cannot be parsed is unreadable, whatever its first bytes
    if _looks_like_dataset_start(head):
        return Claim.HEADERLESS
    return Claim.NONE


def describe_non_dicom(head: bytes) -> str:
    """A short human name for a non-DICOM file's format, from its magic bytes."""
    if not head:
        return "empty file"
    for magic, label in _MAGIC:
        if head.startswith(magic):
            return label
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "unknown binary format"
    return "text file"


def _looks_like_dataset_start(head: bytes) -> bool:
    if len(head) < 8:
        return False
    for order in "<>":
        group, _element = struct.unpack(order + "HH", head[:4])
        if group not in _FIRST_GROUPS:
            continue
        vr = head[4:6]
        if vr.isalpha() and vr.isupper():
            return True
        (length,) = struct.unpack(order + "I", head[4:8])
        if length < 0x10000:
            return True
    return False
