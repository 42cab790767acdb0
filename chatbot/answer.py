"""From ranked hits to what a user sees: an answer with source and score, "did you mean" (clarify), or a
polite fallback.

Hybrid mode decides with the decision model (chatbot/decision/): P(top candidate is right), calibrated
for traffic with answer.in_scope_share in-scope questions, against an answer level (a cost rule:
wrong_cost / (1 + wrong_cost); or answer.min_precision on the calibration rows; or a fixed answer_p),
with a clarify band below it. Other modes, hybrid before a model for the current store exists, and a
model that does worse than the score threshold on its own calibration rows (the safety rule) compare
the raw score with the mode's threshold.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from chatbot.message import courtesy_only, strip_details, strip_emoticons
from chatbot.decision import DecisionModel, DecisionProvider, choose
from chatbot.modes import DECISION_MODES, THRESHOLD_FIELDS
from chatbot.records import Answer, Hit
from chatbot.retrieval import Candidates, Mode, Retriever, SearchBackend
from chatbot.settings import AnswerSettings
from chatbot.text import is_foreign, is_meaningful, names_a_topic, normalise

log = logging.getLogger(__name__)
T = TypeVar("T")


class QuestionError(ValueError):
    """A question we refuse to process (empty, too long); the message is shown to the user."""


@dataclass
class Answerer:
    """Decides on the retriever's best hits: answer, clarify with candidates, or fallback with suggestions."""

    retriever: SearchBackend
    settings: AnswerSettings
    decision: DecisionProvider | None = field(default=None)

    def __post_init__(self) -> None:
        if self.decision is None and self.settings.decision_model and isinstance(self.retriever, Retriever):
            self.decision = DecisionProvider(
                self.retriever, self.settings.decision_max_variants, in_scope_share=self.settings.in_scope_share
            )
        self._vetted: dict[tuple[str, float], bool] = {}

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
        text = strip_emoticons(self.validate(question))  # then the rest: message.question_of's order
        courtesy = courtesy_only(text)
        if courtesy is not None:
            reply = self.settings.thanks_reply if courtesy == "thanks" else self.settings.greeting_reply
            return Answer(type="fallback", answer=reply, score=0.0)
        text = strip_details(text)
        if not is_meaningful(text):
            return Answer(type="fallback", answer="질문을 글자로 입력해 주세요. (Please type your question in words.)", score=0.0)
        answer = self._answer(text, k, category, mode)
        if answer.hits and not names_a_topic(text) and names_a_topic(wording(answer.hits[0])):
            # a question about nothing ("언제요?") matched a candidate about something: ask for the topic. A store
            # whose own wordings name none (chit-chat lines: "뭐해?") still answers them.
            return Answer(type="fallback", answer=self.settings.no_topic_reply, score=0.0)
        if answer.type == "fallback" and is_foreign(text):  # the replies above return early: this is "not found"
            answer = replace(answer, answer=self.settings.fallback_foreign)  # "no answer" in words its writer reads
        read = self.retriever.repaired(text) if isinstance(self.retriever, Retriever) else text
        return replace(answer, read_as=read) if read != text else answer

    def _answer(self, text: str, k: int | None, category: str | None, mode: Mode | None) -> Answer:
        mode = mode or self.retriever.default_mode
        decision = self.decision if mode in DECISION_MODES else None
        model = decision.current() if decision is not None else None
        if model is None and decision is not None and decision.status == "building":
            # the store's first model (a later build leaves the previous one deciding): only the raw threshold
            # could answer now, and it answers off-topic questions with the nearest FAQ
            model = decision.wait(self.settings.first_model_wait_s)
        if model is not None and isinstance(self.retriever, Retriever) and self.model_beats_threshold(model):
            # one retrieval gives both the hits and the score parts the model reads; a category narrows what may
            # be answered, and the decision still weighs every FAQ (the unfiltered ranking, see candidate_rows)
            k = k or self.retriever.top_k
            vector = self.retriever.question_vectors([text])[0] if category else None
            ranking = self.retriever.candidates(text, k, {"category": category} if category else None, vector=vector)
            if not ranking.hits:
                return self.fallback([])
            among = self.retriever.candidates(text, k, vector=vector) if category else None
            return self.decide_with_model(text, ranking, model, k, among=among)
        hits = self.retriever.search(text, k=k, mode=mode, category=category)
        return self.decide(hits, mode)

    # --- the decision model (hybrid) ------------------------------------------------------------
    def answer_level(self, model: DecisionModel) -> float:
        """answer.answer_p when set; else the P that reached answer.min_precision on the (traffic-weighted)
        calibration rows when that is set; else the cost rule wrong_cost / (1 + wrong_cost)."""
        if self.settings.answer_p is not None:
            return self.settings.answer_p
        if self.settings.min_precision is not None:
            return model.level_for_precision(self.settings.min_precision)
        return self.settings.wrong_cost / (1.0 + self.settings.wrong_cost)

    def model_beats_threshold(self, model: DecisionModel) -> bool:
        """The safety rule: the model decides only if, on its own out-of-fold calibration rows worded like real
        questions (DecisionModel.utility), it is at least as useful (right − wrong_cost · wrong, traffic-weighted)
        as answer.threshold on the fused score. Where those rows are all out of scope (a plain FAQ list, documents
        only) this prefers whichever answers fewer of them."""
        key = (model.fingerprint, self.answer_level(model))
        if key not in self._vetted:
            level, cost = key[1], self.settings.wrong_cost
            mine, old = model.utility(level, cost), model.threshold_utility(self.settings.threshold, cost)
            self._vetted[key] = old is None or mine >= old
            if not self._vetted[key]:
                log.warning("Decision model (utility %.3f at P ≥ %.2f) is worse than the threshold %.3f (%.3f) on "
                            "its calibration rows: the threshold decides", mine, level, self.settings.threshold, old)
        return self._vetted[key]

    def decide_with_model(self, question: str, ranking: Candidates, model: DecisionModel, k: int = 10,
                          among: Candidates | None = None) -> Answer:
        """among: the question's unfiltered ranking when `ranking` is filtered (a category)."""
        ranked = ranking.grouped(k)
        n = max(self.settings.clarify_candidates, 2)
        rows = model.candidate_rows(question, ranking, ranked, n, self.retriever.lexical, among=with_all(among, ranking))
        ps = [float(p) for p in model.predict(rows)]
        if self.settings.rerank:
            ranked, ps = likeliest_first(ranked, ps, self.settings.rerank_margin)
        hits = [c.hit for c in ranked]
        level = self.answer_level(model)
        rivals = [p for c, p in zip(ranked[1 : len(ps)], ps[1:]) if is_rival(hits[0], c.hit)]
        outcome = choose([ps[0], *rivals], level, min(self.settings.clarify_min_p, level), self.settings.clarify_gap)
        best = hits[0]
        if outcome == "answer":
            return self.answer_from(best, hits, p=ps[0])
        candidates = self.clarify_candidates(hits[: len(ps)], ps) if outcome == "clarify" else ()
        # a passage in the band is quoted as "maybe this" (it had fallen back when no FAQ was a candidate)
        passage = best if outcome == "clarify" and best.kind == "doc" else None
        # suggestions read on past the top k when those are all passages (an FAQ below ten loose passages is
        # still something to click; "How much is shipping?" had none to offer)
        deeper = [c.hit for c in ranking.hits]
        if candidates or passage is not None:
            shown = {h.answer_key for h in hits[: len(ps)]}  # the candidates are not suggested again
            return Answer(
                type="clarify", answer=self.settings.clarify_passage if passage is not None else self.settings.clarify,
                score=best.score, p=ps[0], candidates=candidates,
                suggestions=self.suggest(hits[len(ps):] + [h for h in deeper if h.answer_key not in shown]), hits=tuple(hits),
                passage=passage.text if passage is not None else None,
                sources=(source_of(passage),) if passage is not None else (),
            )
        return self.fallback(hits, p=ps[0], more=deeper)

    def clarify_candidates(self, hits: list[Hit], ps: list[float]) -> tuple[dict[str, Any], ...]:
        """FAQ candidates (their main wording, so choosing one asks a question that is answered), likeliest first."""
        out: list[dict[str, Any]] = []
        for hit, p in sorted(zip(hits, ps), key=lambda pair: pair[1], reverse=True):
            if hit.kind != "faq":
                continue
            question = wording(hit)
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

    def fallback(self, hits: list[Hit], p: float | None = None, more: list[Hit] | None = None) -> Answer:
        """more: hits past the top k that suggestions may read on to when the top k has too few FAQs. With
        nothing to suggest, the reply does not point at questions "below"."""
        suggestions = self.suggest(hits + (more or []))
        return Answer(
            type="fallback",
            answer=self.settings.fallback if suggestions else self.settings.fallback_alone,
            score=hits[0].score if hits else 0.0,
            suggestions=suggestions,
            hits=tuple(hits),
            p=p,
        )

    def threshold(self, mode: str) -> float:
        """Each mode scores on its own scale (BM25 coverage, static cosine, e5 cosine, fused)."""
        return float(getattr(self.settings, THRESHOLD_FIELDS.get(mode, "threshold")))

    def doc_threshold(self, mode: str) -> float:
        """retrieval.doc_offset already puts passages on the FAQ scale, so by default one threshold serves both."""
        return self.threshold(mode) if self.settings.doc_threshold is None else self.settings.doc_threshold

    def suggest(self, hits: list[Hit]) -> tuple[str, ...]:
        """Up to n distinct FAQ questions (the main wording) from the ranked hits."""
        out: list[str] = []
        for hit in hits:
            if hit.kind != "faq":
                continue
            question = wording(hit)
            if question not in out:
                out.append(question)
            if len(out) >= self.settings.suggestions:
                break
        return tuple(out)


def with_all(among: Candidates | None, ranking: Candidates) -> Candidates | None:
    """among with ranking's candidates it lacks (a filtered ranking reads deeper into its category than the
    unfiltered one reaches), best first; None stays None."""
    if among is None:
        return None
    seen = {c.hit.record_id for c in among.hits}
    hits = sorted([*among.hits, *(c for c in ranking.hits if c.hit.record_id not in seen)], key=lambda c: c.hit.score,
                  reverse=True)
    return replace(among, hits=tuple(hits))


def likeliest_first(ranked: list[T], ps: list[float], margin: float = 0.0) -> tuple[list[T], list[float]]:
    """The scored candidate with the highest P moves to the front when its P beats the top's by more than
    `margin`; the rest keep their retrieval order.

    P reads the question against each candidate (unmatched rare words, margins, how many of its wordings
    rank high), which the fused score alone does not. Measured (bench/decision.py): with any margin the
    sample's top-1 rises (0.888 → 0.898–0.904); on the public chatbot split a margin under 0.3 costs
    top-1 (0.750 → 0.731 at 0), from 0.3 it does not (0.754), hence answer.rerank_margin 0.3."""
    if not ps:
        return ranked, ps
    best = max(range(len(ps)), key=lambda i: (ps[i], -i))
    if best == 0 or ps[best] - ps[0] <= margin:
        return ranked, ps
    order = [best, *(i for i in range(len(ps)) if i != best)]
    return [ranked[i] for i in order] + list(ranked[len(ps):]), [ps[i] for i in order]


def wording(hit: Hit) -> str:
    """What a candidate says: an FAQ's main question, a passage's text."""
    return str(hit.metadata.get("main_question") or hit.metadata.get("question") or hit.text)


def is_rival(top: Hit, other: Hit) -> bool:
    """Whether `other`, nearly as likely as `top`, makes the answer a question back ("did you mean").

    An FAQ's rivals are all other candidates. A passage's are passages of other documents only: another
    chunk of its own file answers from the same file, and an FAQ beside a likely passage is offered among
    the quoted passage's suggestions (of 13 document questions written to check, 4 had been asked back,
    2 of them with the right passage at P 0.79 and 0.82; answered, none was wrong)."""
    if top.kind != "doc":
        return True
    return other.kind == "doc" and other.metadata.get("source") != top.metadata.get("source")


def source_of(hit: Hit) -> dict[str, Any]:
    """Where an answer came from: file, and page/chunk for documents."""
    meta = hit.metadata
    source: dict[str, Any] = {"source": meta.get("source", ""), "kind": hit.kind, "id": hit.record_id}
    for key in ("faq_id", "category", "page", "chunk_index", "title"):
        if meta.get(key) is not None:
            source[key] = meta[key]
    return source


def describe_source(source: dict[str, Any]) -> str:
    """'guide.pdf · 3쪽 · 조각 2' or 'faq.csv · FAQ ship-1 · 배송': a source_of dict as the page and the terminal chat
    name it (plain text; escape before HTML)."""
    parts = [str(source.get("source") or "?")]
    if source.get("kind") == "doc":
        if source.get("page") is not None:
            parts.append(f"{source['page']}쪽")
        if source.get("chunk_index") is not None:
            parts.append(f"조각 {source['chunk_index']}")
    else:
        if source.get("faq_id"):
            parts.append(f"FAQ {source['faq_id']}")
        if source.get("category"):
            parts.append(str(source["category"]))
    return " · ".join(parts)


def threshold_setting(mode: str) -> str:
    """The config key holding the answer threshold of a retrieval mode (hybrid: answer.threshold)."""
    return f"answer.{THRESHOLD_FIELDS.get(mode, 'threshold')}"
