"""The Service: the one Pipeline plus readiness, feedback, ingestion and statistics, shared by page and API.

The model and the store load in a background thread started with the server, so the port answers
at once: /api/health says 503 with what is happening until everything is loaded. Nothing loads on
the first question.
"""
from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from chatbot.feedback import Feedback, FeedbackLog
from chatbot.pipeline import Pipeline, open_pipeline
from chatbot.questionlog import FeedbackEntry, QuestionLog, entry_from_answer, open_log
from chatbot.records import Answer
from chatbot.settings import PROJECT_ROOT, Settings
from chatbot.web.reports import summarise_report
from ingest.sync import IngestReport, ingest_paths

WARM_UP_QUESTION = "자주 묻는 질문 목록"
log = logging.getLogger("faqbot")

ALL_CATEGORIES = "전체"
NOT_READY = "챗봇을 준비하는 중입니다. 잠시 후 다시 시도해 주세요. (The chatbot is still starting.)"
State = Literal["starting", "loading", "ready", "error"]
Progress = Callable[[float, str], None]


class NotReadyError(RuntimeError):
    """The pipeline is still loading (or failed to load)."""


@dataclass
class Catalog:
    """What the page offers from the loaded FAQ: categories and example questions."""

    categories: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)


class Service:
    """Everything the page and the API need; the pipeline may still be loading in the background."""

    def __init__(self, settings: Settings, pipeline: Pipeline | None = None) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.feedback = FeedbackLog(settings.app.feedback_log, max_bytes=settings.app.feedback_log_max_mb * 1024 * 1024)
        self.state: State = "ready" if pipeline else "starting"
        self.detail = "" if pipeline else "시작 대기 중"
        self.questions: QuestionLog | None = open_log(settings)
        self._catalog: Catalog | None = None
        self._lock = threading.Lock()
        self._ingest_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if pipeline is not None:
            self._learn_from_labels(pipeline)

    def _learn_from_labels(self, pipeline: Pipeline) -> None:
        """The decision model also learns from what operators labelled in the inbox (the question log)."""
        if self.questions is not None and pipeline.answerer.decision is not None:
            from chatbot.operator.labels import labelled_examples

            engine = self.questions.engine
            pipeline.answerer.decision.use_labels(lambda: labelled_examples(engine))

    @classmethod
    def of(cls, target: "Pipeline | Service") -> "Service":
        return target if isinstance(target, Service) else cls(target.settings, target)

    # --- start-up ---------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.state == "ready" and self.pipeline is not None

    def set_status(self, state: State, detail: str) -> None:
        """What /api/health and the page's status line show while starting."""
        self.state, self.detail = state, detail

    def start(self, seed: bool = True) -> None:
        """Loads in a background thread (once); the server answers 503 meanwhile."""
        with self._lock:
            if self.pipeline is not None or self._thread is not None:
                return
            self._thread = threading.Thread(target=self.load, kwargs={"seed": seed}, name="faqbot-load", daemon=True)
            self._thread.start()

    def load(self, seed: bool = True) -> None:
        """Model and store, sample data into an empty store, BM25 index and one warm-up question."""
        try:
            self.set_status("loading", "인코더 모델과 저장소를 불러오는 중")
            started = time.monotonic()
            pipeline = open_pipeline(self.settings)
            self._learn_from_labels(pipeline)
            log.info("인코더 %s 를 불러왔습니다 (%.1f초).", pipeline.encoder.model_id, time.monotonic() - started)
            if seed and pipeline.store.count() == 0:
                self._seed(pipeline)
                pipeline.retriever.refresh()
            self.set_status("loading", "검색 색인을 준비하는 중")
            pipeline.retriever.lexical  # noqa: B018 - builds or loads the BM25 cache now, not on the first question
            if pipeline.store.count():
                # warm-up: first encode, first Chroma query, and the decision model's build begins (the question
                # waits for a first model a while: answer.first_model_wait_s; a greeting would warm nothing)
                self.set_status("loading", "답변 판단 모델을 준비하는 중 (preparing the answer decision model)")
                pipeline.answerer.ask(WARM_UP_QUESTION)
                self._await_decision(pipeline)
            if pipeline.encoder.release_torch():
                log.info("ONNX Runtime encodes every question: the torch copy of the encoder is released.")
            self.pipeline = pipeline
            self._catalog = None
            self.set_status("ready", "")
            self._restore_operator_edits()
            log.info("준비 완료: 레코드 %s개 (%.1f초).", f"{pipeline.store.count():,}", time.monotonic() - started)
        except Exception as exc:  # keep serving: health says why, instead of a dead port
            log.exception("시작하지 못했습니다 (start-up failed)")
            self.set_status("error", f"{type(exc).__name__}: {exc}")

    def _await_decision(self, pipeline: Pipeline) -> None:
        """A first start trains the store's decision model (seconds on the sample; a saved one loads at once): the
        first answers wait for it, since without it only the raw score threshold decides and that answers
        off-topic questions with the nearest FAQ. A build that fails or outlasts app.decision_wait_s leaves the
        threshold deciding until a model is there."""
        decision = pipeline.answerer.decision
        if decision is None or decision.current() is not None:
            return
        waited = time.monotonic()
        if pipeline.answerer.prepare(self.settings.app.decision_wait_s) is None:
            log.warning("No decision model after %.0f s: the score threshold decides until one is ready",
                        time.monotonic() - waited)
        else:
            log.info("답변 판단 모델 준비 완료 (%.1f초).", time.monotonic() - waited)

    def _restore_operator_edits(self) -> None:
        """Operator edits missing from the store (after `ingest --rebuild` or a new server) are synced back."""
        if self.questions is None:
            return
        from chatbot.operator.desk import restore_operator_source

        try:
            if restore_operator_source(self):
                log.info("운영자 수정 내용을 저장소에 다시 반영했습니다 (operator edits restored to the store).")
        except Exception:  # serving matters more: the operator can still press sync
            log.exception("Could not restore the operator's edits to the store")

    def _seed(self, pipeline: Pipeline) -> None:
        """First start with an empty store: the sample FAQ and documents, with logged progress."""
        jobs = [("faq", self.settings.app.sample_faq, "샘플 FAQ"), ("doc", self.settings.app.sample_docs, "샘플 문서")]
        for kind, paths, label in jobs:
            found = [p for p in (resolve_path(p) for p in paths) if p.exists()]
            missing = [str(p) for p in paths if not resolve_path(p).exists()]
            if missing:
                log.info("%s 경로가 없어 건너뜁니다: %s", label, ", ".join(missing))
            if not found:
                continue
            log.info("저장소가 비어 있어 %s를 색인합니다: %s", label, ", ".join(str(p) for p in found))
            try:
                report = self._ingest(kind, found, progress=StartupProgress(label, self), pipeline=pipeline)
            except Exception:  # sample data is a convenience: serve what is there, say what failed
                log.exception("%s를 색인하지 못했습니다; 나머지로 계속합니다.", label)
                continue
            log.info("%s 색인 끝: %s", label, summarise_report(report))
            for rejection in report.rejected[:20]:
                log.info("  거부: %s", rejection)

    # --- questions and answers --------------------------------------------------------------------
    def require(self) -> Pipeline:
        if not self.ready:
            raise NotReadyError(NOT_READY if self.state != "error" else f"챗봇을 시작하지 못했습니다: {self.detail}")
        return self.pipeline  # type: ignore[return-value]

    @property
    def mode(self) -> str:
        return self.settings.retrieval.mode

    def ask(
        self, question: str, k: int | None = None, category: str | None = None, mode: str | None = None,
        *, channel: str = "web", session: str | None = None,
    ) -> tuple[Answer, str | None]:
        """The answer, and the id of its row in the question log (None when logging is off)."""
        category = category if category and category != ALL_CATEGORIES else None
        started = time.perf_counter()
        answer = self.require().answerer.ask(question, k=k, category=category, mode=mode)  # type: ignore[arg-type]
        question_id = None
        if self.questions is not None:
            question_id = self.questions.record(entry_from_answer(
                question, answer, channel=channel, mode=mode or self.mode, category=category, session=session,
                latency_ms=(time.perf_counter() - started) * 1000,
            ))
        return answer, question_id

    def record_feedback(self, entry: Feedback, question_id: str | None = None, session: str | None = None) -> None:
        """👍/👎 into the JSONL log and, linked to the question it rates, into the question log."""
        self.feedback.append(entry)
        if self.questions is not None:
            self.questions.record_feedback(FeedbackEntry(
                kind="rating", question_id=question_id, rating=entry.rating, target_id=entry.answer_id,
                question=entry.question, answer_type=entry.answer_type, score=entry.score, mode=entry.mode,
                channel=entry.channel, session=session,
            ))

    def record_click(self, kind: str, question_id: str | None, target: str, session: str | None = None) -> None:
        """A clicked suggestion or clarify candidate: a label of what the earlier question meant."""
        if self.questions is not None:
            self.questions.record_feedback(FeedbackEntry(
                kind=kind, question_id=question_id, target_id=target, channel="web", session=session,
            ))

    # --- what the page offers ---------------------------------------------------------------------
    def catalog(self) -> Catalog:
        if not self.ready:
            return Catalog()
        if self._catalog is None:
            self._catalog = build_catalog([meta for _, meta in self.require().store.iter_metadata({"kind": "faq"})])
        return self._catalog

    def check_password(self, password: str | None) -> bool:
        """Constant-time compare; no password configured means the operator part is open."""
        wanted = self.settings.app.password
        if not wanted:
            return True
        return hmac.compare_digest((password or "").encode("utf-8"), wanted.encode("utf-8"))

    # --- operator ---------------------------------------------------------------------------------
    def ingest(
        self, kind: str, paths: Sequence[Path], dry_run: bool = False, progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> IngestReport:
        """The same ingest_paths as the CLI, with this process's encoder and store (one model in memory)."""
        pipeline = self.require()
        report = self._ingest(kind, paths, dry_run=dry_run, progress=progress, pipeline=pipeline, should_stop=should_stop)
        if not dry_run:
            pipeline.retriever.refresh()
            self._catalog = None
        return report

    def _ingest(
        self, kind: str, paths: Sequence[Path], *, pipeline: Pipeline, dry_run: bool = False,
        progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
    ) -> IngestReport:
        timeout = self.settings.app.ingest_lock_timeout_s
        if not self._ingest_lock.acquire(timeout=timeout):
            raise IngestBusyError(
                f"다른 색인이 {timeout:.0f}초 넘게 진행 중입니다. 잠시 후 다시 시도해 주세요. "
                "(Another ingestion is still running.)"
            )
        try:  # one ingestion at a time; ingest_paths is the CLI's too
            return ingest_paths(
                self.settings, kind, list(paths), dry_run=dry_run, progress=progress,  # type: ignore[arg-type]
                encoder=pipeline.encoder, store=pipeline.store, should_stop=should_stop,
            )
        finally:
            self._ingest_lock.release()

    def stats(self) -> dict[str, Any]:
        pipeline = self.require()
        info = pipeline.store.info()
        return {
            "records": pipeline.store.count(),
            "sources": pipeline.store.sources(),
            "encoder": info.get("encoder_model") or pipeline.encoder.model_id,
            "dimension": info.get("encoder_dimension"),
            "last_ingest": info.get("last_ingest"),
            "collection": pipeline.store.settings.collection,
            "mode": self.mode,
        }


class IngestBusyError(RuntimeError):
    """Another ingestion holds the lock for longer than app.ingest_lock_timeout_s."""


def build_catalog(metadatas: Sequence[dict[str, Any]], n_examples: int = 6) -> Catalog:
    """Categories of the FAQ records and a few main questions (file order), taken round-robin across categories."""
    by_category: dict[str, list[str]] = {}

    def file_order(meta: dict[str, Any]) -> tuple[str, int, int]:
        return str(meta.get("source", "")), int(meta.get("line") or 0), int(meta.get("variant") or 0)

    for meta in sorted(metadatas, key=file_order):
        if meta.get("kind", "faq") != "faq":
            continue
        question = str(meta.get("main_question") or meta.get("question") or "").strip()
        bucket = by_category.setdefault(str(meta.get("category") or ""), [])
        if question and question not in bucket:
            bucket.append(question)
    examples: list[str] = []
    buckets = [by_category[c] for c in sorted(by_category)]
    for i in range(max((len(b) for b in buckets), default=0)):
        for bucket in buckets:
            if i < len(bucket) and bucket[i] not in examples:
                examples.append(bucket[i])
    return Catalog(categories=sorted(c for c in by_category if c), examples=examples[:n_examples])


def resolve_path(path: Path) -> Path:
    """Relative sample paths: from the working folder, else from the project folder."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    return PROJECT_ROOT / path


class StartupProgress:
    """Ingest progress during start-up → a log line every 10% and the service status for /api/health."""

    def __init__(self, label: str, service: Service) -> None:
        self.label = label
        self.service = service
        self.last = -1.0

    def __call__(self, fraction: float, message: str = "") -> None:
        detail = f"{self.label} 색인 중 {fraction:.0%} {message}".strip()
        self.service.set_status("loading", detail)
        if fraction >= 1.0 or fraction - self.last >= 0.1:
            self.last = fraction
            log.info("%s", detail)
