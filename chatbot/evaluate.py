"""Measure what was ingested: `python -m chatbot.evaluate QUESTIONS.csv` (console script `faqbot-evaluate`).

    python -m chatbot.evaluate data/questions.csv
    python -m chatbot.evaluate data/questions.csv --modes lexical,static,dense,hybrid,adapted \\
        --adapted-model models/chat-e5 --failures var/failures.csv --plot var/scores.png

The questions file has a `question` column and either `expected_id` (the FAQ id that should answer)
or `expected_answer` (the answer text that should be given; every FAQ with that answer counts) or
`expected_source` (a document file name: any passage of that file answers it).
An empty expectation marks an out-of-scope question: the fallback is the correct outcome.

Every mode asks the product's own objects (Answerer.ask → Retriever.search → Answerer.decide), so
the numbers are what a user of the page or API gets:

    lexical, dense, hybrid  the configured Retriever in that mode
    static                  chatbot.static.StaticRetriever over the same stored records
    adapted                 hybrid with another encoder folder (--adapted-model DIR). A collection
                            refuses vectors from another encoder, so the stored records are re-encoded
                            with the adapted encoder into their own embedded collection
                            `<collection>-adapted-<hash>` under `<store.cache_dir>/evaluate-adapted/`
                            (hash of the model folder + the main store's fingerprint). It is reused
                            while both are unchanged; older adapted collections are dropped.

Metrics (pure functions below, over the ranked list of FAQ ids, best first):
    top-1       share of answerable questions whose best hit is an expected FAQ
    MRR@10      mean of 1/rank of the first expected FAQ within the first 10 (0 when absent)
    R@k         share of answerable questions with an expected FAQ within the first k (success@k:
                with one relevant FAQ this is recall; FAQs with the same answer are alternatives)
    nDCG@10     1/log2(rank + 1) of the first expected FAQ (binary gain, one relevant item)
    fallback P/R at the configured threshold: precision = out-of-scope questions among those that
                fell back; recall = share of out-of-scope questions that fell back
    answer F1   answer-vs-fallback decisions: a question is answered when its best score reaches
                the threshold; an answer is correct only when top-1 is right; precision = correct
                answers / answers given, recall = correct answers / answerable questions
    answer P, coverage, clarify, OOS answered
                at the configured levels (hybrid: the decision model's answer / clarify / fallback):
                right answers / answers given; in-scope questions answered right; in-scope questions
                asked back ("혹시 이 질문을 찾으셨나요?"); out-of-scope questions answered
    ECE of P    expected calibration error of the decision model's P (10 bins; right = in scope and
                top-1 right); --plot adds its reliability diagram
    p50/p95     wall time of one Answerer.ask in milliseconds

The recommended threshold per mode maximises answer F1 over the observed best scores (it is placed
halfway between the lowest accepted and the highest rejected score); --plot draws the score
distributions of right, wrong and out-of-scope best hits with that threshold, so a user sees where
to set `answer.threshold` (or `answer.<mode>_threshold` for lexical, static and dense modes).
"""
from __future__ import annotations

import argparse
import csv
import logging
import math
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chatbot.answer import Answerer, QuestionError, threshold_setting
from chatbot.encoder import Encoder, load_encoder
from chatbot.pipeline import Pipeline, open_pipeline
from chatbot.records import Hit, Record, content_hash
from chatbot.retrieval import Retriever
from chatbot.settings import Settings, load_settings
from chatbot.spreadsheet_safety import safe_csv_writer
from chatbot.store import Store, StoredRecords
from chatbot.text import normalise

log = logging.getLogger(__name__)

ALL_MODES: tuple[str, ...] = ("lexical", "static", "dense", "hybrid", "adapted")
DEFAULT_MODES: tuple[str, ...] = ("lexical", "static", "dense", "hybrid")
RECALL_AT: tuple[int, ...] = (1, 3, 5, 10)


# === metrics: small pure functions over ranked ids ==================================================
def first_relevant_rank(ranked: Sequence[str], relevant: Collection[str], k: int | None = None) -> int | None:
    """1-based rank of the first relevant id within the first k (all when k is None), else None."""
    for rank, item in enumerate(ranked[:k] if k else ranked, start=1):
        if item in relevant:
            return rank
    return None


def reciprocal_rank(ranked: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    rank = first_relevant_rank(ranked, relevant, k)
    return 1.0 / rank if rank else 0.0


def hit_at(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1.0 when a relevant id is within the first k (recall@k for one relevant item)."""
    return 1.0 if first_relevant_rank(ranked, relevant, k) else 0.0


def ndcg_at(ranked: Sequence[str], relevant: Collection[str], k: int = 10) -> float:
    """Binary-gain nDCG with one relevant item (equivalent FAQs are alternatives): 1/log2(rank+1)."""
    rank = first_relevant_rank(ranked, relevant, k)
    return 1.0 / math.log2(rank + 1) if rank else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


def reliability_bins(p: Sequence[float], right: Sequence[bool], bins: int = 10) -> list[tuple[float, float, float, int]]:
    """Equal-width bins of P: (lower edge, mean P, share right, count) for the non-empty ones."""
    ps, ok = np.asarray(p, dtype=np.float64), np.asarray(right, dtype=np.float64)
    index = np.minimum((ps * bins).astype(int), bins - 1)
    return [(b / bins, float(ps[index == b].mean()), float(ok[index == b].mean()), int((index == b).sum()))
            for b in range(bins) if (index == b).any()]


def expected_calibration_error(p: Sequence[float], right: Sequence[bool], bins: int = 10) -> float:
    """Σ over bins of (share of questions) · |share right − mean P|; nan without any P."""
    if not len(p):
        return float("nan")
    return float(sum(n / len(p) * abs(acc - conf) for _, conf, acc, n in reliability_bins(p, right, bins)))


@dataclass(frozen=True)
class DecisionCounts:
    """Answer-vs-fallback outcomes at one threshold."""

    correct: int  # answered, top-1 right
    wrong: int  # answered, top-1 wrong (answerable) or answered out of scope
    answerable: int
    fallbacks: int
    fallbacks_out_of_scope: int
    out_of_scope: int

    @property
    def precision(self) -> float:
        answered = self.correct + self.wrong
        return self.correct / answered if answered else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.answerable if self.answerable else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def fallback_precision(self) -> float:
        return self.fallbacks_out_of_scope / self.fallbacks if self.fallbacks else float("nan")

    @property
    def fallback_recall(self) -> float:
        return self.fallbacks_out_of_scope / self.out_of_scope if self.out_of_scope else float("nan")


def decision_counts(answered: Sequence[bool], top1_correct: Sequence[bool], answerable: Sequence[bool]) -> DecisionCounts:
    """Counts from per-question flags: was an answer given, was top-1 right, was the question in scope."""
    correct = wrong = fallbacks = fallbacks_oos = 0
    for ans, right, in_scope in zip(answered, top1_correct, answerable):
        if ans:
            if in_scope and right:
                correct += 1
            else:
                wrong += 1
        else:
            fallbacks += 1
            fallbacks_oos += not in_scope
    n_answerable = sum(bool(a) for a in answerable)
    return DecisionCounts(correct, wrong, n_answerable, fallbacks, fallbacks_oos, len(answerable) - n_answerable)


def counts_at_threshold(
    scores: Sequence[float], top1_correct: Sequence[bool], answerable: Sequence[bool], threshold: float
) -> DecisionCounts:
    return decision_counts([s >= threshold for s in scores], top1_correct, answerable)


def recommend_threshold(
    scores: Sequence[float], top1_correct: Sequence[bool], answerable: Sequence[bool]
) -> tuple[float, float]:
    """(threshold, answer F1) maximising F1; halfway between the lowest accepted and highest rejected score.

    On ties the highest threshold wins (fewer confident wrong answers for the same F1).
    """
    if not scores:
        return float("nan"), 0.0
    distinct = sorted(set(float(s) for s in scores), reverse=True)
    best_index, best_f1 = 0, -1.0
    for i, candidate in enumerate(distinct):
        f1 = counts_at_threshold(scores, top1_correct, answerable, candidate).f1
        if f1 > best_f1 + 1e-12:
            best_index, best_f1 = i, f1
    accepted = distinct[best_index]
    below = distinct[best_index + 1] if best_index + 1 < len(distinct) else None
    threshold = (accepted + below) / 2 if below is not None else accepted
    return threshold, max(best_f1, 0.0)


# === questions =======================================================================================
@dataclass(frozen=True)
class Case:
    """One evaluation question; `expected` empty means the fallback is correct."""

    question: str
    expected: frozenset[str] = frozenset()
    expected_label: str = ""
    category: str | None = None

    @property
    def answerable(self) -> bool:
        return bool(self.expected_label)


def read_cases(path: Path, records: StoredRecords | None = None, category_col: str | None = None) -> list[Case]:
    """Rows of QUESTIONS.csv; `expected_answer` texts are mapped to the FAQ ids stored with that answer."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or ())
        rows = list(reader)
    if "question" not in columns or not ({"expected_id", "expected_answer", "expected_source"} & columns):
        raise ValueError(
            f"{path}: needs a `question` column and an `expected_id`, `expected_answer` or `expected_source` column"
        )
    if category_col and category_col not in columns:
        raise ValueError(f"{path}: no column {category_col!r} (columns: {', '.join(sorted(columns))})")
    by_answer = _faq_ids_by_answer(records) if "expected_answer" in columns and records is not None else {}
    cases: list[Case] = []
    for row in rows:
        question = (row.get("question") or "").strip()
        if not question:
            continue
        category = (row.get(category_col) or "").strip() or None if category_col else None
        expected_id = (row.get("expected_id") or "").strip()
        expected_answer = (row.get("expected_answer") or "").strip()
        expected_source = Path((row.get("expected_source") or "").strip()).name
        if expected_source:  # a document question: any passage of that file answers it
            cases.append(Case(question, frozenset({source_label(expected_source)}), expected_source, category))
        elif expected_id:
            cases.append(Case(question, frozenset({expected_id}), expected_id, category))
        elif expected_answer:
            ids = by_answer.get(normalise(expected_answer), frozenset())
            if not ids:
                log.warning("No stored FAQ has the expected answer of %r; it will count as a miss", question)
            cases.append(Case(question, ids, expected_answer, category))
        else:
            cases.append(Case(question, frozenset(), "", category))
    return cases


def _faq_ids_by_answer(records: StoredRecords) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for meta in records.metadatas:
        if meta.get("faq_id") and meta.get("answer"):
            out.setdefault(normalise(str(meta["answer"])), set()).add(str(meta["faq_id"]))
    return {k: frozenset(v) for k, v in out.items()}


def source_label(source: str) -> str:
    return f"source:{Path(source).name}"


def hit_label(hit: Hit) -> str:
    """What a hit is judged by: the FAQ id, or for a document passage the file it came from."""
    return source_label(str(hit.metadata.get("source", ""))) if hit.kind == "doc" else hit.group_id


# === running one mode ================================================================================
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


# === building the runners ============================================================================
def build_runners(pipeline: Pipeline, modes: Sequence[str], adapted_model: str | Path | None = None) -> list[ModeRunner]:
    runners: list[ModeRunner] = []
    for mode in modes:
        if mode in ("lexical", "dense", "hybrid"):
            runners.append(ModeRunner(mode, pipeline.answerer, mode))
        elif mode == "static":
            from chatbot.static import StaticRetriever

            static = StaticRetriever(pipeline.settings, pipeline.store, pipeline.encoder)
            runners.append(ModeRunner(mode, Answerer(static, pipeline.settings.answer), "static"))  # type: ignore[arg-type]
        elif mode == "adapted":
            if not adapted_model:
                raise ValueError("mode `adapted` needs --adapted-model DIR (an encoder folder, e.g. a fine-tuned model)")
            adapted = adapted_pipeline(pipeline, adapted_model)
            runners.append(ModeRunner(mode, adapted.answerer, "hybrid", f"hybrid with {adapted.encoder.model_id}"))
        else:
            raise ValueError(f"unknown mode {mode!r}; use some of {', '.join(ALL_MODES)}")
    return runners


def _folder_stamp(folder: Path) -> str:
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
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
    retriever = Retriever(adapted_settings, encoder, store)
    return Pipeline(adapted_settings, encoder, store, retriever, Answerer(retriever, adapted_settings.answer))


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
        vectors = np.zeros((len(part), encoder.dimension), dtype=np.float32)
        faq = [i for i, r in enumerate(part) if r.kind == "faq"]
        doc = [i for i, r in enumerate(part) if r.kind != "faq"]
        if faq:
            vectors[faq] = encoder.encode_questions([part[i].text for i in faq])
        if doc:
            vectors[doc] = encoder.encode_passages([part[i].text for i in doc])
        store.upsert(part, vectors)


# === temporary evaluation stores (benchmarks, tests) ===================================================
@dataclass(frozen=True)
class FaqItem:
    """A FAQ-like row for a temporary store: a question text and the group (FAQ id) it belongs to."""

    question: str
    group: str
    answer: str = ""
    category: str | None = None


def faq_records(items: Iterable[FaqItem], source: str = "evaluation") -> list[Record]:
    """One record per item, shaped like ingested FAQ records (faq_id, question, main_question, answer…).

    The first item of a group is its main question. Duplicate (group, question) rows collapse.
    """
    records: dict[str, Record] = {}
    main: dict[str, str] = {}
    for item in items:
        main.setdefault(item.group, item.question)
        digest = content_hash(source, item.group, item.question, item.answer, item.category or "")
        meta: dict[str, Any] = {
            "faq_id": item.group, "question": item.question, "main_question": main[item.group],
            "answer": item.answer, "content_hash": digest,
        }
        if item.category:
            meta["category"] = item.category
        records.setdefault(f"faq-{digest}", Record(f"faq-{digest}", item.question, "faq", source, meta))
    return list(records.values())


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
    retriever = Retriever(settings, encoder, store)
    return Pipeline(settings, encoder, store, retriever, Answerer(retriever, settings.answer))


# === output ==========================================================================================
def _fmt(value: float, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def format_table(reports: Sequence[ModeReport], k: int = 10) -> str:
    header = ["mode", "top-1", f"MRR@{k}", "R@1", "R@3", "R@5", "R@10", f"nDCG@{k}", "fallback P", "fallback R",
              "answer F1", "answer P", "coverage", "clarify", "OOS answered", "ECE of P", "threshold", "recommended (F1)",
              "p50 ms", "p95 ms"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in reports:
        m = r.metrics
        cells = [r.mode, _fmt(m["top1"]), _fmt(m[f"mrr@{k}"]), _fmt(m["r@1"]), _fmt(m["r@3"]), _fmt(m["r@5"]),
                 _fmt(m["r@10"]), _fmt(m[f"ndcg@{k}"]), _fmt(m["fallback_precision"]), _fmt(m["fallback_recall"]),
                 _fmt(m["f1"]), _fmt(m["answer_precision"]), _fmt(m["coverage"]), _fmt(m["clarify_rate"]),
                 _fmt(m["oos_answered"]), _fmt(m["ece"]), _fmt(r.threshold), f"{_fmt(r.recommended)} ({_fmt(r.recommended_f1)})",
                 _fmt(m["p50_ms"], 1), _fmt(m["p95_ms"], 1)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_failures(reports: Sequence[ModeReport], path: Path) -> int:
    """Questions whose decision at the configured threshold was wrong, one row per mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = safe_csv_writer(handle)  # questions and FAQ ids come from uploads: no formulas in Excel
        writer.writerow(["mode", "question", "expected", "got", "outcome", "p", "score", "top1", "top1_correct"])
        for report in reports:
            for o in report.outcomes:
                if o.right:
                    continue
                got = o.answer_id if o.answered else ("|".join(o.offered) if o.answer_type == "clarify" else "fallback")
                writer.writerow([report.mode, o.case.question, o.case.expected_label or "fallback", got, o.answer_type,
                                 "" if o.p is None else f"{o.p:.4f}", f"{o.top_score:.4f}",
                                 o.ranked[0] if o.ranked else "", int(o.top1_correct)])
                rows += 1
    return rows


def plot_scores(reports: Sequence[ModeReport], path: Path) -> None:
    """Histograms of best-hit scores (right / wrong / out of scope) per mode, with the thresholds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    calibrated = any(o.p is not None for r in reports for o in r.outcomes)
    fig, axes = plt.subplots(len(reports), 2 if calibrated else 1, figsize=(13 if calibrated else 8, 2.6 * len(reports) + 0.6),
                             squeeze=False)
    for row, report in enumerate(reports):
        ax = axes[row, 0]
        if calibrated:
            plot_reliability(axes[row, 1], report)
        groups = {
            "correct top-1": [o.top_score for o in report.outcomes if o.case.answerable and o.top1_correct],
            "wrong top-1": [o.top_score for o in report.outcomes if o.case.answerable and not o.top1_correct],
            "out of scope": [o.top_score for o in report.outcomes if not o.case.answerable],
        }
        values = [v for vs in groups.values() for v in vs]
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        bins = np.linspace(lo, hi if hi > lo else lo + 1e-3, 31)
        for (label, data), colour in zip(groups.items(), ("tab:green", "tab:red", "tab:gray")):
            if data:
                ax.hist(data, bins=bins, alpha=0.55, color=colour, label=f"{label} ({len(data)})")
        if not math.isnan(report.recommended):
            ax.axvline(report.recommended, color="black", linewidth=2,
                       label=f"recommended {report.recommended:.3f} (F1 {report.recommended_f1:.2f})")
        ax.axvline(report.threshold, color="tab:blue", linestyle="--", label=f"configured {report.threshold:.3f}")
        ax.set_title(f"{report.mode}: best-hit score", fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
        ax.set_ylabel("questions")
    axes[-1, 0].set_xlabel("score of the best hit (answer when ≥ threshold)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reliability(ax: Any, report: ModeReport) -> None:
    """Reliability diagram of the decision model's P (right = in scope and top-1 right), with its ECE."""
    with_p = [o for o in report.outcomes if o.p is not None]
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    if not with_p:
        ax.set_title(f"{report.mode}: no decision model P (threshold decision)", fontsize=10)
        return
    bins = reliability_bins([o.p for o in with_p], [o.case.answerable and o.top1_correct for o in with_p])
    ax.plot([b[1] for b in bins], [b[2] for b in bins], marker="o", color="tab:purple")
    for _, conf, acc, n in bins:
        ax.annotate(str(n), (conf, acc), fontsize=7, textcoords="offset points", xytext=(3, -9))
    ax.set_xlim(0, 1), ax.set_ylim(0, 1)
    ax.set_xlabel("mean P of the bin"), ax.set_ylabel("share right")
    ax.set_title(f"{report.mode}: reliability of P (ECE {report.metrics.get('ece', float('nan')):.3f})", fontsize=10)


# === command line ====================================================================================
def parse_modes(text: str) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in modes if m not in ALL_MODES]
    if unknown or not modes:
        raise argparse.ArgumentTypeError(f"unknown mode(s) {', '.join(unknown) or '(none)'}; use some of {', '.join(ALL_MODES)}")
    return list(dict.fromkeys(modes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="faqbot-evaluate",
        description="Evaluate retrieval and answer/fallback decisions over the ingested store.",
    )
    parser.add_argument("questions", type=Path, nargs="+",
                        help="CSV(s) with question and expected_id (or expected_answer); empty = fallback expected "
                             "(e.g. data/questions.csv data/questions_oos.csv data/doc_questions.csv)")
    parser.add_argument("--modes", type=parse_modes, default=list(DEFAULT_MODES),
                        help=f"comma-separated, some of {','.join(ALL_MODES)} (default {','.join(DEFAULT_MODES)})")
    parser.add_argument("--adapted-model", default=None, help="encoder folder for the `adapted` mode (hybrid with that encoder)")
    parser.add_argument("--k", type=int, default=10, help="ranked hits per question (MRR/nDCG cut-off)")
    parser.add_argument("--failures", type=Path, default=None, help="write wrong decisions to this CSV")
    parser.add_argument("--plot", type=Path, default=None,
                        help="write score distributions and thresholds (and the reliability diagram of P) to this PNG")
    parser.add_argument("--category-col", default=None, help="column with a category to filter each question by")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.adapted_model and "adapted" not in args.modes:
        args.modes.append("adapted")
    missing = [p for p in args.questions if not p.exists()]
    if missing:
        print(f"{missing[0]}: no such file", file=sys.stderr)
        return 2

    pipeline = open_pipeline(load_settings(), claim=False)  # a reader beside a running app, not its owner
    if pipeline.store.count() == 0:
        print("The store is empty: ingest first, e.g. `python -m ingest faq data/faq.csv`.", file=sys.stderr)
        return 2
    try:
        stored = pipeline.store.all_records()
        cases = [c for path in args.questions for c in read_cases(path, stored, args.category_col)]
        runners = build_runners(pipeline, args.modes, args.adapted_model)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if not cases:
        print(f"{', '.join(map(str, args.questions))}: no questions", file=sys.stderr)
        return 2
    reports = evaluate(runners, cases, args.k)

    n_answerable = sum(c.answerable for c in cases)
    print(f"{len(cases)} questions ({n_answerable} answerable, {len(cases) - n_answerable} out of scope) over "
          f"{pipeline.store.count()} stored records; encoder {pipeline.encoder.model_id}")
    for runner in runners:
        if runner.describe:
            print(f"{runner.mode}: {runner.describe}")
    print(format_table(reports, args.k))
    for report in reports:
        setting = threshold_setting(report.mode)
        print(f"{report.mode}: recommended {setting} = {report.recommended:.3f} (answer F1 {report.recommended_f1:.3f}; "
              f"configured {report.threshold:.3f} gives {report.metrics['f1']:.3f})")
    if args.failures:
        rows = write_failures(reports, args.failures)
        print(f"wrote {rows} failures to {args.failures}")
    if args.plot:
        plot_scores(reports, args.plot)
        print(f"wrote the score distributions (and reliability of P) to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
