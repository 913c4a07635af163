"""Recreate ``examples/dataset/``: a small synthetic DICOM dataset that shows every pytest-dicomqc outcome.

The dataset looks like a real export (``train/``, ``val/``, ``test/`` folders, one file without an
extension, a few non-DICOM files next to the images) but holds no patient data: every image is a
numeric phantom drawn with numpy. It exercises the default rules (``pytest_dicomqc/rules.yaml``):

* files that pass: original CT (uncompressed and RLE Lossless), MR (JPEG 2000 Lossless) and CR;
* files that fail one rule each: a derived CT reformat and a secondary capture (``original-image``),
  a CT with VOI LUT Function ``LOG`` (``voi-lut-function``), an 8-bit MR (``pixel-dtype-ct-mr``);
* a truncated ``.dcm`` file that cannot be read;
* non-DICOM files (JPEG, PNG, CSV, text) that are reported as skipped.

The output is deterministic: fixed random seed, UIDs built from a fixed root and counters, fixed
dates, and pinned encoder plugins, so running the script again gives byte-identical files.

Run from the repository root::

    python examples/make_dataset.py
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from pydicom import Dataset, FileMetaDataset, uid

DATASET = Path(__file__).resolve().parent / "dataset"
SEED = 0
UID_ROOT = "1.2.826.0.1.3680043.10.1234."
IMPLEMENTATION_CLASS_UID = UID_ROOT + "0.1"
IMPLEMENTATION_VERSION = "DICOMQC_EX_1"
STUDY_DATE = "20240115"
BROKEN_SIZE = 300

# Second component of every UID: what the counter after it numbers.
_STUDY, _SERIES, _INSTANCE, _FRAME_OF_REFERENCE = 1, 2, 3, 4


def make_uid(kind: int, number: int) -> uid.UID:
    """A fixed UID under :data:`UID_ROOT`, e.g. ``<root>3.7`` for the 7th SOP instance."""
    return uid.UID(f"{UID_ROOT}{kind}.{number}")


@dataclass(frozen=True)
class Patient:
    """An anonymous example patient and the one study it has."""

    name: str
    patient_id: str
    study: int
    accession: str


@dataclass(frozen=True)
class Series:
    """A series of one patient's study; ``number`` also numbers its UID."""

    patient: Patient
    number: int
    modality: str
    description: str


# ---------------------------------------------------------------------------------------------
# Phantoms: smooth synthetic anatomy plus noise, in stored pixel values.
# ---------------------------------------------------------------------------------------------


def _grid(rows: int, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centre coordinates scaled to [-1, 1] on both axes."""
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float64)
    return 2 * (y + 0.5) / rows - 1, 2 * (x + 0.5) / columns - 1


def _ellipse(y: np.ndarray, x: np.ndarray, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1


def ct_phantom(rng: np.random.Generator, size: int, slice_offset: float) -> np.ndarray:
    """An axial body slice in Hounsfield units: air, soft tissue, fat rim, lungs, spine, bone ring."""
    y, x = _grid(size, size)
    hu = np.full((size, size), -1000.0)
    body = _ellipse(y, x, 0.05, 0, 0.72, 0.9)
    hu[body] = -90  # subcutaneous fat
    hu[_ellipse(y, x, 0.05, 0, 0.64, 0.82)] = 40  # soft tissue
    lung_ry = 0.42 - 0.05 * slice_offset
    hu[_ellipse(y, x, -0.05, -0.4, lung_ry, 0.28)] = -820
    hu[_ellipse(y, x, -0.05, 0.4, lung_ry, 0.28)] = -820
    hu[_ellipse(y, x, 0.02, 0, 0.16, 0.12)] = 60  # heart / mediastinum
    hu[_ellipse(y, x, 0.55, 0, 0.11, 0.1)] = 700  # vertebral body
    hu[_ellipse(y, x, 0.55, 0, 0.06, 0.05)] = 250  # cancellous bone inside it
    hu += rng.normal(0, 12, hu.shape) * body
    hu += rng.normal(0, 4, hu.shape) * ~body
    return np.clip(np.round(hu), -1024, 3071)


def mr_phantom(rng: np.random.Generator, size: int) -> np.ndarray:
    """A T1-like head slice: skull, brain with a smooth coil-sensitivity bias, ventricles."""
    y, x = _grid(size, size)
    signal = np.zeros((size, size))
    signal[_ellipse(y, x, 0, 0, 0.85, 0.72)] = 2400  # scalp fat
    signal[_ellipse(y, x, 0, 0, 0.8, 0.67)] = 150  # skull
    brain = _ellipse(y, x, 0, 0, 0.74, 0.61)
    signal[brain] = 1500
    signal[_ellipse(y, x, -0.05, -0.12, 0.22, 0.07)] = 400  # lateral ventricles
    signal[_ellipse(y, x, -0.05, 0.12, 0.22, 0.07)] = 400
    bias = 1.0 + 0.25 * np.exp(-((y + 0.9) ** 2 + x**2) / 0.8)
    signal = signal * bias + np.abs(rng.normal(0, 25, signal.shape))  # Rician-like noise floor
    return np.clip(np.round(signal), 0, 4095)


def cr_phantom(rng: np.random.Generator, rows: int, columns: int) -> np.ndarray:
    """A PA chest radiograph, 12-bit, bright where attenuation is high (MONOCHROME2)."""
    y, x = _grid(rows, columns)
    image = 300 + 1800 * np.exp(-(x**2) / 0.9)  # soft tissue thickest mid-line
    for cx in (-0.4, 0.4):
        lung = np.exp(-((((y + 0.05) / 0.55) ** 2 + ((x - cx) / 0.25) ** 2) ** 2))
        image -= 1100 * lung
    image += 1500 * np.exp(-((x / 0.07) ** 2))  # spine
    image += 900 * _ellipse(y, x, 0.25, 0.12, 0.22, 0.2)  # heart shadow
    image[np.abs(x) > 0.93] = 80  # collimated border
    image += rng.normal(0, 20, image.shape)
    return np.clip(np.round(image), 0, 4095)


def colour_chart(rows: int, columns: int) -> np.ndarray:
    """An RGB screen grab: a colour wheel-like gradient with a grey title bar, as uint8."""
    y, x = _grid(rows, columns)
    angle = np.arctan2(y, x)
    rgb = np.stack([np.cos(angle + shift) for shift in (0, 2.094, 4.189)], axis=-1)
    radius = np.clip(1.2 - np.hypot(y, x), 0, 1)[..., None]
    image = 127.5 + 127.5 * rgb * radius
    image[: rows // 8] = 200  # title bar
    return np.round(image).astype(np.uint8)


def window_to_uint8(hu: np.ndarray, centre: float, width: float) -> np.ndarray:
    """Linear windowing of a CT slice to 8 bits, as a viewer would show it."""
    low = centre - width / 2
    return np.round(np.clip((hu - low) / width, 0, 1) * 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# DICOM data sets
# ---------------------------------------------------------------------------------------------


def new_dataset(sop_class: str, series: Series, instance: int, image_type: list[str]) -> Dataset:
    """Patient, study, series and SOP common modules with a fixed, anonymous identity."""
    patient = series.patient
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = image_type
    ds.SOPClassUID = uid.UID(sop_class)
    ds.SOPInstanceUID = make_uid(_INSTANCE, instance)
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = STUDY_DATE
    ds.StudyTime = "093000"
    ds.SeriesTime = f"{93000 + 100 * series.number:06d}"
    ds.ContentTime = f"{93000 + 100 * series.number + instance:06d}"
    ds.AccessionNumber = patient.accession
    ds.Modality = series.modality
    ds.Manufacturer = "DICOMQC Synthetic"
    ds.InstitutionName = "Example Institution"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "Synthetic example study"
    ds.SeriesDescription = series.description
    ds.ManufacturerModelName = "Phantom Generator"
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "Synthetic phantom, no patient data"
    ds.StudyInstanceUID = make_uid(_STUDY, patient.study)
    ds.SeriesInstanceUID = make_uid(_SERIES, series.number)
    ds.StudyID = f"S{patient.study}"
    ds.SeriesNumber = series.number
    return ds


def set_pixel_module(ds: Dataset, shape: tuple[int, ...], bits_allocated: int, bits_stored: int, signed: bool) -> None:
    """Image Pixel module for a grey (2-D shape) or RGB (3-D shape) image."""
    ds.SamplesPerPixel = shape[2] if len(shape) == 3 else 1
    ds.PhotometricInterpretation = "RGB" if len(shape) == 3 else "MONOCHROME2"
    if len(shape) == 3:
        ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = shape[0], shape[1]
    ds.BitsAllocated = bits_allocated
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0


def set_plane(ds: Dataset, series: Series, size: int, position_z: float, spacing: float, thickness: float) -> None:
    """Image Plane module for a square axial slice of ``size`` pixels centred on the table."""
    half = round(spacing * (size - 1) / 2, 3)
    ds.FrameOfReferenceUID = make_uid(_FRAME_OF_REFERENCE, series.patient.study)
    ds.PositionReferenceIndicator = ""
    ds.PixelSpacing = [spacing, spacing]
    ds.SliceThickness = thickness
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [-half, -half, position_z]
    ds.SliceLocation = position_z


def ct_dataset(
    series: Series, instance: int, number: int, hu: np.ndarray, image_type: list[str], voi: str | None
) -> tuple[Dataset, np.ndarray]:
    """A CT image, int16 stored values with RescaleIntercept -1024; ``voi`` is VOILUTFunction."""
    ds = new_dataset(uid.CTImageStorage, series, instance, image_type)
    ds.InstanceNumber = number
    ds.BodyPartExamined = "CHEST"
    ds.KVP = 120
    ds.ConvolutionKernel = "STANDARD"
    ds.PatientPosition = "HFS"
    set_plane(ds, series, hu.shape[0], position_z=-100.0 + 5.0 * number, spacing=2.5, thickness=5.0)
    set_pixel_module(ds, hu.shape, bits_allocated=16, bits_stored=16, signed=True)
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    if voi is not None:
        ds.VOILUTFunction = voi
    return ds, (hu + 1024).astype(np.int16)


def mr_dataset(series: Series, instance: int, signal: np.ndarray, bits: int) -> tuple[Dataset, np.ndarray]:
    """An original T1 spin-echo MR slice; ``bits`` is 16 (12 stored) or 8."""
    ds = new_dataset(uid.MRImageStorage, series, instance, ["ORIGINAL", "PRIMARY", "M", "NONE"])
    ds.InstanceNumber = 1
    ds.BodyPartExamined = "HEAD"
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = 500
    ds.EchoTime = 15
    ds.EchoTrainLength = 1
    ds.MagneticFieldStrength = 1.5
    ds.PatientPosition = "HFS"
    set_plane(ds, series, signal.shape[0], position_z=20.0, spacing=1.8, thickness=4.0)
    if bits == 8:
        set_pixel_module(ds, signal.shape, bits_allocated=8, bits_stored=8, signed=False)
        pixels = np.round(signal * 255 / 4095).astype(np.uint8)
        ds.WindowCenter, ds.WindowWidth = 110, 220
    else:
        set_pixel_module(ds, signal.shape, bits_allocated=16, bits_stored=12, signed=False)
        pixels = signal.astype(np.uint16)
        ds.WindowCenter, ds.WindowWidth = 1800, 3600
    return ds, pixels


def cr_dataset(series: Series, instance: int, image: np.ndarray) -> tuple[Dataset, np.ndarray]:
    """A PA chest CR, uint16 with 12 bits stored, windowed with a sigmoid VOI LUT function."""
    ds = new_dataset(uid.ComputedRadiographyImageStorage, series, instance, ["ORIGINAL", "PRIMARY"])
    ds.InstanceNumber = 1
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ["L", "F"]
    ds.KVP = 125
    ds.DistanceSourceToDetector = 1800
    ds.ImagerPixelSpacing = [2.8, 2.8]
    ds.PixelSpacing = [2.8, 2.8]
    set_pixel_module(ds, image.shape, bits_allocated=16, bits_stored=12, signed=False)
    ds.WindowCenter = 2048
    ds.WindowWidth = 3000
    ds.VOILUTFunction = "SIGMOID"
    return ds, image.astype(np.uint16)


def secondary_capture_dataset(series: Series, instance: int, image: np.ndarray) -> tuple[Dataset, np.ndarray]:
    """A screen capture saved as DICOM: Secondary Capture, DERIVED\\SECONDARY, 8-bit RGB."""
    ds = new_dataset(uid.SecondaryCaptureImageStorage, series, instance, ["DERIVED", "SECONDARY"])
    ds.InstanceNumber = 1
    ds.ConversionType = "WSD"
    set_pixel_module(ds, image.shape, bits_allocated=8, bits_stored=8, signed=False)
    return ds, image


def save(ds: Dataset, pixels: np.ndarray, path: Path, transfer_syntax: str = uid.ExplicitVRLittleEndian) -> None:
    """Attach file meta and pixel data (encoded as ``transfer_syntax``) and write a DICOM Part 10 file."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    meta.ImplementationClassUID = uid.UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    ds.file_meta = meta
    syntax = uid.UID(transfer_syntax)
    if syntax.is_compressed:
        # Pinned plugins keep the bytes the same wherever the script runs; keep our UIDs too.
        plugin = "pydicom" if syntax == uid.RLELossless else "pylibjpeg"
        ds.compress(syntax, pixels, encoding_plugin=plugin, generate_instance_uid=False)
    else:
        ds.PixelData = pixels.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


# ---------------------------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------------------------

TRAIN_PATIENT = Patient("ANON^EXAMPLE01", "EX01", study=1, accession="ACC0001")
VAL_PATIENT = Patient("ANON^EXAMPLE02", "EX02", study=2, accession="ACC0002")
CT_SERIES = Series(TRAIN_PATIENT, 1, "CT", "Chest axial 5mm")
MR_SERIES = Series(TRAIN_PATIENT, 2, "MR", "Head T1 SE axial")
CR_SERIES = Series(TRAIN_PATIENT, 3, "CR", "Chest PA")
VAL_CT_SERIES = Series(VAL_PATIENT, 4, "CT", "Chest axial 5mm")
VAL_MPR_SERIES = Series(VAL_PATIENT, 5, "CT", "Chest MPR reformat")
VAL_MR_SERIES = Series(TRAIN_PATIENT, 6, "MR", "Head T1 SE axial 8-bit export")  # a train patient: a leak
VAL_SC_SERIES = Series(VAL_PATIENT, 7, "OT", "Screen capture")

AXIAL = ["ORIGINAL", "PRIMARY", "AXIAL"]
SIZE = 128


def make_train(root: Path) -> None:
    """Files that pass the default rules."""
    for number, (name, voi, syntax) in enumerate(
        [
            ("ct_original_001.dcm", "LINEAR", uid.ExplicitVRLittleEndian),
            ("ct_original_002.dcm", None, uid.ExplicitVRLittleEndian),
            ("ct_rle_003.dcm", "LINEAR_EXACT", uid.RLELossless),
        ],
        start=1,
    ):
        hu = ct_phantom(np.random.default_rng([SEED, number]), SIZE, slice_offset=number - 2)
        ds, pixels = ct_dataset(CT_SERIES, number, number, hu, AXIAL, voi)
        if number == 2:  # a second, lung window as viewers often get
            ds.WindowCenter, ds.WindowWidth = [40, -600], [400, 1500]
        save(ds, pixels, root / "train" / "ct" / name, syntax)

    ds, pixels = mr_dataset(MR_SERIES, 4, mr_phantom(np.random.default_rng([SEED, 4]), SIZE), bits=16)
    save(ds, pixels, root / "train" / "mr" / "mr_jpeg2000_001.dcm", uid.JPEG2000Lossless)

    ds, pixels = cr_dataset(CR_SERIES, 5, cr_phantom(np.random.default_rng([SEED, 5]), 160, SIZE))
    save(ds, pixels, root / "train" / "cr" / "CR0001")


def make_val(root: Path) -> None:
    """Files that each break one default rule."""
    hu = ct_phantom(np.random.default_rng([SEED, 6]), SIZE, slice_offset=0)
    coronal = np.rot90(hu).copy()  # stands in for a multiplanar reformat
    ds, pixels = ct_dataset(VAL_MPR_SERIES, 6, 1, coronal, ["DERIVED", "SECONDARY", "REFORMATTED"], "LINEAR")
    ds.DerivationDescription = "Multiplanar reformat of series 4"
    save(ds, pixels, root / "val" / "ct" / "ct_derived_001.dcm")

    hu = ct_phantom(np.random.default_rng([SEED, 7]), SIZE, slice_offset=0.5)
    ds, pixels = ct_dataset(VAL_CT_SERIES, 7, 1, hu, AXIAL, "LOG")
    save(ds, pixels, root / "val" / "ct" / "ct_bad_voi.dcm")

    ds, pixels = mr_dataset(VAL_MR_SERIES, 8, mr_phantom(np.random.default_rng([SEED, 8]), SIZE), bits=8)
    save(ds, pixels, root / "val" / "mr" / "mr_uint8.dcm")

    ds, pixels = secondary_capture_dataset(VAL_SC_SERIES, 9, colour_chart(96, SIZE))
    save(ds, pixels, root / "val" / "secondary_capture.dcm")


def make_test(root: Path) -> None:
    """Non-DICOM files of a typical export, and one truncated DICOM file."""
    folder = root / "test"
    folder.mkdir(parents=True, exist_ok=True)

    hu = ct_phantom(np.random.default_rng([SEED, 10]), SIZE, slice_offset=0)
    Image.fromarray(window_to_uint8(hu, 40, 400)).resize((64, 64), Image.Resampling.BILINEAR).save(
        folder / "thumbnail.png", optimize=True
    )

    screen = Image.fromarray(colour_chart(120, 160))
    draw = ImageDraw.Draw(screen)
    draw.rectangle((10, 30, 70, 90), outline=(255, 255, 255), width=2)
    draw.text((12, 2), "Viewer", fill=(0, 0, 0))
    screen.save(folder / "screenshot.jpg", quality=85)

    labels = "path,label\ntrain/ct/ct_original_001.dcm,normal\ntrain/ct/ct_original_002.dcm,normal\n"
    labels += "train/ct/ct_rle_003.dcm,nodule\ntrain/mr/mr_jpeg2000_001.dcm,normal\ntrain/cr/CR0001,normal\n"
    (folder / "labels.csv").write_text(labels, encoding="utf-8", newline="\n")

    source = (root / "train" / "ct" / "ct_original_001.dcm").read_bytes()
    (folder / "broken.dcm").write_bytes(source[:BROKEN_SIZE])


README = """\
Example dataset for pytest-dicomqc
==================================

Synthetic images only: numeric phantoms drawn by examples/make_dataset.py, which recreates
this folder byte for byte. No patient data; patients are ANON^EXAMPLE01 (EX01) and ANON^EXAMPLE02 (EX02).

train/  original CT (uncompressed and RLE Lossless), MR (JPEG 2000 Lossless) and CR (no file
        extension, as PACS exports often are): these pass the default rules.
val/    one failure each: a derived CT reformat and a secondary capture (original-image), a CT with
        VOI LUT Function LOG (voi-lut-function), an 8-bit MR (pixel-dtype-ct-mr) of a patient who
        is in train/ as well (the dataset check patient-split-leakage).
test/   broken.dcm is the first 300 bytes of a DICOM file (unreadable); the JPEG, PNG and CSV files
        and this README are not DICOM and are reported as skipped.

Try it:  pytest --dicom-dir=examples/dataset --dicom-report=report.xlsx
"""


def main() -> None:
    if DATASET.exists():
        shutil.rmtree(DATASET)
    DATASET.mkdir(parents=True)
    make_train(DATASET)
    make_val(DATASET)
    make_test(DATASET)
    (DATASET / "README.txt").write_text(README, encoding="utf-8", newline="\n")
    files = sorted(p for p in DATASET.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    for path in files:
        print(f"{path.stat().st_size:>8}  {path.relative_to(DATASET).as_posix()}")
    print(f"{total:>8}  total, {len(files)} files in {DATASET}")


if __name__ == "__main__":
    main()
