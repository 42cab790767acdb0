"""Plain dataclasses passed between stages (store → retrieval → answers); what readers produce is in ingest/items.py."""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Kind = Literal["faq", "doc"]

# The store source of the operator's FAQs (chatbot/operator keeps them in the database and syncs them).
# Its FAQ with id X shadows FAQ X of every other source in search (chatbot.fusion.group_hits), so an
# edited copy of a spreadsheet's FAQ replaces it without touching the spreadsheet.
OPERATOR_SOURCE = "operator-edits.jsonl"


def content_hash(*parts: str) -> str:
    """Stable id material: the same content always gives the same id, so re-ingestion is a no-op."""
    digest = hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:16]


def related_texts(metadata: Mapping[str, Any]) -> tuple[str, str]:
    """What an FAQ record's entry says beside its own wording: the main question and the answer (empty for a
    passage, which is its own answer). The answer decision reads their words; the BM25 cache keeps them tokenised."""
    return str(metadata.get("main_question") or ""), str(metadata.get("answer") or "")


@dataclass(frozen=True)
class Record:
    """One row in Chroma: a FAQ question variant or a document chunk. `text` is what gets embedded."""

    id: str
    text: str
    kind: Kind
    source: str
    metadata: dict[str, Any]

    @property
    def content_hash(self) -> str:
        return str(self.metadata.get("content_hash", ""))


@dataclass(frozen=True)
class Hit:
    """A retrieved record with its score (higher is better, roughly cosine scale for dense/hybrid)."""

    record_id: str
    text: str
    kind: Kind
    score: float
    metadata: dict[str, Any]
    _answer_key: str = field(init=False, repr=False, compare=False, default="")

    @classmethod
    def of(cls, record_id: str, text: str | None, metadata: dict[str, Any] | None, score: float) -> "Hit":
        """A stored record (id, text, metadata as Chroma and the BM25 cache hold them) with a score."""
        meta = metadata or {}
        return cls(record_id=record_id, text=text or "", kind=meta.get("kind", "faq"), score=score, metadata=meta)

    @property
    def answer_id(self) -> str:
        """What the user is given: the FAQ id for FAQ hits, the record id for document chunks (what
        evaluation compares, and what 👍/👎 rate)."""
        return str(self.metadata.get("faq_id") or self.record_id)

    def __post_init__(self) -> None:
        # computed once: grouping and the decision features ask for it hundreds of times per question
        faq_id = self.metadata.get("faq_id")
        object.__setattr__(self, "_answer_key", f"{self.metadata.get('source', '')}::{faq_id}" if faq_id else self.record_id)

    def rescored(self, score: float) -> "Hit":
        """This hit with another score. A plain copy of the fields: ``dataclasses.replace`` re-runs
        __init__ and __post_init__, and fusion re-scores about a hundred hits per question."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__, score=score)
        return new

    @property
    def answer_key(self) -> str:
        """The answer_id made unique across files (source + FAQ id: two files may both number FAQs 1, 2, 3…);
        retrieval keeps one hit per answer_key."""
        return self._answer_key


@dataclass(frozen=True)
class Answer:
    """What every entry point shows: an FAQ answer, a quoted passage, a "did you mean" with candidates
    (clarify), or the fallback with suggestions.

    `p` is the decision model's probability that the answer (clarify: the best candidate) is right;
    None when the decision used the raw score threshold (lexical/static modes, or no model yet).
    `candidates` (clarify only): dicts with question, faq_id, source, p, best first.
    `read_as`: the question as it was searched when typo repair changed it ("배숑 기간" → "배송 기간"), else None.
    `passage` (clarify only): a document passage that may answer, quoted with its source in `sources`, when
    the best candidate was a passage not likely enough to answer with.
    """

    type: Literal["faq", "doc", "clarify", "fallback"]
    answer: str
    score: float
    matched_question: str | None = None
    faq_id: str | None = None
    sources: tuple[dict[str, Any], ...] = ()
    suggestions: tuple[str, ...] = ()
    hits: tuple[Hit, ...] = ()
    p: float | None = None
    candidates: tuple[dict[str, Any], ...] = ()
    read_as: str | None = None
    passage: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "answer": self.answer,
            "score": round(float(self.score), 4),
            "p": None if self.p is None else round(float(self.p), 4),
            "matched_question": self.matched_question,
            "faq_id": self.faq_id,
            "sources": list(self.sources),
            "suggestions": list(self.suggestions),
            "candidates": [dict(c) for c in self.candidates],
            "read_as": self.read_as,
            "passage": self.passage,
        }


def source_label(source: str) -> str:
    """A document file as evaluation and labelled questions name it: `source:FILE`."""
    return f"source:{Path(source).name}"


def hit_label(hit: Hit) -> str:
    """What a hit is judged by: the FAQ id, or for a document passage the file it came from."""
    return source_label(str(hit.metadata.get("source", ""))) if hit.kind == "doc" else hit.answer_id
