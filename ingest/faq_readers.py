"""FAQ files → FaqEntry rows: CSV, TSV, JSONL, JSON and XLSX, with Korean or English headers.

`read_faq(path)` returns a ReadResult: the usable rows as FaqEntry and every malformed row as a
Rejection (file, line, reason), so one bad row never stops the rest. Problems with the whole file
(missing, undecodable, no question/answer columns, corrupt workbook) raise instead:
FileNotFoundError or FaqFormatError; a file over a size limit (ingest/limits.py) raises FileTooLargeError.

Columns (case-, space- and underscore-insensitive; a parenthesised note such as `질문(Q)` is ignored):
    question       question, q, 질문, 문의, 질문내용 …
    answer         answer, a, 답변, 답, 응답 …
    id             id, faq_id, no, 번호, 아이디 …                      (optional)
    alternatives   alternatives, alts, paraphrases, 유사질문, 대체질문, 다른 질문 …  (optional;
                   `|` or newline separated, or several numbered columns alt1, alt2, 유사질문1 …)
    category       category, 분류, 카테고리, 구분, 유형 …                (optional)
"""
from __future__ import annotations

import csv
import io
import json
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.encoding import UndecodableError, decode_text
from ingest.items import FaqEntry, ReadResult, Rejection
from chatbot.text import normalise
from ingest.limits import FileTooLargeError, ReadLimits, ZipGuard, default_limits

log = logging.getLogger(__name__)

FAQ_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".xlsx")


class FaqFormatError(ValueError):
    """The file as a whole cannot be read as an FAQ table (its rows are not even looked at)."""


# --------------------------------------------------------------------------------------------
# Column names
# --------------------------------------------------------------------------------------------
_ALIASES: dict[str, tuple[str, ...]] = {
    "question": ("question", "questions", "q", "query", "mainquestion", "질문", "질문내용", "문의", "문의내용", "대표질문"),
    "answer": ("answer", "answers", "a", "response", "reply", "답변", "답", "답변내용", "응답", "대답"),
    "id": ("id", "faqid", "no", "number", "번호", "아이디", "faq번호", "질문번호", "질문id", "일련번호"),
    "alternatives": (
        "alternatives", "alternative", "alternates", "alts", "alt", "paraphrases", "paraphrase", "variants",
        "similarquestions", "유사질문", "대체질문", "다른질문", "비슷한질문", "유사질문들",
    ),
    "category": ("category", "categories", "cat", "topic", "분류", "카테고리", "구분", "유형", "분야", "대분류"),
}
_FIELD_OF = {alias: name for name, aliases in _ALIASES.items() for alias in aliases}
_NUMBERED_ALT = re.compile(r"^(" + "|".join(_ALIASES["alternatives"]) + r")\d+$")
_EXPECTED = "질문/question, 답변/answer (선택 optional: 번호/id, 유사질문/alternatives 또는 alt1, alt2…, 분류/category)"
_ALT_SPLIT = re.compile(r"[|\n\r]+")
_XLSX_MAX_COLUMNS = 256  # an FAQ table needs a handful; bounds the cells a sheet's (or a row's) claimed width makes


def header_key(name: Any) -> str:
    """'Question ', 'FAQ_ID', '질문 (Q)', '다른 질문' → 'question', 'faqid', '질문', '다른질문'."""
    text = unicodedata.normalize("NFKC", str(name or "")).replace("\ufeff", "").lower()
    text = re.sub(r"\(.*?\)|\[.*?\]", "", text)
    return re.sub(r"[\s_\-./:#*]+", "", text)


@dataclass
class _Columns:
    """Which cell holds which field, resolved once from the header row."""

    headers: list[str]
    question: int
    answer: int
    id: int | None = None
    category: int | None = None
    alternatives: list[int] = field(default_factory=list)

    @classmethod
    def resolve(cls, headers: Sequence[Any], source: str) -> "_Columns":
        found: dict[str, int] = {}
        alternatives: list[int] = []
        ignored: list[str] = []
        for index, header in enumerate(headers):
            key = header_key(header)
            name = _FIELD_OF.get(key) or ("alternatives" if _NUMBERED_ALT.match(key) else None)
            if name == "alternatives":
                alternatives.append(index)
            elif name and name not in found:
                found[name] = index
            elif key:
                ignored.append(str(header))
        if "question" not in found or "answer" not in found:
            shown = ", ".join(repr(str(h)) for h in headers if str(h or "").strip()) or "(없음 none)"
            missing = " / ".join(n for n in ("question", "answer") if n not in found)
            raise FaqFormatError(
                f"{source}: 질문/답변 열을 찾지 못했습니다 (no {missing} column). "
                f"찾은 열 (found): {shown}. 필요한 열 (expected): {_EXPECTED}"
            )
        if ignored:
            log.info("%s: 사용하지 않는 열 (ignored columns): %s", source, ", ".join(ignored))
        return cls([str(h) for h in headers], found["question"], found["answer"], found.get("id"),
                   found.get("category"), alternatives)


# --------------------------------------------------------------------------------------------
# Cell values → an entry
# --------------------------------------------------------------------------------------------
def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel keeps numbers as floats: id 7 arrives as 7.0
    if isinstance(value, (list, tuple)):
        return "\n".join(_cell(v) for v in value)
    return str(value)


def _clean_answer(text: str) -> str:
    """Normalised line by line: paragraph breaks survive, runs of blank lines become one."""
    lines = [normalise(line) for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _alternatives(values: Iterable[Any], question: str) -> tuple[str, ...]:
    out: list[str] = []
    seen = {question.casefold()}
    for value in values:
        parts = value if isinstance(value, (list, tuple)) else _ALT_SPLIT.split(_cell(value))
        for part in parts:
            text = normalise(_cell(part))
            if text and text.casefold() not in seen:
                seen.add(text.casefold())
                out.append(text)
    return tuple(out)


class _Collector:
    """Turns cells into FaqEntry or Rejection, and rejects later duplicates of an id or question."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.result = ReadResult()
        self._seen: dict[tuple[str, str], int] = {}

    def reject(self, line: int | None, reason: str) -> None:
        self.result.rejected.append(Rejection(self.source, line, reason))

    def add(self, line: int, cells: Sequence[Any], columns: _Columns) -> None:
        get = lambda index: cells[index] if index is not None and index < len(cells) else None  # noqa: E731
        question = normalise(_cell(get(columns.question)))
        answer = _clean_answer(_cell(get(columns.answer)))
        if not question and not answer:
            self.reject(line, "질문과 답변이 비어 있습니다 (missing question and answer)")
            return
        if not question:
            self.reject(line, "질문이 비어 있습니다 (missing question)")
            return
        if not answer:
            self.reject(line, "답변이 비어 있습니다 (missing answer)")
            return
        faq_id = normalise(_cell(get(columns.id))) or None
        key = ("id", faq_id) if faq_id else ("question", question.casefold())
        if key in self._seen:
            what = f"ID {faq_id!r}" if faq_id else "같은 질문 (same question)"
            self.reject(line, f"{what}이(가) {self._seen[key]}행에 이미 있습니다 (duplicate {key[0]}; first at line {self._seen[key]})")
            return
        self._seen[key] = line
        category = normalise(_cell(get(columns.category))) or None
        alternatives = _alternatives((get(i) for i in columns.alternatives), question)
        self.result.items.append(
            FaqEntry(question=question, answer=answer, source=self.source, line=line, faq_id=faq_id,
                     alternatives=alternatives, category=category)
        )


# --------------------------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------------------------
def read_faq(path: str | Path, limits: ReadLimits | None = None) -> ReadResult:
    """Read one FAQ file (format from its extension) within `limits` (default settings'); bad rows become Rejections."""
    limits = limits or default_limits()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"FAQ 파일이 없습니다 (file not found): {path}")
    if path.is_dir():
        raise FaqFormatError(f"{path}: 폴더입니다, FAQ 파일을 지정해 주세요 (is a folder, not a file)")
    suffix = path.suffix.lower()
    source = path.name
    if suffix in FAQ_SUFFIXES:
        limits.check_file(path, source)
    if suffix in (".csv", ".tsv"):
        return _read_delimited(path, source, "\t" if suffix == ".tsv" else None, limits)
    if suffix == ".jsonl":
        return _read_jsonl(path, source, limits)
    if suffix == ".json":
        return _read_json(path, source, limits)
    if suffix == ".xlsx":
        return _read_xlsx(path, source, limits)
    hint = " 엑셀 파일은 .xlsx로 저장해 주세요 (save as .xlsx)." if suffix in (".xls", ".xlsm", ".ods") else ""
    raise FaqFormatError(
        f"{source}: 지원하지 않는 FAQ 형식입니다 (unsupported format {suffix or '(none)'}; "
        f"supported: {', '.join(FAQ_SUFFIXES)}).{hint}"
    )


def _read_text(path: Path, source: str) -> str:
    try:
        text, encoding = decode_text(path.read_bytes(), source)
    except UndecodableError as exc:
        raise FaqFormatError(str(exc)) from None
    log.info("%s: %s 인코딩으로 읽었습니다 (encoding %s)", source, encoding, encoding)
    return text


def _sniff_delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: first.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _read_delimited(path: Path, source: str, delimiter: str | None, limits: ReadLimits) -> ReadResult:
    text = _read_text(path, source)
    delimiter = delimiter or _sniff_delimiter(text)
    # the csv module's own field limit (131,072) would reject a long answer; ours is the document limit
    csv.field_size_limit(limits.max_chars_per_document)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    collector = _Collector(source)
    columns: _Columns | None = None
    previous_end = 0
    try:
        for cells in reader:
            line, previous_end = previous_end + 1, reader.line_num
            limits.check_rows(line, source)
            if not any(c.strip() for c in cells):
                continue
            if columns is None:
                columns = _Columns.resolve(cells, source)
                continue
            width = len(columns.headers)
            if len(cells) > width and not any(c.strip() for c in cells[width:]):
                cells = cells[:width]  # trailing empty cells (a spreadsheet's extra commas) are harmless
            if len(cells) != width:
                collector.reject(
                    line,
                    f"열 개수가 맞지 않습니다: 머리행 {width}열, 이 행 {len(cells)}열 "
                    f"(wrong column count: expected {width}, got {len(cells)}; 쉼표가 든 값은 따옴표로 감싸 주세요)",
                )
                continue
            collector.add(line, cells, columns)
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise limits.error(source, "max_chars_per_document", f"{reader.line_num}행 칸 하나의 글자 수",
                               f"one field's length at line {reader.line_num}") from None
        raise FaqFormatError(f"{source}: {reader.line_num}행 (line {reader.line_num}): CSV를 읽을 수 없습니다 "
                             f"(malformed CSV: {exc})") from None
    if columns is None:
        raise FaqFormatError(f"{source}: 빈 파일입니다 (empty file). 첫 행에 머리행이 필요합니다: {_EXPECTED}")
    return collector.result


def _object_cells(obj: dict[str, Any]) -> tuple[list[str], list[Any]]:
    return list(obj.keys()), list(obj.values())


def _add_objects(collector: _Collector, objects: Iterable[tuple[int, Any, str]], source: str) -> None:
    """(line, parsed object, label) → entries; a file where no object has question+answer keys is an error."""
    usable = 0
    keys_seen: dict[str, None] = {}
    pending: list[tuple[int, Any, str]] = list(objects)
    for line, obj, label in pending:
        if not isinstance(obj, dict):
            collector.reject(line, f"{label}: JSON 객체가 아닙니다 (not a JSON object: {type(obj).__name__})")
            continue
        keys_seen.update(dict.fromkeys(map(str, obj)))
        headers, values = _object_cells(obj)
        try:
            columns = _Columns.resolve(headers, source)
        except FaqFormatError:
            missing = [n for n in ("question", "answer") if not any(_FIELD_OF.get(header_key(h)) == n for h in headers)]
            collector.reject(line, f"{label}: {'/'.join(missing)} 필드가 없습니다 (missing field: {', '.join(missing)})")
            continue
        usable += 1
        collector.add(line, values, columns)
    if pending and not usable and any(isinstance(obj, dict) for _, obj, _ in pending):
        raise FaqFormatError(
            f"{source}: 질문/답변 필드가 있는 항목이 없습니다 (no object has question and answer fields). "
            f"찾은 필드 (found): {', '.join(map(repr, keys_seen)) or '(없음 none)'}. 필요한 필드 (expected): {_EXPECTED}"
        )


def _read_jsonl(path: Path, source: str, limits: ReadLimits) -> ReadResult:
    text = _read_text(path, source)
    collector = _Collector(source)
    parsed: list[tuple[int, Any, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        limits.check_rows(number, source)
        try:
            parsed.append((number, json.loads(raw), "JSONL"))
        except json.JSONDecodeError as exc:
            collector.reject(number, f"JSON으로 읽을 수 없습니다 (invalid JSON: {exc.msg} at column {exc.colno})")
    if not parsed and not collector.result.rejected:
        raise FaqFormatError(f"{source}: 빈 파일입니다 (empty file)")
    _add_objects(collector, parsed, source)
    return collector.result


def _read_json(path: Path, source: str, limits: ReadLimits) -> ReadResult:
    """A JSON array of objects (line numbers are where each object starts) or {"faqs"|"items"|"data": [...]}."""
    text = _read_text(path, source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FaqFormatError(f"{source}: {exc.lineno}행 (line {exc.lineno}): JSON으로 읽을 수 없습니다 (invalid JSON: {exc.msg})") from None
    if isinstance(data, dict):
        inner = next((data[k] for k in ("faqs", "faq", "items", "data", "questions") if isinstance(data.get(k), list)), None)
        if inner is None:
            raise FaqFormatError(f"{source}: JSON 배열이 아닙니다 (expected a list of objects or {{\"faqs\": [...]}})")
        data = inner
    if not isinstance(data, list):
        raise FaqFormatError(f"{source}: JSON 배열이 아닙니다 (expected a list of objects)")
    limits.check_rows(len(data), source)
    collector = _Collector(source)
    lines = list(_array_item_lines(text)) if text.lstrip().startswith("[") else []
    if len(lines) != len(data):
        lines = list(range(1, len(data) + 1))  # wrapped array: the item number stands in for the line
    _add_objects(collector, ((line, obj, f"항목 {i} (item {i})") for i, (line, obj) in enumerate(zip(lines, data), 1)), source)
    return collector.result


def _array_item_lines(text: str) -> Iterator[int]:
    """Line where each element of a top-level JSON array starts."""
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return
        yield text.count("\n", 0, pos) + 1
        _, pos = decoder.raw_decode(text, pos)


def _read_xlsx(path: Path, source: str, limits: ReadLimits) -> ReadResult:
    """The first worksheet; the first non-empty row is the header; line numbers are Excel row numbers.

    Read-only mode streams the sheet; the zip's declared sizes, the row count (a sheet can claim a
    million rows in a few bytes) and the width read (_XLSX_MAX_COLUMNS) bound the work.
    """
    from openpyxl import load_workbook

    try:
        ZipGuard(path, source, limits).close()
        workbook = load_workbook(path, read_only=True, data_only=True)
    except FileTooLargeError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, InvalidFileException, KeyError for broken parts …
        raise FaqFormatError(f"{source}: 엑셀 파일을 열 수 없습니다 (cannot open workbook: {type(exc).__name__}: {exc})") from None
    try:
        sheet = workbook.worksheets[0]
        log.info("%s: 첫 번째 시트 %r를 읽습니다 (first sheet)", source, sheet.title)
        collector = _Collector(source)
        columns: _Columns | None = None
        width_read = min(sheet.max_column or _XLSX_MAX_COLUMNS, _XLSX_MAX_COLUMNS)
        for line, row in enumerate(sheet.iter_rows(min_row=1, max_col=width_read, values_only=True), start=1):
            limits.check_rows(line, source)
            cells = list(row)
            if cells.count(None) == len(cells) or not any(_cell(c).strip() for c in cells):  # count(): fast on padding
                continue
            if columns is None:
                while cells and not _cell(cells[-1]).strip():
                    cells.pop()
                columns = _Columns.resolve(cells, source)
                continue
            width = len(columns.headers)
            if any(_cell(c).strip() for c in cells[width:]):
                collector.reject(line, f"머리행 밖의 열에 값이 있습니다 (values beyond the {width} header columns)")
                continue
            collector.add(line, cells[:width], columns)
    finally:
        workbook.close()
    if columns is None:
        raise FaqFormatError(f"{source}: 첫 번째 시트가 비어 있습니다 (the first sheet is empty)")
    return collector.result
