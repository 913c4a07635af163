"""The README's decoders table: what the default install decodes, and which package decodes it.

One bundled pydicom file per transfer syntax goes through :func:`check_file`; its record must
hold what pydicom's own ``pixel_array`` returns. JPEG-LS and JPEG 2000 must not reach GDCM,
which can ``abort()`` the process on corrupt streams (README, "Bad files"): the plugins pydicom
calls are recorded, so the test sees which package decoded each file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.data import get_testdata_file
from pydicom.pixels.decoders.base import get_decoder

import pytest_dicomqc
from pytest_dicomqc.pipeline import check_file, wanted_tags
from pytest_dicomqc.record import FileRecord
from pytest_dicomqc.rules.load import load_rules
from tests.decoders import installed

DEFAULT_RULES = load_rules(Path(pytest_dicomqc.__file__).parent / "rules.yaml")
CHARLS = "pyjpegls" if installed("pyjpegls") else "gdcm"
OPENJPEG = "pylibjpeg" if installed("pylibjpeg-openjpeg") else "gdcm"
RLE = "pylibjpeg" if installed("pylibjpeg-rle") else "pydicom"

# bundled file, its transfer syntax, the plugin that must decode it (pydicom's label; None: no plugin)
FILES = [
    ("SC_rgb_jpeg_dcmtk.dcm", uid.JPEGBaseline8Bit, "gdcm"),  # pydicom's order: GDCM first
    ("SC_rgb_jpeg_gdcm.dcm", uid.JPEGLosslessSV1, "gdcm"),
    ("MR_small_jpeg_ls_lossless.dcm", uid.JPEGLSLossless, CHARLS),
    ("JPEGLSNearLossless_08.dcm", uid.JPEGLSNearLossless, CHARLS),
    ("JPEGLSNearLossless_16.dcm", uid.JPEGLSNearLossless, CHARLS),
    ("MR_small_jp2klossless.dcm", uid.JPEG2000Lossless, OPENJPEG),
    ("GDCMJ2K_TextGBR.dcm", uid.JPEG2000Lossless, OPENJPEG),
    ("JPEG2000.dcm", uid.JPEG2000, OPENJPEG),
    ("693_J2KI.dcm", uid.JPEG2000, OPENJPEG),
    ("MR_small_RLE.dcm", uid.RLELossless, RLE),
    ("SC_rgb_rle.dcm", uid.RLELossless, RLE),
    ("image_dfl.dcm", uid.DeflatedExplicitVRLittleEndian, None),
]
# pydicom bundles no High-Throughput JPEG 2000 file and cannot encode one: that row of the table is untested here.
SPIED = (
    uid.JPEGBaseline8Bit,
    uid.JPEGLosslessSV1,
    *uid.JPEGLSTransferSyntaxes,
    uid.JPEG2000Lossless,
    uid.JPEG2000,
    uid.HTJ2K,
    uid.RLELossless,
)


def bundled(name: str) -> Path:
    path = get_testdata_file(name, download=False)
    assert path is not None, f"pydicom no longer bundles {name}"
    return Path(path)


def record_of(path: Path) -> FileRecord:
    return check_file(path, path.name, DEFAULT_RULES, wanted_tags(DEFAULT_RULES))


@pytest.fixture
def plugins_called(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The label of every pydicom decoding plugin called, in order: each available plugin of the
    compressed syntaxes is wrapped (pydicom looks plugins up by label when it decodes)."""
    calls: list[str] = []

    def spy(label: str, plugin: Callable[..., Any]) -> Callable[..., Any]:
        def called(*args: Any, **kwargs: Any) -> Any:
            calls.append(label)
            return plugin(*args, **kwargs)

        return called

    for syntax in SPIED:
        decoder = get_decoder(syntax)
        for label, plugin in list(decoder._available.items()):
            monkeypatch.setitem(decoder._available, label, spy(label, plugin))
    yield calls


@pytest.mark.parametrize(("name", "syntax", "plugin"), FILES, ids=[name for name, _, _ in FILES])
def test_default_install_decodes_every_syntax(name: str, syntax: uid.UID, plugin: str | None) -> None:
    """kind dicom, no error, and the pixel summary of pydicom's own ``pixel_array``."""
    path = bundled(name)
    assert pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax
    record = record_of(path)
    assert (record.kind, record.error) == ("dicom", "")
    array = pydicom.dcmread(path).pixel_array
    frames = int(pydicom.dcmread(path, stop_before_pixels=True).get("NumberOfFrames") or 1)
    shape = array.shape[1:] if frames > 1 else array.shape
    pixels = {key: record.values[key] for key in ("dtype", "rows", "columns", "frames", "samples_per_pixel")}
    assert pixels == {
        "dtype": array.dtype.name,
        "rows": shape[0],
        "columns": shape[1],
        "frames": frames,
        "samples_per_pixel": shape[2] if len(shape) > 2 else 1,
    }
    assert (record.values["min"], record.values["max"]) == (array.min().item(), array.max().item())
    assert record.values["mean"] == pytest.approx(float(np.mean(array, dtype=np.float64)), rel=1e-12)
    assert record.values["transfer_syntax"] == syntax.name


@pytest.mark.parametrize(("name", "syntax", "plugin"), FILES, ids=[name for name, _, _ in FILES])
def test_decoded_by_the_safer_plugin(plugins_called: list[str], name: str, syntax: uid.UID, plugin: str | None) -> None:
    """JPEG-LS by CharLS (pyjpegls) and JPEG 2000 by OpenJPEG (pylibjpeg-openjpeg), never GDCM,
    although GDCM is first in pydicom's order; other syntaxes keep pydicom's order."""
    record = record_of(bundled(name))
    assert record.error == ""
    assert plugins_called == ([] if plugin is None else [plugin])
    if syntax in (*uid.JPEGLSTransferSyntaxes, *uid.JPEG2000TransferSyntaxes):
        assert "gdcm" not in plugins_called
        # the promise matters only because GDCM would be tried first otherwise
        assert next(iter(get_decoder(syntax)._available)) == "gdcm" or not installed("python-gdcm")


def test_the_whole_array_fallback_keeps_the_safer_plugin(
    plugins_called: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where pydicom cannot iterate frames ("output array is read-only", some JPEG 2000 files), the
    whole array is decoded instead: by the same plugin, not GDCM first."""
    from pytest_dicomqc import reader

    def read_only(*args: Any, **kwargs: Any) -> Iterator[np.ndarray]:
        raise ValueError("assignment destination is read-only")
        yield  # a generator, as iter_pixels is

    monkeypatch.setattr(reader, "iter_pixels", read_only)
    path = bundled("MR_small_jp2klossless.dcm")
    record = record_of(path)
    assert (record.error, plugins_called) == ("", [OPENJPEG])
    array = pydicom.dcmread(path).pixel_array
    assert (record.values["min"], record.values["max"]) == (array.min().item(), array.max().item())
