"""Running the product's own objects over the questions, one mode at a time, and summarising each mode."""
from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


import numpy as np

from chatbot.answer import Answerer, QuestionError
from chatbot.encoder import Encoder, load_encoder
from chatbot.evaluation.cases import Case, hit_label
from chatbot.evaluation.metrics import (
    RECALL_AT, decision_counts, expected_calibration_error, hit_at, ndcg_at, percentile, recommend_threshold, reciprocal_rank,
)
from chatbot.modes import EVALUATION_MODES, MODES
from chatbot.onnx_encoder import model_files
from chatbot.pipeline import Pipeline, open_pipeline
from chatbot.records import Record, content_hash
from chatbot.settings import Settings
from chatbot.store import Store, StoredRecords
from ingest.items import FaqEntry
from ingest.records import faq_records as ingest_faq_records

log = logging.getLogger(__name__)

ALL_MODES: tuple[str, ...] = EVALUATION_MODES
DEFAULT_MODES: tuple[str, ...] = ("lexical", "static", "dense", "hybrid")


@dataclass(frozen=True)
class Outcome:
    """What one question got in one mode."""

    case: Case
    ranked: tuple[str, ...]  # FAQ ids (document passages: source:FILE), best first
    top_score: float
    answer_type: str  # faq | doc | clarify | fallback (at the configured levels)
    answer_id: str | None
    latency_ms: float
    p: float | None = None  # the decision model's P of the top candidate (None: threshold decision)
    offered: tuple[str, ...] = ()  # clarify: the FAQ ids offered

    @property
    def answered(self) -> bool:
        return self.answer_type in ("faq", "doc")

    @property
    def top1_correct(self) -> bool:
        return bool(self.ranked) and self.ranked[0] in self.case.expected

    @property
    def right(self) -> bool:
        """The decision at the configured threshold was right."""
        if not self.case.answerable:
            return self.answer_type == "fallback"
        return self.answer_type != "fallback" and self.answer_id in self.case.expected


@dataclass
class ModeRunner:
    """A mode name and the Answerer (with its own retriever) that serves it."""

    mode: str
    answerer: Answerer
    search_mode: str | None  # what Answerer.ask passes to the retriever as `mode`
    describe: str = ""


def run_mode(runner: ModeRunner, cases: Sequence[Case], k: int = 10) -> list[Outcome]:
    """Ask every question through Answerer.ask (validation, retrieval, decision) and time it."""
    if cases:  # warm-up: lazy indexes (BM25, static vectors, the decision model) are built outside the timings
        prepare = getattr(runner.answerer, "prepare", None)
        if prepare is not None and runner.search_mode in ("hybrid", None):
            prepare()
        try:
            runner.answerer.ask(cases[0].question, k=k, mode=runner.search_mode)
        except QuestionError:
            pass
    outcomes: list[Outcome] = []
    for case in cases:
        started = time.perf_counter()
        try:
            answer = runner.answerer.ask(case.question, k=k, category=case.category, mode=runner.search_mode)
        except QuestionError:
            outcomes.append(Outcome(case, (), 0.0, "fallback", None, 0.0))
            continue
        elapsed = (time.perf_counter() - started) * 1000
        ranked = tuple(hit_label(h) for h in answer.hits)
        top_score = answer.hits[0].score if answer.hits else 0.0
        answer_id = answer.faq_id if answer.type == "faq" else (ranked[0] if answer.type == "doc" else None)
        offered = tuple(str(c.get("faq_id", "")) for c in answer.candidates)
        if answer.passage and answer.hits:  # a quoted "maybe this" passage is offered too
            offered = (hit_label(answer.hits[0]), *offered)
        outcomes.append(Outcome(case, ranked, float(top_score), answer.type, answer_id, elapsed, answer.p, offered))
    return outcomes


@dataclass
class ModeReport:
    mode: str
    outcomes: list[Outcome]
    threshold: float
    recommended: float
    recommended_f1: float
    metrics: dict[str, float] = field(default_factory=dict)


def summarise(mode: str, outcomes: Sequence[Outcome], threshold: float, k: int = 10) -> ModeReport:
    answerable = [o for o in outcomes if o.case.answerable]
    metrics: dict[str, float] = {"questions": len(outcomes), "answerable": len(answerable)}

    def mean(values: Iterable[float]) -> float:
        values = list(values)
        return float(np.mean(values)) if values else float("nan")

    metrics["top1"] = mean(o.top1_correct for o in answerable)
    metrics[f"mrr@{k}"] = mean(reciprocal_rank(o.ranked, o.case.expected, k) for o in answerable)
    for at in RECALL_AT:
        metrics[f"r@{at}"] = mean(hit_at(o.ranked, o.case.expected, at) for o in answerable)
    metrics[f"ndcg@{k}"] = mean(ndcg_at(o.ranked, o.case.expected, k) for o in answerable)
    flags = ([o.answer_type != "fallback" for o in outcomes], [o.top1_correct for o in outcomes],
             [o.case.answerable for o in outcomes])
    configured = decision_counts(*flags)
    metrics["fallback_precision"] = configured.fallback_precision
    metrics["fallback_recall"] = configured.fallback_recall
    metrics["f1"] = configured.f1
    metrics.update(outcome_rates(outcomes))
    metrics["accuracy"] = mean(o.right for o in outcomes)
    with_p = [o for o in outcomes if o.p is not None]  # the decision model's P; right = in scope and top-1 right
    metrics["ece"] = expected_calibration_error([o.p for o in with_p], [o.case.answerable and o.top1_correct for o in with_p])
    latencies = [o.latency_ms for o in outcomes if o.latency_ms > 0]
    metrics["p50_ms"] = percentile(latencies, 50)
    metrics["p95_ms"] = percentile(latencies, 95)
    scores = [o.top_score for o in outcomes]
    recommended, best_f1 = recommend_threshold(scores, flags[1], flags[2])
    return ModeReport(mode, list(outcomes), threshold, recommended, best_f1, metrics)


def outcome_rates(outcomes: Sequence[Outcome]) -> dict[str, float]:
    """The three outcomes at the configured levels: how precise the answers are, how many in-scope
    questions get a right answer (coverage), how often we ask back, how often out-of-scope is answered."""
    in_scope = [o for o in outcomes if o.case.answerable]
    out_scope = [o for o in outcomes if not o.case.answerable]
    answered = [o for o in outcomes if o.answered]
    clarified = [o for o in in_scope if o.answer_type == "clarify"]

    def share(part: int, whole: int) -> float:
        return part / whole if whole else float("nan")

    return {
        "answer_precision": share(sum(o.right for o in answered), len(answered)),
        "coverage": share(sum(o.right for o in in_scope), len(in_scope)),
        "clarify_rate": share(len(clarified), len(in_scope)),
        "clarify_hit": share(sum(bool(set(o.offered) & o.case.expected) for o in clarified), len(clarified)),
        "oos_answered": share(sum(o.answered for o in out_scope), len(out_scope)),
        "oos_clarified": share(sum(o.answer_type == "clarify" for o in out_scope), len(out_scope)),
    }


def evaluate(runners: Sequence[ModeRunner], cases: Sequence[Case], k: int = 10) -> list[ModeReport]:
    """Run and summarise every mode over the same questions."""
    reports = []
    for runner in runners:
        started = time.perf_counter()
        outcomes = run_mode(runner, cases, k)
        log.info("%s: %d questions in %.1fs", runner.mode, len(cases), time.perf_counter() - started)
        threshold = runner.answerer.threshold(runner.search_mode or runner.mode)
        reports.append(summarise(runner.mode, outcomes, threshold, k))
    return reports


def build_runners(pipeline: Pipeline, modes: Sequence[str], adapted_model: str | Path | None = None) -> list[ModeRunner]:
    runners: list[ModeRunner] = []
    for mode in modes:
        if mode in MODES:
            runners.append(ModeRunner(mode, pipeline.answerer, mode))
        elif mode == "static":
            from chatbot.static import StaticRetriever

            static = StaticRetriever(pipeline.settings, pipeline.store, pipeline.encoder)
            runners.append(ModeRunner(mode, Answerer(static, pipeline.settings.answer), "static"))
        elif mode == "adapted":
            if not adapted_model:
                raise ValueError("mode `adapted` needs --adapted-model DIR (an encoder folder, e.g. a fine-tuned model)")
            adapted = adapted_pipeline(pipeline, adapted_model)
            runners.append(ModeRunner(mode, adapted.answerer, "hybrid", f"hybrid with {adapted.encoder.model_id}"))
        else:
            raise ValueError(f"unknown mode {mode!r}; use some of {', '.join(ALL_MODES)}")
    return runners


def _folder_stamp(folder: Path) -> str:
    """The model folder's own files by size and time (its onnx/ cache left out: a fused graph written there
    later is the same model, and a walk into it can meet a temporary folder being removed)."""
    files = sorted(model_files(folder)) if folder.is_dir() else []
    return "|".join(f"{p.relative_to(folder)}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)


def adapted_pipeline(pipeline: Pipeline, model_dir: str | Path) -> Pipeline:
    """Hybrid with another encoder over the same records, in its own cached embedded collection."""
    settings = pipeline.settings
    encoder_settings = settings.encoder.model_copy(update={"model": str(model_dir)})
    encoder = load_encoder(encoder_settings)
    key = content_hash(str(encoder.resolved.path), _folder_stamp(Path(encoder.resolved.path)), pipeline.store.fingerprint())
    prefix = f"{settings.store.collection}-adapted-"
    folder = Path(settings.store.cache_dir) / "evaluate-adapted"
    adapted_settings = settings.with_overrides(
        encoder={"model": str(model_dir)},
        store={"host": None, "path": str(folder / "chroma"), "collection": prefix + key[:12]},
    )
    store = Store(adapted_settings.store, encoder.identity())
    store.drop_collections(prefix)  # copies made for earlier models or store contents
    if store.count() != pipeline.store.count():
        store.reset()
        records = records_from_store(pipeline.store.all_records())
        log.info("Re-encoding %d stored records with %s for the adapted mode", len(records), encoder.model_id)
        upsert_encoded(store, encoder, records)
    return open_pipeline(adapted_settings, encoder=encoder, store=store)


def records_from_store(stored: StoredRecords) -> list[Record]:
    """Records as ingestion made them (kind and source are kept in the metadata)."""
    return [
        Record(record_id, text, meta.get("kind", "faq"), str(meta.get("source", "")), dict(meta))
        for record_id, text, meta in zip(stored.ids, stored.texts, stored.metadatas)
    ]


def upsert_encoded(store: Store, encoder: Encoder, records: Sequence[Record], batch: int = 512) -> None:
    """Encode as ingestion does (FAQ questions with the question prefix, chunks with the passage prefix)."""
    for start in range(0, len(records), batch):
        part = list(records[start : start + batch])
        store.upsert(part, encoder.encode_records(part))


@dataclass(frozen=True)
class FaqItem:
    """A FAQ-like row for a temporary store: a question text and the group (FAQ id) it belongs to."""

    question: str
    group: str
    answer: str = ""
    category: str | None = None


def faq_records(items: Iterable[FaqItem], source: str = "evaluation") -> list[Record]:
    """FaqItems as ingested FAQ records (the same function ingestion uses): the first item of a group is
    its main question and gives the answer and category; the group's other questions are its alternatives
    (a repeated question once)."""
    groups: dict[str, list[FaqItem]] = {}
    for item in items:
        groups.setdefault(item.group, []).append(item)
    entries = []
    for line, (group, members) in enumerate(groups.items(), start=1):
        first = members[0]
        alternatives = tuple(dict.fromkeys(m.question for m in members[1:] if m.question != first.question))
        entries.append(FaqEntry(first.question, first.answer, source, line, group, alternatives, first.category))
    return ingest_faq_records(entries)


def temporary_pipeline(
    settings: Settings,
    records: Sequence[Record],
    folder: str | Path | None = None,
    encoder: Encoder | None = None,
    vectors: np.ndarray | Callable[[Sequence[Record]], np.ndarray] | None = None,
    collection: str = "evaluation",
) -> Pipeline:
    """A fresh embedded store in `folder` (a new temp folder by default) filled with `records`.

    `vectors`: precomputed rows (one per record), or a function of the records returning them (a
    benchmark passes a cache so each text is encoded once per prefix policy), or None to encode as
    ingestion does. The returned Pipeline goes through the product's Retriever and Answerer.
    """
    folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="faqbot-eval-"))
    settings = settings.with_overrides(
        store={"host": None, "path": str(folder / "chroma"), "collection": collection, "cache_dir": str(folder / "cache")}
    )
    encoder = encoder or load_encoder(settings.encoder)
    store = Store(settings.store, encoder.identity())
    if store.count():
        store.reset()
    if vectors is None:
        upsert_encoded(store, encoder, records)
    else:
        matrix = vectors(records) if callable(vectors) else vectors
        store.upsert(list(records), np.asarray(matrix, dtype=np.float32))
    return open_pipeline(settings, encoder=encoder, store=store)
