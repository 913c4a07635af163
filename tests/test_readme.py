"""The README's quick start, run as written: its counts, exit code and terminal lines are read from
README.md itself, so the README and the plugin's behaviour cannot drift apart."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from tests.helpers import Runner, read_sheet

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DATASET = ROOT / "examples" / "dataset"
COMMAND = "pytest --dicom-dir=examples/dataset"


def escaped(line: str) -> str:
    """A literal line as an fnmatch pattern: ``*``, ``?`` and ``[`` stand for themselves."""
    return re.sub(r"([*?[])", r"[\1]", line)


def fenced_block_after(phrase: str) -> list[str]:
    """The lines of the first fenced block after ``phrase`` (whitespace, line breaks included, normalised)."""
    words = r"\s+".join(re.escape(word) for word in phrase.split())
    match = re.search(words + r".*?```[a-z]*\n(.*?)```", README, flags=re.DOTALL)
    assert match is not None, f"README.md has no fenced block after {phrase!r}"
    return match.group(1).splitlines()


def quick_start_promise() -> tuple[dict[str, int], int]:
    """The outcome counts and the exit code the quick start promises."""
    match = re.search(r"this run ends with `([^`]+)`\s+and\s+exit\s+code\s+(\d)", README.replace("\n", " "))
    assert match is not None, "README.md no longer says how the quick start ends"
    counts = {word: int(number) for number, word in re.findall(r"(\d+) (\w+)", match.group(1))}
    return counts, int(match.group(2))


def test_readme_quick_start_is_the_command_tested() -> None:
    """The test below runs the pytest part of the README's first command; it must still be that."""
    first = re.search(r"```bash\n(.*?)\n```", README, flags=re.DOTALL)
    assert first is not None
    assert first.group(1).split(" && ")[-1] == COMMAND
    assert quick_start_promise() == ({"failed": 6, "passed": 8, "skipped": 4}, 1)


@pytest.fixture
def quick_start(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout as the quick start sees it: the example dataset and the repository's rules.yaml in the rootdir."""
    shutil.copytree(DATASET, pytester.path / "examples" / "dataset")
    shutil.copy(ROOT / "rules.yaml", pytester.path / "rules.yaml")
    monkeypatch.setenv("CI", "true")  # pytest cuts short-summary lines to the terminal width, except on CI
    return pytester.path


def test_quick_start(run: Runner, quick_start: Path) -> None:
    counts, exit_code = quick_start_promise()
    result = run(*COMMAND.split()[1:])
    assert result.ret == exit_code
    result.assert_outcomes(**counts)

    section = fenced_block_after("and one per dataset result:")
    assert section[0].strip("-").strip() == "dicomqc"  # the section's title, as wide as the terminal
    lines = [line.replace("/path/to/", f"{quick_start}/") for line in section[1:]]
    assert len(lines) == 12
    result.stdout.fnmatch_lines(["*-- dicomqc --*", *(escaped(line) for line in lines)], consecutive=True)

    failures = fenced_block_after("Failures read like this, one line per reason:")
    (failure,) = [line for line in failures if "ct_derived_001" in line]
    assert failure.startswith("FAILED examples/dataset/val/ct/ct_derived_001.dcm::dicomqc - original-image: ")
    result.stdout.fnmatch_lines([escaped(failure)])

    report = quick_start / "metadata_dicom.xlsx"
    files = read_sheet(report)
    assert len(files) == 14
    assert [row["path"] for row in files] == sorted(
        p.relative_to(DATASET).as_posix() for p in DATASET.rglob("*") if p.is_file()
    )
    assert Counter(row["status"] for row in files) == {"passed": 5, "failed": 5, "skipped": 4}
    assert [(row["check"], row["status"]) for row in read_sheet(report, "Dataset")] == [
        ("dicom-files", "passed"),
        ("unique-sop-instance-uid", "passed"),
        ("unique-pixels", "passed"),
        ("patient-split-leakage", "failed"),
    ]


def test_quick_start_ends_with_exactly_the_readme_counts(quick_start: Path, pytester: pytest.Pytester) -> None:
    """The README says the run *ends with* these counts: no stray warning in the summary line."""
    counts, _ = quick_start_promise()
    result = pytester.runpytest(*COMMAND.split()[1:], "-p", "no:cacheprovider")
    summary = ", ".join(f"{number} {word}" for word, number in counts.items())
    result.stdout.fnmatch_lines([f"=* {summary} in *s =*"])


def test_make_dataset_regenerates_the_example_dataset_byte_for_byte(tmp_path: Path) -> None:
    """The script writes ``dataset/`` beside itself: run a copy elsewhere, compare with the committed files."""
    script = tmp_path / "examples" / "make_dataset.py"
    script.parent.mkdir()
    shutil.copy(ROOT / "examples" / "make_dataset.py", script)
    completed = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert completed.returncode == 0, completed.stderr
    made = tmp_path / "examples" / "dataset"

    def files(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    committed, regenerated = files(DATASET), files(made)
    assert sorted(regenerated) == sorted(committed)
    assert len(committed) == 14
    different = [name for name in committed if regenerated[name] != committed[name]]
    assert [name for name in different if name not in ENCODED] == []
    for name in different:  # another version of the encoder: the same image, other bytes
        assert ENCODED[name](made / name, DATASET / name), name


def _same_dicom_image(made: Path, committed: Path) -> bool:
    """Every element but the compressed pixel data equal, and the decoded pixels identical (lossless)."""
    a, b = pydicom.dcmread(made), pydicom.dcmread(committed)
    elements = [element for element in a if element.keyword != "PixelData"]
    same = elements == [element for element in b if element.keyword != "PixelData"]
    return same and np.array_equal(a.pixel_array, b.pixel_array)


def _same_picture(tolerance: float) -> Callable[[Path, Path], bool]:
    def same(made: Path, committed: Path) -> bool:
        a, b = np.asarray(Image.open(made), dtype=float), np.asarray(Image.open(committed), dtype=float)
        return a.shape == b.shape and float(np.abs(a - b).mean()) <= tolerance

    return same


ENCODED: dict[str, Callable[[Path, Path], bool]] = {
    "train/mr/mr_jpeg2000_001.dcm": _same_dicom_image,  # OpenJPEG (pylibjpeg-openjpeg), lossless
    "test/thumbnail.png": _same_picture(0),  # zlib in Pillow, lossless
    "test/screenshot.jpg": _same_picture(1.0),  # libjpeg in Pillow, lossy: within one grey level on average
}
"""The example files whose bytes come from an image encoder whose version the project does not pin."""
