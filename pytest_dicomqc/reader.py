"""pydicom I/O: parse one file, pull the wanted tags, and summarise its pixel data frame by frame.

Never raises for bad input: every problem ends up in :class:`Extraction` as a kind and an
error text a data manager can act on.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import resource
import stat
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xxhash
from pydicom import dcmread, uid
from pydicom.datadict import dictionary_has_tag, dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_fragmented_frames
from pydicom.errors import InvalidDicomError
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.utils import iter_pixels, pixel_array

from pytest_dicomqc.discover import (
    HEAD_SIZE,
    LFS_POINTER_MAX_SIZE,
    LFS_POINTER_NOTE,
    Claim,
    claim_of,
    describe_non_dicom,
    lfs_pointer_size,
)
from pytest_dicomqc.extract import MAX_TEXT, UNHANDLED, Unhandled, element_value, raw_value
from pytest_dicomqc.record import KIND_DICOM, KIND_NON_DICOM, KIND_UNREADABLE, Kind, Scalar, Value

PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
PIXEL_HASH = "xxh3-128"
"""The algorithm of :attr:`Extraction.pixel_hash`, which it names before a colon. Duplicate
images need a fast hash with few collisions, not a cryptographic one (xxh3-128 runs at memory
speed, SHA-256 at about 1.3 GB/s on one core)."""
MISSING_SYNTAX_NOTE = "file meta lacks TransferSyntaxUID (0002,0010)"
START_SIZE = 64 * 1024
"""Bytes a file without a file meta group is judged from first: if they hold no data set (see
:func:`_plausible`), the rest is not read. Zeros parse as endless 8-byte elements of group 0000
and random bytes as elements of any length, so a full parse of either costs time (and memory)
in proportion to the file's size."""
MAX_NESTING = 1000
"""Levels of undefined-length sequences a file may nest: pydicom's parser recurses per level."""
_FRAMES_PER_LEVEL = 5
"""Python frames pydicom's parser takes per level of nesting (four from Python 3.12)."""
_MAIN_STACK = 8 * 2**20
"""The C stack (RLIMIT_STACK) under which sequences are not read deeper than the recursion limit allows."""
_MAX_NOTES = 5
_PYDICOM_LOGGER = logging.getLogger("pydicom")
_PIXEL_MODULE_TAGS = {
    "SamplesPerPixel": 0x00280002,
    "PhotometricInterpretation": 0x00280004,
    "PlanarConfiguration": 0x00280006,
    "NumberOfFrames": 0x00280008,
    "Rows": 0x00280010,
    "Columns": 0x00280011,
    "BitsAllocated": 0x00280100,
    "BitsStored": 0x00280101,
    "PixelRepresentation": 0x00280103,
}
_PIXEL_MODULE = frozenset(_PIXEL_MODULE_TAGS.values())
_NATIVE_SYNTAXES = frozenset({uid.ImplicitVRLittleEndian, uid.ExplicitVRLittleEndian})
"""Big endian is left to pydicom: 8-bit samples in OW words come byte-swapped in pairs."""
_SAFER_PLUGIN = {str(syntax): "pyjpegls" for syntax in uid.JPEGLSTransferSyntaxes} | {
    str(syntax): "pylibjpeg" for syntax in uid.JPEG2000TransferSyntaxes
}
_GPL_HINT = {
    uid.JPEGExtended12Bit: "12-bit JPEG Extended is decoded by pylibjpeg-libjpeg (GPL-3.0): "
    "pip install pylibjpeg-libjpeg",
}


@dataclass
class Extraction:
    """Raw facts about one file, before rules; filled in by :func:`read`."""

    kind: Kind
    size_bytes: int = 0
    error: str = ""
    notes: list[str] = field(default_factory=list)
    tags: dict[int, Value] = field(default_factory=dict)
    pixels: dict[str, Scalar] = field(default_factory=dict)
    transfer_syntax: str = ""
    sop_class: str = ""
    has_pixel_data: bool = False
    pixel_hash: str = ""
    """``xxh3-128:`` and the 32 hex digits of the :data:`PIXEL_HASH` of the decoded pixel values
    (every frame, then dtype, shape and frame count), if asked for and decodable; else ""."""


HashWanted = Callable[[Extraction], bool]
"""Whether to hash a DICOM file's pixels, asked once its tags, transfer syntax and size are read
and before its pixels are decoded."""


def read(path: Path, tags: frozenset[int], hash_pixels: bool | HashWanted = False) -> Extraction:
    """Read ``path``: its kind, the values of ``tags`` present, and its pixel summary (with a
    hash of the pixel values if ``hash_pixels`` is true or says so for the file: duplicate images
    are found in the same read)."""
    try:
        head, size = _head(path)
    except OSError as exc:
        return Extraction(kind=KIND_UNREADABLE, error=f"cannot open file: {exc.strerror or exc}")
    if head is None:
        return Extraction(kind=KIND_UNREADABLE, error="not a regular file (FIFO, socket or device)")
    pointer_to = lfs_pointer_size(head) if size <= LFS_POINTER_MAX_SIZE else None  # head is the whole file
    if pointer_to is not None:  # whatever its name: a missing download, not a corrupt file
        return Extraction(
            kind=KIND_NON_DICOM, size_bytes=size, error=lfs_pointer_error(pointer_to), notes=[LFS_POINTER_NOTE]
        )
    start, head = head, head[:HEAD_SIZE]
    claim = claim_of(head, path.name)
    if claim is Claim.NONE:
        return Extraction(kind=KIND_NON_DICOM, size_bytes=size, notes=[describe_non_dicom(head)])
    if size > len(start) and not _file_meta_first(start, claim):
        with _captured_messages() as messages:
            plausible = _plausible_start(start, claim, size)
        if not plausible:
            extraction = _not_dicom(claim, head, size, _no_data_set(size))
            extraction.notes.extend(messages)
            return extraction
    with _captured_messages() as messages:
        extraction = _read_dicom(path, claim, head, size, tags, hash_pixels)
    extraction.notes.extend(messages)
    return extraction


def lfs_pointer_error(size: int) -> str:
    """The ``error`` of a Git LFS pointer file standing for ``size`` bytes of content."""
    return f"Git LFS pointer file, not the data: its {size} bytes of content were never downloaded; run git lfs pull"


def _head(path: Path) -> tuple[bytes | None, int]:
    """First :data:`START_SIZE` bytes and size of a regular file; ``None`` for FIFOs and devices,
    without blocking. A Git LFS pointer (1,024 bytes at most) is read whole: it is told by all its lines.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, 0
        return os.read(fd, START_SIZE), info.st_size
    finally:
        os.close(fd)


def _file_meta_first(start: bytes, claim: Claim) -> bool:
    """Whether the data set begins with a file meta element, (0002,eeee) in explicit VR, as
    nearly every DICOM file does: after the ``DICM`` marker, or at byte 0 without one."""
    at = HEAD_SIZE if claim is Claim.PREAMBLE else 0
    vr = start[at + 4 : at + 6]
    return start[at : at + 2] == b"\x02\x00" and vr.isalpha() and vr.isupper()


def _plausible_start(start: bytes, claim: Claim, size: int) -> bool:
    """Whether the first bytes of a file hold a data set (:func:`_plausible`). A start they do
    not parse as, or one that ends inside a value the file does hold (a large private element
    before the standard ones), leaves the verdict to the full read."""
    try:
        ds = dcmread(io.BytesIO(start), force=claim is not Claim.PREAMBLE)
    except Exception:  # noqa: BLE001 - cut short, deflated, nested deeply: the full read says
        return True
    return _plausible(ds, claim) or _runs_past(ds, size)


def _runs_past(ds: Dataset, size: int) -> bool:
    """Whether the last element read from the first bytes was cut by them and ends within the file."""
    if not ds.keys():
        return False
    last = ds.get_item(max(ds.keys()))
    length, value, at = (getattr(last, name, None) for name in ("length", "value", "value_tell"))
    if not isinstance(length, int) or length == 0xFFFFFFFF or not isinstance(value, bytes) or at is None:
        return False
    return len(value) < length and at + length <= size


def _no_data_set(size: int) -> InvalidDicomError:
    return InvalidDicomError(f"no DICOM data elements found: empty or truncated data set ({size} bytes)")


def _not_dicom(claim: Claim, head: bytes, size: int, exc: Exception) -> Extraction:
    """A file that claims to be DICOM and holds no data set: unreadable, or, if only its first
    bytes looked like a data set, a binary file of another format."""
    if claim is Claim.HEADERLESS:
        return Extraction(kind=KIND_NON_DICOM, size_bytes=size, notes=["unknown binary format"])
    looks_like = "" if claim is Claim.PREAMBLE else f"; content looks like: {describe_non_dicom(head)}"
    return Extraction(
        kind=KIND_UNREADABLE, size_bytes=size, error=f"not a valid DICOM file ({claim.value}): {exc}{looks_like}"
    )


def _read_dicom(
    path: Path, claim: Claim, head: bytes, size: int, tags: frozenset[int], hash_pixels: bool | HashWanted
) -> Extraction:
    try:
        ds = _parse(path, force=claim is not Claim.PREAMBLE)
        if not _plausible(ds, claim):
            raise _no_data_set(size)
    except (InvalidDicomError, EOFError) as exc:
        return _not_dicom(claim, head, size, exc)
    except Exception as exc:  # noqa: BLE001 - any parser failure is this file's problem, not ours
        return Extraction(kind=KIND_UNREADABLE, size_bytes=size, error=_describe(exc, "cannot parse DICOM"))
    extraction = Extraction(kind=KIND_DICOM, size_bytes=size)
    try:
        extraction.error = _truncation(ds)
        _collect(ds, tags | _PIXEL_MODULE, extraction)
    except Exception as exc:  # noqa: BLE001 - a data set pydicom parsed but cannot describe is unreadable
        return Extraction(kind=KIND_UNREADABLE, size_bytes=size, error=_describe(exc, "cannot parse DICOM"))
    if extraction.has_pixel_data and not extraction.error:  # no summary of a truncated file's pixels
        wanted = hash_pixels(extraction) if callable(hash_pixels) else hash_pixels
        _summarise_pixels(ds, extraction, xxhash.xxh3_128() if wanted else None)
    return extraction


def _parse(path: Path, force: bool) -> Dataset:
    """pydicom's parse of ``path``. It recurses per level of undefined-length sequences, so a
    file nested deeper than the recursion limit allows is parsed again with a limit raised for
    :data:`MAX_NESTING` levels, in this thread: one abandoned to a time limit or Ctrl-C must
    not go on parsing while the limit is put back (Python then aborts the process). Where the
    main stack is small, the raise could overflow it: the file fails instead."""
    try:
        return dcmread(path, force=force)
    except RecursionError:
        if not _stack_holds_deep_nesting():
            raise RecursionError(
                f"sequences nested deeper than {sys.getrecursionlimit() // _FRAMES_PER_LEVEL} levels"
            ) from None
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, limit + _FRAMES_PER_LEVEL * MAX_NESTING))
    try:
        return dcmread(path, force=force)
    except RecursionError:
        raise RecursionError(f"sequences nested deeper than {MAX_NESTING} levels") from None
    finally:
        sys.setrecursionlimit(limit)


def _stack_holds_deep_nesting() -> bool:
    """Whether this thread's C stack holds :data:`MAX_NESTING` levels: the main thread's, at the
    usual 8 MiB (each level takes about 2 KiB of it before Python 3.11, 0.4 KiB from 3.11)."""
    if threading.current_thread() is not threading.main_thread():
        return False  # a thread's stack is smaller and set when it starts
    soft, _hard = resource.getrlimit(resource.RLIMIT_STACK)
    return soft == resource.RLIM_INFINITY or soft >= _MAIN_STACK


def _truncation(ds: Dataset) -> str:
    """Why the file is cut short, or "". pydicom reads a truncated last element without a word:
    its declared length then exceeds the bytes that follow (also for a corrupt, absurd length)."""
    last = ds.get_item(max(ds.keys()))  # raw still: nothing has been converted yet
    length, value = getattr(last, "length", None), getattr(last, "value", None)
    if length is None or length == 0xFFFFFFFF or not isinstance(value, bytes) or len(value) >= length:
        return ""
    return f"file is truncated or corrupt: element {last.tag} declares {length} bytes but only {len(value)} follow"


def _plausible(ds: Dataset, claim: Claim) -> bool:
    """Whether the parse found a real data set, not the one or two nonsense elements garbage yields.

    After the ``DICM`` marker (read without ``force``, as pydicom reads it by default), a file meta
    group vouches for any element after it, private ones included: one with a transfer syntax,
    or, without one, with standard file meta elements (pydicom then guesses the encoding, and so
    do we). Otherwise standard elements must be found (garbage often parses as an odd,
    "private" group).
    """
    tags = list(ds.keys())  # keys(), not iteration: iterating converts values and can raise on bad ones
    if claim is Claim.PREAMBLE and _real_file_meta(ds):
        return len(tags) >= 1
    return sum(1 for tag in tags if dictionary_has_tag(tag)) >= 2


def _real_file_meta(ds: Dataset) -> bool:
    """A file meta group with a transfer syntax, or with two standard elements of the group (one
    could be garbage that happens to start with group 0002)."""
    file_meta = getattr(ds, "file_meta", None) or {}
    if "TransferSyntaxUID" in file_meta:
        return True
    tags = file_meta.keys()  # not iteration: iterating a Dataset converts (and can raise on) values
    return sum(1 for tag in tags if dictionary_has_tag(tag)) >= 2


def _collect(ds: Dataset, tags: frozenset[int], extraction: Extraction) -> None:
    little_endian = ds.original_encoding[1] is not False
    for element_tag in tags.intersection(ds.keys()):  # the wanted tags the file holds, not ``in`` each
        tag = int(element_tag)
        item = ds.get_item(tag)
        vr = getattr(item, "VR", None) or _dictionary_vr(tag) or "UN"
        fast = raw_value(item, vr, little_endian) if isinstance(item, RawDataElement) and vr else UNHANDLED
        if not isinstance(fast, Unhandled):
            extraction.tags[tag] = fast
            continue
        try:
            extraction.tags[tag] = element_value(ds[tag])
        except Exception as exc:  # noqa: BLE001 - a malformed value must not lose the file
            extraction.tags[tag] = element_value(item)
            extraction.notes.append(_describe(exc, f"tag {tag:08X} kept as raw text"))
    extraction.transfer_syntax = _transfer_syntax(ds, extraction.notes)
    sop_class = ds.get("SOPClassUID")
    extraction.sop_class = _uid_name(sop_class) if sop_class else ""
    extraction.has_pixel_data = any(keyword in ds for keyword in PIXEL_KEYWORDS)


def _syntax(ds: Dataset) -> object:
    """The transfer syntax UID in the file meta (None without one)."""
    return ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None


def _dictionary_vr(tag: int) -> str | None:
    """The VR of a standard tag, for files in implicit VR where the file does not say."""
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


def _transfer_syntax(ds: Dataset, notes: list[str]) -> str:
    """Name of the file's transfer syntax; for files whose file meta has none, the one pydicom
    read them with (its guess from the first element: see ``pydicom.filereader.read_partial``).

    Such files get that syntax set in their (in-memory) file meta, so that their native pixel data
    can be decoded like any other's. Without any file meta the name says so; a file meta that
    lacks the transfer syntax is noted.
    """
    syntax = _syntax(ds)
    if syntax:
        return _uid_name(syntax)
    implicit, little = ds.original_encoding
    if implicit is None:
        return ""
    guessed = (
        uid.ImplicitVRLittleEndian if implicit else (uid.ExplicitVRLittleEndian if little else uid.ExplicitVRBigEndian)
    )
    file_meta = getattr(ds, "file_meta", None)
    if file_meta is None:
        file_meta = ds.file_meta = FileMetaDataset()
    had_file_meta = len(file_meta) > 0
    file_meta.TransferSyntaxUID = guessed
    if not had_file_meta:
        return f"{guessed.name} (no file meta)"
    notes.append(f"{MISSING_SYNTAX_NOTE}: read as {guessed.name}, as pydicom does")
    return str(guessed.name)


def _uid_name(value: object) -> str:
    text = str(value)
    return str(uid.UID(text).name) if text else ""


def _summarise_pixels(ds: Dataset, extraction: Extraction, hasher: xxhash.xxh3_128 | None) -> None:
    """Pixel summary of the stored values as ``pixel_array`` returns them, one frame at a time."""
    frames = 0
    count = 0
    total = 0.0
    low: int | float | None = None
    high: int | float | None = None
    first: np.ndarray | None = None
    try:
        for frame in _frames(ds, extraction.tags):
            if first is None:
                first = frame
            frames += 1
            count += frame.size
            total += float(frame.sum(dtype=np.float64))
            frame_low, frame_high = frame.min().item(), frame.max().item()
            low = frame_low if low is None else min(low, frame_low)
            high = frame_high if high is None else max(high, frame_high)
            if hasher is not None:
                hasher.update(_canonical(frame).data)
    except _MissingFrames as exc:
        extraction.error = _missing_frames_error(ds, exc)
        return
    except BaseException as exc:  # decoders raise anything (see _decoder_failure); the file fails with the reason
        if not _decoder_failure(exc):
            raise
        extraction.error = _decode_error(ds, exc)
        return
    if first is None or count == 0:
        extraction.error = "pixel data holds no frames"
        return
    declared = _declared_frames(extraction.tags)
    if frames < declared:  # encapsulated frames run out early: pixel_array raises StopIteration
        extraction.error = _missing_frames_error(ds, _MissingFrames(declared, frames))
        return
    if hasher is not None:
        hasher.update(f"|{first.dtype.name}|{first.shape}|{frames}".encode())
        extraction.pixel_hash = f"{PIXEL_HASH}:{hasher.hexdigest()}"
    extraction.pixels = {
        "rows": int(first.shape[0]),
        "columns": int(first.shape[1]) if first.ndim > 1 else 1,
        "frames": frames,
        "samples_per_pixel": int(first.shape[2]) if first.ndim > 2 else 1,
        "dtype": first.dtype.name,
        "mean": _number(total / count),
        "min": _number(low),
        "max": _number(high),
    }


def _canonical(frame: np.ndarray) -> np.ndarray:
    """The frame's values as little-endian, row-major bytes: equal images hash equal, however stored."""
    if frame.dtype.byteorder == ">":
        frame = frame.astype(frame.dtype.newbyteorder("<"))
    return np.ascontiguousarray(frame)


def _decoder_failure(exc: BaseException) -> bool:
    """Any exception, and a Rust decoder's panic: pyo3's ``PanicException`` derives from
    BaseException (found by fuzzing pylibjpeg-rle), yet Ctrl-C and exits must still get through."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def _frames(ds: Dataset, tags: dict[int, Value]) -> Iterator[np.ndarray]:
    """Decoded frames one at a time; falls back to ``pixel_array`` where iteration fails.

    pydicom's ``iter_pixels`` cannot fix signedness in place for some JPEG 2000 files
    ("output array is read-only") while ``pixel_array`` can.
    """
    native = _native_frames(ds, tags)
    if native is not None:
        yield from native
        return
    plugin = _decoding_plugin(ds)
    frames = iter_pixels(ds, decoding_plugin=plugin)
    try:
        first = next(frames)
    except StopIteration:
        return
    except ValueError as exc:
        if "read-only" not in str(exc):
            raise
        try:
            array = pixel_array(ds, decoding_plugin=plugin)  # the same safer decoder as the frames
        except StopIteration:  # fewer frames stored than NumberOfFrames says
            raise _MissingFrames(_frame_count(ds)) from None
        yield from (array if _frame_count(ds) > 1 else [array])
        return
    yield first
    yield from frames


class _MissingFrames(Exception):
    """Fewer frames of encapsulated pixel data than NumberOfFrames declares (``pixel_array``
    then raises a bare StopIteration)."""

    def __init__(self, declared: int, decoded: int | None = None) -> None:
        super().__init__(f"NumberOfFrames {declared}")
        self.declared = declared
        self.decoded = decoded


def _missing_frames_error(ds: Dataset, missing: _MissingFrames) -> str:
    """Why a file with fewer encapsulated frames than it declares fails: how many frames pydicom
    finds in its fragments (and in how many fragments, where these differ)."""
    found, fragments = missing.decoded, None
    with contextlib.suppress(Exception):  # only for the message: the file fails either way
        split = list(generate_fragmented_frames(ds.PixelData, number_of_frames=missing.declared))
        found, fragments = len(split), sum(len(frame) for frame in split)
    stored = "fewer frames stored" if found is None else f"{found} frame{'' if found == 1 else 's'} stored"
    if fragments is not None and fragments != found:
        stored += f" (in {fragments} fragments)"
    syntax = _syntax(ds)
    where = f" [{uid.UID(str(syntax)).name}]" if syntax else ""
    return f"pixel data cannot be decoded: NumberOfFrames {missing.declared} but {stored}{where}"


def _native_frames(ds: Dataset, tags: dict[int, Value]) -> Iterator[np.ndarray] | None:
    """Frames of uncompressed pixel data as numpy views of the stored bytes, or None if the data
    needs pydicom's decoding (compressed, big endian, 1-bit, YCbCr, unused high bits, float,
    padding, anything inconsistent).

    Where it applies, the views hold what ``pixel_array`` returns (tested on every bundled file),
    without its per-file machinery, which costs more than the statistics for small images.
    """
    syntax = _syntax(ds)
    if syntax not in _NATIVE_SYNTAXES or "PixelData" not in ds:
        return None
    module = {keyword: tags.get(tag) for keyword, tag in _PIXEL_MODULE_TAGS.items()}
    try:
        bits = _whole(module["BitsAllocated"])
        signed = _whole(module["PixelRepresentation"]) == 1
        rows, columns = _whole(module["Rows"]), _whole(module["Columns"])
        samples = _whole(module["SamplesPerPixel"], 1)
        frames = _whole(module["NumberOfFrames"], 1)
        planar = samples > 1 and _whole(module["PlanarConfiguration"]) == 1  # pydicom requires it too
        photometric = str(module["PhotometricInterpretation"] or "")
        stored = _whole(module["BitsStored"], bits)
    except ValueError:  # missing, multi-valued or not a number: pydicom's decoding says what is wrong
        return None
    if (
        bits not in (8, 16, 32)
        or stored != bits  # pydicom masks (unsigned) or sign-extends (signed) the unused high bits
        or photometric.startswith("YBR")
        or min(rows, columns, frames) < 1
    ):
        return None
    dtype = np.dtype(f"<{'i' if signed else 'u'}{bits // 8}")
    frame_values = rows * columns * samples
    data = ds.PixelData
    expected = frames * frame_values * dtype.itemsize
    if len(data) not in (expected, expected + 1):
        return None  # short (pydicom says why) or with excess padding (pydicom decides what it holds)
    values = np.frombuffer(data, dtype=dtype, count=frames * frame_values)

    def frames_of() -> Iterator[np.ndarray]:
        for index in range(frames):
            frame = values[index * frame_values : (index + 1) * frame_values]
            if samples == 1:
                yield frame.reshape(rows, columns)
            elif planar:
                yield frame.reshape(samples, rows, columns).transpose(1, 2, 0)
            else:
                yield frame.reshape(rows, columns, samples)

    return frames_of()


def _whole(value: Value, default: int | None = None) -> int:
    """A pixel module attribute as an int; ValueError when it is missing and has no default."""
    if value is None or value == "":
        if default is None:
            raise ValueError("missing")
        return default
    if isinstance(value, (list, bool)) or not isinstance(value, (int, float, str)):
        raise ValueError(f"not a single number: {value!r}")
    return int(value)


def _decoding_plugin(ds: Dataset) -> str:
    """The decoder to use; "" lets pydicom try its plugins in its own order.

    GDCM comes first in that order, and on a corrupt JPEG-LS or JPEG 2000 stream it can abort
    the whole process (found by fuzzing). For those syntaxes CharLS (pyjpegls) and OpenJPEG
    (pylibjpeg-openjpeg) give the same pixels and report corruption as an error, so they go first.
    """
    syntax = _syntax(ds)
    preferred = _SAFER_PLUGIN.get(str(syntax), "")
    try:
        return preferred if preferred in get_decoder(uid.UID(str(syntax))).available_plugins else ""
    except (NotImplementedError, ValueError):
        return ""


def _frame_count(ds: Dataset) -> int:
    """NumberOfFrames as pydicom's decoders take it: absent, empty or 0 means one frame."""
    try:
        return int(ds.get("NumberOfFrames") or 1)
    except (TypeError, ValueError):
        return 1


def _declared_frames(tags: dict[int, Value]) -> int:
    """NumberOfFrames as pydicom's decoders take it (absent, empty or 0: one frame), from the tags
    already read; a value that is not a number is pydicom's to reject."""
    try:
        return _whole(tags.get(_PIXEL_MODULE_TAGS["NumberOfFrames"]), 1) or 1
    except ValueError:
        return 1


def _number(value: int | float | None) -> Scalar:
    """Pixel statistics as cells: NaN and infinities (float pixel data) become text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _decode_error(ds: Dataset, exc: BaseException) -> str:
    """Why the pixels could not be decoded, with the transfer syntax and what would decode it."""
    syntax = _syntax(ds)
    reason = _describe(exc, "pixel data cannot be decoded")
    if syntax is None:
        return reason
    syntax = uid.UID(str(syntax))
    text = f"{reason} [{syntax.name}]"
    missing = [package for package in _missing_decoders(syntax) if package not in reason]  # pydicom may say it
    hint = _GPL_HINT.get(syntax) or "; ".join(missing)
    return f"{text}; {hint}" if hint else text


def _missing_decoders(syntax: uid.UID) -> list[str]:
    """Packages that would decode ``syntax`` and are not installed (none for unknown syntaxes)."""
    try:
        return list(get_decoder(syntax).missing_dependencies) if syntax.is_compressed else []
    except (NotImplementedError, ValueError):  # not a transfer syntax pydicom knows
        return []


def _describe(exc: BaseException, context: str) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = " ".join(lines)[:MAX_TEXT] or type(exc).__name__
    return f"{context}: {detail}"


class _Collector(logging.Handler):
    def __init__(self, messages: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        _note(self.messages, record.getMessage())


@contextlib.contextmanager
def _captured_messages() -> Iterator[list[str]]:
    """pydicom's warnings and log records for one file, kept as data instead of flooding pytest's output."""
    messages: list[str] = []
    handler = _Collector(messages)
    previous = _PYDICOM_LOGGER.propagate
    _PYDICOM_LOGGER.addHandler(handler)
    _PYDICOM_LOGGER.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages
        for item in caught:
            _note(messages, str(item.message))
    finally:
        _PYDICOM_LOGGER.removeHandler(handler)
        _PYDICOM_LOGGER.propagate = previous


def _note(messages: list[str], text: str) -> None:
    first_line = text.strip().splitlines()[0][:200] if text.strip() else ""
    if first_line and first_line not in messages and len(messages) < _MAX_NOTES:
        messages.append(first_line)
