"""The baseline: what users write today instead of the plugin, kept faithful on purpose.

Why it exists: the plugin is only worth switching on in CI when it is not slower than this
30-line script (issue 5). So this script does exactly what such a script does, and nothing
cleverer: walk the folder, ``pydicom.dcmread`` every whole file, build ``ds.pixel_array``,
collect a dict per file, and hand the list to ``pandas.DataFrame.to_excel``. A file that is not
DICOM, or whose pixels cannot be decoded, gets a row with only its path.

Usage: ``python benchmarks/naive.py DATASET_DIR OUT.xlsx``
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pandas as pd
import pydicom
from pydicom.errors import InvalidDicomError

COLUMNS = ("path", "ImageType", "VOILUTFunction", "Rows", "Columns", "dtype", "mean", "min", "max", "TransferSyntax")


def list_files(root: str) -> list[str]:
    """Every file below ``root``, folders and names sorted, as a user's ``os.walk`` loop gives them."""
    paths: list[str] = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        paths.extend(os.path.join(folder, name) for name in sorted(names))
    return paths


def _joined(value: Any) -> str:
    """ImageType is multi-valued but may hold a single value; both print as DICOM writes them."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return "\\".join(str(part) for part in value)


def summarize(path: str) -> dict[str, Any]:
    """One report row: the whole file read, the whole pixel array built."""
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row["path"] = path
    try:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
        row.update(
            ImageType=_joined(ds.get("ImageType")),
            VOILUTFunction=ds.get("VOILUTFunction", ""),
            Rows=ds.Rows,
            Columns=ds.Columns,
            dtype=str(pixels.dtype),
            mean=float(pixels.mean()),
            min=pixels.min().item(),
            max=pixels.max().item(),
            TransferSyntax=ds.file_meta.TransferSyntaxUID.name,
        )
    except InvalidDicomError:
        pass  # not DICOM: the row keeps only its path (fields are filled only after a full read)
    except Exception:
        pass  # broken header or undecodable pixels: blank fields too, and keep going
    return row


def main(argv: list[str]) -> int:
    """Write the workbook for one dataset folder."""
    if len(argv) != 2:
        print("usage: python benchmarks/naive.py DATASET_DIR OUT.xlsx", file=sys.stderr)
        return 2
    root, out = argv
    rows = [summarize(path) for path in list_files(root)]
    pd.DataFrame(rows).to_excel(out, index=False, engine="openpyxl")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
