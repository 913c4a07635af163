"""Walking the dataset and telling DICOM from other files by their first bytes.

No pydicom here: the sniff looks at the 128-byte preamble's ``DICM`` marker and, for files
written without a preamble, at whether the first element looks like a DICOM data set start.
Git LFS pointers (files ``git lfs pull`` has not replaced by their content) are told by content.
"""

from __future__ import annotations

import enum
import os
import re
import struct
from pathlib import Path

DICOM_EXTENSIONS = frozenset({".dcm", ".dicom", ".dic"})
HEAD_SIZE = 132
LFS_POINTER_MAX_SIZE = 1024
"""Git LFS never treats a larger file as a pointer (its ``blobSizeCutoff``)."""
LFS_POINTER_START = b"version "
"""Every Git LFS pointer starts so: only such small files are read whole to tell."""
LFS_POINTER_NOTE = "Git LFS pointer (not downloaded: run git lfs pull)"
"""The ``notes`` of a Git LFS pointer file begin with this: the file is a placeholder for data
that was never fetched. Such a file is ``non-dicom`` and fails unless a ``non_dicom`` glob says
otherwise. Count them with :func:`is_lfs_pointer_note` on a record's ``values["notes"]``."""
_LFS_VERSIONS = frozenset(
    {
        "https://git-lfs.github.com/spec/v1",
        "https://hawser.github.com/spec/v1",  # pre-release pointers, still accepted by git-lfs
        "http://git-media.io/v/2",  # alpha
    }
)
_LFS_EXTENSION = re.compile(r"ext-[0-9]-\w+ \S+")
_LFS_OID = re.compile(r"oid sha256:[0-9a-fA-F]{64}")
_LFS_SIZE = re.compile(r"size ([0-9]+)")
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
    """Directory entries sorted by name as the report shows it (:func:`printable`), the same in
    every process, and the order in which shards' parts merge; unreadable folders are empty."""
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda e: printable(e.name))
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
    """A file name as valid UTF-8 text: bytes that are not UTF-8, and control characters (a
    newline splits terminal and junitxml lines), are shown as ``\\xNN``, and a backslash in the
    name as ``\\\\``, so that no two names look the same (``caf\\xe9.dcm`` written with a
    backslash is not the byte 0xE9). Names without any of them are unchanged.

    Python keeps such bytes as lone surrogates, which execnet (xdist), terminals and XML refuse.
    On Windows a backslash separates folders and is never part of a name: it is kept as it is.
    """
    raw = os.fsencode(name)
    if os.sep != "\\":
        raw = raw.replace(b"\\", b"\\\\")  # ASCII: never part of a multi-byte UTF-8 character
    text = raw.decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text) if _CONTROL.search(text) else text


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def claim_of(head: bytes, name: str) -> Claim:
    """Classify a file from its first :data:`HEAD_SIZE` bytes and its name."""
    if head[128:132] == b"DICM":
        return Claim.PREAMBLE
    if os.path.splitext(name)[1].lower() in DICOM_EXTENSIONS:
        return Claim.EXTENSION  # a .dcm that cannot be parsed is unreadable, whatever its first bytes
    if _looks_like_dataset_start(head):
        return Claim.HEADERLESS
    return Claim.NONE


def lfs_pointer_size(content: bytes) -> int | None:
    """The size of the file a Git LFS pointer stands for, or None if ``content`` (a whole file)
    is not a pointer: the placeholder a clone without ``git lfs pull`` leaves, e.g.
    ``version https://git-lfs.github.com/spec/v1``, ``oid sha256:<64 hex>``, ``size <bytes>``,
    one per line, as git-lfs itself parses them (whatever the file's name).
    """
    if len(content) > LFS_POINTER_MAX_SIZE or not content.startswith(LFS_POINTER_START):
        return None
    try:
        lines = [line.strip() for line in content.decode("ascii").splitlines() if line.strip()]
    except UnicodeDecodeError:
        return None
    if len(lines) < 3 or lines[0].partition(" ")[2] not in _LFS_VERSIONS:
        return None
    *extensions, oid, size = lines[1:]
    if not all(_LFS_EXTENSION.fullmatch(line) for line in extensions) or not _LFS_OID.fullmatch(oid):
        return None
    found = _LFS_SIZE.fullmatch(size)
    return int(found.group(1)) if found else None


def is_lfs_pointer_note(notes: object) -> bool:
    """Whether a record's ``values["notes"]`` says the file is a Git LFS pointer."""
    return isinstance(notes, str) and notes.startswith(LFS_POINTER_NOTE)


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
