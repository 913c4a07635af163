"""The rows the report writes itself are the rows XlsxWriter would write (writers/rows.py).

For speed the data rows of the bulk sheets (Files, Findings, Series, Dataset, Changes) are not
XlsxWriter's: they are serialised by :class:`~pytest_dicomqc.writers.rows.RowsFile` and spliced
into XlsxWriter's sheet after the header row. These tests write the same small workbook twice:

* the product: :class:`ReportWorkbook` as it is (XlsxWriter for everything but those rows);
* a reference: the same class, every sheet's rows written by XlsxWriter itself
  (``ReportWorkbook.write_row``: ``write_string``, ``write_number``, ``write_boolean``,
  ``set_row``), the way the Summary, Rules and Waivers rows always are.

The reference is made without touching product code: ``ReportWorkbook.__init__`` creates its
sheets by the module-level name ``_SheetWriter``, so the test puts a subclass under that name
(``monkeypatch``) whose only change is ``bulk=False``. Nothing else differs between the two
writes: same formats, same calls, same splice step (it then has no rows to splice, so it only
copies the package), so any difference in the packages comes from the rows. Three workbooks:
``full`` (every kind of cell: hostile, multi-line, non-ASCII, cut text; numbers, booleans, NaN;
every sheet, a chart, flags), ``continued`` (the same past a lowered row limit: the sheets
continue on further sheets) and ``empty`` (no file, no row).

The packages are compared part by part, with the normalisations below and nothing else:

* ``docProps/core.xml``: its created/modified timestamps are the clock's (both writes may fall in
  different seconds); they are blanked.
* Style numbers: a cell's ``s`` (and a ``<col>``'s ``style``) is an index into ``cellXfs`` of
  ``xl/styles.xml``, and XlsxWriter numbers a format (and its font and fill) when the first cell
  using it is written out. In ``constant_memory`` mode a row is written out when the next one
  starts: in the reference the Files header is written out by the first Files data row, before the
  Summary's verdict headline; in the product the bulk sheets' header rows are written out when
  the workbook closes, after the Summary. The same formats thus get other numbers (header 2,
  verdict 1, wrap 3 instead of 1, 3, 2), consistently in the styles and the sheets. Styles are
  therefore compared by what the number points to (the xf with its font, fill, border and number
  format resolved), ``cellXfs``, fonts, fills and borders as sets; the rest of the part must be
  byte-equal.
* (``<row spans>`` needs none: XlsxWriter writes no ``spans`` in ``constant_memory`` mode, nor
  does the splice; row attributes are compared whole.)
* Whitespace between the rows: the rows file ends each ``<row>`` with a line feed (one row per
  line, see ``rows._copy_rows``); whitespace between elements is not content. Parsed XML is
  compared, so the splice's ``&quot;``, ``&#10;`` against XlsxWriter's literal ``"`` and line feed
  do not count either (the same characters once parsed).
* Text is compared as Excel reads it (``_xHHHH_`` decoded, ECMA-376 22.9.2.19), the raw text
  being checked separately: XlsxWriter writes a carriage return as ``_x000D_``, the rows file as
  the character reference ``&#13;``; both are a CR to Excel. Every cell where the raw text
  differs is listed, and the test asserts the only such difference is this one. openpyxl does
  not decode ``_xHHHH_`` in inline strings: it reads XlsxWriter's CR as the text ``_x000D_``
  (and the product's as a CR); its values are compared with that one escape decoded.
* A text shaped as ``<r>...</r>`` is written by ``write_row`` as a rich string of two runs (the
  second with the default font as an explicit ``<rPr>``), since XlsxWriter would otherwise copy
  it into the sheet as XML; the rows file writes it as one plain ``<t>``. The text of the runs
  is compared, and the test asserts this happens for exactly those cells.
* The ``xml:space="preserve"`` of ``<t>`` must be equal (no normalisation), except where the
  raw text differs as above (XlsxWriter decides it on the escaped text).

At the end, the differences found that the report does not have (a row without cells) and the
ones it should not have (text past Excel's limit in UTF-16 units; a Changes sheet left empty).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import math
import re
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from typing import Any

import openpyxl
import pytest

from pytest_dicomqc.columns import ValueColumn
from pytest_dicomqc.record import FileRecord, Finding, ReportRow, Scalar
from pytest_dicomqc.writers import workbook as workbook_module
from pytest_dicomqc.writers.rows import TRUNCATED
from pytest_dicomqc.writers.sheets import EndOfRun, FilesPlan, Sheet
from pytest_dicomqc.writers.workbook import ReportWorkbook

MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"

VALUES = (
    ValueColumn("ImageType"),
    ValueColumn("rows", "integer"),
    ValueColumn("mean", "number"),
    ValueColumn("WindowCenter", "number", multi_valued=True),
    ValueColumn("notes"),  # text column: takes any scalar as it is (numbers, booleans, NaN)
)
PLAN = FilesPlan(VALUES, ("original-image", "rows-ok"), None)
LONG = "L" * 40_000
HOSTILE = [
    '=HYPERLINK("http://x","y")',
    "<r><t>x</t></r>",
    'a & b < c > d "q"',
    "_x0041_ and _X004a_ and _x00zz_",
    "  padded  ",
    " lead",
    "trail ",
    "\ttab first",
    "\xa0nbsp first",
    "ÄÖ 漢字 \U0001f600",
    "x\udcffy",
    "a\x00b\x07c\x1bd",
    "a\r\nb",  # a CR: _x000D_ by XlsxWriter, &#13; by the rows file
    "\rleading CR",
    "\u3000ideographic space first",
    "trailing next-line\x85",
    LONG,
    "+1",
    "1e5",
]
NUMBERS: list[Scalar] = [0.1, 1e-7, 2**53, 2**53 + 1, -0.0, 12.5, 40.0, 0, -3, 1e300, 5e-324, 123456789.123456789]
ODD: list[Scalar] = [math.nan, math.inf, -math.inf, True, False, None, ""]
MULTI_LINE = "line one\nline two\n\nline four"
MANY_LINES = "\n".join(f"line {i}" for i in range(20))  # more than MAX_LINES


def record(path: str, values: dict[str, Scalar], **fields: Any) -> FileRecord:
    facts: dict[str, Any] = {"kind": "dicom", "verdict": "passed", "error": "", "findings": ()}
    facts["results"] = {"original-image": "PASS", "rows-ok": "PASS"}
    facts.update(fields)
    return FileRecord(path=path, values=values, **facts)


def files() -> list[ReportRow]:
    rows = [
        ReportRow("plain.dcm", "passed", record("plain.dcm", {"rows": 512, "mean": 12.5, "WindowCenter": 40.0})),
        ReportRow(
            "multi.dcm",
            "passed",
            record("multi.dcm", {"rows": 256, "mean": -3.25, "WindowCenter": "40\\400", "ImageType": "ORIGINAL"}),
        ),
        ReportRow(
            "failed.dcm",
            "failed",
            record(
                "failed.dcm",
                {"ImageType": "DERIVED\\SECONDARY", "rows": 4, "WindowCenter": "x\\1"},
                verdict="failed",
                results={"original-image": "FAIL", "rows-ok": "WARN"},
                findings=(
                    Finding("original-image", "error", "DERIVED", "to contain 'ORIGINAL'", MULTI_LINE),
                    Finding("rows-ok", "warning", "4", ">= 256", "  spaced  ", "w-1"),
                    *(Finding("original-image", "error", text, text, text) for text in HOSTILE),
                ),
            ),
        ),
        ReportRow(
            "unreadable.dcm",
            "failed",
            record("unreadable.dcm", {}, kind="unreadable", verdict="failed", error=MULTI_LINE, results={}),
        ),
        ReportRow("many-lines.dcm", "crashed", error=MANY_LINES),
        ReportRow("cr.dcm", "crashed", error="first\r\nsecond"),
        ReportRow("skipped.dcm", "skipped", record("skipped.dcm", {}, verdict="skipped", results={})),
        ReportRow("waived.dcm", "waived", record("waived.dcm", {}, waivers=("w-1",))),
        ReportRow("not-run.dcm", "not run"),
    ]
    for index, value in enumerate([*HOSTILE, *NUMBERS, *ODD]):
        path = f"values/{index:02d}.dcm"
        rows.append(ReportRow(path, "passed", record(path, {"notes": value, "ImageType": value})))
    rows.append(ReportRow("a_x0041_b.dcm", "passed", record("a_x0041_b.dcm", {})))
    return rows


def end_of_run() -> EndOfRun:
    summary: list[list[Scalar]] = [
        ["verdict", "FAILED", "FAILED: 3 files failed", ""],
        ["files", "total", 26, ""],
        ["status", "passed", 20, ""],
        ["status", "failed", 3, "line\nbreak"],
        ["rule", "original-image", 2, "error; applicable 3"],
        ["rule", "rows-ok", 0, "warning"],
        ["run", "seed", '=HYPERLINK("http://x","y")', ""],
        ["run", "ratio", 0.1, 1e-7],
    ]
    dataset: list[list[Scalar]] = [
        ["dicom-files", "min_dicom_files", "passed", "error", "20 files", "", "", "", 0, "", ""],
        [
            "unique-uid",
            "unique",
            "failed",
            "error",
            "SOPInstanceUID\nper series",
            "group 1",
            'a & b < c > d "q"',
            "plain.dcm\nmulti.dcm\n_x0041_.dcm",
            3,
            "",
            "UIDs are unique",
        ],
        ["many", "unique", "warning", "warning", 12.5, True, MANY_LINES, MANY_LINES, 20, "w-2", "  padded  "],
        ["odd", "count", "waived", "warning", math.nan, False, True, "ÄÖ\n漢字", 1, "w-3", "x\udcffy"],
    ]
    series: list[list[Scalar]] = [
        [
            ". | 1.2.3",
            ".",
            "1.2.3",
            "CT",
            "1.2.4",
            26,
            3,
            1,
            1,
            "original-image: 2",
            "unique-uid: 3",
            "512x512",
            26,
            "0.5\\0.5",
            2.5,
        ]
    ]
    rules: list[list[Scalar]] = [
        ["original-image", "error", "ImageType", "contains", "ORIGINAL", False, "", "=1+1", 3],
        ["rows-ok", "warning", "rows", "min", ">= 256", True, "Modality in [CT]", "rows", 9],
    ]
    waivers: list[list[Scalar]] = [
        ["w-1", "active", 1, "failed.dcm", "", "rows-ok", "known", "2099-01-01", "rules.yaml:20"],
        ["w-9", "expired", 0, "", "1.2.3", "original-image", "<r><t>x</t></r>", "2000-01-01", "rules.yaml:25"],
    ]
    changes: list[list[Scalar]] = [
        ["new failure", "failed.dcm", "status", "passed", "failed"],
        ["fixed", "plain.dcm", "mean", 12.25, 12.5],
        ["changed", "multi.dcm", "notes", "a\nb", True],
        ["changed", "values/00.dcm", "notes", math.inf, "_x0041_"],
    ]
    return EndOfRun(
        headline="FAILED: 3 files failed",
        verdict="FAILED",
        summary=summary,
        chart_rows=(4, 5),
        series=series,
        dataset=dataset,
        dataset_findings=[["plain.dcm", "dataset::unique-uid", "error", "group 1", "", "duplicate\nUID", ""]],
        rules=rules,
        waivers=waivers,
        flagged={"plain.dcm": "failed", "multi.dcm": "failed", "values/03.dcm": "warning", "gone.dcm": "failed"},
        changes=changes,
        rows=files()[5:],
    )


class _XlsxWriterRows(workbook_module._SheetWriter):
    """A sheet whose rows XlsxWriter writes, whatever the workbook asks (the reference)."""

    def __init__(self, report: ReportWorkbook, sheet: Sheet, header_row: int = 0, bulk: bool = True) -> None:
        super().__init__(report, sheet, header_row, bulk=False)


def empty_run() -> EndOfRun:
    return EndOfRun("PASSED: 0 files", "PASSED", [], None, [], [], [], [], [], {}, changes=[])


SCENARIOS = {
    "full": (files()[:5], end_of_run(), None),
    # every sheet continued past a lowered row limit: spliced rows in the continuation sheets too
    "continued": (files()[:5], end_of_run(), 8),
    "empty": ([], empty_run(), None),
}


def write(scenario: str, reference: bool) -> zipfile.ZipFile:
    streamed, end, row_limit = SCENARIOS[scenario]
    return write_workbook(streamed, end, reference, row_limit)


def write_workbook(
    streamed: list[ReportRow], end: EndOfRun, reference: bool, row_limit: int | None = None
) -> zipfile.ZipFile:
    """The workbook of ``streamed`` and ``end``: the product's, or the ``reference`` (a Changes
    sheet where ``end`` has changes)."""
    stream = io.BytesIO()
    with pytest.MonkeyPatch.context() as patch:
        if reference:
            patch.setattr(workbook_module, "_SheetWriter", _XlsxWriterRows)
        if row_limit is not None:
            patch.setattr(workbook_module, "EXCEL_MAX_ROWS", row_limit)
        workbook = ReportWorkbook(stream, PLAN)
        bulk = [writer.bulk for writer in (workbook.files, workbook.findings, workbook.series, workbook.dataset)]
        assert bulk == [not reference] * 4
        workbook.add_files(streamed)  # as the run streams them; the rest at the end (EndOfRun.rows)
        workbook.finish(end)
    stream.seek(0)
    return zipfile.ZipFile(stream)


@functools.cache
def packages_of(scenario: str) -> tuple[zipfile.ZipFile, zipfile.ZipFile]:
    """(product, reference)"""
    return write(scenario, reference=False), write(scenario, reference=True)


@pytest.fixture(params=list(SCENARIOS))
def packages(request: pytest.FixtureRequest) -> tuple[zipfile.ZipFile, zipfile.ZipFile]:
    return packages_of(request.param)


# --- normalisation ----------------------------------------------------------------------------

_TIMESTAMP = re.compile(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:)")
_ESCAPE = re.compile("_x([0-9A-Fa-f]{4})_")
_NUMBERED = ("numFmts", "fonts", "fills", "borders", "cellXfs")
"""The parts of ``styles.xml`` whose order is the order XlsxWriter numbered the formats in."""


def canonical(element: ET.Element | None) -> str:
    return "" if element is None else ET.canonicalize(ET.tostring(element, encoding="unicode"))


@dataclass(frozen=True)
class Styles:
    xfs: list[str]
    """Each cell style (``cellXfs``, by number) with its font, fill, border and number format."""
    numbered: dict[str, list[str]]
    """Fonts, fills, borders, number formats, cell styles: in the order they are numbered."""
    rest: bytes
    """``styles.xml`` without them (dxfs, the conditional formats' styles, among the rest)."""


def styles_of(package: zipfile.ZipFile) -> Styles:
    root = ET.fromstring(package.read("xl/styles.xml"))
    numbered = {tag: [canonical(child) for child in root.find(MAIN + tag) or ()] for tag in _NUMBERED}
    formats = {fmt.get("numFmtId"): canonical(fmt) for fmt in root.find(MAIN + "numFmts") or ()}
    xfs = []
    for xf in root.find(MAIN + "cellXfs") or ():
        resolved = dict(xf.attrib)
        resolved["numFmtId"] = formats.get(xf.get("numFmtId"), str(xf.get("numFmtId")))
        for key, tag in (("fontId", "fonts"), ("fillId", "fills"), ("borderId", "borders")):
            resolved[key] = numbered[tag][int(xf.attrib[key])]
        xfs.append(repr(sorted(resolved.items())) + "".join(canonical(child) for child in xf))
    for tag in _NUMBERED:
        element = root.find(MAIN + tag)
        if element is not None:
            root.remove(element)
    return Styles(xfs, numbered, ET.tostring(root))


def excel_text(raw: str) -> str:
    """Text as Excel reads it from a ``<t>``: each ``_xHHHH_`` is the character HHHH."""
    return _ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), raw)


@dataclass(frozen=True)
class Cell:
    ref: str
    style: str | None
    """The cell style (resolved: :attr:`Styles.xfs`), ``None`` for the default."""
    type: str | None
    value: str | None
    """``<v>``, or the text of an inline string as Excel reads it."""
    raw: str | None = None
    """An inline string's text as written (``_xHHHH_`` escapes not decoded)."""
    preserve: tuple[str | None, ...] = ()
    """Each ``<t>``'s ``xml:space``."""
    runs: int = 0
    """``<r>`` runs of a rich inline string (0: one plain ``<t>``)."""


@dataclass(frozen=True)
class Worksheet:
    elements: list[tuple[str, str]]
    """Every element but ``<sheetData>``: (tag, canonical XML, column styles resolved)."""
    rows: list[tuple[dict[str, str], list[Cell]]]
    """Each row's attributes and cells."""
    tails: set[str]
    """Text between the rows."""


def worksheet(package: zipfile.ZipFile, name: str) -> Worksheet:
    styles = styles_of(package).xfs
    root = ET.fromstring(package.read(name))
    elements, rows, tails = [], [], set()
    for element in root:
        if element.tag != MAIN + "sheetData":
            for col in element.iter(MAIN + "col"):
                if "style" in col.attrib:
                    col.set("style", styles[int(col.attrib["style"])])
            elements.append((element.tag.removeprefix(MAIN), canonical(element)))
            continue
        for row in element:
            assert row.tag == MAIN + "row"
            tails.add(row.tail or "")
            rows.append((dict(row.attrib), [cell_of(c, styles) for c in row]))
    return Worksheet(elements, rows, tails)


def cell_of(c: ET.Element, styles: list[str]) -> Cell:
    assert c.tag == MAIN + "c", c.tag
    assert set(c.attrib) <= {"r", "s", "t"}, c.attrib
    style = styles[int(c.attrib["s"])] if "s" in c.attrib else None
    inline = c.find(MAIN + "is")
    if inline is None:
        assert [child.tag for child in c] == [MAIN + "v"], ET.tostring(c)
        return Cell(c.attrib["r"], style, c.get("t"), c[0].text)
    texts = inline.findall(f".//{MAIN}t")
    raw = "".join(t.text or "" for t in texts)
    preserve = tuple(t.get(XML_SPACE) for t in texts)
    runs = len(inline.findall(MAIN + "r"))
    return Cell(c.attrib["r"], style, c.get("t"), excel_text(raw), raw, preserve, runs)


def worksheets(package: zipfile.ZipFile) -> list[str]:
    return [name for name in package.namelist() if name.startswith("xl/worksheets/sheet")]


# --- the comparisons --------------------------------------------------------------------------


def test_the_same_parts_and_every_part_but_the_sheets_byte_equal(
    packages: tuple[zipfile.ZipFile, zipfile.ZipFile],
) -> None:
    hybrid, reference = packages
    assert hybrid.namelist() == reference.namelist()
    for name in hybrid.namelist():
        if name in worksheets(hybrid) or name == "xl/styles.xml":
            continue
        ours, theirs = hybrid.read(name), reference.read(name)
        if name == "docProps/core.xml":
            ours, theirs = (_TIMESTAMP.sub(rb"\1\3", data) for data in (ours, theirs))
        assert ours == theirs, name


def test_the_same_styles_whatever_their_numbers(packages: tuple[zipfile.ZipFile, zipfile.ZipFile]) -> None:
    ours, theirs = (styles_of(package) for package in packages)
    assert ours.rest == theirs.rest  # dxfs (the conditional formats' colours) among them, in order
    assert ours.xfs[0] == theirs.xfs[0]  # the default style
    assert sorted(ours.xfs) == sorted(theirs.xfs)
    for tag in ("numFmts", "fonts", "fills", "borders"):  # cellXfs: compared resolved, above
        assert sorted(ours.numbered[tag]) == sorted(theirs.numbered[tag]), tag


def sheet_titles(package: zipfile.ZipFile) -> list[str]:
    """The sheets' titles, in the order of their parts (``sheet1.xml`` ...), as XlsxWriter numbers them."""
    root = ET.fromstring(package.read("xl/workbook.xml"))
    return [str(sheet.get("name")) for sheet in root.iter(MAIN + "sheet")]


def test_every_sheet_holds_what_xlsxwriter_would_write(packages: tuple[zipfile.ZipFile, zipfile.ZipFile]) -> None:
    hybrid, reference = packages
    titles = sheet_titles(hybrid)
    assert titles == sheet_titles(reference)
    assert len(titles) == len(worksheets(hybrid)) >= 8
    for number, title in enumerate(titles, 1):
        compare_sheet(hybrid, reference, f"xl/worksheets/sheet{number}.xml", title)


def compare_sheet(hybrid: zipfile.ZipFile, reference: zipfile.ZipFile, name: str, title: str) -> None:
    ours, theirs = worksheet(hybrid, name), worksheet(reference, name)
    # everything but the rows is XlsxWriter's in both: compared whole, element by element
    tags = [tag for tag, _ in ours.elements]
    assert {"dimension", "sheetViews", "cols", "autoFilter"} <= set(tags), title
    assert ("conditionalFormatting" in tags) == (title != "Series"), title  # status colours
    assert ours.elements == theirs.elements, title
    assert ours.tails <= {"", "\n"}, title
    assert [attributes for attributes, _ in ours.rows] == [attributes for attributes, _ in theirs.rows], title
    raw_differences: list[tuple[str, str | None, str | None]] = []
    rich: list[str] = []
    for (attributes, mine), (_, other) in zip(ours.rows, theirs.rows, strict=True):
        assert [cell.ref for cell in mine] == [cell.ref for cell in other], (title, attributes)
        for cell, expected in zip(mine, other, strict=True):
            where = f"{title}!{cell.ref}"
            assert (cell.style, cell.type, cell.value) == (expected.style, expected.type, expected.value), where
            if cell.runs != expected.runs:  # write_row's rich string for text shaped as <r>...</r>
                assert cell.runs == 0, where
                rich.append(str(cell.value))
            elif cell.raw != expected.raw:
                raw_differences.append((where, cell.raw, expected.raw))
            else:
                assert cell.preserve == expected.preserve, where
    assert all(text.startswith("<r>") and text.endswith("</r>") for text in rich), title
    for where, raw, xlsxwriter_raw in raw_differences:  # a CR: "&#13;" here, "_x000D_" by XlsxWriter
        assert raw is not None and xlsxwriter_raw is not None
        assert "\r" in raw and raw.replace("\r", "_x000D_") == xlsxwriter_raw, where


def test_the_differences_the_comparison_normalises_are_there() -> None:
    """The normalisations above are not vacuous: each is needed for these sheets, and only there."""
    hybrid, reference = packages_of("full")
    assert styles_of(hybrid).xfs != styles_of(reference).xfs  # numbered in another order
    files_ours = ET.fromstring(hybrid.read("xl/worksheets/sheet2.xml"))
    files_theirs = ET.fromstring(reference.read("xl/worksheets/sheet2.xml"))
    rows = [*files_ours.iter(MAIN + "row"), *files_theirs.iter(MAIN + "row")]
    assert len(rows) == 2 * (len(files()) + 1) and not any("spans" in row.attrib for row in rows)
    ours = {cell.ref: cell for _, cells in worksheet(hybrid, "xl/worksheets/sheet2.xml").rows for cell in cells}
    theirs = {cell.ref: cell for _, cells in worksheet(reference, "xl/worksheets/sheet2.xml").rows for cell in cells}
    cr = {ref: cell.raw for ref, cell in ours.items() if cell.raw is not None and "\r" in cell.raw}
    assert cr and all(theirs[ref].raw == raw.replace("\r", "_x000D_") for ref, raw in cr.items())
    rich = [ref for ref, cell in theirs.items() if cell.runs]
    assert rich and all(ours[ref].value == "<r><t>x</t></r>" and not ours[ref].runs for ref in rich)
    # and what needs no normalisation: escapes, multi-line rows, wrapped style, numbers
    assert any(cell.raw == "_x005F_x0041_ and _X004a_ and _x00zz_" for cell in ours.values())
    numbers = {cell.value for cell in ours.values() if cell.type is None}
    assert numbers >= {"0.1", "1E-07", "9007199254740992", "-0", "1E+300", "4.940656458412465E-324"}
    assert "123456789.1234568" in numbers  # 16 significant digits, as XlsxWriter (and Excel: 15)
    heights = {attributes.get("ht") for attributes, _ in worksheet(hybrid, "xl/worksheets/sheet2.xml").rows}
    assert heights == {None, "30", "60", "180"}
    assert {cell.type for cell in ours.values()} == {"inlineStr", None, "b"}  # text, numbers, booleans
    assert sheet_titles(hybrid) == ["Summary", "Files", "Series", "Findings", "Dataset", "Rules", "Waivers", "Changes"]
    assert len(sheet_titles(packages_of("continued")[0])) > 8
    assert "xl/charts/chart1.xml" in hybrid.namelist()


def values_and_types(package: zipfile.ZipFile) -> dict[str, list[list[tuple[Any, str]]]]:
    book = openpyxl.load_workbook(io.BytesIO(package.fp.getvalue()))  # type: ignore[union-attr]
    return {
        sheet.title: [[(cell.value, cell.data_type) for cell in row] for row in sheet.iter_rows()]
        for sheet in book.worksheets
    }


def test_openpyxl_reads_the_same_values_and_types(packages: tuple[zipfile.ZipFile, zipfile.ZipFile]) -> None:
    hybrid, reference = packages
    ours, theirs = values_and_types(hybrid), values_and_types(reference)
    assert list(ours) == list(theirs) == sheet_titles(hybrid)
    decoded, carriage_returns = set(), set()
    for title, rows in theirs.items():
        for number, row in enumerate(rows):
            for index, (value, kind) in enumerate(row):
                if isinstance(value, str) and "_x000D_" in value:  # openpyxl leaves XlsxWriter's CR escaped
                    row[index] = (value.replace("_x000D_", "\r"), kind)
                    decoded.add((title, number, index))
                if isinstance(ours[title][number][index][0], str) and "\r" in ours[title][number][index][0]:
                    carriage_returns.add((title, number, index))
    assert decoded == carriage_returns
    assert ours == theirs


# --- known differences ------------------------------------------------------------------------


def cell_text(package: zipfile.ZipFile, name: str, ref: str) -> str:
    cells = {cell.ref: cell for _, row in worksheet(package, name).rows for cell in row}
    return str(cells[ref].value)


def test_text_is_cut_at_excels_limit_counted_in_utf16_units() -> None:
    """Excel's limit of 32,767 characters a cell counts UTF-16 code units, and XlsxWriter cuts a
    longer string there (silently, ``write_string`` returns -2). ``rows.clean_text`` counts code
    points: text of characters outside the BMP (emoji; CJK extension B) passes whole, and the rows
    file writes a cell of up to 65,534 units, past Excel's limit, where XlsxWriter writes 32,767
    (16,383 emoji) without the visible mark. The cut should be visible and in UTF-16 units."""
    text = "\U0001f600" * 20_000  # 20,000 code points, 40,000 UTF-16 units
    rows = [ReportRow("emoji.dcm", "passed", record("emoji.dcm", {"notes": text}))]
    end = EndOfRun("PASSED: 1 file", "PASSED", [["run", "emoji", text, ""]], None, [], [], [], [], [], {})
    end = dataclasses.replace(end, changes=None)
    ours, theirs = (write_workbook(rows, end, reference) for reference in (False, True))
    cells = {
        f"{writer} {title}": cell_text(package, name, ref)
        for writer, package in (("product", ours), ("XlsxWriter", theirs))
        for title, name, ref in (
            ("Files", "xl/worksheets/sheet2.xml", "O2"),
            ("Summary", "xl/worksheets/sheet1.xml", "C4"),
        )
    }
    units = {where: len(value.encode("utf-16-le", "surrogatepass")) // 2 for where, value in cells.items()}
    assert max(units.values()) <= 32_767, units  # product Files: 40,000
    assert len(set(cells.values())) == 1, units
    assert all(value.endswith(TRUNCATED) for value in cells.values())


def test_a_row_without_cells() -> None:
    """No sheet has such a row (each names a file, a check, a series or a change), and where one
    would, the two writers differ harmlessly: the rows file writes an empty ``<row>`` (and its
    ``<dimension>`` counts it, when last), XlsxWriter writes no row. Excel needs neither."""
    empty: list[Scalar] = [None, "", None, None, None]
    end = dataclasses.replace(empty_run(), changes=[["fixed", "a.dcm", "x", 1, 2], empty, empty])
    ours, theirs = (write_workbook([], end, reference) for reference in (False, True))
    name = "xl/worksheets/sheet8.xml"
    assert [(row, cells) for row, cells in worksheet(ours, name).rows if not cells] == [
        ({"r": "3"}, []),
        ({"r": "4"}, []),
    ]
    assert [row for row, cells in worksheet(theirs, name).rows] == [{"r": "1"}, {"r": "2"}]
    dimensions = [ET.fromstring(package.read(name)).find(MAIN + "dimension") for package in (ours, theirs)]
    assert [element.get("ref") for element in dimensions if element is not None] == ["A1:E4", "A1:E2"]
    assert values_and_types(ours) == values_and_types(theirs)


def test_a_changes_sheet_without_a_comparison() -> None:
    """``--dicom-baseline`` with a baseline that turns out to be no report (a workbook without a
    Files sheet): the run ends without a comparison (``EndOfRun.changes`` is ``None``: "cannot
    compare with baseline", the report is written without it), and the workbook has no Changes
    sheet, rather than one without header or rows (which once broke the splice)."""
    end = empty_run()
    assert end.changes is not None
    end = dataclasses.replace(end, changes=None)
    ours, theirs = (write_workbook([], end, reference) for reference in (False, True))
    assert ours.namelist() == theirs.namelist()
    assert values_and_types(ours) == values_and_types(theirs)
    assert "Changes" not in openpyxl.load_workbook(io.BytesIO(ours.fp.getvalue())).sheetnames  # type: ignore[union-attr]
