"""Table rows as text lines that keep their column headers.

A row read alone, `실버 | 10만 원 이상 | 2% | 매월 1장 | 3,000원`, no longer says which number is what,
so a question such as "실버 등급은 무료배송 쿠폰을 한 달에 몇 장 받나요?" finds nothing in it (the
encoder and the keywords both need the header's words). Under a header row each cell is written as
`header: value`: `등급: 실버 | … | 무료배송 쿠폰: 매월 1장 | …`. The header is the one the format marks
(HTML `<th>`, the Markdown rule line) or, unmarked (DOCX), a first row of at least MIN_COLUMNS short,
non-numeric cells; a two-column table without a marked header is usually label | value, whose first
row is data.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from chatbot.text import normalise

MIN_COLUMNS = 3  # unmarked first rows with fewer cells are taken as data (label | value tables)
MAX_HEADER_CHARS = 30  # a longer cell is content, not a column name
_VALUE = re.compile(r"[\d\s.,:%~()+\-/원개장회일월년]+")  # 3,000원 · 5% · 매월 … : a cell like this is a value


def looks_like_header(rows: Sequence[Sequence[str]]) -> bool:
    """Whether an unmarked table's first row names its columns."""
    if len(rows) < 2:
        return False
    head = list(rows[0])
    return (len(head) >= MIN_COLUMNS and all(head) and all(len(c) <= MAX_HEADER_CHARS for c in head)
            and not any(_VALUE.fullmatch(c) for c in head) and len(set(head)) == len(head))


def table_lines(rows: Sequence[Sequence[str]], header: bool | None = None) -> list[str]:
    """One line per row, cells joined by ` | `; rows under a header (header=None: looks_like_header)
    with as many cells as it has are written `header: value`."""
    cleaned = [[normalise(c) for c in row] for row in rows]
    cleaned = [row for row in cleaned if any(row)]
    if not cleaned:
        return []
    head = cleaned[0]
    labelled = looks_like_header(cleaned) if header is None else header and len(cleaned) > 1 and all(head)
    lines = [" | ".join(c for c in head if c)]
    for row in cleaned[1:]:
        if labelled and len(row) == len(head):
            cells = [f"{name}: {value}" if value != name else value for name, value in zip(head, row) if value]
        else:
            cells = [c for c in row if c]
        lines.append(" | ".join(cells))
    return lines
