"""The pixel hash of ``unique_pixels``: xxh3-128 of every frame, taken only where such a check takes the file."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pydicom
import pytest
import xxhash
from pydicom.data import get_testdata_file

from pytest_dicomqc import cache, reader
from pytest_dicomqc.cache import RecordCache, fingerprint, stat_of
from pytest_dicomqc.pipeline import check_file, wanted_tags
from pytest_dicomqc.reader import read
from pytest_dicomqc.rules.load import parse_rules
from tests.helpers import write_dicom

PIXELS = (np.arange(64, dtype=np.int16).reshape(8, 8) * 7 - 200).astype(np.int16)


def expected_hash(pixels: np.ndarray, frames: int = 1) -> str:
    """What the reader must store, computed here from the values: xxh3-128 of the little-endian
    bytes of every frame, then ``|dtype|shape of a frame|frames``."""
    shape = pixels.shape[1:] if frames > 1 else pixels.shape
    data = np.ascontiguousarray(pixels.astype(pixels.dtype.newbyteorder("<"))).tobytes()
    return "xxh3-128:" + xxhash.xxh3_128(data + f"|{pixels.dtype.name}|{shape}|{frames}".encode()).hexdigest()


def hashed_while(monkeypatch: pytest.MonkeyPatch, rules: str, files: dict[str, Path]) -> tuple[list[str], dict]:
    """The files (by name) whose pixels were hashed while each was checked against ``rules``, and their records."""
    ruleset = parse_rules(f"version: 1\nrules: []\ndataset:\n{rules}", "rules.yaml")
    hashed: list[str] = []
    current = [""]

    def counting() -> xxhash.xxh3_128:
        hashed.append(current[0])
        return xxhash.xxh3_128()

    monkeypatch.setattr(reader, "xxhash", types.SimpleNamespace(xxh3_128=counting))
    records = {}
    for name, path in files.items():
        current[0] = name
        records[name] = check_file(path, name, ruleset, wanted_tags(ruleset))
    return hashed, records


@pytest.fixture
def ct_and_mr(tmp_path: Path) -> dict[str, Path]:
    return {
        "ct/a.dcm": write_dicom(tmp_path / "ct" / "a.dcm", modality="CT", pixels=PIXELS),
        "mr/b.dcm": write_dicom(tmp_path / "mr" / "b.dcm", modality="MR", pixels=PIXELS),
    }


@pytest.mark.parametrize(
    ("rules", "hashed_files", "keys"),
    [
        pytest.param("  - {id: px, unique_pixels: true, when: {Modality: CT}}\n", ["ct/a.dcm"],
                     {"ct/a.dcm": "hash", "mr/b.dcm": "when"}, id="tag"),
        pytest.param("  - {id: px, unique_pixels: true, when: {path: 'mr/**'}}\n", ["mr/b.dcm"],
                     {"ct/a.dcm": "when", "mr/b.dcm": "hash"}, id="path"),
        # pixel fields are not known before decoding: they count as holding, the check decides after
        pytest.param("  - {id: px, unique_pixels: true, when: {Modality: CT, rows: 8}}\n", ["ct/a.dcm"],
                     {"ct/a.dcm": "hash", "mr/b.dcm": "when"}, id="pixel-field-holds"),
        pytest.param("  - {id: px, unique_pixels: true, when: {Modality: CT, rows: 9}}\n", ["ct/a.dcm"],
                     {"ct/a.dcm": "when", "mr/b.dcm": "when"}, id="pixel-field-fails"),
        pytest.param("  - {id: px, unique_pixels: true, when: {Modality: CT}}\n"
                     "  - {id: px-mr, unique_pixels: true, when: {Modality: MR}}\n", ["ct/a.dcm", "mr/b.dcm"],
                     {"ct/a.dcm": "hash", "mr/b.dcm": "when"}, id="either-check"),
        pytest.param("  - {id: px, unique_pixels: true}\n", ["ct/a.dcm", "mr/b.dcm"],
                     {"ct/a.dcm": "hash", "mr/b.dcm": "hash"}, id="every-file"),
        pytest.param("  - {id: px, unique: SOPInstanceUID, when: {Modality: CT}}\n", [], {}, id="no-unique-pixels"),
    ],
)  # fmt: skip
def test_only_files_a_unique_pixels_check_takes_are_hashed(
    monkeypatch: pytest.MonkeyPatch,
    ct_and_mr: dict[str, Path],
    rules: str,
    hashed_files: list[str],
    keys: dict[str, str],
) -> None:
    hashed, records = hashed_while(monkeypatch, rules, ct_and_mr)
    assert hashed == hashed_files
    for name, key in keys.items():
        assert records[name].dataset["px"] == ([expected_hash(PIXELS)] if key == "hash" else [None, key]), name


def test_equal_pixels_hash_equal_and_one_pixel_does_not(tmp_path: Path) -> None:
    """Whatever else differs (UIDs, tags); a single value changed anywhere makes another hash."""
    changed = PIXELS.copy()
    changed[7, 7] += 1
    a = write_dicom(tmp_path / "a.dcm", pixels=PIXELS, PatientID="A")
    b = write_dicom(tmp_path / "b.dcm", pixels=PIXELS, modality="MR", PatientID="B")
    c = write_dicom(tmp_path / "c.dcm", pixels=changed)
    first, second, other = (read(path, frozenset(), hash_pixels=True).pixel_hash for path in (a, b, c))
    assert first == second != other
    assert read(a, frozenset()).pixel_hash == ""  # not asked for: not hashed


@pytest.mark.parametrize(
    "name", ["CT_small.dcm", "MR_small_bigendian.dcm", "rtdose.dcm", "rtdose_expb.dcm", "SC_rgb_rle_2frame.dcm"]
)
def test_pixel_hash_is_xxh3_128_of_every_frame_with_dtype_and_shape(name: str) -> None:
    """128 bits (32 hex digits) after the algorithm's name, equal to xxh3-128 of the values
    pydicom decodes, little endian, frame after frame (native, big endian and compressed files)."""
    path = Path(get_testdata_file(name, download=False))
    ds = pydicom.dcmread(path)
    frames = int(ds.get("NumberOfFrames") or 1)
    pixel_hash = read(path, frozenset(), hash_pixels=True).pixel_hash
    algorithm, _, digits = pixel_hash.partition(":")
    assert (algorithm, len(digits), int(digits, 16) >= 0) == ("xxh3-128", 32, True)
    assert pixel_hash == expected_hash(ds.pixel_array, frames)


def test_records_cached_with_another_pixel_hash_are_not_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A record keyed by a SHA-256 pixel hash, from a cache an earlier version wrote, is read again:
    keys of two algorithms in one check would hide every duplicate between old and new records."""
    ruleset = parse_rules("version: 1\nrules: []\ndataset:\n  - {id: px, unique_pixels: true}\n", "rules.yaml")
    path = write_dicom(tmp_path / "a.dcm", pixels=PIXELS)
    stat = stat_of(path)
    assert stat is not None
    record = check_file(path, "a.dcm", ruleset, wanted_tags(ruleset))
    current = fingerprint(ruleset, strict=False, mode="stat")
    with monkeypatch.context() as patched:
        patched.setattr(cache, "PIXEL_HASH", "sha256")
        older = fingerprint(ruleset, strict=False, mode="stat")
    assert older != current
    old_cache = RecordCache(tmp_path / "c.sqlite", older)
    old_cache.put([(path, stat, record)], 1_700_000_000.5)
    old_cache.close()
    assert RecordCache(tmp_path / "c.sqlite", current).get(path, stat) is None
    assert RecordCache(tmp_path / "c.sqlite", older).get(path, stat) is not None
