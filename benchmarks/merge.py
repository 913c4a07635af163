"""Benchmark of ``python -m pytest_dicomqc merge`` on 10^6 records (issue 15): time and peak RSS.

The part files are generated directly, as N shards of the packaged rules would write them (no
DICOM file is needed): 32x32 MR/CT slices in series of 200, train/val/test folders, 10 % of the
series DERIVED (failing original-image), 1 % byte duplicates (same SOP Instance UID and pixel hash),
one patient in two splits. The merge runs through ``measure.py`` (wall time, peak RSS of its largest
process) and the result is checked against the issue's targets: at most 120 s and 1.5 GB.

Usage: ``python benchmarks/merge.py [--records 1000000] [--shards 4] [--keep DIR] [--repeats 1]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from importlib import metadata, resources
from pathlib import Path

from pytest_dicomqc import __version__
from pytest_dicomqc.parts import PartHeader, PartWriter
from pytest_dicomqc.record import FileRecord, ReportRow
from pytest_dicomqc.shard import order_key, shard_of

BENCH_DIR = Path(__file__).resolve().parent
TIME_LIMIT_S = 120.0
RSS_LIMIT_MB = 1536.0
SERIES_FILES = 200
UID = "1.2.826.0.1.3680043.8.498"


def _split(series: int) -> str:
    return ("train", "train", "train", "val", "test")[series % 5]


def _path(index: int) -> str:
    series = index // SERIES_FILES
    return f"{_split(series)}/series_{series:05d}/IM_{index:07d}.dcm"


def _row(index: int) -> ReportRow:
    """One file's row as a shard writes it; every value as the tiny benchmark's files give it."""
    series = index // SERIES_FILES
    split = _split(series)
    path = _path(index)
    derived = series % 10 == 3
    duplicate = index % 100 == 99  # the previous file again: same UID, same pixels
    source = index - 1 if duplicate else index
    patient = series if series != 4 else 2  # patient 2: series 2 in train, series 4 in test
    modality = "MR" if series % 2 else "CT"
    values: dict[str, object] = {
        "ImageType": "DERIVED\\SECONDARY" if derived else "ORIGINAL\\PRIMARY\\AXIAL",
        "VOILUTFunction": None,
        "Modality": modality,
        "PhotometricInterpretation": "MONOCHROME2",
        "BitsAllocated": 16,
        "BitsStored": 16,
        "PixelRepresentation": 0,
        "RescaleSlope": None,
        "RescaleIntercept": None,
        "WindowCenter": 600.0,
        "WindowWidth": 1200.0,
        "Manufacturer": "pytest-dicomqc benchmark",
        "StudyInstanceUID": f"{UID}.5.{patient}",
        "SeriesInstanceUID": f"{UID}.6.{series}",
        "SOPInstanceUID": f"{UID}.7.{source}",
        "InstanceNumber": index % SERIES_FILES + 1,
        "PixelSpacing": "0.5\\0.5",
        "SliceThickness": 3.0,
        "rows": 32,
        "columns": 32,
        "frames": 1,
        "samples_per_pixel": 1,
        "dtype": "uint16",
        "mean": 33260.330078125 + source % 1000,
        "min": 30,
        "max": 65509,
        "transfer_syntax": "Explicit VR Little Endian",
        "SOPClass": f"{modality} Image Storage",
        "size_bytes": 2864,
        "notes": "",
    }
    results = {
        "original-image": "FAIL" if derived else "PASS",
        "voi-lut-function": "PASS",
        "pixel-dtype-ct-mr": "PASS",
        "pixel-dtype-xray": "N/A",
    }
    findings = []
    if derived:
        findings.append(
            [
                "original-image",
                "error",
                "DERIVED\\SECONDARY",
                "contains ORIGINAL",
                "ImageType is DERIVED\\SECONDARY",
                "",
            ]
        )
    record = {
        "path": path,
        "kind": "dicom",
        "verdict": "failed" if derived else "passed",
        "error": "",
        "values": values,
        "results": results,
        "findings": findings,
        "waivers": [],
        "dataset": {
            "unique-sop-instance-uid": [f"{UID}.7.{source}"],
            "unique-pixels": [f"xxh3-128:{source:032x}"],
            "patient-split-leakage": [f"sha256:{patient:016x}", split],
        },
    }
    return ReportRow(path, "failed" if derived else "passed", FileRecord.from_wire(record))


def generate(folder: Path, records: int, shards: int) -> list[Path]:
    """The parts, written with the plugin's own writer; kept in ``folder`` for the next run."""
    parts = [folder / f"part-{k}-of-{shards}.jsonl.gz" for k in range(1, shards + 1)]
    stamp = folder / f"records-{records}-{shards}.done"
    if stamp.exists() and all(part.exists() for part in parts):
        return parts
    rules = resources.files("pytest_dicomqc") / "rules.yaml"
    order = sorted(range(records), key=lambda index: order_key(_path(index)))  # test, train, val
    counts = Counter(shard_of(_path(index), shards) for index in order)
    writers = []
    streams = []
    for k, part in enumerate(parts, start=1):
        header = PartHeader(
            shard=k,
            shards=shards,
            files=counts[k],
            rules=((str(rules), rules.read_text(encoding="utf-8")),),
            strict=False,
            dataset="data/",
            root="/data",
            plugin=__version__,
            pydicom=metadata.version("pydicom"),
            created="2026-12-01T00:00:00+00:00",
        )
        stream = part.open("wb")
        streams.append(stream)
        writers.append(PartWriter(stream, part, header))
    batches: list[list[ReportRow]] = [[] for _ in parts]
    for index in order:
        row = _row(index)
        shard = shard_of(row.path, shards) - 1
        batches[shard].append(row)
        if len(batches[shard]) >= 1000:
            writers[shard].add(batches[shard])
            batches[shard].clear()
    for writer, batch, stream in zip(writers, batches, streams, strict=True):
        writer.add(batch)
        writer.finish()
        stream.close()
    stamp.write_text("")
    return parts


def measure(parts: list[Path], workdir: Path, extra: list[str]) -> dict[str, float]:
    command = [sys.executable, "-m", "pytest_dicomqc", "merge", *map(str, parts), "--dicom-report", "merged.xlsx"]
    launcher = [
        sys.executable,
        str(BENCH_DIR / "measure.py"),
        "--log",
        str(workdir / "merge.log"),
        "--",
        *command,
        *extra,
    ]
    completed = subprocess.run(launcher, cwd=workdir, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the generated parts in DIR and reuse them")
    parser.add_argument("--junitxml", action="store_true", help="also write JUnit XML, as the README's CI merge job")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dicomqc-merge-bench-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        parts = generate(folder, args.records, args.shards)
        size = sum(part.stat().st_size for part in parts) / 2**20
        print(f"{args.records:,} records in {args.shards} parts, {size:,.0f} MiB (gzip)")
        extra = ["--junitxml", "merged.xml"] if args.junitxml else []
        failed = False
        for repeat in range(1, args.repeats + 1):
            result = measure(parts, Path(scratch), extra)
            ok_time = result["wall_s"] <= TIME_LIMIT_S
            ok_rss = result["maxrss_mb"] <= RSS_LIMIT_MB
            failed |= not (ok_time and ok_rss) or result["returncode"] != 1  # the data fails the gate
            print(
                f"merge run {repeat}: exit {result['returncode']:.0f}, {result['wall_s']:.1f} s"
                f" (limit {TIME_LIMIT_S:.0f}: {'PASS' if ok_time else 'FAIL'}), peak RSS {result['maxrss_mb']:,.0f} MB"
                f" (limit {RSS_LIMIT_MB:,.0f}: {'PASS' if ok_rss else 'FAIL'}),"
                f" {result['wall_s'] * 1e6 / args.records:.0f} us per record"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
