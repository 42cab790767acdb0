"""FaqEntry / Chunk → Record, with ids derived from content so re-ingesting is a no-op.

FAQ: one record per question variant (the main question is variant 0, alternatives 1, 2, …), all
sharing the entry's `faq_id` (the file's id column, else content_hash(source, main question)).

    id = "faq-" + content_hash(source, faq_id, variant text, variant number, main question, answer, category)

Everything stored as metadata except `line` is in the id, so an edit to an answer, category, main
question or the order of alternatives gives new ids and the stale records are replaced; a record
whose id is unchanged never carries stale metadata (only `line` may lag if rows moved).

Document chunk:

    id = "doc-" + content_hash(source, text, chunk_index, page, title)

`source` is the file NAME, not its path: uploading the same file from another folder updates the
same source.
"""
from __future__ import annotations

from collections.abc import Iterable

from chatbot.records import Record, content_hash
from ingest.items import FaqEntry
from ingest.chunking import Chunk


def faq_id_of(entry: FaqEntry) -> str:
    return entry.faq_id or content_hash(entry.source, entry.question)


def faq_records(entries: Iterable[FaqEntry]) -> list[Record]:
    records: list[Record] = []
    for entry in entries:
        faq_id = faq_id_of(entry)
        for variant, text in enumerate((entry.question, *entry.alternatives)):
            digest = content_hash(
                entry.source, faq_id, text, str(variant), entry.question, entry.answer, entry.category or ""
            )
            metadata = {
                "faq_id": faq_id,
                "question": text,
                "main_question": entry.question,
                "answer": entry.answer,
                "variant": variant,
                "line": entry.line,
                "content_hash": digest,
            }
            if entry.category is not None:
                metadata["category"] = entry.category
            records.append(Record(id=f"faq-{digest}", text=text, kind="faq", source=entry.source, metadata=metadata))
    return records


def chunk_records(chunks: Iterable[Chunk]) -> list[Record]:
    records: list[Record] = []
    for chunk in chunks:
        digest = content_hash(chunk.source, chunk.text, str(chunk.chunk_index), str(chunk.page), chunk.title or "")
        metadata = {
            "chunk_index": chunk.chunk_index,
            "page": chunk.page,
            "title": chunk.title,
            "content_hash": digest,
        }
        records.append(Record(
            id=f"doc-{digest}", text=chunk.text, kind="doc", source=chunk.source,
            metadata={k: v for k, v in metadata.items() if v is not None},
        ))
    return records


def item_key(metadata: dict) -> str:
    """What counts as 'the same item' across versions: the FAQ id, or a chunk's position in its document."""
    if metadata.get("faq_id") is not None:
        return f"faq:{metadata['faq_id']}"
    if metadata.get("chunk_index") is not None:
        return f"chunk:{metadata['chunk_index']}"
    return ""
