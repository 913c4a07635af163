"""extract.py: elements pydicom cannot convert are kept as their raw text, cut like any long value;
every text value is shown with what outputs would lose escaped."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom.dataelem import RawDataElement
from pydicom.multival import MultiValue
from pydicom.tag import Tag

from pytest_dicomqc.extract import MAX_TEXT, UNHANDLED, element_value, is_identifying, normalise, raw_value, shown


def raw(value: bytes | None) -> RawDataElement:
    return RawDataElement(Tag(0x00281053), "DS", len(value or b""), value, 0, False, True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"12x45.5 ", "12x45.5"),  # a malformed DS: shown as written, padding dropped
        (b"\x00 1,5\x00 ", "1,5"),  # NULs and spaces at both ends
        (b"caf\xe9", "café"),  # bytes beyond ASCII read as Latin-1, never an error
        (b"X1,5X", "X1,5X"),  # only NULs and spaces are padding
        (b"", ""),
        (None, ""),  # an element with no value at all
        (b"7" * MAX_TEXT, "7" * MAX_TEXT),  # the longest value kept as text
        (b"7" * (MAX_TEXT + 1), f"<{MAX_TEXT + 1} bytes>"),  # longer: not text a cell should hold
    ],
)
def test_unconverted_element_is_kept_as_raw_text(value: bytes | None, expected: str) -> None:
    assert element_value(raw(value)) == expected


@pytest.mark.parametrize(
    ("tag", "identifying"),
    [
        (0x00100010, True),  # PatientName
        (0x00080090, True),  # ReferringPhysicianName: any person name (VR PN)
        (0x00100020, True),  # PatientID
        (0x00100030, True),  # PatientBirthDate
        (0x00080050, True),  # AccessionNumber
        (0x00080060, False),  # Modality
        (0x00200010, False),  # StudyID
        (0x00091010, False),  # a private tag: not in the dictionary
        (0x7FE10010, False),  # a private creator
    ],
)
def test_identifying_tags(tag: int, identifying: bool) -> None:
    assert is_identifying(tag) is identifying


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (float("inf"), "inf"),  # not a number a cell or JSON can hold: shown as text
        (float("nan"), "nan"),
        (2.5, 2.5),
        ("x" * MAX_TEXT, "x" * MAX_TEXT),
        ("x" * (MAX_TEXT + 1), "x" * MAX_TEXT + "…"),  # cut visibly
        (b"\x00\x01", "<2 bytes>"),
    ],
)
def test_normalised_scalars(value: object, expected: object) -> None:
    result = normalise(value)
    assert (result, type(result)) == (expected, type(expected))


@pytest.mark.parametrize(
    ("vr", "data", "expected"),
    [
        ("DS", b"  ", ""),  # blank text is "", as pydicom gives it
        ("DS", b"", None),  # no bytes at all: None
        ("CS", b"AX", "AX"),  # only NULs and spaces are padding
        ("LO", b"AX\\BX", ["AX", "BX"]),
        ("LT", b"TEXTX", "TEXTX"),
        ("LT", b"TEXT \x00", "TEXT"),
        ("US", b"\x01\x00\x02\x00", [1, 2]),
        ("US", b"\x01\x00\x02", UNHANDLED),  # not a whole number of values: pydicom decides
        ("LO", b"A\x1bB", UNHANDLED),  # an escape: character sets are pydicom's
        ("LO", "é".encode("latin-1"), UNHANDLED),
    ],
)
def test_raw_values(vr: str, data: bytes, expected: object) -> None:
    raw = RawDataElement(Tag(0x00091010), vr, len(data), data, 0, False, True)
    assert raw_value(raw, vr, little_endian=True) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ORIG\x00INAL", "ORIG\\x00INAL"),
        ("a\tb\r\nc\x1b\x7f", "a\\x09b\\x0d\\x0ac\\x1b\\x7f"),  # terminals act on them, cells drop some
        ("\x9b2J", "\\x9b2J"),  # a C1 control (CSI to some terminals)
        ("x\ufffey\udcff", "x\\ufffey\\udcff"),  # what XML cannot hold, or UTF-8 cannot encode
        ("ORIG\\x00INAL", "ORIG\\\\x00INAL"),  # typed, not a NUL: stays apart from the one above
        # a backslash before u, before a backslash (only the first is), before an escape
        ("\\u00e9 \\\\ \\\x00", "\\\\u00e9 \\\\\\ \\\\\\x00"),
        ("C:\\data\\ end\\", "C:\\data\\ end\\"),  # other backslashes need no escape
        ("café ヤマダ 😀", "café ヤマダ 😀"),
    ],
)
def test_shown_escapes_what_outputs_would_lose(text: str, expected: str) -> None:
    assert shown(text) == expected


def unescaped(text: str) -> str:
    """The inverse of :func:`shown`: it exists, so distinct values are shown distinctly."""
    return re.sub(
        r"\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4})",
        lambda found: "\\" if found.group(1) == "\\" else chr(int(found.group(1)[1:], 16)),
        text,
    )


@given(st.text(alphabet="\\xu09af \x00\t\x7f\x9f\ud800\ufffeé"))
def test_shown_is_reversible(text: str) -> None:
    assert unescaped(shown(text)) == text


def test_every_value_is_shown_once_escaped() -> None:
    """Raw fast path, pydicom's values and the raw-text fallback escape alike; a long value is
    cut first, so an escape is never cut in two."""
    image_type = RawDataElement(Tag(0x00080008), "CS", 20, b"ORIG\x00INAL\\PRIMARY ", 0, False, True)
    assert raw_value(image_type, "CS", little_endian=True) == ["ORIG\\x00INAL", "PRIMARY"]
    assert normalise(MultiValue(str, ["ORIG\x00INAL", "PRIMARY"])) == ["ORIG\\x00INAL", "PRIMARY"]
    assert element_value(raw(b"1\x002")) == "1\\x002"
    assert normalise("x" * (MAX_TEXT - 1) + "\x00\x00") == "x" * (MAX_TEXT - 1) + "\\x00…"
