"""Fuzzing: real DICOM files, mutated, through the same read/extract/evaluate path as the items.

Profiles: ``ci`` (where the ``CI`` variable is set, as in ``.ci/run``): 200 examples, derandomised,
so a CI run cannot fail on an example no other run sees; ``dev`` (the default elsewhere): 200 new
random examples each run, to keep exploring; ``long``: ``HYPOTHESIS_PROFILE=long pytest
tests/test_fuzz.py`` (20,000). A failure prints the example to reproduce it with ``@reproduce_failure``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings
from pydicom.data import get_testdata_file

from pytest_dicomqc.pipeline import check_file, wanted_tags
from pytest_dicomqc.record import FileRecord
from pytest_dicomqc.rules.load import load_rules
from tests.helpers import wire_type_errors

_BASE = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("ci", _BASE, max_examples=200, derandomize=True)
settings.register_profile("dev", _BASE, max_examples=200)
settings.register_profile("long", _BASE, max_examples=20_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

SEEDS = [
    Path(get_testdata_file(name, download=False)).read_bytes()
    for name in ("CT_small.dcm", "MR_small_RLE.dcm", "JPEGLSNearLossless_08.dcm", "rtdose.dcm", "ExplVR_BigEnd.dcm")
]
RULES = load_rules(Path(__file__).parent.parent / "rules.yaml")
TAGS = wanted_tags(RULES)
KINDS = {"dicom", "unreadable", "non-dicom"}


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        mutation = draw(st.sampled_from(["flip", "truncate", "insert", "length", "delete"]))
        if mutation == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif mutation == "truncate":
            del data[at:]
        elif mutation == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif mutation == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        else:  # a plausible length field (after tag and VR) set to something absurd
            data[at : at + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\xf0\xff\xff\xff", b"\x00\x00\x00\x80"]))
        if not data:
            break
    return bytes(data)


@given(data=mutated())
def test_mutated_files_give_one_clean_record(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzzed.dcm"
        path.write_bytes(data)
        record = check_file(path, "fuzzed.dcm", RULES, TAGS)
    assert record.kind in KINDS
    assert record.verdict in {"passed", "failed", "skipped"}
    if record.kind != "dicom":
        assert record.verdict == "failed" and record.error
    wire = record.to_wire()
    assert wire_type_errors(wire) == []
    assert FileRecord.from_wire(wire) == record
