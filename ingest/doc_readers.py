"""Documents → DocumentPart: .txt, .md, .pdf (a part per page), .docx, .html/.htm and .hwpx.

Readers keep block structure: headings, paragraphs, list items and table rows are separated by a
blank line, so sentence splitting never glues a heading onto the sentence after it. An unsupported
extension is a Rejection; a file that exists but cannot be parsed raises DocumentReadError, and one
over a size limit (ingest/limits.py) raises FileTooLargeError.
"""
from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from ingest.encoding import UndecodableError, decode_text
from ingest.items import DocumentPart, ReadResult, Rejection
from chatbot.text import normalise
from ingest.limits import FileTooLargeError, ReadLimits, TextBudget, ZipGuard, default_limits, iter_xml, scan_xml

log = logging.getLogger(__name__)

DOC_SUFFIXES = (".txt", ".md", ".markdown", ".pdf", ".docx", ".html", ".htm", ".hwpx")
_BLOCK = "\n\n"


class DocumentReadError(ValueError):
    """The file has a supported extension but could not be parsed (corrupt, encrypted, not that format)."""


def iter_document_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files as given; folders expanded recursively (sorted) to their supported, non-hidden files.

    A path that does not exist is yielded as is, so the caller reports it with the other results.
    """
    for path in map(Path, paths):
        if path.is_dir():
            found = [
                p for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in DOC_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
                and not p.name.startswith("~$")  # Office lock files
            ]
            yield from sorted(found, key=lambda p: p.relative_to(path).as_posix())
        else:
            yield path


def read_document(path: str | Path, limits: ReadLimits | None = None) -> ReadResult:
    """One document → its parts (pages for PDF, the whole text otherwise), within `limits` (default settings')."""
    limits = limits or default_limits()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"문서 파일이 없습니다 (file not found): {path}")
    source = path.name
    suffix = path.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        hint = " 한글 파일은 .hwpx로 저장해 주세요 (save HWP as HWPX)." if suffix == ".hwp" else ""
        if suffix == ".doc":
            hint = " .docx로 저장해 주세요 (save as .docx)."
        return ReadResult(rejected=[Rejection(
            source, None,
            f"지원하지 않는 문서 형식입니다 (unsupported format {suffix or '(none)'}; supported: {', '.join(DOC_SUFFIXES)}).{hint}",
        )])
    limits.check_file(path, source)
    try:
        result = reader(path, source, limits)
    except (DocumentReadError, FileNotFoundError, FileTooLargeError):
        raise
    except UndecodableError as exc:  # decode_text's message, as a document error
        raise DocumentReadError(str(exc)) from None
    except Exception as exc:  # parsers raise many kinds of errors on corrupt input
        raise DocumentReadError(f"{source}: 문서를 읽을 수 없습니다 (cannot parse {suffix}: {type(exc).__name__}: {exc})") from None
    budget = TextBudget(limits, source)  # every format, whatever its reader already checked
    for part in result.items:
        budget.text(part.text)
    return result


def _blocks(lines: Iterable[str]) -> str:
    """Normalised non-empty blocks joined by blank lines."""
    return _BLOCK.join(b for b in (normalise(line) for line in lines) if b)


def _one_part(text: str, source: str) -> ReadResult:
    return ReadResult(items=[DocumentPart(text=text, source=source)] if text.strip() else [])


# --- plain text and markdown ----------------------------------------------------------------------
def _decoded(path: Path, source: str, limits: ReadLimits) -> str:
    text, encoding = decode_text(path.read_bytes(), source)
    TextBudget(limits, source).text(text)  # before the line-by-line work
    log.info("%s: %s 인코딩으로 읽었습니다 (encoding %s)", source, encoding, encoding)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _read_txt(path: Path, source: str, limits: ReadLimits) -> ReadResult:
    text = _decoded(path, source, limits)
    paragraphs = re.split(r"\n\s*\n", text)
    return _one_part(_BLOCK.join(p.strip() for p in paragraphs if p.strip()), source)


_MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|`)")
_MD_TABLE_RULE = re.compile(r"\s*\|?(\s*:?-{3,}:?\s*\|)*\s*:?-{3,}:?\s*\|?\s*")


def _read_markdown(path: Path, source: str, limits: ReadLimits) -> ReadResult:
    """Headings and list items become their own blocks; link/image/emphasis markup is dropped."""
    blocks: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            blocks.append("\n".join(current))
            current.clear()

    in_front_matter = False
    for number, line in enumerate(_decoded(path, source, limits).split("\n")):
        if number == 0 and line.strip() == "---":
            in_front_matter = True
            continue
        if in_front_matter:
            in_front_matter = line.strip() not in ("---", "...")
            continue
        if line.strip().startswith("```") or re.fullmatch(r"\s*([-*_]\s*){3,}", line) or _MD_TABLE_RULE.fullmatch(line):
            flush()
            continue
        line = _MD_EMPHASIS.sub("", _MD_LINK.sub(r"\1", _MD_IMAGE.sub(r"\1", line)))
        heading = _MD_HEADING.match(line)
        if heading:
            flush()
            blocks.append(heading.group(2))
        elif _MD_LIST.match(line):
            flush()
            current.append(_MD_LIST.sub("", line))
        elif line.strip().startswith("|"):  # a table row: its own block, `a | b`
            flush()
            blocks.append(line.strip().strip("|").strip())
        elif not line.strip():
            flush()
        else:
            current.append(line)
    flush()
    return _one_part(_blocks(blocks), source)


# --- PDF ------------------------------------------------------------------------------------------
def _read_pdf(path: Path, source: str, limits: ReadLimits) -> ReadResult:
    """A part per page; pypdf bounds each decompressed stream itself, we bound the pages and the text."""
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    if reader.is_encrypted:
        try:
            reader.decrypt("")
        except Exception:
            raise DocumentReadError(f"{source}: 암호가 걸린 PDF입니다 (encrypted PDF)") from None
    if len(reader.pages) > limits.max_pdf_pages:
        raise limits.error(source, "max_pdf_pages", f"쪽 수 {len(reader.pages):,}", f"the page count {len(reader.pages):,}")
    budget = TextBudget(limits, source)
    result = ReadResult()
    for number, page in enumerate(reader.pages, start=1):
        try:
            text = budget.text(page.extract_text() or "")
        except FileTooLargeError:
            raise
        except Exception as exc:
            result.rejected.append(Rejection(source, number, f"{number}쪽을 읽을 수 없습니다 (page {number}: {type(exc).__name__}: {exc})"))
            continue
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if p.strip()]
        if paragraphs:
            result.items.append(DocumentPart(text=_BLOCK.join(paragraphs), source=source, page=number))
    return result


# --- DOCX -----------------------------------------------------------------------------------------
def _read_docx(path: Path, source: str, limits: ReadLimits) -> ReadResult:
    """Paragraphs and tables in document order; a table row becomes `cell | cell | cell`.

    python-docx parses every XML part whole, so each is first streamed once against the limits.
    """
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    with ZipGuard(path, source, limits) as guard:
        budget = TextBudget(limits, source)
        for name in guard.names(".xml", ".rels"):
            scan_xml(guard.open(name), budget)
    document = docx.Document(str(path))
    lines: list[str] = []
    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            lines.append(Paragraph(child, document).text)
        elif tag == "tbl":
            lines.extend(_docx_table_rows(Table(child, document)))
    return _one_part(_blocks(lines), source)


def _docx_table_rows(table) -> Iterator[str]:
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell is returned once per grid column it spans
                continue
            seen.add(id(cell._tc))
            text = normalise(cell.text)
            if text:
                cells.append(text)
        if cells:
            yield " | ".join(cells)


# --- HTML -----------------------------------------------------------------------------------------
_HTML_DROP = ("script", "style", "noscript", "template", "svg", "iframe", "head", "nav", "footer")
_HTML_BLOCKS = (
    "p", "div", "section", "article", "main", "header", "aside", "h1", "h2", "h3", "h4", "h5", "h6", "li", "dt", "dd",
    "tr", "table", "ul", "ol", "dl", "pre", "blockquote", "figcaption", "caption", "address", "form", "fieldset",
)
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w-]+)""", re.I)


def _read_html(path: Path, source: str, limits: ReadLimits) -> ReadResult:
    """Visible text; headings, paragraphs, list items and table rows become lines (blocks)."""
    from bs4 import BeautifulSoup

    data = path.read_bytes()
    declared = _CHARSET.search(data[:4096])
    text = None
    if declared:
        try:
            text = data.decode(declared.group(1).decode("ascii").lower().replace("ks_c_5601-1987", "cp949"))
        except (LookupError, UnicodeDecodeError):
            text = None
    if text is None:
        text, _ = decode_text(data, source)
    soup = BeautifulSoup(text, "html.parser")
    for element in soup(_HTML_DROP):
        element.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for cell in soup.find_all(["td", "th"]):
        cell.insert_after(" | ")
    for element in soup.find_all(_HTML_BLOCKS):
        element.insert_before("\n")
        element.insert_after("\n")
    lines = (line.strip().strip("|").strip() for line in soup.get_text().split("\n"))
    return _one_part(_blocks(lines), source)


# --- HWPX (OWPML: a zip of XML parts) -------------------------------------------------------------
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _read_hwpx(path: Path, source: str, limits: ReadLimits) -> ReadResult:
    """Contents/section0.xml, section1.xml … in order; the hp:t text of each hp:p is one paragraph, and a
    table row (hp:tr) is one line `cell | cell | cell`, as DOCX and HTML rows are.

    A table's cells are paragraphs nested inside the paragraph that holds the table; each paragraph
    collects only its own runs (p > run > t), so nested cell text is not repeated. Sections are
    streamed within the limits; a paragraph keeps its place in document order (taken when it starts,
    filled when it ends, after its nested cell paragraphs) and is cleared once read. When a cell (hp:tc)
    ends, its paragraphs become one cell text; when a row ends, its cells become one line.
    """
    try:
        guard = ZipGuard(path, source, limits)
    except zipfile.BadZipFile:
        raise DocumentReadError(f"{source}: HWPX(zip) 파일이 아닙니다 (not a zip archive; 옛 .hwp는 .hwpx로 저장해 주세요)") from None
    with guard:
        sections = [n for n in guard.archive.namelist() if re.fullmatch(r"Contents/section\d+\.xml", n)]
        if not sections:
            raise DocumentReadError(f"{source}: Contents/section*.xml이 없습니다 (no OWPML sections in the archive)")
        sections.sort(key=lambda n: int(re.search(r"(\d+)\.xml$", n).group(1)))  # type: ignore[union-attr]
        budget = TextBudget(limits, source)
        paragraphs: list[str] = []
        for name in sections:
            open_slots: list[int] = []
            cell_starts: list[int] = []  # where each open cell's paragraphs begin
            rows: list[list[str]] = []  # the cells of each open row (a cell may hold a table of its own)
            for event, element in iter_xml(guard.open(name), budget, events=("start", "end")):
                tag = _local(element.tag)
                if tag == "tr":
                    if event == "start":
                        rows.append([])
                    elif rows:
                        paragraphs.append(" | ".join(cell for cell in rows.pop() if cell))
                elif tag == "tc":
                    if event == "start":
                        cell_starts.append(len(paragraphs))
                    elif cell_starts:
                        start = cell_starts.pop()
                        text = " ".join(t for t in paragraphs[start:] if t)
                        del paragraphs[start:]  # every paragraph inside the cell has ended
                        if rows:
                            rows[-1].append(text)
                        else:  # a cell outside a row: keep its text as a paragraph
                            paragraphs.append(text)
                elif tag == "p":
                    if event == "start":
                        open_slots.append(len(paragraphs))
                        paragraphs.append("")
                        continue
                    paragraphs[open_slots.pop()] = budget.text("".join(
                        "".join(t.itertext())
                        for run in element if _local(run.tag) == "run"
                        for t in run if _local(t.tag) == "t"
                    ))
                    element.clear()
    return _one_part(_blocks(paragraphs), source)


_READERS = {
    ".txt": _read_txt,
    ".md": _read_markdown,
    ".markdown": _read_markdown,
    ".pdf": _read_pdf,
    ".docx": _read_docx,
    ".html": _read_html,
    ".htm": _read_html,
    ".hwpx": _read_hwpx,
}
