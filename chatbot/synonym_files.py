"""Dictionary files: configs/synonyms.yaml, and the same table as an operator's CSV/TSV/XLSX upload.

Columns (header names in English or Korean): canonical/대표어, variants/동의어 (`|`-separated),
optional tag/품사. Uploads go through the ingestion size limits (file size, rows, zip sizes),
since an operator's file is read whole.
"""
from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from chatbot.synonyms import VARIANT_SEPARATOR, Dictionary, DictionaryError

if TYPE_CHECKING:
    from ingest.limits import ReadLimits

# ingest.* is imported inside the table readers: ingest imports chatbot.text, which needs this module.

TABLE_SUFFIXES = (".csv", ".tsv", ".xlsx")
YAML_SUFFIXES = (".yaml", ".yml")
_COLUMNS = {
    "canonical": ("canonical", "term", "대표어", "표준어", "기준어", "대표단어"),
    "variants": ("variants", "variant", "synonyms", "synonym", "동의어", "유사어", "변형어", "동의어들"),
    "tag": ("tag", "pos", "품사", "태그"),
}
_XLSX_MAX_COLUMNS = 16  # a dictionary needs three; bounds what a sheet's claimed width makes us read
_FIELD_OF = {alias: name for name, aliases in _COLUMNS.items() for alias in aliases}
_YAML_HEADER = (
    "# Synonym and user dictionary (chatbot/synonyms.py): variants are rewritten to the canonical term\n"
    "# in BM25 tokens of FAQs and questions; a tag (NNP, NNG …) makes kiwi keep every term as one word.\n"
)


def load_dictionary(path: str | Path, limits: ReadLimits | None = None) -> Dictionary:
    """A dictionary file by extension (.yaml/.yml, .csv/.tsv, .xlsx).

    Raises DictionaryError (unreadable, bad rows) or ingest's FileTooLargeError; both are ValueErrors
    whose message can be shown to the operator as it is.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in YAML_SUFFIXES:
        return _from_yaml(path.read_text(encoding="utf-8"), path.name)
    if suffix not in TABLE_SUFFIXES:
        raise DictionaryError(
            f"{path.name}: 지원하지 않는 사전 형식입니다 (unsupported dictionary format {suffix or '(none)'}; "
            f"supported: {', '.join(YAML_SUFFIXES + TABLE_SUFFIXES)})"
        )
    from ingest.limits import default_limits

    limits = limits or default_limits()
    limits.check_file(path, path.name)
    rows = _xlsx_rows(path, limits) if suffix == ".xlsx" else _delimited_rows(path, "\t" if suffix == ".tsv" else ",")
    return Dictionary.from_rows(_table_entries(rows, path.name, limits))


def save_dictionary(dictionary: Dictionary, path: str | Path) -> None:
    """Atomic write (temp file + rename), so a replica reloading the file never reads half of it."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in YAML_SUFFIXES:
        body = yaml.safe_dump({"entries": dictionary.rows()}, allow_unicode=True, sort_keys=False, width=120)
        text = _YAML_HEADER + body
    elif suffix in (".csv", ".tsv"):
        text = dictionary_csv(dictionary, "\t" if suffix == ".tsv" else ",")
    else:
        raise DictionaryError(f"{path.name}: 사전은 .yaml/.csv/.tsv로 저장합니다 (save as .yaml, .csv or .tsv)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def dictionary_csv(dictionary: Dictionary, delimiter: str = ",") -> str:
    """The table an operator downloads, edits in Excel and uploads again."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(["canonical", "variants", "tag"])
    for entry in dictionary.entries:
        writer.writerow([entry.canonical, f" {VARIANT_SEPARATOR} ".join(entry.variants), entry.tag or ""])
    return out.getvalue()


def _from_yaml(text: str, source: str) -> Dictionary:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DictionaryError(f"{source}: YAML을 읽을 수 없습니다 (invalid YAML: {exc})") from None
    rows = data.get("entries") if isinstance(data, dict) else data
    if rows is None:
        return Dictionary()
    if not isinstance(rows, list):
        raise DictionaryError(f"{source}: 'entries' 목록이 필요합니다 (expected a list under 'entries')")
    return Dictionary.from_rows(rows)


def _delimited_rows(path: Path, delimiter: str) -> Iterator[Sequence[Any]]:
    from ingest.encoding import decode_text

    try:
        text, _ = decode_text(path.read_bytes(), path.name)
    except ValueError as exc:  # neither UTF-8 nor CP949
        raise DictionaryError(str(exc)) from None
    yield from csv.reader(io.StringIO(text), delimiter=delimiter)


def _xlsx_rows(path: Path, limits: ReadLimits) -> Iterator[Sequence[Any]]:
    from openpyxl import load_workbook

    from ingest.limits import ZipGuard

    try:
        ZipGuard(path, path.name, limits).close()
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - BadZipFile, InvalidFileException, a size limit: all one message
        raise DictionaryError(f"{path.name}: 엑셀 파일을 열 수 없습니다 (cannot open workbook: {exc})") from None
    try:
        yield from workbook.worksheets[0].iter_rows(max_col=_XLSX_MAX_COLUMNS, values_only=True)
    finally:
        workbook.close()


def _table_entries(rows: Iterable[Sequence[Any]], source: str, limits: ReadLimits) -> Iterator[dict[str, Any]]:
    """Rows after the header as entry dicts; blank rows skipped, the row count bounded."""
    from ingest.faq_readers import header_key

    columns: dict[str, int] | None = None
    for line, row in enumerate(rows, start=1):
        limits.check_rows(line, source)
        cells = ["" if c is None else str(c).strip() for c in row]
        if not any(cells):
            continue
        if columns is None:
            columns = {_FIELD_OF[k]: i for i, k in reversed(list(enumerate(map(header_key, cells)))) if k in _FIELD_OF}
            if "canonical" not in columns:
                raise DictionaryError(
                    f"{source}: 대표어(canonical) 열이 없습니다 (no canonical column; expected canonical, "
                    "variants (| separated), tag)"
                )
            continue
        yield {name: cells[i] if i < len(cells) else "" for name, i in columns.items()}
    if columns is None:
        raise DictionaryError(f"{source}: 빈 파일입니다 (the file is empty)")
