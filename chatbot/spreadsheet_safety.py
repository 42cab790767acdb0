"""Cells for spreadsheets people open: text that Excel or LibreOffice would run as a formula is neutralised.

To a spreadsheet, a cell starting with = + - @ is a formula (`=HYPERLINK(…)` leaks data when clicked,
`=cmd|' /C calc'!A0` runs a program through DDE), and a leading tab or carriage return can be
skipped before one of those. FAQ ids, questions and answers come from uploaded files, so every
CSV/XLSX the product writes passes its cells through `safe_cell`: such text gets a leading single
quote, which a spreadsheet reads as "this is text". The full-width forms (＝ ＋ － ＠) are treated
the same; it costs nothing if a program never reads them as operators.

Numbers stay numbers: an int or float, or a string that is only a number ("-0.2500"), is never a
formula, and prefixing it would turn a score column into text.

openpyxl stores any str that starts with "=" as a formula, so an XLSX writer needs safe_cell as much
as a CSV one (there the quote stays visible, which is the point: it is text).
"""
from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """`value`, or the text with a leading ' when a spreadsheet would read it as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_row(row: Iterable[Any]) -> list[Any]:
    return [safe_cell(value) for value in row]


class SafeCsvWriter:
    """csv.writer whose every cell goes through safe_cell (the header included: it is text too)."""

    def __init__(self, handle: Any, **kwargs: Any) -> None:
        self._writer = csv.writer(handle, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow(safe_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def safe_csv_writer(handle: Any, **kwargs: Any) -> SafeCsvWriter:
    """The writer for any CSV meant to be opened in a spreadsheet; same arguments as csv.writer."""
    return SafeCsvWriter(handle, **kwargs)
