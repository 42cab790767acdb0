"""From ranked hits to what a user sees: an answer with source and score, or a polite fallback."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chatbot.records import Answer, Hit
from chatbot.retrieval import Mode, Retriever
from chatbot.settings import AnswerSettings
from chatbot.text import is_meaningful, normalise


class QuestionError(ValueError):
    """A question we refuse to process (empty, too long); the message is shown to the user."""


@dataclass
class Answerer:
    """Thresholds the retriever's best hit; below it, suggests related FAQ questions."""

    retriever: Retriever
    settings: AnswerSettings

    def validate(self, question: str) -> str:
        text = normalise(question or "")
        if not text:
            raise QuestionError("질문이 비어 있습니다. 궁금한 내용을 입력해 주세요. (The question is empty.)")
        if len(text) > self.settings.max_question_chars:
            raise QuestionError(
                f"질문이 너무 깁니다({len(text):,}자). {self.settings.max_question_chars:,}자 이하로 줄여 주세요. "
                f"(The question is longer than {self.settings.max_question_chars} characters.)"
            )
        return text

    def ask(self, question: str, k: int | None = None, category: str | None = None, mode: Mode | None = None) -> Answer:
        text = self.validate(question)
        if not is_meaningful(text):
            return Answer(type="fallback", answer="질문을 글자로 입력해 주세요. (Please type your question in words.)", score=0.0)
        hits = self.retriever.search(text, k=k, mode=mode, category=category)
        return self.decide(hits, mode or self.retriever.settings.retrieval.mode)

    def decide(self, hits: list[Hit], mode: str) -> Answer:
        threshold = self.threshold(mode)
        best = hits[0] if hits else None
        if best is not None and best.kind == "faq" and best.score >= threshold:
            meta = best.metadata
            return Answer(
                type="faq",
                answer=str(meta.get("answer", "")),
                score=best.score,
                matched_question=str(meta.get("question", best.text)),
                faq_id=str(meta.get("faq_id", best.record_id)),
                sources=(source_of(best),),
                suggestions=self.suggest(hits[1:]),
                hits=tuple(hits),
            )
        if best is not None and best.kind == "doc" and best.score >= self.doc_threshold(mode):
            return Answer(
                type="doc",
                answer=best.text,
                score=best.score,
                sources=tuple(source_of(h) for h in hits[:3] if h.kind == "doc"),
                suggestions=self.suggest(hits[1:]),
                hits=tuple(hits),
            )
        return Answer(
            type="fallback",
            answer=self.settings.fallback,
            score=best.score if best else 0.0,
            suggestions=self.suggest(hits),
            hits=tuple(hits),
        )

    def threshold(self, mode: str) -> float:
        """Each mode scores on its own scale (BM25 coverage, static cosine, e5 cosine, fused)."""
        return getattr(self.settings, threshold_setting(mode).removeprefix("answer."))

    def doc_threshold(self, mode: str) -> float:
        """retrieval.doc_offset already puts passages on the FAQ scale, so by default one threshold serves both."""
        return self.threshold(mode) if self.settings.doc_threshold is None else self.settings.doc_threshold

    def suggest(self, hits: list[Hit]) -> tuple[str, ...]:
        """Up to n distinct FAQ questions (the main wording) from the ranked hits."""
        out: list[str] = []
        for hit in hits:
            if hit.kind != "faq":
                continue
            question = str(hit.metadata.get("main_question") or hit.metadata.get("question") or hit.text)
            if question not in out:
                out.append(question)
            if len(out) >= self.settings.suggestions:
                break
        return tuple(out)


def source_of(hit: Hit) -> dict[str, Any]:
    """Where an answer came from: file, and page/chunk for documents."""
    meta = hit.metadata
    source: dict[str, Any] = {"source": meta.get("source", ""), "kind": hit.kind, "id": hit.record_id}
    for key in ("faq_id", "category", "page", "chunk_index", "title"):
        if meta.get(key) is not None:
            source[key] = meta[key]
    return source


def threshold_setting(mode: str) -> str:
    """The config key holding the answer threshold of a retrieval mode (hybrid: answer.threshold)."""
    return f"answer.{mode}_threshold" if mode in ("lexical", "static", "dense") else "answer.threshold"
