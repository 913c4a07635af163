"""Unit tests of reader.py / pipeline.py: every pydicom test file and hostile generated files.

The reference for pixel statistics is pydicom's own ``pixel_array``, the array a training loader
would get.
"""

from __future__ import annotations

import functools
import io
import os
import random
import struct
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom import Dataset, FileMetaDataset
from pydicom.data import get_testdata_file
from pydicom.filebase import DicomFileLike
from pydicom.filewriter import write_dataset
from pydicom.multival import MultiValue

import pytest_dicomqc
from pytest_dicomqc import reader
from pytest_dicomqc.pipeline import check_file, wanted_tags
from pytest_dicomqc.record import FileRecord
from pytest_dicomqc.rules.load import load_rules, parse_rules
from pytest_dicomqc.rules.model import RuleSet
from tests import decoders
from tests.helpers import wire_type_errors, write_dicom
from tests.test_hostile_reading import nest

TEST_FILES = Path(os.path.dirname(get_testdata_file("CT_small.dcm", download=False)))
DEFAULT_RULES = load_rules(Path(pytest_dicomqc.__file__).parent / "rules.yaml")
KINDS = {"dicom", "unreadable", "non-dicom"}
VERDICTS = {"passed", "failed", "skipped"}
PIXEL_FIELDS = ("rows", "columns", "frames", "samples_per_pixel", "dtype", "mean", "min", "max")
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _all_test_files() -> list[str]:
    found = []
    for folder, _dirs, names in os.walk(TEST_FILES):
        found += [(Path(folder) / name).relative_to(TEST_FILES).as_posix() for name in names]
    return sorted(found)


ALL_FILES = _all_test_files()


def check(path: Path, relpath: str | None = None, ruleset: RuleSet = DEFAULT_RULES) -> FileRecord:
    return check_file(path, relpath or path.name, ruleset, wanted_tags(ruleset))


@functools.cache
def record_of(relpath: str) -> FileRecord:
    return check(TEST_FILES / relpath, relpath)


@dataclass(frozen=True)
class Reference:
    """What plain pydicom makes of a file: the data set (if ``dcmread`` works) and ``pixel_array``."""

    ds: Dataset | None
    array: np.ndarray | None


@functools.cache
def reference(relpath: str) -> Reference:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(TEST_FILES / relpath)
        except Exception:
            return Reference(None, None)
        try:
            return Reference(ds, ds.pixel_array)
        except Exception:
            return Reference(ds, None)


DECODABLE = [f for f in ALL_FILES if reference(f).array is not None]
UNDECODABLE = [f for f in ALL_FILES if reference(f).ds is not None and reference(f).array is None]
WITH_IMAGE_TYPE = [f for f in ALL_FILES if reference(f).ds is not None and "ImageType" in reference(f).ds]


def expected_pixel_summary(ds: Dataset, array: np.ndarray) -> dict[str, Any]:
    """The Files sheet's pixel columns, computed from the whole ``pixel_array``."""
    frames = int(ds.get("NumberOfFrames") or 1)
    shape = array.shape[1:] if frames > 1 else array.shape
    return {
        "rows": shape[0],
        "columns": shape[1],
        "frames": array.shape[0] if frames > 1 else 1,
        "samples_per_pixel": shape[2] if len(shape) == 3 else 1,
        "dtype": array.dtype.name,
        "min": array.min().item(),
        "max": array.max().item(),
    }


# --- every bundled pydicom test file ----------------------------------------------------------


def test_bundled_test_files_are_there() -> None:
    # Guards the parametrisations below against an empty or undecodable folder.
    assert len(ALL_FILES) > 100
    assert len(DECODABLE) > 50
    assert len(UNDECODABLE) > 10


@pytest.mark.parametrize("relpath", ALL_FILES)
def test_one_record_per_file(relpath: str) -> None:
    record = record_of(relpath)
    assert record.path == relpath
    assert record.kind in KINDS
    assert record.verdict in VERDICTS
    assert list(record.results) == [rule.id for rule in DEFAULT_RULES.rules]
    assert [f.rule_id for f in record.findings] == [r for r, v in record.results.items() if v in ("FAIL", "WARN")]
    if record.kind == "unreadable":
        assert record.verdict == "failed"
        assert record.error != ""
    if record.kind != "dicom":
        assert set(record.results.values()) == {"N/A"}


@pytest.mark.parametrize("relpath", ALL_FILES)
def test_record_travels_as_exact_builtins(relpath: str) -> None:
    record = record_of(relpath)
    wire = record.to_wire()
    assert wire_type_errors(wire) == []
    assert FileRecord.from_wire(wire) == record


@pytest.mark.parametrize("relpath", DECODABLE)
def test_pixel_summary_equals_pixel_array(relpath: str) -> None:
    ds, array = reference(relpath).ds, reference(relpath).array
    assert ds is not None
    assert array is not None
    record = record_of(relpath)
    assert record.kind == "dicom"
    assert record.error == ""
    summary = {name: record.values[name] for name in PIXEL_FIELDS if name != "mean"}
    expected = expected_pixel_summary(ds, array)
    assert summary == expected
    assert type(summary["min"]) is type(expected["min"])
    assert type(summary["max"]) is type(expected["max"])
    assert record.values["mean"] == pytest.approx(float(array.mean(dtype=np.float64)), rel=1e-6)


@pytest.mark.parametrize("relpath", UNDECODABLE)
def test_no_pixel_summary_where_pixel_array_fails(relpath: str) -> None:
    ds = reference(relpath).ds
    assert ds is not None
    record = record_of(relpath)
    assert {name: record.values[name] for name in PIXEL_FIELDS} == dict.fromkeys(PIXEL_FIELDS)
    if any(keyword in ds for keyword in PIXEL_KEYWORDS):
        # pixel data a training loader cannot decode fails the file, and says why
        assert record.error != ""
        assert record.verdict == "failed"
    elif relpath == "rtplan_truncated.dcm":
        assert record.error.startswith("file is truncated or corrupt: element (300A,00B0) declares")
    else:
        assert record.error == ""


@pytest.mark.parametrize("relpath", WITH_IMAGE_TYPE)
def test_image_type_is_joined_as_dicom_writes_it(relpath: str) -> None:
    ds = reference(relpath).ds
    assert ds is not None
    value = ds.ImageType
    expected = "\\".join(value) if isinstance(value, MultiValue) else str(value)
    assert record_of(relpath).values["ImageType"] == expected


@pytest.mark.parametrize(
    ("relpath", "kind", "notes"),
    [
        ("README.txt", "non-dicom", "text file"),
        ("test1.json", "non-dicom", "text file"),
        ("test_PN.json", "non-dicom", "text file"),
        ("zipMR.gz", "non-dicom", "gzip archive"),
        ("crayons.icc", "non-dicom", "unknown binary format"),
    ],
)
def test_non_dicom_test_files(relpath: str, kind: str, notes: str) -> None:
    record = record_of(relpath)
    assert (record.kind, record.verdict, record.error, record.values["notes"]) == (kind, "skipped", "", notes)
    assert all(record.values[name] is None for name in PIXEL_FIELDS)


def test_no_meta_is_unreadable() -> None:
    record = record_of("no_meta.dcm")
    assert (record.kind, record.verdict) == ("unreadable", "failed")
    assert record.error != ""


def test_truncated_pixel_data_fails_with_reason() -> None:
    record = record_of("MR_truncated.dcm")
    assert (record.kind, record.verdict) == ("dicom", "failed")
    # the last element, the pixel data, is cut short: its declared length is more than follows
    assert record.error == "file is truncated or corrupt: element (7FE0,0010) declares 8192 bytes but only 8130 follow"
    assert record.values["Modality"] == "MR"  # metadata is still reported
    assert record.values["dtype"] is None


def test_12_bit_jpeg_names_the_decoder_to_install_or_decodes_with_it() -> None:
    record = record_of("JPGExtended.dcm")
    assert record.values["transfer_syntax"] == "JPEG Extended (Process 2 and 4)"
    assert (record.kind, record.verdict, record.failed_rules) == ("dicom", "failed", ["original-image"])  # DERIVED
    if decoders.JPEG_12_BIT:
        assert (record.error, record.values["dtype"]) == ("", "uint16")
    else:
        assert record.error.startswith("pixel data cannot be decoded: ")
        assert record.error.endswith(
            " [JPEG Extended (Process 2 and 4)]; 12-bit JPEG Extended is decoded by pylibjpeg-libjpeg (GPL-3.0):"
            " pip install pylibjpeg-libjpeg"
        )
        assert record.values["dtype"] is None


@pytest.mark.parametrize("relpath", ["ExplVR_LitEndNoMeta.dcm", "ExplVR_BigEndNoMeta.dcm"])
def test_file_without_preamble_is_dicom(relpath: str) -> None:
    record = record_of(relpath)
    assert record.kind == "dicom"
    assert record.error == ""


def test_ct_small_values() -> None:
    record = record_of("CT_small.dcm")
    assert record.kind == "dicom"
    assert record.verdict == "passed"
    expected = {
        "ImageType": "ORIGINAL\\PRIMARY\\AXIAL",
        "VOILUTFunction": None,
        "Modality": "CT",
        "rows": 128,
        "columns": 128,
        "frames": 1,
        "samples_per_pixel": 1,
        "dtype": "int16",
        "min": 128,
        "max": 2191,
        "transfer_syntax": "Explicit VR Little Endian",
        "SOPClass": "CT Image Storage",
        "RescaleIntercept": -1024.0,
        "BitsAllocated": 16,
        "InstanceNumber": 1,
    }
    assert {name: record.values[name] for name in expected} == expected
    assert record.results == {
        "original-image": "PASS",
        "voi-lut-function": "PASS",
        "pixel-dtype-ct-mr": "PASS",
        "pixel-dtype-xray": "N/A",
    }


# --- generated files --------------------------------------------------------------------------


def test_generated_multiframe_values(tmp_path: Path) -> None:
    pixels = np.arange(60, dtype=np.uint16).reshape(3, 4, 5) * 7
    path = write_dicom(
        tmp_path / "mf.dcm",
        pixels=pixels,
        multiframe=True,
        ImageType=["ORIGINAL", "PRIMARY", "AXIAL"],
        VOILUTFunction="SIGMOID",
        RescaleSlope="1.5",
        WindowCenter=["40", "400"],
        InstanceNumber="12",
    )
    record = check(path)
    assert record.kind == "dicom"
    assert record.verdict == "passed"
    assert record.error == ""
    values = record.values
    assert {name: values[name] for name in PIXEL_FIELDS} == {
        "rows": 4,
        "columns": 5,
        "frames": 3,
        "samples_per_pixel": 1,
        "dtype": "uint16",
        "mean": 206.5,
        "min": 0,
        "max": 413,
    }
    assert values["ImageType"] == "ORIGINAL\\PRIMARY\\AXIAL"
    assert values["VOILUTFunction"] == "SIGMOID"
    assert values["WindowCenter"] == "40.0\\400.0"
    assert (values["RescaleSlope"], type(values["RescaleSlope"])) == (1.5, float)
    assert (values["InstanceNumber"], type(values["InstanceNumber"])) == (12, int)
    assert wire_type_errors(record.to_wire()) == []


def test_voi_lut_function_outside_the_list_fails(tmp_path: Path) -> None:
    pixels = np.zeros((2, 2), np.int16)
    path = write_dicom(tmp_path / "log.dcm", pixels=pixels, ImageType=["ORIGINAL"], VOILUTFunction="LOG")
    record = check(path)
    assert record.values["VOILUTFunction"] == "LOG"
    assert record.results["voi-lut-function"] == "FAIL"
    assert record.verdict == "failed"
    assert record.failed_rules == ["voi-lut-function"]


def test_malformed_decimal_string_is_kept_as_text(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "ds.dcm", pixels=np.zeros((2, 2), np.int16), RescaleSlope="12345.5")
    data = path.read_bytes()
    assert data.count(b"12345.5 ") == 1
    path.write_bytes(data.replace(b"12345.5 ", b"12x45.5 "))
    ruleset = parse_rules("version: 1\nrules:\n  - id: slope\n    tag: RescaleSlope\n    range: [0.5, 2]\n", "r.yaml")
    record = check(path, ruleset=ruleset)
    assert record.kind == "dicom"
    assert (record.values["RescaleSlope"], type(record.values["RescaleSlope"])) == ("12x45.5", str)
    assert record.results == {"slope": "FAIL"}
    assert record.findings[0].observed == "12x45.5"
    assert wire_type_errors(record.to_wire()) == []


def test_zero_byte_dcm_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "x.dcm"
    path.write_bytes(b"")
    record = check(path)
    assert (record.kind, record.verdict) == ("unreadable", "failed")
    assert record.error != ""
    assert record.values["size_bytes"] == 0


def test_random_bytes_named_dcm_are_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "noise.dcm"
    path.write_bytes(random.Random(1234).randbytes(4096))
    record = check(path)
    assert (record.kind, record.verdict) == ("unreadable", "failed")
    assert record.error != ""
    assert set(record.results.values()) == {"N/A"}


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(b"", id="nothing"),
        pytest.param(b"\xff" * 64, id="ff"),
        pytest.param(random.Random(5).randbytes(300), id="random"),
        pytest.param(b"garbage" * 40, id="text"),
    ],
)
def test_dicm_marker_with_garbage_is_unreadable(tmp_path: Path, garbage: bytes) -> None:
    path = tmp_path / "marker"
    path.write_bytes(b"\x00" * 128 + b"DICM" + garbage)
    record = check(path)
    assert (record.kind, record.verdict) == ("unreadable", "failed")
    assert record.error != ""


def test_headerless_looking_dcm_that_cannot_be_parsed_is_unreadable(tmp_path: Path) -> None:
    # Starts like an implicit VR data set, (0008,0008) length 4, then nothing else.
    path = tmp_path / "stub.dcm"
    path.write_bytes(b"\x08\x00\x08\x00\x04\x00\x00\x00ABCD")
    record = check(path)
    assert (record.kind, record.verdict) == ("unreadable", "failed")


def _jpeg(path: Path) -> Path:
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path, format="JPEG")
    return path


@pytest.mark.parametrize("name", ["photo.jpg", "photo"])
def test_jpeg_is_non_dicom(tmp_path: Path, name: str) -> None:
    record = check(_jpeg(tmp_path / name))
    assert (record.kind, record.verdict, record.error) == ("non-dicom", "skipped", "")
    assert record.values["notes"] == "JPEG image"
    assert set(record.results.values()) == {"N/A"}
    assert all(record.values[name] is None for name in PIXEL_FIELDS)


def test_jpeg_named_dcm_is_unreadable(tmp_path: Path) -> None:
    record = check(_jpeg(tmp_path / "photo.dcm"))
    assert (record.kind, record.verdict) == ("unreadable", "failed")


@pytest.mark.parametrize(("policy", "verdict"), [("skip", "skipped"), ("fail", "failed"), ("pass", "passed")])
def test_non_dicom_policy(tmp_path: Path, policy: str, verdict: str) -> None:
    ruleset = parse_rules(f"version: 1\nnon_dicom: {policy}\nrules: []\n", "r.yaml")
    path = tmp_path / "notes.txt"
    path.write_text("hello\n", encoding="utf-8")
    assert check(path, ruleset=ruleset).verdict == verdict


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_fifo_is_unreadable_and_does_not_block(tmp_path: Path) -> None:
    path = tmp_path / "pipe.dcm"
    os.mkfifo(path)
    records: list[FileRecord] = []
    worker = threading.Thread(target=lambda: records.append(check(path)), daemon=True)
    worker.start()
    worker.join(timeout=60)  # a hang guard, not a speed check: a blocking open never returns
    assert not worker.is_alive(), "check_file blocked on a FIFO"
    (record,) = records
    assert (record.kind, record.verdict) == ("unreadable", "failed")
    assert "not a regular file" in record.error


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    record = check(tmp_path / "gone.dcm")
    assert (record.kind, record.verdict) == ("unreadable", "failed")
    assert record.error.startswith("cannot open file: ")


def test_wanted_tags_include_default_columns_and_rule_tags() -> None:
    ruleset = parse_rules("version: 1\nrules:\n  - id: a\n    tag: PatientAge\n    present: true\n", "r.yaml")
    tags = wanted_tags(ruleset)
    assert {0x00101010, 0x00080008, 0x00281056, 0x00080060} <= tags


def _without_file_meta(source: Path, target: Path) -> Path:
    """The data set of ``source`` written raw: no preamble, no DICM, no file meta (old PACS exports)."""
    ds = pydicom.dcmread(source)
    ds.file_meta = FileMetaDataset()
    ds.preamble = None
    with open(target, "wb") as handle:
        stream = DicomFileLike(handle)
        stream.is_little_endian, stream.is_implicit_VR = True, False
        write_dataset(stream, ds)
    return target


def test_data_set_without_file_meta_is_read_and_decoded(tmp_path: Path) -> None:
    source = Path(get_testdata_file("CT_small.dcm", download=False))
    record = check(_without_file_meta(source, tmp_path / "CT0001"))
    truth = pydicom.dcmread(source).pixel_array
    assert (record.kind, record.error, record.verdict) == ("dicom", "", "passed")
    assert record.values["transfer_syntax"] == "Explicit VR Little Endian (no file meta)"
    assert (record.values["rows"], record.values["min"], record.values["max"]) == (128, truth.min(), truth.max())


def test_jpeg_named_dcm_says_what_it_looks_like(tmp_path: Path) -> None:
    record = check(_jpeg(tmp_path / "scan.dcm"))
    assert (record.kind, record.verdict) == ("unreadable", "failed")
    assert record.error.endswith("; content looks like: JPEG image")


def test_undecodable_pixels_make_pixel_rules_not_applicable() -> None:
    rules = parse_rules("version: 1\nrules:\n  - id: pixel-type\n    pixel: dtype\n    equals: int16\n", "rules.yaml")
    record = check(Path(get_testdata_file("MR_truncated.dcm", download=False)), ruleset=rules)
    assert (record.verdict, record.results, record.findings) == ("failed", {"pixel-type": "N/A"}, ())
    assert record.error.startswith("file is truncated or corrupt")


def test_pixel_statistics_are_computed_one_frame_at_a_time(tmp_path: Path) -> None:
    """No decoded array larger than one frame exists: memory stays flat for huge multi-frame files."""
    from pytest_dicomqc import reader

    pixels = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    path = write_dicom(tmp_path / "mf.dcm", pixels=pixels, multiframe=True)
    extraction = reader.read(path, frozenset())
    assert (extraction.pixels["frames"], extraction.pixels["rows"], extraction.pixels["columns"]) == (3, 4, 5)
    frames = list(reader._frames(pydicom.dcmread(path), extraction.tags))
    assert [frame.shape for frame in frames] == [(4, 5)] * 3
    assert [frame.tolist() for frame in frames] == pixels.tolist()


def _raw_values_of(path: Path) -> list[tuple[str, object, object]]:
    """(tag, fast value, pydicom's value) for every element the fast decoder handles."""
    from pydicom.datadict import dictionary_has_tag, dictionary_VR
    from pydicom.dataelem import RawDataElement

    from pytest_dicomqc.extract import UNHANDLED, normalise, raw_value

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path, force=True)
        except Exception:
            return []
        little = ds.original_encoding[1] is not False
        compared = []
        for tag in list(ds.keys()):
            raw = ds.get_item(tag)
            vr = getattr(raw, "VR", None) or (dictionary_VR(tag) if dictionary_has_tag(tag) else None)
            if not isinstance(raw, RawDataElement) or not vr or vr == "UN":
                continue  # UN: pydicom gives bytes, the report readable text (on purpose)
            fast = raw_value(raw, vr, little)
            if fast is UNHANDLED:
                continue
            try:
                slow = normalise(ds[tag].value)
            except Exception:
                continue
            compared.append((f"{tag} {vr}", fast, slow))
    return compared


def test_fast_values_equal_pydicom_values_in_every_bundled_file() -> None:
    root = Path(get_testdata_file("CT_small.dcm", download=False)).parent
    compared = [(path.name, *row) for path in sorted(root.rglob("*")) if path.is_file() for row in _raw_values_of(path)]
    assert len(compared) > 3000
    mismatches = [row for row in compared if row[2] != row[3] and not (row[2] in ("", None) and row[3] in ("", None))]
    assert mismatches == []


def _is_number(text: str, kind: type[float] | type[int]) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    "vr", ["AE", "AS", "CS", "DA", "DS", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UT"]
)
@pytest.mark.parametrize(
    "data",
    [
        *(b"A \\B ", b" A\\ B", b"A", b"  ", b"", b"A\\", b"1.2.3\x00", b" 1.0 \\2 ", b"1.0", b" 12 ", b"\x00"),
        *(b"\tA \\B\t", b"A\x00\\B", b" \x00A\x00 "),  # tabs and NULs: which VRs strip them, and where
    ],
)
def test_fast_text_decoding_strips_like_pydicom(vr: str, data: bytes) -> None:
    from pydicom.dataelem import RawDataElement, convert_raw_data_element
    from pydicom.tag import Tag

    from pytest_dicomqc.extract import UNHANDLED, normalise, raw_value

    raw = RawDataElement(Tag(0x00091010), vr, len(data), data, 0, False, True)
    fast = raw_value(raw, vr, little_endian=True)
    if fast is UNHANDLED:  # only numbers that do not parse are left to pydicom (its DS/IS fallbacks)
        parts = data.decode("ascii").strip("\x00 ").split("\\")
        assert vr in ("DS", "IS")
        assert not all(_is_number(part.strip(), float if vr == "DS" else int) for part in parts)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert fast == normalise(convert_raw_data_element(raw).value)


@pytest.mark.parametrize(("dtype", "stored"), [(np.uint16, 12), (np.uint8, 7), (np.int16, 12)])
def test_unused_high_bits_give_what_pixel_array_gives(tmp_path: Path, dtype: type, stored: int) -> None:
    pixels = (np.arange(64).reshape(8, 8) * 1000).astype(dtype)  # values use the high bits too
    path = write_dicom(tmp_path / "x.dcm", pixels=pixels, BitsStored=stored, HighBit=stored - 1)
    record = check(path)
    truth = pydicom.dcmread(path).pixel_array
    assert (record.values["min"], record.values["max"]) == (truth.min().item(), truth.max().item())
    assert record.values["mean"] == pytest.approx(truth.mean(), rel=1e-9)


def test_private_tag_in_implicit_vr_file_is_read_as_text(tmp_path: Path) -> None:
    rules = parse_rules("version: 1\nrules:\n  - id: priv\n    tag: '(0009,1010)'\n    equals: FOO\n", "r")
    ds = pydicom.dcmread(write_dicom(tmp_path / "x.dcm"))
    ds.add_new(0x00090010, "LO", "PRIVATE CREATOR")
    ds.add_new(0x00091010, "LO", "FOO")
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    ds.save_as(tmp_path / "implicit.dcm", enforce_file_format=True)
    assert check(tmp_path / "implicit.dcm", ruleset=rules).results == {"priv": "PASS"}


# --- files read in part: a start that holds no data set, deep nesting ---------------------------

BIG = 3 * reader.START_SIZE
NO_DATA_SET = f"no DICOM data elements found: empty or truncated data set ({BIG} bytes)"


def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the reader parses from now on, in order: "file" (the whole file) or "start" (its first bytes)."""
    sources: list[str] = []
    real = pydicom.dcmread

    def recording(source: Any, **options: Any) -> Any:
        sources.append("start" if isinstance(source, io.BytesIO) else "file")
        return real(source, **options)

    monkeypatch.setattr(reader, "dcmread", recording)
    return sources


def big_file(path: Path, start: bytes) -> Path:
    """``start``, then zeros up to BIG bytes."""
    with open(path, "wb") as handle:
        handle.write(start)
        handle.truncate(BIG)
    return path


@pytest.mark.parametrize(
    ("name", "start", "error"),
    [
        ("zeros.dcm", b"", f"(DICOM file extension): {NO_DATA_SET}; content looks like: text file"),
        ("dicm.dcm", b"\0" * 128 + b"DICM", f"(DICM marker at byte 128): {NO_DATA_SET}"),
        (
            "noise.dcm",
            random.Random(8).randbytes(reader.START_SIZE),
            f"(DICOM file extension): {NO_DATA_SET}; content looks like: unknown binary format",
        ),
    ],
)
def test_a_start_without_a_data_set_is_not_read_further(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, start: bytes, error: str
) -> None:
    """Zeros and random bytes past the first START_SIZE bytes are never parsed; the verdict is a
    full parse's, in its words, with the whole file's size."""
    path = big_file(tmp_path / name, start)
    sources = parsed(monkeypatch)
    record = check(path)
    assert sources == ["start"]
    assert (record.kind, record.verdict, record.error) == ("unreadable", "failed", f"not a valid DICOM file {error}")


def test_a_file_that_starts_with_its_file_meta_is_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_dicom(tmp_path / "big.dcm", pixels=np.zeros((256, 256), np.int16))
    assert path.stat().st_size > reader.START_SIZE
    sources = parsed(monkeypatch)
    assert check(path).verdict == "passed"
    assert sources == ["file"]


def test_a_data_set_without_file_meta_beyond_its_start_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its start holds a data set: the whole file is read, pixels and all."""
    source = write_dicom(tmp_path / "source.dcm", pixels=np.arange(256 * 256, dtype=np.uint16).reshape(256, 256))
    path = _without_file_meta(source, tmp_path / "IMG0001")
    assert path.stat().st_size > reader.START_SIZE
    sources = parsed(monkeypatch)
    record = check(path)
    assert sources == ["start", "file"]
    assert (record.kind, record.verdict, record.values["rows"], record.values["max"]) == ("dicom", "passed", 256, 65535)


def test_a_start_that_does_not_parse_leaves_the_verdict_to_the_full_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sequences nested past the recursion limit in the first bytes of a file without file meta:
    the start cannot tell, the full read does."""
    source = write_dicom(tmp_path / "source.dcm", pixels=np.zeros((256, 256), np.int16))
    path = nest(_without_file_meta(source, tmp_path / "IMG0001"), 300)
    sources = parsed(monkeypatch)
    record = check(path)
    assert sources == ["start", "file", "file"]  # the second time with the recursion limit raised
    assert (record.kind, record.verdict, record.values["rows"]) == ("dicom", "passed", 256)


def test_deep_nesting_is_read_with_the_recursion_limit_put_back(tmp_path: Path) -> None:
    """The limit is the process's: the value set before the read (an odd one here) is the one after it."""
    deep = nest(write_dicom(tmp_path / "deep.dcm"), reader.MAX_NESTING)
    deeper = nest(write_dicom(tmp_path / "deeper.dcm"), 20 * reader.MAX_NESTING)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1234)
    try:
        assert (check(deep).kind, check(deep).verdict) == ("dicom", "passed")
        assert check(deeper).error == f"cannot parse DICOM: sequences nested deeper than {reader.MAX_NESTING} levels"
        assert sys.getrecursionlimit() == 1234
    finally:
        sys.setrecursionlimit(limit)


def test_deep_nesting_in_a_thread_fails_without_raising_the_limit(tmp_path: Path) -> None:
    """A thread's C stack is small: there the file fails at the usual limit, nothing overflows."""
    deep = nest(write_dicom(tmp_path / "deep.dcm"), reader.MAX_NESTING)
    records = []
    worker = threading.Thread(target=lambda: records.append(check(deep)))
    worker.start()
    worker.join()
    assert records[0].error.startswith("cannot parse DICOM: sequences nested deeper than ")


def test_a_large_value_across_the_first_bytes_leaves_the_verdict_to_the_full_read(tmp_path: Path) -> None:
    """A headerless file (implicit VR, no file meta) whose first 64 KiB end inside a private value
    that the file does hold, before its standard elements: DICOM, not judged from its start."""

    def element(group: int, number: int, value: bytes) -> bytes:
        return struct.pack("<HHI", group, number, len(value)) + value

    path = tmp_path / "IMG0001"
    path.write_bytes(
        element(0x0008, 0x0016, b"1.2.840.10008.5.1.4.1.1.2\0")
        + element(0x0009, 0x0010, b"VENDOR")
        + element(0x0009, 0x1001, b"x" * (reader.START_SIZE + 1000))
        + element(0x0010, 0x0010, b"DOE^JOHN")
        + element(0x0020, 0x000D, b"1.2.3.4\0")
    )
    record = check(path)
    assert (record.kind, record.error) == ("dicom", "")
