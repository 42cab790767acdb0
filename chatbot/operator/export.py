"""The whole knowledge base as a spreadsheet in the ingestion format, safe to open in Excel.

Columns id, category, question, answer, alternatives (joined by "|"), one row per FAQ with the
operator's edits merged in. Re-ingesting the file gives the same FAQ ids and texts. Cells that a
spreadsheet would run as formulas get a leading quote (chatbot.spreadsheet_safety), which then stays
in the text on re-ingestion; that is the price of a file that is safe to open. An id used by FAQs of
two different files would clash in one file, so the later ones are written as "source:id".
"""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from chatbot.operator.knowledge import FaqItem
from chatbot.spreadsheet_safety import safe_csv_writer, safe_row

HEADER = ["id", "category", "question", "answer", "alternatives"]


def export_rows(items: Sequence[FaqItem]) -> list[list[str]]:
    rows, seen = [], set()
    for item in items:
        faq_id = item.faq_id if item.faq_id not in seen else f"{item.source}:{item.faq_id}"
        seen.add(faq_id)
        rows.append([faq_id, item.category or "", item.question, item.answer, "|".join(item.alternatives)])
    return rows


def to_csv(items: Sequence[FaqItem]) -> bytes:
    """UTF-8 with a BOM, so Excel opens Korean text correctly."""
    buffer = io.StringIO()
    writer = safe_csv_writer(buffer, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(HEADER)
    writer.writerows(export_rows(items))
    return buffer.getvalue().encode("utf-8-sig")


def to_xlsx(items: Sequence[FaqItem]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "FAQ"
    sheet.append(HEADER)
    for row in export_rows(items):
        sheet.append(safe_row(row))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


FORMATS = {"csv": (to_csv, "text/csv; charset=utf-8"),
           "xlsx": (to_xlsx, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")}
