"""A small streaming writer of ``.xlsx`` files: values only, one bold header row per sheet.

The report is large (a row per file, 10^5 files and more) and plain (no formulas, no formats),
so general spreadsheet libraries spend most of their time on features it does not use: writing
SpreadsheetML directly is several times faster and keeps no row in memory. Each sheet is
streamed into its zip entry as its rows come; strings are inline strings, so no text is ever a
formula and no shared-string table has to be held.
"""

from __future__ import annotations

import math
import re
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

MAX_TEXT = 32_767
"""Characters a cell holds; longer text is cut, visibly."""
TRUNCATED = "…[truncated]"
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ESCAPE_LIKE = re.compile("_(x[0-9A-Fa-f]{4}_)")  # Excel reads "_x0041_" as "A": escape its "_"
_CHUNK_ROWS = 512
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_TYPES = "application/vnd.openxmlformats-officedocument.spreadsheetml"


class Workbook:
    """Sheets written one after another into ``path``; :meth:`close` adds the workbook parts."""

    def __init__(self, target: str | IO[bytes]) -> None:
        self._zip = zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1)
        self._titles: list[str] = []

    def write_sheet(
        self, title: str, header: Sequence[str], widths: Sequence[float], rows: Iterable[Sequence[object]]
    ) -> None:
        """Header, then ``rows``: ``str`` as text, ``int``/``float`` as numbers, ``bool`` as
        TRUE/FALSE, ``None`` and ``""`` as an empty cell. The header row stays visible and filters."""
        self._titles.append(title)
        letters = [column_letter(index) for index in range(len(header))]
        # Through a temporary file: an entry whose size is known is zip64 only when it must be
        # (past 4 GiB). Excel is strict about zip64 headers it does not need.
        with tempfile.TemporaryDirectory(prefix="dicomqc-") as folder, open(Path(folder) / "sheet.xml", "wb") as stream:
            cols = "".join(
                f'<col min="{i}" max="{i}" width="{width}" customWidth="1"/>' for i, width in enumerate(widths, 1)
            )
            head = "".join(
                f'<c r="{column}1" s="1" t="inlineStr"><is><t>{_text(name)}</t></is></c>'
                for column, name in zip(letters, header, strict=True)
            )
            stream.write(
                f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{_MAIN}">'
                '<sheetViews><sheetView workbookViewId="0">'
                '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
                f'</sheetView></sheetViews><cols>{cols}</cols><sheetData><row r="1">{head}</row>'.encode()
            )
            number, chunk = 1, []
            for row in rows:
                number += 1
                cells = "".join(_cell(f"{c}{number}", value) for c, value in zip(letters, row, strict=False))
                chunk.append(f'<row r="{number}">{cells}</row>')
                if len(chunk) == _CHUNK_ROWS:
                    stream.write("".join(chunk).encode("utf-8"))
                    chunk.clear()
            stream.write("".join(chunk).encode("utf-8"))
            stream.write(f'</sheetData><autoFilter ref="A1:{letters[-1]}{number}"/></worksheet>'.encode())
            stream.close()
            self._zip.write(stream.name, f"xl/worksheets/sheet{len(self._titles)}.xml")

    def close(self) -> None:
        sheets = "".join(
            f'<sheet name="{_text(title)}" sheetId="{i}" r:id="rId{i}"/>' for i, title in enumerate(self._titles, 1)
        )
        self._part(
            "xl/workbook.xml", f'<workbook xmlns="{_MAIN}" xmlns:r="{_RELS}"><sheets>{sheets}</sheets></workbook>'
        )
        relations = "".join(
            f'<Relationship Id="rId{i}" Type="{_RELS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
            for i in range(1, len(self._titles) + 1)
        )
        styles_id = len(self._titles) + 1
        self._part(
            "xl/_rels/workbook.xml.rels",
            f'<Relationships xmlns="{_PACKAGE_RELS}">{relations}'
            f'<Relationship Id="rId{styles_id}" Type="{_RELS}/styles" Target="styles.xml"/></Relationships>',
        )
        self._part(
            "xl/styles.xml",
            f'<styleSheet xmlns="{_MAIN}">'
            '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
            '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
            '<fills count="2"><fill><patternFill patternType="none"/></fill>'
            '<fill><patternFill patternType="gray125"/></fill></fills>'
            '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
            '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
            '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
            '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
            '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
            "</styleSheet>",
        )
        self._part(
            "_rels/.rels",
            f'<Relationships xmlns="{_PACKAGE_RELS}">'
            f'<Relationship Id="rId1" Type="{_RELS}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        overrides = "".join(
            f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{_TYPES}.worksheet+xml"/>'
            for i in range(1, len(self._titles) + 1)
        )
        self._part(
            "[Content_Types].xml",
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{_TYPES}.sheet.main+xml"/>'
            f'<Override PartName="/xl/styles.xml" ContentType="{_TYPES}.styles+xml"/>{overrides}</Types>',
        )
        self._zip.close()

    def abandon(self) -> None:
        """Close the package after a failure; the caller removes the file."""
        self._zip.close()

    def _part(self, name: str, xml: str) -> None:
        self._zip.writestr(name, f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n{xml}')


def column_letter(index: int) -> str:
    """Excel's name of the 0-based column ``index``: A … Z, AA, …"""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def clean_text(value: str) -> str:
    """Text as a cell can hold it: no characters XML forbids, no lone surrogates, cut at the
    cell limit with a visible mark."""
    text = _ILLEGAL_XML.sub("", value)
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - len(TRUNCATED)] + TRUNCATED
    return text


def _cell(reference: str, value: object) -> str:
    if value is None or value == "":
        return ""
    if value is True or value is False:
        return f'<c r="{reference}" t="b"><v>{int(value)}</v></c>'
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return f'<c r="{reference}"><v>{value!r}</v></c>'
    return f'<c r="{reference}" t="inlineStr"><is><t xml:space="preserve">{_text(clean_text(str(value)))}</t></is></c>'


def _text(text: str) -> str:
    """XML character data, with what Excel would otherwise undo or lose kept as written."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")  # XML readers turn a bare CR into LF
    if "_x" in text:
        text = _ESCAPE_LIKE.sub(r"_x005F_\1", text)
    return text
