"""Deterministic synthetic DICOM datasets for the benchmark.

Why synthetic: the benchmark must run on a fresh clone with no patient data, and every machine
must measure the same bytes. Why byte templates: writing 100,000 files through pydicom's writer
would take longer than the runs it feeds, so each native dataset is written once per variant by
pydicom (``save_as(..., enforce_file_format=True)``) and every file is that header with its
fixed-length placeholders (SOP Instance UID, Instance Number) patched, followed by its own pixel
bytes. Pixels differ in every file (noise from ``numpy.random.default_rng(0)``), so nothing that
caches by content or by header can skip work it would not skip on real data.

Compressed files cannot share a template (the encapsulated length differs per file), so they go
through ``Dataset.compress`` one by one; 500 small frames take a few seconds.

``tiny`` and ``tiny100k`` lie in top-level split folders (``train/`` 80 %, ``test/`` 20 %) with one
PatientID per series folder, so the packaged ``patient-split-leakage`` check has splits to compare.
Each has a *failing* twin (``tiny-failing``, ``tiny100k-failing``, issue 13): the same file names,
layout and pixel noise (with UIDs of its own), except that 10 % of the files are
``DERIVED\\SECONDARY`` (rule ``original-image`` fails), 1 % are byte-for-byte copies of their
neighbour (same SOP Instance UID and pixels under another name: both uniqueness checks fail) and
the first test series belongs to the patient of the first train series (``patient-split-leakage``
fails). The plugin must be as fast on it as on the passing twin.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom import Dataset, FileMetaDataset, dcmread, uid

GENERATOR_VERSION = 2
"""Bump when the content changes, so datasets kept with ``--keep`` are regenerated (2: split folders,
one PatientID per series, failing twins)."""

UID_ROOT = "1.2.826.0.1.3680043.8.498"  # pydicom's root: synthetic, never clashes with a real device
FILES_PER_FOLDER = 500
"""Files per series folder: real exports nest files, and huge flat folders are a different benchmark."""

_UID_BASE = 1_000_000_000  # index + base keeps every SOP Instance UID the same length
_UID_PLACEHOLDER_NUMBER = 1_999_999_999
_INSTANCE_PLACEHOLDER = 87654321  # eight digits, like the zero-padded values patched in
_PATIENT_PLACEHOLDER_NUMBER = 999_999  # six digits, like the zero-padded series numbers patched in
TRAIN_FRACTION = 0.8
"""Share of the files in ``train/`` for datasets with split folders; the rest are in ``test/``."""
FAILING_EVERY = 10
"""In a failing twin, one group of four files in every ``FAILING_EVERY`` is DERIVED (10 %)."""
DUPLICATE_EVERY = 100
"""In a failing twin, one file in every ``DUPLICATE_EVERY`` is a copy of the file before it (1 %)."""


@dataclass(frozen=True)
class DatasetSpec:
    """One benchmark dataset: what it is called, how many files, and how its files are made."""

    name: str
    count: int
    code: int
    """Distinct UID component per dataset, so UIDs never repeat across datasets."""
    description: str
    splits: bool = False
    """Files in top-level ``train/`` and ``test/`` folders, one PatientID per series folder."""
    failing: bool = False
    """The failing twin: DERIVED files, duplicates and one patient in both splits (see module doc)."""

    @property
    def dirname(self) -> str:
        """Folder name with the file count, so quick and full datasets can share one ``--keep`` dir."""
        return f"{self.name}-{self.count}"


FULL_COUNTS = {"ct": 2_000, "tiny": 20_000, "compressed": 500, "tiny100k": 100_000}
QUICK_COUNTS = {"ct": 200, "tiny": 2_000, "compressed": 50, "tiny100k": 10_000}
DESCRIPTIONS = {
    "ct": "CT-like 512x512 int16, Explicit VR Little Endian, VOILUTFunction LINEAR on half",
    "tiny": "32x32 uint16 (MR-like) and int16 (CT-like), Explicit VR Little Endian, train/ 80 % and test/ 20 %",
    "compressed": "256x256 uint16 (12 bits stored) MR-like, JPEG-LS Lossless",
    "tiny100k": "as tiny, five times the files (memory growth)",
}
CODES = {"ct": 1, "tiny": 2, "compressed": 3, "tiny100k": 4, "tiny-failing": 5, "tiny100k-failing": 6}
ALL_NAMES = tuple(FULL_COUNTS)
"""The datasets ``--only`` chooses from; a failing twin comes with its passing dataset."""
FAILING_TWINS = {"tiny": "tiny-failing", "tiny100k": "tiny100k-failing"}
SPLIT_NAMES = frozenset({"tiny", "tiny100k"})
WRITER_OF = {"ct": "ct", "tiny": "tiny", "tiny100k": "tiny", "compressed": "compressed"}


def spec_for(name: str, quick: bool) -> DatasetSpec:
    """The spec of a dataset (or of a failing twin, ``tiny-failing``) at full or quick size."""
    base = next((passing for passing, twin in FAILING_TWINS.items() if twin == name), name)
    counts = QUICK_COUNTS if quick else FULL_COUNTS
    failing = base != name
    description = DESCRIPTIONS[base]
    if failing:
        description = (
            f"as {base}, failing: 10 % DERIVED\\SECONDARY (original-image), 1 % duplicates "
            "(SOPInstanceUID and pixels), one patient in train/ and test/"
        )
    return DatasetSpec(
        name=name,
        count=counts[base],
        code=CODES[name],
        description=description,
        splits=base in SPLIT_NAMES,
        failing=failing,
    )


def sop_uid(spec: DatasetSpec, index: int) -> str:
    """The SOP Instance UID of file ``index``; all of one dataset have the same length."""
    return f"{UID_ROOT}.{spec.code}.{_UID_BASE + index}"


def _train_count(spec: DatasetSpec) -> int:
    return int(spec.count * TRAIN_FRACTION)


def series_of(spec: DatasetSpec, index: int) -> tuple[str, int]:
    """The split folder (``""`` without splits) and the dataset-wide series number of file ``index``.

    Series folders hold 500 files; with splits, each split starts a new series folder and the
    numbers go on across splits (``train/series_0000`` ... ``test/series_0032`` ...).
    """
    if not spec.splits:
        return "", index // FILES_PER_FOLDER
    train = _train_count(spec)
    if index < train:
        return "train", index // FILES_PER_FOLDER
    return "test", -(-train // FILES_PER_FOLDER) + (index - train) // FILES_PER_FOLDER


def relative_path(spec: DatasetSpec, index: int) -> str:
    """Where file ``index`` lives below the dataset root (series folders of 500, maybe in a split)."""
    split, series = series_of(spec, index)
    return f"{split + '/' if split else ''}series_{series:04d}/IM_{index + 1:06d}.dcm"


def is_derived(spec: DatasetSpec, index: int) -> bool:
    """Whether file ``index`` of a failing twin is DERIVED: four files in a row (one of each tiny kind) in 40."""
    return spec.failing and (index // 4) % FAILING_EVERY == 3


def duplicate_of(spec: DatasetSpec, index: int) -> int | None:
    """The file that file ``index`` of a failing twin is a copy of (the one before it), else None.

    Index 50 of every 100 is never DERIVED, never the first of a series folder (those start at
    multiples of 100), so original and copy share folder, patient and split.
    """
    return index - 1 if spec.failing and index % DUPLICATE_EVERY == DUPLICATE_EVERY // 2 else None


def patient_id(spec: DatasetSpec, index: int) -> str:
    """One patient per series folder; in a failing twin the first test series is train's first patient."""
    split, series = series_of(spec, index)
    if spec.failing and split == "test" and series == series_of(spec, _train_count(spec))[1]:
        series = 0
    return f"PAT-{spec.code}-{series:06d}"


# --------------------------------------------------------------------------------------------
# Headers


def _base_dataset(spec: DatasetSpec, sop_class: str, modality: str, rows: int, columns: int) -> Dataset:
    """Header tags every variant shares, with placeholders where each file gets its own value."""
    placeholder_uid = f"{UID_ROOT}.{spec.code}.{_UID_PLACEHOLDER_NUMBER}"
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = placeholder_uid
    ds.file_meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = f"{UID_ROOT}.{spec.code}.1"
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = placeholder_uid
    ds.StudyDate = "20240101"
    ds.Modality = modality
    ds.Manufacturer = "pytest-dicomqc benchmark"
    ds.PatientName = "Benchmark^Synthetic"
    ds.PatientID = f"PAT-{spec.code}-{_PATIENT_PLACEHOLDER_NUMBER}" if spec.splits else f"BENCH{spec.code}"
    ds.StudyInstanceUID = f"{UID_ROOT}.{spec.code}.2"
    ds.SeriesInstanceUID = f"{UID_ROOT}.{spec.code}.3"
    ds.SeriesNumber = 1
    ds.InstanceNumber = _INSTANCE_PLACEHOLDER
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.PixelSpacing = [0.5, 0.5]
    return ds


def _set_pixel_module(ds: Dataset, dtype: np.dtype[np.generic], bits_stored: int) -> None:
    ds.BitsAllocated = dtype.itemsize * 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if dtype.kind == "i" else 0


def _image_type(derived: bool, *rest: str) -> list[str]:
    return ["DERIVED", "SECONDARY", *rest] if derived else ["ORIGINAL", "PRIMARY", *rest]


def _ct_header(spec: DatasetSpec, rows: int, columns: int, voi_function: str | None, derived: bool = False) -> Dataset:
    ds = _base_dataset(spec, uid.CTImageStorage, "CT", rows, columns)
    ds.ImageType = _image_type(derived, "AXIAL")
    ds.SliceThickness = "1.0"
    ds.KVP = "120"
    _set_pixel_module(ds, np.dtype(np.int16), 16)
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    if voi_function is not None:
        ds.VOILUTFunction = voi_function
    return ds


def _mr_header(spec: DatasetSpec, rows: int, columns: int, bits_stored: int, derived: bool = False) -> Dataset:
    ds = _base_dataset(spec, uid.MRImageStorage, "MR", rows, columns)
    ds.ImageType = _image_type(derived, "M", "ND")
    ds.SliceThickness = "3.0"
    _set_pixel_module(ds, np.dtype(np.uint16), bits_stored)
    ds.WindowCenter = "600"
    ds.WindowWidth = "1200"
    return ds


# --------------------------------------------------------------------------------------------
# Templates for native (uncompressed) files


@dataclass(frozen=True)
class Template:
    """The bytes of one file up to its pixel values, and where the placeholders are."""

    header: bytes
    pixel_bytes: int
    uid_placeholder: bytes
    instance_placeholder: bytes
    patient_placeholder: bytes | None = None
    """Only in datasets with splits, where every series folder has its own patient."""

    def render(self, spec: DatasetSpec, index: int) -> bytes:
        """The header of file ``index``: same length as the template, its own UID, number (and patient)."""
        value = sop_uid(spec, index).encode()
        header = self.header.replace(self.uid_placeholder, value)
        if self.patient_placeholder is not None:
            header = header.replace(self.patient_placeholder, patient_id(spec, index).encode())
        return header.replace(self.instance_placeholder, f"{index + 1:08d}".encode())


def make_template(spec: DatasetSpec, ds: Dataset, dtype: np.dtype[np.generic]) -> Template:
    """Serialise ``ds`` with zero pixels and cut off the pixel values.

    Checks that the placeholders occur exactly where expected, so a pydicom change that moves or
    pads them fails loudly here instead of writing wrong files.
    """
    pixel_bytes = int(ds.Rows) * int(ds.Columns) * dtype.itemsize
    ds.PixelData = bytes(pixel_bytes)
    ds["PixelData"].VR = "OW"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    header = data[:-pixel_bytes]
    element = b"\xe0\x7f\x10\x00OW\x00\x00" + pixel_bytes.to_bytes(4, "little")
    if not header.endswith(element) or any(data[-pixel_bytes:]):
        raise RuntimeError("pixel data is not the last element of the template")
    uid_placeholder = f"{UID_ROOT}.{spec.code}.{_UID_PLACEHOLDER_NUMBER}".encode()
    instance_placeholder = str(_INSTANCE_PLACEHOLDER).encode()
    if header.count(uid_placeholder) != 2 or header.count(instance_placeholder) != 1:
        raise RuntimeError("placeholders not found exactly where expected in the template")
    patient_placeholder = f"PAT-{spec.code}-{_PATIENT_PLACEHOLDER_NUMBER}".encode() if spec.splits else None
    if patient_placeholder is not None and (
        header.count(patient_placeholder) != 1 or len(patient_placeholder) != len(patient_id(spec, 0))
    ):
        raise RuntimeError("patient placeholder not found exactly once, or of another length than the IDs")
    return Template(header, pixel_bytes, uid_placeholder, instance_placeholder, patient_placeholder)


def _ct_phantom(size: int) -> np.ndarray:
    """A water cylinder with a bone ring in air, stored values for intercept -1024."""
    y, x = np.mgrid[0:size, 0:size]
    r = np.hypot(x - size / 2, y - size / 2) / (size / 2)
    image = np.full((size, size), 24, dtype=np.int16)  # air, about -1000 HU
    image[r < 0.8] = 1024  # water
    image[(r > 0.7) & (r < 0.75)] = 2024  # bone
    image[r >= 0.98] = -2000  # outside the reconstruction circle (padding)
    return image


# --------------------------------------------------------------------------------------------
# Per-dataset file writers: each yields (relative path, chunks of bytes)

FileWriter = Callable[[int], list[bytes | memoryview]]


def _ct_writer(spec: DatasetSpec, rng: np.random.Generator) -> FileWriter:
    templates = [
        make_template(spec, _ct_header(spec, 512, 512, "LINEAR"), np.dtype(np.int16)),
        make_template(spec, _ct_header(spec, 512, 512, None), np.dtype(np.int16)),
    ]
    phantom = _ct_phantom(512)

    def write(index: int) -> list[bytes | memoryview]:
        template = templates[index % 2]
        pixels = phantom + rng.integers(-20, 21, phantom.shape, dtype=np.int16)
        return [template.render(spec, index), memoryview(pixels.astype("<i2", copy=False)).cast("B")]

    return write


def _tiny_writer(spec: DatasetSpec, rng: np.random.Generator) -> FileWriter:
    # Four kinds in turn: two MR uint16, one CT int16 with VOILUTFunction, one CT int16 without;
    # each as ORIGINAL and, for the failing twin, as DERIVED.
    def kinds(derived: bool) -> list[tuple[Template, np.dtype[np.generic], int, int]]:
        u2, i2 = np.dtype(np.uint16), np.dtype(np.int16)
        return [
            (make_template(spec, _mr_header(spec, 32, 32, 12, derived), u2), np.dtype("<u2"), 0, 4096),
            (make_template(spec, _mr_header(spec, 32, 32, 16, derived), u2), np.dtype("<u2"), 0, 65536),
            (make_template(spec, _ct_header(spec, 32, 32, "LINEAR", derived), i2), np.dtype("<i2"), -2000, 3000),
            (make_template(spec, _ct_header(spec, 32, 32, None, derived), i2), np.dtype("<i2"), -2000, 3000),
        ]

    original = kinds(derived=False)
    derived = kinds(derived=True) if spec.failing else original
    previous: list[bytes | memoryview] = []

    def write(index: int) -> list[bytes | memoryview]:
        nonlocal previous
        template, dtype, low, high = (derived if is_derived(spec, index) else original)[index % len(original)]
        # Drawn for a copy too, so every other file has the same pixels as in the passing twin.
        pixels = rng.integers(low, high, (32, 32)).astype(dtype)
        if duplicate_of(spec, index) is not None:
            return previous  # the file before, byte for byte: same SOP Instance UID and pixels
        previous = [template.render(spec, index), pixels.tobytes()]
        return previous

    return write


def _compressed_writer(spec: DatasetSpec, rng: np.random.Generator) -> FileWriter:
    size = 256
    y, x = np.mgrid[0:size, 0:size]
    r = np.hypot(x - size / 2, y - size / 2) / (size / 2)
    body = np.where(r < 0.85, 900.0 + 400.0 * np.cos(6 * r), 20.0)

    def write(index: int) -> list[bytes | memoryview]:
        ds = _mr_header(spec, size, size, 12)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop_uid(spec, index)
        ds.InstanceNumber = index + 1
        noisy = body * (0.9 + 0.2 * index / max(spec.count, 1)) + rng.normal(0.0, 15.0, body.shape)
        pixels = np.clip(noisy, 0, 4095).astype(np.uint16)
        ds.compress(uid.JPEGLSLossless, pixels, encoding_plugin="pyjpegls", generate_instance_uid=False)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        return [buffer.getvalue()]

    return write


WRITERS: dict[str, Callable[[DatasetSpec, np.random.Generator], FileWriter]] = {
    "ct": _ct_writer,
    "tiny": _tiny_writer,
    "compressed": _compressed_writer,
}
"""By kind of file; ``tiny100k`` and the failing twins are written by the ``tiny`` writer."""


def _writer_for(spec: DatasetSpec) -> Callable[[DatasetSpec, np.random.Generator], FileWriter]:
    base = spec.name.removesuffix("-failing")
    return WRITERS[WRITER_OF[base]]


# --------------------------------------------------------------------------------------------
# Generation, reuse and checks


@dataclass(frozen=True)
class GeneratedDataset:
    """A dataset on disk, with what the benchmark table prints about it."""

    spec: DatasetSpec
    path: Path
    files: int
    total_bytes: int
    seconds: float
    reused: bool


def _manifest_path(root: Path, spec: DatasetSpec) -> Path:
    # Beside the dataset, not in it: inside it would be one more item for the plugin to check.
    return root / f"{spec.dirname}.json"


def _write_files(spec: DatasetSpec, target: Path) -> tuple[int, int]:
    writer = _writer_for(spec)(spec, np.random.default_rng(0))
    total = 0
    made: set[Path] = set()
    for index in range(spec.count):
        path = target / relative_path(spec, index)
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        with path.open("wb") as handle:
            for chunk in writer(index):
                total += handle.write(chunk)
    return spec.count, total


def check_dataset(spec: DatasetSpec, path: Path) -> None:
    """Read a few files back with pydicom: the benchmark is worthless on files it cannot decode."""
    first_test = _train_count(spec) if spec.splits else 0
    for index in sorted({0, 1, 2, 3, 12, first_test, spec.count - 1}):
        if index >= spec.count:
            continue
        ds = dcmread(path / relative_path(spec, index))
        if ds.SOPInstanceUID != sop_uid(spec, index) or int(ds.InstanceNumber) != index + 1:
            raise RuntimeError(f"{spec.name}: file {index} has the wrong UID or instance number")
        if spec.splits and ds.PatientID != patient_id(spec, index):
            raise RuntimeError(f"{spec.name}: file {index} has PatientID {ds.PatientID}")
        if ("ORIGINAL" in ds.ImageType) == is_derived(spec, index):
            raise RuntimeError(f"{spec.name}: file {index} has ImageType {ds.ImageType}")
        array = ds.pixel_array
        if array.shape != (int(ds.Rows), int(ds.Columns)):
            raise RuntimeError(f"{spec.name}: file {index} decodes to shape {array.shape}")
    if spec.failing:
        copy = DUPLICATE_EVERY // 2
        original = duplicate_of(spec, copy)
        if (
            original is None
            or (path / relative_path(spec, copy)).read_bytes() != (path / relative_path(spec, original)).read_bytes()
        ):
            raise RuntimeError(f"{spec.name}: file {copy} is not a copy of the file before it")
        if patient_id(spec, first_test) != patient_id(spec, 0):
            raise RuntimeError(f"{spec.name}: the first test series does not share the first train patient")


def _read_manifest(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def ensure_dataset(root: Path, spec: DatasetSpec) -> GeneratedDataset:
    """Generate ``spec`` below ``root``, or reuse it when a complete copy of this version is there.

    Files are written to a ``.partial`` folder that is renamed only when complete, so an
    interrupted generation is never mistaken for a dataset.
    """
    target = root / spec.dirname
    manifest_path = _manifest_path(root, spec)
    manifest = _read_manifest(manifest_path)
    if target.is_dir() and manifest is not None and manifest.get("generator") == GENERATOR_VERSION:
        files, total = manifest.get("files"), manifest.get("bytes")
        if files == spec.count and isinstance(total, int):
            return GeneratedDataset(spec, target, spec.count, total, 0.0, reused=True)
    for stale in (target, root / f"{spec.dirname}.partial"):
        if stale.exists():
            shutil.rmtree(stale)
    partial = root / f"{spec.dirname}.partial"
    partial.mkdir(parents=True)
    start = time.perf_counter()
    files, total = _write_files(spec, partial)
    check_dataset(spec, partial)
    os.replace(partial, target)
    seconds = time.perf_counter() - start
    manifest_path.write_text(json.dumps({"generator": GENERATOR_VERSION, "files": files, "bytes": total}))
    return GeneratedDataset(spec, target, files, total, seconds, reused=False)


def iter_files(path: Path) -> Iterator[Path]:
    """Every file of a dataset, in the order the generator wrote them."""
    for folder, _dirs, names in os.walk(path):
        for name in names:
            yield Path(folder) / name


def prewarm(path: Path) -> None:
    """Read every byte once so that the first timed run does not alone pay for a cold page cache."""
    for file in iter_files(path):
        with file.open("rb") as handle:
            while handle.read(1 << 20):
                pass
