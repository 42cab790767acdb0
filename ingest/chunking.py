"""DocumentPart → Chunk: kiwi sentence boundaries, packed by langchain's RecursiveCharacterTextSplitter.

Each part (a PDF page, or a whole text document) is split into sentences with kiwi
(`chatbot.text.split_sentences`), the sentences are joined with "\\n", and the splitter packs whole
sentences into chunks of at most `chunk_size` characters, carrying trailing sentences that fit in
`chunk_overlap` characters into the next chunk. Only a sentence longer than `chunk_size` is cut
further (at spaces, then anywhere). Chunks never cross a page, so every chunk has one page number.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from ingest.items import DocumentPart
from chatbot.text import normalise, split_sentences

log = logging.getLogger(__name__)

TITLE_CHARS = 80


@dataclass(frozen=True)
class Chunk:
    """A piece of a document small enough to embed; `chunk_index` counts from 0 across the document."""

    text: str
    source: str
    chunk_index: int
    page: int | None = None
    title: str | None = None


def document_title(parts: Iterable[DocumentPart]) -> str | None:
    """The document's first non-empty line (readers put headings on their own line), shortened."""
    for part in parts:
        for line in part.text.split("\n"):
            line = normalise(line)
            if line:
                return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"
    return None


def make_splitter(chunk_size: int, chunk_overlap: int):
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    if chunk_overlap >= chunk_size:
        clamped = chunk_size // 4
        log.warning("chunk_overlap %d ≥ chunk_size %d; using %d", chunk_overlap, chunk_size, clamped)
        chunk_overlap = clamped
    return RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        separators=["\n", " ", ""],  # sentence boundary first, then words, then characters
        keep_separator=False,
        strip_whitespace=True,
        length_function=len,
    )


def chunk_document(parts: list[DocumentPart], chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    """All parts of one document → chunks with page numbers, a running index and the document title."""
    parts = list(parts)
    if not parts:
        return []
    splitter = make_splitter(chunk_size, chunk_overlap)
    title = document_title(parts)
    chunks: list[Chunk] = []
    for part in parts:
        sentences = split_sentences(part.text)
        if not sentences:
            continue
        for text in splitter.split_text("\n".join(sentences)):
            text = text.strip()
            if text:
                chunks.append(Chunk(text=text, source=part.source, chunk_index=len(chunks), page=part.page, title=title))
    return chunks
