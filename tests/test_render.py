"""The report as a reader sees it: LibreOffice prints the workbook to PDF, poppler rasterises the
pages, and the colours the report promises are counted in the pixels.

openpyxl reads what the workbook says (a fill, a conditional format, a chart's series); only a
spreadsheet application shows whether it comes out on screen: the verdict headline in its colour,
the status cells coloured by their conditional formats, the chart's bars drawn. Needs
``soffice`` (LibreOffice) and ``pdftoppm`` (poppler): skipped without them, except on CI (the
``CI`` variable set), which installs both, where their absence fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import Runner, write_dicom

FAILED_FILL = (0xFF, 0xC7, 0xCE)  # "Bad": the FAILED headline, failed status cells
PASSED_FILL = (0xC6, 0xEF, 0xCE)  # "Good": the PASSED headline, passed status cells
BAR = (0x9C, 0x00, 0x06)  # the chart's bars (also the "Bad" font colour: text, in short runs)
DPI = 50
PAGES = 10
"""Pages rasterised: the Summary sheet's (headline, table, chart) come first."""
LONG_RUN = 20
"""Pixels of one colour side by side that no letter makes at 50 dpi, a bar does (its length)."""


@pytest.fixture
def tools() -> None:
    missing = [tool for tool in ("soffice", "pdftoppm") if shutil.which(tool) is None]
    if missing:
        reason = f"not installed: {', '.join(missing)}"
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI installs both: a skip there would hide the test for good
        pytest.skip(reason)


def report_of(pytester: pytest.Pytester, dataset: str, expected_exit: int) -> Path:
    report = pytester.path / f"{dataset}.xlsx"
    result = Runner(pytester, "plain")(f"--dicom-dir={dataset}", f"--dicom-report={report.name}")
    assert result.ret == expected_exit, result.stdout.str()[-3000:]
    return report


def render(reports: list[Path], out: Path) -> dict[str, list[Image.Image]]:
    """Each report's first pages, printed by LibreOffice (one process for all) at 50 dpi."""
    profile = out / "profile"  # a fresh LibreOffice profile: no shared state, no first-run dialog
    command = ["soffice", f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", "pdf"]
    subprocess.run([*command, "--outdir", str(out), *map(str, reports)], check=True, capture_output=True, timeout=180)
    pages = {}
    for report in reports:
        prefix = out / report.stem
        subprocess.run(
            ["pdftoppm", "-r", str(DPI), "-l", str(PAGES), "-png", str(prefix.with_suffix(".pdf")), str(prefix)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        files = sorted(out.glob(f"{report.stem}-*.png"), key=lambda path: int(path.stem.rsplit("-", 1)[1]))
        pages[report.stem] = [Image.open(path).convert("RGB") for path in files]
    return pages


def pixels(page: Image.Image, colour: tuple[int, int, int]) -> int:
    return int(np.all(np.asarray(page) == colour, axis=-1).sum())


def non_white(page: Image.Image) -> int:
    return int(np.any(np.asarray(page) != 255, axis=-1).sum())


def in_long_runs(page: Image.Image, colour: tuple[int, int, int]) -> int:
    """Pixels of ``colour`` in horizontal runs of at least :data:`LONG_RUN`: blocks, not text."""
    mask = np.all(np.asarray(page) == colour, axis=-1)
    total = 0
    for row in mask:
        padded = np.concatenate(([0], row.astype(np.int8), [0]))
        edges = np.flatnonzero(np.diff(padded))
        lengths = edges[1::2] - edges[::2]
        total += int(lengths[lengths >= LONG_RUN].sum())
    return total


def headline(page: Image.Image) -> Image.Image:
    """The top of the page: the verdict headline, above the Summary table."""
    return page.crop((0, 0, page.width, page.height // 8))


def test_the_report_shows_its_verdict_colours_and_chart(tools: None, pytester: pytest.Pytester, tmp_path: Path) -> None:
    """A run with failing files: the FAILED headline on its red fill, the chart's bars drawn; a
    run where everything passed: the PASSED headline on its green fill, no red."""
    failing = pytester.path / "failing"
    for i in range(3):  # distinct pixels: the dataset check unique-pixels holds
        write_dicom(failing / "ct" / f"ok{i}.dcm", pixels=np.full((8, 8), i, np.int16))
    write_dicom(failing / "ct" / "derived.dcm", image_type="DERIVED", pixels=np.full((8, 8), 9, np.int16))
    write_dicom(failing / "mr" / "u8.dcm", modality="MR", pixels=np.full((4, 4), 7, np.uint8))
    for i in range(3):
        write_dicom(pytester.path / "passing" / f"ok{i}.dcm", pixels=np.full((8, 8), i, np.int16))
    reports = [report_of(pytester, "failing", 1), report_of(pytester, "passing", 0)]

    pages = render(reports, tmp_path)

    failed, passed = pages["failing"], pages["passing"]
    assert len(failed) >= 2 and len(passed) >= 1
    # measured at 50 dpi on A4 (414 x 585 pixels): ~20,000 pixels not white on page 1, a headline
    # fill of ~330 pixels, bars of ~3,500 pixels (two rules failing one file each) on one page
    for page in (failed[0], passed[0]):
        assert non_white(page) > 5_000
    assert pixels(headline(failed[0]), FAILED_FILL) > 100
    assert pixels(headline(failed[0]), PASSED_FILL) == 0
    bars = [in_long_runs(page, BAR) for page in failed]
    assert max(bars) > 500, bars
    assert in_long_runs(failed[0], BAR) < 100  # the headline's text is red, but no block
    assert pixels(headline(passed[0]), PASSED_FILL) > 100
    assert all(pixels(page, FAILED_FILL) == 0 for page in passed)
    assert all(in_long_runs(page, BAR) == 0 for page in passed)  # no rule failed: no bar
