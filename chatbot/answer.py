"""From ranked hits to what a user sees: an answer with source and score, "did you mean" (clarify), or a
polite fallback.

Hybrid mode decides with the decision model (chatbot/decision/): P(top candidate is right) against
an answer level calibrated for answer.min_precision, with a clarify band below it. Other modes, and
hybrid before a model for the current store exists, compare the raw score with the mode's threshold.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chatbot.decision import DecisionModel, DecisionProvider, choose
from chatbot.decision.candidates import with_parts
from chatbot.decision.features import candidate_features
from chatbot.records import Answer, Hit
from chatbot.retrieval import Mode, Retriever
from chatbot.settings import AnswerSettings
from chatbot.text import is_meaningful, normalise

DECISION_MODES = ("hybrid",)


class QuestionError(ValueError):
    """A question we refuse to process (empty, too long); the message is shown to the user."""


@dataclass
class Answerer:
    """Decides on the retriever's best hits: answer, clarify with candidates, or fallback with suggestions."""

    retriever: Retriever
    settings: AnswerSettings
    decision: DecisionProvider | None = field(default=None)

    def __post_init__(self) -> None:
        if self.decision is None and self.settings.decision_model and isinstance(self.retriever, Retriever):
            self.decision = DecisionProvider(self.retriever, self.settings.decision_max_variants)

    def prepare(self, timeout: float | None = None) -> DecisionModel | None:
        """Wait for the decision model of the current store (evaluation, warm-up); None when there is none."""
        return self.decision.wait(timeout) if self.decision is not None else None

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
        mode = mode or self.retriever.settings.retrieval.mode
        hits = self.retriever.search(text, k=k, mode=mode, category=category)
        model = self.decision.current() if self.decision is not None and mode in DECISION_MODES else None
        if model is not None and hits:
            return self.decide_with_model(text, hits, model)
        return self.decide(hits, mode)

    # --- the decision model (hybrid) ------------------------------------------------------------
    def answer_level(self, model: DecisionModel) -> float:
        """answer.answer_p when set, else the P that reached answer.min_precision on the calibration rows."""
        if self.settings.answer_p is not None:
            return self.settings.answer_p
        return model.level_for_precision(self.settings.min_precision)

    def decide_with_model(self, question: str, hits: list[Hit], model: DecisionModel) -> Answer:
        index = self.retriever.lexical
        tokens, ranked = with_parts(self.retriever, question, hits)
        n = max(self.settings.clarify_candidates, 2)
        rows = [candidate_features(question, tokens, ranked, i, index.doc_freq, len(index.records.ids))
                for i in range(min(n, len(ranked)))]
        ps = [float(p) for p in model.predict(rows)]
        level = self.answer_level(model)
        outcome = choose(ps, level, min(self.settings.clarify_min_p, level), self.settings.clarify_gap)
        best = hits[0]
        if outcome == "answer":
            return self.answer_from(best, hits, p=ps[0])
        candidates = self.clarify_candidates(hits[: len(ps)], ps) if outcome == "clarify" else ()
        if candidates:
            return Answer(
                type="clarify", answer=self.settings.clarify, score=best.score, p=ps[0],
                candidates=candidates, suggestions=self.suggest(hits[len(ps):]), hits=tuple(hits),
            )
        return self.fallback(hits, p=ps[0])

    def clarify_candidates(self, hits: list[Hit], ps: list[float]) -> tuple[dict[str, Any], ...]:
        """FAQ candidates (their main wording, so choosing one asks a question that is answered), likeliest first."""
        out: list[dict[str, Any]] = []
        for hit, p in sorted(zip(hits, ps), key=lambda pair: pair[1], reverse=True):
            if hit.kind != "faq":
                continue
            question = str(hit.metadata.get("main_question") or hit.metadata.get("question") or hit.text)
            if all(c["question"] != question for c in out):
                out.append({"question": question, "faq_id": str(hit.metadata.get("faq_id", hit.record_id)),
                            "source": str(hit.metadata.get("source", "")), "p": round(p, 4)})
        return tuple(out[: self.settings.clarify_candidates])

    # --- the score threshold (lexical, static, dense; hybrid without a model) ---------------------
    def decide(self, hits: list[Hit], mode: str) -> Answer:
        threshold = self.threshold(mode)
        best = hits[0] if hits else None
        if best is not None and best.kind == "faq" and best.score >= threshold:
            return self.answer_from(best, hits)
        if best is not None and best.kind == "doc" and best.score >= self.doc_threshold(mode):
            return self.answer_from(best, hits)
        return self.fallback(hits)

    # --- building answers -------------------------------------------------------------------------
    def answer_from(self, best: Hit, hits: list[Hit], p: float | None = None) -> Answer:
        """The FAQ answer, or the quoted passage, of the best hit."""
        if best.kind == "faq":
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
                p=p,
            )
        return Answer(
            type="doc",
            answer=best.text,
            score=best.score,
            sources=tuple(source_of(h) for h in hits[:3] if h.kind == "doc"),
            suggestions=self.suggest(hits[1:]),
            hits=tuple(hits),
            p=p,
        )

    def fallback(self, hits: list[Hit], p: float | None = None) -> Answer:
        return Answer(
            type="fallback",
            answer=self.settings.fallback,
            score=hits[0].score if hits else 0.0,
            suggestions=self.suggest(hits),
            hits=tuple(hits),
            p=p,
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
