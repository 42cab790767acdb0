"""What the hybrid retriever ranked for a question, with each record's dense and lexical parts.

The retriever's Hit carries only the fused score; the decision needs the cosine and the BM25
coverage separately. Both are recovered exactly from the fused score: the lexical coverage is
recomputed from the same BM25 index (cheap), and cosine = (fused − offset − w·lexical) / (1 − w).
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from chatbot.records import Hit
from chatbot.retrieval import Retriever, group_hits, with_doc_offset
from chatbot.text import correct_spacing


@dataclass(frozen=True)
class Candidate:
    """One grouped hit (best variant of an FAQ, or a passage) with its score parts."""

    hit: Hit
    cosine: float
    lexical: float

    @property
    def fused(self) -> float:
        return self.hit.score


@dataclass(frozen=True)
class Ranking:
    """Everything the features need about one question: its content morphemes and the ungrouped hits."""

    question: str
    tokens: tuple[str, ...]
    hits: tuple[Candidate, ...]

    def grouped(self, exclude: Collection[str] = (), k: int = 5) -> list[Candidate]:
        """Best candidate per FAQ after dropping the excluded record ids (leave-one-out without re-indexing)."""
        by_id = {c.hit.record_id: c for c in self.hits if c.hit.record_id not in exclude}
        return [by_id[h.record_id] for h in group_hits([c.hit for c in by_id.values()], k)]


def with_parts(retriever: Retriever, question: str, hits: list[Hit]) -> tuple[tuple[str, ...], list[Candidate]]:
    """The question's content morphemes and each hit (doc offset already applied) with its score parts."""
    settings = retriever.settings.retrieval
    index = retriever.lexical
    lexical_text = correct_spacing(question) if retriever.settings.text.spacing_correction else question
    tokens = index.query_tokens(lexical_text)
    lexical_scores = index.scores(tokens)
    weight, position = settings.lexical_weight, index.position
    out = []
    for hit in hits:
        lexical = min(float(lexical_scores[position[hit.record_id]]), 1.0) if hit.record_id in position else 0.0
        offset = settings.doc_offset if hit.kind == "doc" else 0.0
        cosine = (hit.score - offset - weight * lexical) / (1.0 - weight) if weight < 1.0 else hit.score
        out.append(Candidate(hit, float(cosine), lexical))
    return tuple(tokens), out


def rank(retriever: Retriever, question: str, k: int = 20) -> Ranking:
    """Ungrouped hybrid hits of the whole store (doc offset applied), with their score parts.

    Uses the retriever's own hybrid scoring (Retriever._hybrid) so nothing re-implements the fusion;
    a public `Retriever.candidates()` returning ungrouped hits with their parts would replace this.
    """
    offset = retriever.settings.retrieval.doc_offset
    hits = [with_doc_offset(h, offset) for h in retriever._hybrid(question, None, k)]  # noqa: SLF001
    tokens, candidates = with_parts(retriever, question, hits)
    return Ranking(question, tokens, tuple(candidates))
