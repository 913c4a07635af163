"""Files that look like one thing and are another: Git LFS pointers, file meta without a transfer
syntax, NumberOfFrames that promises more frames than are stored.

The reference is plain pydicom: what ``dcmread`` (without ``force``) and ``pixel_array`` make of
the same file, which is what a training loader would get.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom import Dataset, FileMetaDataset, uid
from pydicom.data import get_testdata_file

from pytest_dicomqc import reader
from pytest_dicomqc.discover import LFS_POINTER_NOTE, is_lfs_pointer_note
from pytest_dicomqc.pipeline import check_file, wanted_tags
from pytest_dicomqc.reader import MISSING_SYNTAX_NOTE
from pytest_dicomqc.record import PIXEL_FIELDS, FileRecord
from pytest_dicomqc.rules.load import parse_rules
from pytest_dicomqc.rules.model import RuleSet
from tests import decoders
from tests.helpers import wire_type_errors, write_dicom

NO_RULES = parse_rules("version: 1\nrules: []\n", "rules.yaml")


def check(path: Path, relpath: str | None = None, ruleset: RuleSet = NO_RULES) -> FileRecord:
    return check_file(path, relpath or path.name, ruleset, wanted_tags(ruleset))


def bundled(name: str) -> Path:
    path = get_testdata_file(name, download=False)
    assert path is not None, f"pydicom no longer bundles {name}"
    return Path(path)


def pixel_array_of(path: Path, syntax: uid.UID | None = None) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        if syntax is not None:
            ds.file_meta.TransferSyntaxUID = syntax
        return ds.pixel_array


# --- Git LFS pointers ---------------------------------------------------------------------------

OID = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"
POINTER = f"version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\nsize 526172\n".encode()


def pointer(path: Path, content: bytes = POINTER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("name", ["scan.dcm", "scan.DICOM", "0001", "image.png", "weights.bin", "labels.csv"])
def test_lfs_pointer_is_a_missing_download_whatever_its_name(tmp_path: Path, name: str) -> None:
    """Not ``unreadable`` (nothing is corrupt) and not a skipped text file: it fails, and says
    how to get the data."""
    record = check(pointer(tmp_path / name))
    assert (record.kind, record.verdict) == ("non-dicom", "failed")
    assert record.values["notes"] == LFS_POINTER_NOTE
    assert is_lfs_pointer_note(record.values["notes"])
    assert record.error == (
        "Git LFS pointer file, not the data: its 526172 bytes of content were never downloaded; run git lfs pull"
    )
    assert all(record.values[field] is None for field in PIXEL_FIELDS)
    assert wire_type_errors(record.to_wire()) == []


@pytest.mark.parametrize("default", ["skip", "pass", "fail"])
def test_lfs_pointer_fails_whatever_the_non_dicom_default(tmp_path: Path, default: str) -> None:
    rules = parse_rules(f"version: 1\nnon_dicom: {default}\nrules: []\n", "rules.yaml")
    assert check(pointer(tmp_path / "scan.dcm"), ruleset=rules).verdict == "failed"
    text = tmp_path / "notes.txt"
    text.write_text("version 2 of the labels\n", encoding="utf-8")  # a text file still follows the policy
    assert check(text, ruleset=rules).verdict == {"skip": "skipped", "pass": "passed", "fail": "failed"}[default]


def test_a_non_dicom_glob_that_names_lfs_pointers_decides_for_them(tmp_path: Path) -> None:
    rules = parse_rules(
        "version: 1\nnon_dicom:\n  default: skip\n  pass: ['weights/**']\n  skip: ['large/**']\nrules: []\n",
        "rules.yaml",
    )
    cases = {"weights/model.bin": "passed", "large/scan.dcm": "skipped", "other/scan.dcm": "failed"}
    for relpath, verdict in cases.items():
        record = check(pointer(tmp_path / relpath), relpath, rules)
        assert (record.kind, record.verdict, record.values["notes"]) == ("non-dicom", verdict, LFS_POINTER_NOTE)


def test_what_only_looks_like_an_lfs_pointer_is_judged_as_before(tmp_path: Path) -> None:
    # larger than git-lfs's 1024-byte cutoff: a text file (skipped), or an unreadable .dcm
    padded = POINTER + b"\n" * 1024
    assert (check(pointer(tmp_path / "big.txt", padded)).values["notes"]) == "text file"
    assert check(pointer(tmp_path / "big.dcm", padded)).kind == "unreadable"
    # a broken pointer (the oid cut short) is no pointer either
    broken = POINTER.replace(OID.encode(), OID[:40].encode())
    assert check(pointer(tmp_path / "broken.dcm", broken)).kind == "unreadable"
    assert check(pointer(tmp_path / "broken", broken)).verdict == "skipped"


# --- file meta without a transfer syntax --------------------------------------------------------

ENCODINGS = {
    uid.ImplicitVRLittleEndian: (True, True),
    uid.ExplicitVRLittleEndian: (False, True),
    uid.ExplicitVRBigEndian: (False, False),
}


def without_syntax(path: Path, ds: Dataset, syntax: uid.UID) -> Path:
    """``ds`` written with preamble, ``DICM`` and a file meta group that lacks (0002,0010)."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = uid.SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.10.999.77"
    ds.preamble = b"\x00" * 128
    implicit, little = ENCODINGS[syntax]
    pydicom.dcmwrite(path, ds, implicit_vr=implicit, little_endian=little, enforce_file_format=False)
    read_back = pydicom.dcmread(path)  # what the file is: pydicom reads it without force
    assert "TransferSyntaxUID" not in read_back.file_meta
    assert read_back.original_encoding[:2] == (implicit, little)
    return path


@pytest.mark.parametrize("syntax", list(ENCODINGS), ids=lambda s: s.name)
def test_missing_transfer_syntax_is_the_one_pydicom_assumes(tmp_path: Path, syntax: uid.UID) -> None:
    pixels = np.arange(-8, 12, dtype=np.int16).reshape(4, 5)
    source = pydicom.dcmread(write_dicom(tmp_path / "source.dcm", pixels=pixels))
    path = without_syntax(tmp_path / "no-syntax.dcm", source, syntax)
    record = check(path)
    assert (record.kind, record.verdict, record.error) == ("dicom", "passed", "")
    assert record.values["transfer_syntax"] == syntax.name
    assert record.values["notes"] == f"{MISSING_SYNTAX_NOTE}: read as {syntax.name}, as pydicom does"
    truth = pixel_array_of(path, syntax)  # pydicom decodes once it is told the syntax it read with
    assert (record.values["rows"], record.values["columns"], record.values["dtype"]) == (4, 5, "int16")
    assert (record.values["min"], record.values["max"]) == (truth.min().item(), truth.max().item())
    assert record.values["mean"] == pytest.approx(truth.mean())
    assert record.values["Modality"] == "CT"


@pytest.mark.parametrize("syntax", list(ENCODINGS), ids=lambda s: s.name)
def test_missing_transfer_syntax_with_few_standard_elements_is_dicom(tmp_path: Path, syntax: uid.UID) -> None:
    """The file meta vouches for what follows, as it does with a transfer syntax: a data set of
    private elements and one standard one is no garbage."""
    ds = Dataset()
    ds.add_new(0x00090010, "LO", "ACME 1.0")
    ds.add_new(0x00091001, "LO", "calibration")
    ds.Modality = "OT"
    record = check(without_syntax(tmp_path / "private.dcm", ds, syntax))
    assert (record.kind, record.verdict, record.error) == ("dicom", "passed", "")
    assert (record.values["transfer_syntax"], record.values["Modality"]) == (syntax.name, "OT")


def test_bundled_file_meta_without_transfer_syntax() -> None:
    """pydicom's own example: read without force, so DICOM; its 2 bytes of pixel data, without
    any image attributes, cannot be decoded, and the file fails for that."""
    path = bundled("meta_missing_tsyntax.dcm")
    assert pydicom.dcmread(path).original_encoding[:2] == (True, True)
    record = check(path)
    assert (record.kind, record.verdict) == ("dicom", "failed")
    assert record.values["transfer_syntax"] == "Implicit VR Little Endian"
    assert record.values["notes"].startswith(f"{MISSING_SYNTAX_NOTE}: read as Implicit VR Little Endian")
    assert record.error.startswith("pixel data cannot be decoded: ")


# --- NumberOfFrames larger than what is stored --------------------------------------------------

ENCAPSULATED = [
    ("JPEG2000.dcm", 1),
    ("MR_small_jp2klossless.dcm", 1),
    ("SC_rgb_rle.dcm", 1),
    ("MR_small_RLE.dcm", 1),
    ("SC_rgb_rle_2frame.dcm", 2),
    ("MR_small_jpeg_ls_lossless.dcm", 1),
    ("SC_rgb_jpeg_dcmtk.dcm", 1),
    ("JPEG-lossy.dcm", 1),  # 12-bit JPEG: decodes only with pylibjpeg-libjpeg
]


def with_frames(source: Path, target: Path, frames: Any) -> Path:
    ds = pydicom.dcmread(source)
    ds.NumberOfFrames = frames
    ds.save_as(target)
    return target


def frames_text(count: int) -> str:
    return f"{count} frame{'' if count == 1 else 's'} stored"


@pytest.mark.parametrize("declared", [None, 10_000])
@pytest.mark.parametrize(("name", "stored"), ENCAPSULATED, ids=[name for name, _ in ENCAPSULATED])
def test_encapsulated_frames_missing_fail_as_pixel_array_does(
    tmp_path: Path, name: str, stored: int, declared: int | None
) -> None:
    declared = declared or stored + 1
    path = with_frames(bundled(name), tmp_path / name, declared)
    syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
    assert syntax.is_encapsulated
    no_decoder = name == "JPEG-lossy.dcm" and not decoders.JPEG_12_BIT
    with pytest.raises(RuntimeError if no_decoder else StopIteration):  # what a training loader gets
        pixel_array_of(path)
    record = check(path)
    assert (record.kind, record.verdict) == ("dicom", "failed")
    assert all(record.values[field] is None for field in PIXEL_FIELDS)
    if no_decoder:
        assert "pylibjpeg-libjpeg" in record.error  # that is what it says first
        return
    assert record.error == (
        f"pixel data cannot be decoded: NumberOfFrames {declared} but {frames_text(stored)} [{syntax.name}]"
    )


def test_frames_cut_short_say_how_many_fragments_are_stored(tmp_path: Path) -> None:
    """15 single-fragment RLE frames declared as 5: pydicom joins the fragments into one frame."""
    path = with_frames(bundled("rtdose_rle.dcm"), tmp_path / "rtdose.dcm", 5)
    with pytest.raises(StopIteration):
        pixel_array_of(path)
    assert check(path).error == (
        "pixel data cannot be decoded: NumberOfFrames 5 but 1 frame stored (in 15 fragments) [RLE Lossless]"
    )


def test_frames_missing_are_found_by_the_whole_array_fallback_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where frames cannot be iterated ("read-only", some JPEG 2000 files) ``pixel_array`` decodes
    the whole array, and raises a bare StopIteration for missing frames: still said as such."""

    def read_only(*args: Any, **kwargs: Any) -> Iterator[np.ndarray]:
        raise ValueError("assignment destination is read-only")
        yield  # a generator, as iter_pixels is

    monkeypatch.setattr(reader, "iter_pixels", read_only)
    path = with_frames(bundled("JPEG2000.dcm"), tmp_path / "j2k.dcm", 3)
    assert check(path).error == (
        "pixel data cannot be decoded: NumberOfFrames 3 but 1 frame stored [JPEG 2000 Image Compression]"
    )
    assert check(bundled("JPEG2000.dcm")).error == ""  # the fallback itself still decodes


@pytest.mark.parametrize(("declared", "frames"), [(1, 2), (0, 2), ("", 2)])
def test_fewer_frames_declared_than_stored_give_what_pixel_array_gives(
    tmp_path: Path, declared: Any, frames: int
) -> None:
    """The other way round pydicom returns every frame (0 or empty count as one frame declared):
    no failure where the training loader has none."""
    path = with_frames(bundled("SC_rgb_rle_2frame.dcm"), tmp_path / "two.dcm", declared)
    truth = pixel_array_of(path)
    record = check(path)
    assert (record.verdict, record.error, record.values["frames"]) == ("passed", "", frames)
    assert truth.shape[0] == frames
    assert record.values["mean"] == pytest.approx(truth.mean())


@pytest.mark.parametrize("declared", [4, 10_000])
@pytest.mark.parametrize("source", ["generated", "CT_small.dcm", "MR_small_bigendian.dcm", "SC_rgb_small_odd.dcm"])
def test_native_frames_missing_fail_as_pixel_array_does(tmp_path: Path, source: str, declared: int) -> None:
    """Uncompressed pixel data shorter than NumberOfFrames frames: pydicom says how many bytes."""
    if source == "generated":
        pixels = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
        origin = write_dicom(tmp_path / "mf.dcm", pixels=pixels, multiframe=True)
    else:
        origin = bundled(source)
    path = with_frames(origin, tmp_path / "more.dcm", declared)
    with pytest.raises(ValueError, match="less than expected"):
        pixel_array_of(path)
    record = check(path)
    assert (record.kind, record.verdict) == ("dicom", "failed")
    assert record.error.startswith("pixel data cannot be decoded: The number of bytes of pixel data is less than")
    assert all(record.values[field] is None for field in PIXEL_FIELDS)
