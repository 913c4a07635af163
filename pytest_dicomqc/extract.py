"""Turning pydicom values into exact builtins, and the columns the report shows by default.

pydicom hands out subclasses (``DSfloat``, ``IS``, ``UID``, ``PersonName``, ``MultiValue``)
that execnet cannot send; everything leaving this module is ``str``/``int``/``float``/``None``
or a list of those. Text leaves it :func:`shown`: rules judge the very text every output shows.
"""

from __future__ import annotations

import enum
import math
import re
import struct
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pydicom.datadict import dictionary_has_tag, dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from pytest_dicomqc.record import Scalar, Value

#: Tags shown in the Files sheet, by keyword, in column order around the pixel summary.
LEADING_TAGS = ("ImageType", "VOILUTFunction")
DESCRIPTIVE_TAGS = (
    "Modality",
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "RescaleSlope",
    "RescaleIntercept",
    "WindowCenter",
    "WindowWidth",
    "Manufacturer",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "InstanceNumber",
    "PixelSpacing",
    "SliceThickness",
)
MAX_TEXT = 1024
#: Direct identifiers besides person names (VR PN): a rule may test them, but their values are
#: never shown in findings, messages or the terminal (CI logs and reports travel further than data).
IDENTIFYING_KEYWORDS = frozenset(
    {
        "PatientID",
        "OtherPatientIDs",
        "OtherPatientIDsSequence",
        "PatientBirthDate",
        "PatientBirthTime",
        "PatientAddress",
        "PatientTelephoneNumbers",
        "PatientMotherBirthName",
        "MedicalRecordLocator",
        "AccessionNumber",
        "IssuerOfPatientID",
        "PatientInsurancePlanCodeSequence",
    }
)


def is_identifying(tag: int) -> bool:
    """Whether values of ``tag`` identify a person (names, IDs, birth dates, addresses)."""
    if not dictionary_has_tag(tag):
        return False
    return dictionary_VR(tag) == "PN" or keyword_for_tag(tag) in IDENTIFYING_KEYWORDS


def normalise(value: Any) -> Value:
    """An exact-builtin copy of a pydicom element value; multi-values become lists."""
    if isinstance(value, (MultiValue, list, tuple)) and not isinstance(value, Sequence):
        return [_scalar(item) for item in value]
    return _scalar(value)


def _scalar(value: Any) -> Scalar:
    if value is None:
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, (float, Decimal)):
        number = float(value)
        return number if math.isfinite(number) else str(number)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, Sequence):
        return f"<sequence of {len(value)} items>"
    text = str.__str__(str(value))
    return shown(text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…")


# Characters a cell drops (XML cannot hold them) or a terminal hides or acts on: C0 and C1
# controls, DEL, lone surrogates (no UTF-8 for them) and the two XML non-characters.
_UNSHOWN = "\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff"
_TO_ESCAPE = re.compile(f"[{_UNSHOWN}]|\\\\(?=[\\\\xu{_UNSHOWN}])")


def shown(text: str) -> str:
    """``text`` as rules see it and every output shows it: each character a cell or terminal
    would drop, hide or act on (NUL, ESC, CR, LF, tab …) as ``\\xNN`` (``\\uNNNN`` beyond Latin-1),
    and a backslash that would read as the start of such an escape (before ``x``, ``u``, a
    backslash or an escaped character) as ``\\\\``. Distinct values stay distinct (a NUL is
    ``\\x00``, the four characters ``\\x00`` are ``\\\\x00``); text without any of them,
    ``C:\\data`` included, is unchanged.
    """
    if text.isprintable() and "\\" not in text:  # nearly every value, at a fraction of the regex's cost
        return text
    return _TO_ESCAPE.sub(_escape, text)


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    if code == 0x5C:  # a backslash
        return "\\\\"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def element_value(element: DataElement | RawDataElement) -> Value:
    """Value of ``element``; an element pydicom cannot convert is kept as its raw text."""
    if isinstance(element, RawDataElement):
        raw = element.value or b""
        return _scalar(raw.decode("latin-1").strip("\x00 ")) if len(raw) <= MAX_TEXT else _scalar(raw)
    return normalise(element.value)


_ASCII_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "TM", "UI", "DS", "IS"})
_TEXT_VRS = frozenset({"LO", "SH", "PN", "UC"})
_SINGLE_TEXT_VRS = frozenset({"ST", "LT", "UT", "UR"})
_BINARY = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d", "UV": "Q", "SV": "q"}


def _whole_stripped(text: str) -> list[str]:
    return text.rstrip("\x00 ").split("\\")


# How pydicom strips each value, by VR (checked against it in the tests); others: the whole value.
def _each_rstripped(text: str) -> list[str]:
    return [part.rstrip("\x00 ") for part in text.split("\\")]  # NULs and spaces, also inside a multi-value


def _uids(text: str) -> list[str]:
    return [part.strip() for part in _whole_stripped(text)]  # whitespace, not NULs, inside a multi-value


def _titles(text: str) -> list[str]:
    return [part.strip() for part in text.split("\\")]  # whitespace, not NULs


_PART_STRIP: dict[str, Callable[[str], list[str]]] = {
    "LO": _each_rstripped,
    "SH": _each_rstripped,
    "UC": _each_rstripped,
    "UI": _uids,
    "AE": _titles,
}


class Unhandled(enum.Enum):
    """:func:`raw_value` could not decode the bytes the way pydicom would: ask pydicom."""

    VALUE = "unhandled"


UNHANDLED = Unhandled.VALUE


def raw_value(raw: RawDataElement, vr: str, little_endian: bool) -> Value | Unhandled:
    """The value pydicom would give for an unconverted element, for the common VRs, ~10x faster.

    pydicom's conversion (hooks, validation, value classes) costs more than the whole read of a
    small file; the report needs only plain values. Text that is not pure ASCII (character sets),
    numbers that do not parse and rare VRs return :data:`UNHANDLED` and go through pydicom.
    """
    data = raw.value
    if not isinstance(data, bytes):
        return UNHANDLED
    if vr in _BINARY:
        code = _BINARY[vr]
        size = struct.calcsize(code)
        if not data:
            return None
        if len(data) % size:
            return UNHANDLED
        unpacked = struct.unpack(f"{'<' if little_endian else '>'}{len(data) // size}{code}", data)
        return [_scalar(n) for n in unpacked] if len(unpacked) > 1 else _scalar(unpacked[0])
    if not data.isascii() or b"\x1b" in data:
        return UNHANDLED
    text = data.decode("ascii")
    if vr in _SINGLE_TEXT_VRS:
        return _scalar(text.rstrip("\x00 "))
    if vr == "UN":  # e.g. a private tag in an implicit VR file: readable text is shown as text
        if not text.isprintable():
            return UNHANDLED
        vr = "LO"
    if vr not in _ASCII_VRS and vr not in _TEXT_VRS:
        return UNHANDLED
    parts = _PART_STRIP.get(vr, _whole_stripped)(text)
    if vr in ("DS", "IS"):
        if parts == [""]:
            return "" if data else None  # as pydicom: blank text is "", no bytes at all None
        try:
            numbers = [float(part) if vr == "DS" else int(part) for part in parts]
        except ValueError:
            return UNHANDLED
        values: list[Scalar] = [_scalar(n) for n in numbers]
    else:
        values = [_scalar(part) for part in parts]
    return values if len(values) > 1 else values[0]
