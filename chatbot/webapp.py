"""The chat page (Gradio) and the JSON API (FastAPI) over the one Pipeline: a thin layer, no scoring here.

    create_app(settings)  → FastAPI with /api/* routes and the Gradio page mounted at "/"
    build_api(pipeline)   → the FastAPI routes alone (tests use it with TestClient)
    build_ui(pipeline)    → the Gradio Blocks alone

Both builders take a ready Pipeline or a Service. create_app makes a Service that loads the model,
the store and (into an empty store) the sample data in a background thread started with the server,
so the port answers at once: /api/health says 503 with what is happening until everything is
loaded, and the page shows the same progress. Nothing loads on the first question.

Safety: FAQ and document text is shown as text. Every piece of stored or typed text that reaches the
chat goes through html.escape before it is put into the small HTML we build; the Chatbot has
Markdown and LaTeX rendering off and keeps Gradio's HTML sanitiser on as a second layer, and
suggestion buttons are rendered by Gradio as text nodes.

Access: the operator tab (upload + ingest, collection statistics) is the only part that changes
anything, so settings.app.password protects that part, not the whole page: an FAQ chat is meant for
anyone, and Gradio's login would not cover the /api routes anyway. Every operator action re-checks
the password sent with it on the server (constant-time compare), so hiding the controls is only
convenience. Without a password the tab is open, which is fine on the default 127.0.0.1 binding;
start-up warns when the server listens elsewhere without one.
"""
from __future__ import annotations

import hmac
import html
import logging
import os
import threading
import time
from collections.abc import Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no phoning home from an offline server

import gradio as gr  # noqa: E402 - after the analytics switch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from chatbot.answer import QuestionError
from chatbot.feedback import Feedback, FeedbackLog
from chatbot.pipeline import Pipeline, open_pipeline
from chatbot.records import Answer
from chatbot.retrieval import MODES
from chatbot.settings import PROJECT_ROOT, Settings, load_settings
from ingest.doc_readers import DOC_SUFFIXES
from ingest.faq_readers import FAQ_SUFFIXES
from ingest.sync import IngestReport, ingest_paths

log = logging.getLogger(__name__)

ALL_CATEGORIES = "전체"
MAX_K = 50
# A guard against giant request bodies; the configured limit (answer.max_question_chars, checked on
# the normalised text by the Answerer) is what users normally meet.
HARD_MAX_QUESTION_CHARS = 100_000
NOT_READY = "챗봇을 준비하는 중입니다. 잠시 후 다시 시도해 주세요. (The chatbot is still starting.)"


class NotReadyError(RuntimeError):
    """The pipeline is still loading (or failed to load)."""


# ------------------------------------------------------------------------------------------------
# Service: the pipeline plus readiness, feedback and ingestion, shared by the page and the API
# ------------------------------------------------------------------------------------------------
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
        self.feedback = FeedbackLog(settings.app.feedback_log)
        self.state: Literal["starting", "loading", "ready", "error"] = "ready" if pipeline else "starting"
        self.detail = "" if pipeline else "시작 대기 중"
        self._catalog: Catalog | None = None
        self._lock = threading.Lock()
        self._ingest_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @classmethod
    def of(cls, target: "Pipeline | Service") -> "Service":
        return target if isinstance(target, Service) else cls(target.settings, target)

    # --- start-up ---------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.state == "ready" and self.pipeline is not None

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
            self._status("loading", "인코더 모델과 저장소를 불러오는 중")
            started = time.monotonic()
            pipeline = open_pipeline(self.settings)
            _say(f"인코더 {pipeline.encoder.model_id} 를 불러왔습니다 ({time.monotonic() - started:.1f}초).")
            if seed and pipeline.store.count() == 0:
                self._seed(pipeline)
                pipeline.retriever.refresh()
            self._status("loading", "검색 색인을 준비하는 중")
            pipeline.retriever.lexical  # noqa: B018 - builds or loads the BM25 cache now, not on the first question
            if pipeline.store.count():
                pipeline.answerer.ask("안녕하세요")  # warm-up: first encode, first Chroma query
            self.pipeline = pipeline
            self._catalog = None
            self._status("ready", "")
            _say(f"준비 완료: 레코드 {pipeline.store.count():,}개 ({time.monotonic() - started:.1f}초).")
        except Exception as exc:  # keep serving: health says why, instead of a dead port
            log.exception("Start-up failed")
            self._status("error", f"{type(exc).__name__}: {exc}")
            _say(f"시작하지 못했습니다: {exc}")

    def _status(self, state: str, detail: str) -> None:
        self.state, self.detail = state, detail  # type: ignore[assignment]

    def _seed(self, pipeline: Pipeline) -> None:
        """First start with an empty store: the sample FAQ and documents, with printed progress."""
        jobs = [("faq", self.settings.app.sample_faq, "샘플 FAQ"), ("docs", self.settings.app.sample_docs, "샘플 문서")]
        for kind, paths, label in jobs:
            found = [p for p in (_resolve(p) for p in paths) if p.exists()]
            missing = [str(p) for p in paths if not _resolve(p).exists()]
            if missing:
                _say(f"{label} 경로가 없어 건너뜁니다: {', '.join(missing)}")
            if not found:
                continue
            _say(f"저장소가 비어 있어 {label}를 색인합니다: {', '.join(str(p) for p in found)}")
            try:
                report = self._ingest(kind, found, progress=_ProgressPrinter(label, self), pipeline=pipeline)
            except Exception as exc:  # sample data is a convenience: serve what is there, say what failed
                log.exception("Ingesting the %s failed", label)
                _say(f"{label}를 색인하지 못했습니다 ({type(exc).__name__}: {exc}); 나머지로 계속합니다.")
                continue
            _say(f"{label} 색인 끝: {summarise_report(report)}")
            for rejection in report.rejected[:20]:
                _say(f"  거부: {rejection}")

    # --- questions and answers --------------------------------------------------------------------
    def require(self) -> Pipeline:
        if not self.ready:
            raise NotReadyError(NOT_READY if self.state != "error" else f"챗봇을 시작하지 못했습니다: {self.detail}")
        return self.pipeline  # type: ignore[return-value]

    @property
    def mode(self) -> str:
        return self.settings.retrieval.mode

    def ask(self, question: str, k: int | None = None, category: str | None = None, mode: str | None = None) -> Answer:
        category = category if category and category != ALL_CATEGORIES else None
        return self.require().answerer.ask(question, k=k, category=category, mode=mode)  # type: ignore[arg-type]

    def record_feedback(self, entry: Feedback) -> None:
        self.feedback.append(entry)

    # --- what the page offers ---------------------------------------------------------------------
    def catalog(self) -> Catalog:
        if not self.ready:
            return Catalog()
        if self._catalog is None:
            self._catalog = build_catalog(self.require().retriever.lexical.records.metadatas)
        return self._catalog

    def check_password(self, password: str | None) -> bool:
        wanted = self.settings.app.password
        if not wanted:
            return True
        return hmac.compare_digest((password or "").encode("utf-8"), wanted.encode("utf-8"))

    # --- operator ---------------------------------------------------------------------------------
    def ingest(self, kind: str, paths: Sequence[Path], dry_run: bool = False, progress=None):
        """The same ingest_paths as the CLI, with this process's encoder and store (one model in memory)."""
        pipeline = self.require()
        report = self._ingest(kind, paths, dry_run=dry_run, progress=progress, pipeline=pipeline)
        if not dry_run:
            pipeline.retriever.refresh()
            self._catalog = None
        return report

    def _ingest(self, kind: str, paths: Sequence[Path], *, pipeline: Pipeline, dry_run: bool = False, progress=None):
        with self._ingest_lock:  # one ingestion at a time; ingest_paths is the CLI's too
            return ingest_paths(
                self.settings, kind, list(paths), dry_run=dry_run, progress=progress,  # type: ignore[arg-type]
                encoder=pipeline.encoder, store=pipeline.store,
            )

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


def _resolve(path: Path) -> Path:
    """Relative sample paths: from the working folder, else from the project folder."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    return PROJECT_ROOT / path


def _say(message: str) -> None:
    """Start-up progress goes to the console as plain lines (a silent wait looks like a hang)."""
    print(f"[faqbot] {message}", flush=True)


class _ProgressPrinter:
    """ingest progress → a printed line every 10% (and the service status for /api/health)."""

    def __init__(self, label: str, service: Service) -> None:
        self.label = label
        self.service = service
        self.last = -1.0

    def __call__(self, fraction: float, message: str = "") -> None:
        detail = f"{self.label} 색인 중 {fraction:.0%} {message}".strip()
        self.service._status("loading", detail)
        if fraction >= 1.0 or fraction - self.last >= 0.1:
            self.last = fraction
            _say(detail)


# ------------------------------------------------------------------------------------------------
# Report and source formatting (shared by the page, the start-up log and the tests)
# ------------------------------------------------------------------------------------------------
COUNT_LABELS = {"added": "추가", "updated": "갱신", "unchanged": "그대로", "removed": "삭제", "rejected": "거부"}
COUNT_NAMES = tuple(COUNT_LABELS)


def report_rows(*reports: IngestReport) -> list[list[Any]]:
    """One row per source: [source, added, updated, unchanged, removed, rejected]."""
    return [
        [source, *(getattr(counts, name) for name in COUNT_NAMES)]
        for report in reports
        for source, counts in report.sources.items()
    ]


def report_rejections(*reports: IngestReport) -> list[str]:
    """Each as `file:line: reason`."""
    return [str(r) for report in reports for r in report.rejected]


def summarise_report(*reports: IngestReport) -> str:
    totals = {name: sum(report.totals()[name] for report in reports) for name in COUNT_NAMES}
    return ", ".join(f"{COUNT_LABELS[name]} {totals[name]:,}" for name in COUNT_NAMES)


def split_by_kind(paths: Sequence[Path]) -> tuple[dict[str, list[Path]], list[Path]]:
    """Uploaded files → {"faq": […], "docs": […]} by extension (the two sets do not overlap), plus the unknown."""
    kinds: dict[str, list[Path]] = {}
    unknown: list[Path] = []
    for path in paths:
        suffix = path.suffix.lower()
        kind = "faq" if suffix in FAQ_SUFFIXES else "docs" if suffix in DOC_SUFFIXES else None
        if kind is None:
            unknown.append(path)
        else:
            kinds.setdefault(kind, []).append(path)
    return kinds, unknown


def describe_source(source: dict[str, Any]) -> str:
    """'guide.pdf · 3쪽 · 조각 2' or 'faq.csv · FAQ ship-1 · 배송' (plain text; escape before HTML)."""
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


def answer_id(answer: Answer) -> str | None:
    if answer.faq_id:
        return answer.faq_id
    if answer.type == "doc" and answer.sources:
        return str(answer.sources[0].get("id") or "") or None
    return None


# ------------------------------------------------------------------------------------------------
# JSON API
# ------------------------------------------------------------------------------------------------
class AskRequest(BaseModel):
    """POST /api/ask"""

    model_config = ConfigDict(extra="ignore")
    question: str = Field(..., max_length=HARD_MAX_QUESTION_CHARS, description="사용자 질문")
    k: int | None = Field(None, ge=1, le=MAX_K, description="후보 개수 (1..50)")
    category: str | None = Field(None, max_length=200, description="이 분야의 FAQ만 검색 (없는 분야면 결과 없음)")
    mode: str | None = Field(None, description="검색 방식: lexical | dense | hybrid (기본: 설정값)")

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, mode: str | None) -> str | None:
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        return mode


class AskResponse(BaseModel):
    type: Literal["faq", "doc", "fallback"]
    answer: str
    score: float
    matched_question: str | None = None
    faq_id: str | None = None
    sources: list[dict[str, Any]] = []
    suggestions: list[str] = []
    mode: str


class FeedbackRequest(BaseModel):
    """POST /api/feedback"""

    model_config = ConfigDict(extra="ignore")
    question: str = Field(..., min_length=1, max_length=HARD_MAX_QUESTION_CHARS)
    rating: Literal["up", "down"]
    answer_id: str | None = Field(None, max_length=500)
    answer_type: Literal["faq", "doc", "fallback"] | None = None
    score: float | None = None
    mode: str | None = Field(None, max_length=20)


_ERROR_WORDS = {
    "missing": "필수 항목입니다",
    "string_type": "문자열이어야 합니다",
    "int_type": "정수여야 합니다",
    "int_parsing": "정수여야 합니다",
    "greater_than_equal": "값이 너무 작습니다",
    "less_than_equal": "값이 너무 큽니다",
    "string_too_long": "너무 깁니다",
    "string_too_short": "비어 있습니다",
    "literal_error": "허용되지 않는 값입니다",
    "value_error": "허용되지 않는 값입니다",
    "json_invalid": "JSON 형식이 올바르지 않습니다",
    "model_attributes_type": "JSON 객체여야 합니다",
    "dict_type": "JSON 객체여야 합니다",
}


def _validation_message(errors: Sequence[dict[str, Any]]) -> str:
    parts = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",)) or "body"
        korean = _ERROR_WORDS.get(str(err.get("type")), "올바르지 않습니다")
        parts.append(f"{loc}: {korean} ({err.get('msg')})")
    return "요청이 올바르지 않습니다. " + "; ".join(parts)


def build_api(target: "Pipeline | Service") -> FastAPI:
    """The /api routes over a ready Pipeline, or over a Service that loads when the server starts."""
    service = Service.of(target)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        yield

    app = FastAPI(
        title="한국어 FAQ 챗봇 API",
        description="질문에 FAQ 답변, 문서 인용 또는 추천 질문으로 답합니다.",
        lifespan=lifespan,
    )
    app.state.service = service

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "type": e.get("type"), "msg": e.get("msg")} for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": _validation_message(errors), "errors": errors})

    @app.exception_handler(QuestionError)
    async def _bad_question(request: Request, exc: QuestionError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(NotReadyError)
    async def _not_ready(request: Request, exc: NotReadyError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc), "status": service.state}, headers={"Retry-After": "5"})

    @app.post("/api/ask", response_model=AskResponse, tags=["chat"])
    def ask(request: AskRequest) -> dict[str, Any]:  # def: runs in the threadpool, retrieval blocks
        answer = service.ask(request.question, k=request.k, category=request.category, mode=request.mode)
        return {**answer.to_dict(), "mode": request.mode or service.mode}

    @app.get("/api/health", tags=["ops"])
    def health() -> JSONResponse:
        if not service.ready:
            return JSONResponse(status_code=503, content={"status": service.state, "detail": service.detail})
        pipeline = service.require()
        return JSONResponse(
            content={
                "status": "ok",
                "records": pipeline.store.count(),
                "encoder": pipeline.encoder.model_id,
                "dimension": pipeline.encoder.dimension,
                "mode": service.mode,
            }
        )

    @app.post("/api/feedback", tags=["chat"])
    def feedback(request: FeedbackRequest) -> dict[str, str]:
        service.record_feedback(
            Feedback(
                question=request.question,
                rating=request.rating,
                answer_id=request.answer_id,
                answer_type=request.answer_type,
                score=request.score,
                mode=request.mode,
                channel="api",
            )
        )
        return {"status": "ok"}

    return app


# ------------------------------------------------------------------------------------------------
# Chat page
# ------------------------------------------------------------------------------------------------
def text_html(text: Any) -> str:
    """Stored or typed text → HTML that shows exactly that text (tags included, never interpreted)."""
    return html.escape(str(text), quote=True).replace("\r\n", "\n").replace("\n", "<br>")


def answer_html(answer: Answer) -> str:
    """The assistant message: matched question or quoted passage, source, score. All text escaped."""
    score = f"점수 {answer.score:.3f}"
    if answer.type == "faq":
        source = describe_source(answer.sources[0]) if answer.sources else ""
        return (
            f"<p><b>Q. {text_html(answer.matched_question or '')}</b></p>"
            f"<p>{text_html(answer.answer)}</p>"
            f"<p><small>📄 출처: {text_html(source)} · {score}</small></p>"
        )
    if answer.type == "doc":
        sources = "<br>".join(f"📄 {text_html(describe_source(s))}" for s in answer.sources)
        return (
            "<p><b>문서에서 찾은 내용입니다.</b></p>"
            f"<blockquote>{text_html(answer.answer)}</blockquote>"
            f"<p><small>{sources}<br>{score}</small></p>"
        )
    hint = "아래 추천 질문을 누르면 바로 물어볼 수 있어요." if answer.suggestions else "다른 표현으로 다시 물어봐 주세요."
    best = f" (가장 가까운 후보의 {score})" if answer.score else ""
    return f"<p>{text_html(answer.answer)}</p><p><small>💡 {hint}{best}</small></p>"


def status_markdown(service: Service) -> str:
    if service.state == "error":
        return f"⚠️ 챗봇을 시작하지 못했습니다: {_md_text(service.detail)}"
    if not service.ready:
        return f"⏳ 준비 중입니다… {_md_text(service.detail)}"
    return ""


def build_ui(target: "Pipeline | Service"):
    """The Gradio page: chat tab (examples, category filter, 👍/👎) and operator tab (ingest, stats)."""
    service = Service.of(target)
    need_password = bool(service.settings.app.password)

    def chat_turn(question: str, history: list[dict], category: str | None, meta: dict) -> tuple[str, list[dict], dict]:
        question = (question or "").strip()
        history = [_without_options(m) for m in (history or [])]
        meta = dict(meta or {})
        if not question:
            return "", history, meta
        history.append({"role": "user", "content": text_html(question)})
        try:
            answer = service.ask(question, category=category)
        except (QuestionError, NotReadyError) as exc:
            history.append({"role": "assistant", "content": f"<p>{text_html(exc)}</p>"})
            meta.pop(str(len(history) - 1), None)  # nothing to rate
            return ("" if isinstance(exc, QuestionError) else question), history, meta
        message: dict[str, Any] = {"role": "assistant", "content": answer_html(answer)}
        if answer.type == "fallback" and answer.suggestions:
            message["options"] = [{"value": s, "label": s} for s in answer.suggestions]
        history.append(message)
        meta[str(len(history) - 1)] = {
            "question": question,
            "answer_id": answer_id(answer),
            "answer_type": answer.type,
            "score": round(float(answer.score), 4),
            "mode": service.mode,
        }
        return "", history, meta

    def ask_example(sample: list[str] | None, history, category, meta):
        return chat_turn((sample or [""])[0], history, category, meta)

    def ask_option(history, category, meta, event: gr.SelectData):
        return chat_turn(str(event.value), history, category, meta)

    def like(meta: dict, event: gr.LikeData) -> None:
        info = (meta or {}).get(str(event.index))
        if not info or event.liked not in (True, False):  # "" = the user took the 👍/👎 back
            return
        rating = "up" if event.liked else "down"
        service.record_feedback(Feedback(rating=rating, channel="web", **info))
        gr.Info("의견 감사합니다! 👍" if rating == "up" else "의견 감사합니다. 더 나은 답을 준비하겠습니다.")

    def refresh_page():
        catalog = service.catalog()
        categories = [ALL_CATEGORIES, *catalog.categories]
        return (
            gr.Markdown(status_markdown(service), visible=not service.ready),
            gr.Dropdown(choices=categories, visible=bool(catalog.categories)),
            gr.Dataset(samples=[[q] for q in catalog.examples], visible=bool(catalog.examples)),
            gr.Timer(active=service.state in ("starting", "loading")),
        )

    def unlock(password: str):
        if not service.check_password(password):
            return gr.Column(visible=False), "❌ 비밀번호가 올바르지 않습니다.", gr.skip(), gr.skip()
        return gr.Column(visible=True), "🔓 잠금이 해제되었습니다.", *stats_or_skip(password)

    def stats_or_skip(password: str):
        """Statistics when allowed and loaded; otherwise leave the outputs as they are."""
        if service.ready and service.check_password(password):
            return stats_outputs()
        return gr.skip(), gr.skip()

    def guard(password: str) -> None:
        if not service.check_password(password):
            raise gr.Error("운영자 비밀번호가 올바르지 않습니다.")
        if not service.ready:
            raise gr.Error(NOT_READY)

    def run_ingest(files, dry_run: bool, password: str, progress=gr.Progress()):
        guard(password)
        paths = [Path(f if isinstance(f, str) else getattr(f, "name", f)) for f in (files or [])]
        if not paths:
            raise gr.Error("먼저 파일을 올려 주세요.")
        by_kind, unknown = split_by_kind(paths)
        if unknown:
            raise gr.Error(
                f"지원하지 않는 형식입니다: {', '.join(p.name for p in unknown)}. "
                f"FAQ {' '.join(FAQ_SUFFIXES)} · 문서 {' '.join(DOC_SUFFIXES)}"
            )
        reports = []
        for number, (kind, group) in enumerate(by_kind.items()):
            share, start = 1 / len(by_kind), number / len(by_kind)
            label = "FAQ" if kind == "faq" else "문서"

            def report_progress(fraction: float, message: str = "", start=start, share=share, label=label) -> None:
                progress(start + share * fraction, desc=f"{label}: {message}")

            try:
                # Gradio keeps an upload's file name, and a source is named by its file name, so
                # re-uploading faq.csv updates the faq.csv source.
                reports.append(service.ingest(kind, group, dry_run=dry_run, progress=report_progress))
            except Exception as exc:  # a bad file is the operator's to fix: say why, keep serving
                log.exception("Ingestion of %s failed", [p.name for p in group])
                raise gr.Error(f"색인하지 못했습니다: {exc}") from exc
        title = "미리보기 (저장하지 않음)" if dry_run else "색인 완료"
        notes = "".join(f"\n- {_md_text(note)}" for report in reports for note in report.notes)
        summary = f"**{title}** — {summarise_report(*reports)}{notes}"
        rejections = "\n".join(report_rejections(*reports)) or "거부된 행이 없습니다."
        return summary, report_rows(*reports), rejections, *stats_outputs()

    def stats_outputs():
        stats = service.stats()
        text = (
            f"- 레코드 수: **{stats['records']:,}**\n"
            f"- 출처 수: **{len(stats['sources']):,}**\n"
            f"- 인코더: `{_md_code(stats['encoder'])}` ({stats['dimension']}차원)\n"
            f"- 마지막 색인: {_md_code(stats['last_ingest'] or '기록 없음')}\n"
            f"- 컬렉션: `{_md_code(stats['collection'])}` · 검색 방식: `{stats['mode']}`"
        )
        rows = [[name, count] for name, count in sorted(stats["sources"].items())]
        return text, rows

    def show_stats(password: str):
        guard(password)
        return stats_outputs()

    with gr.Blocks(title="FAQ 챗봇", analytics_enabled=False) as demo:
        gr.Markdown(
            "## 🙋 FAQ 챗봇\n"
            "자주 묻는 질문과 안내 문서에서 답을 찾아 드립니다. 답마다 근거가 된 질문·출처·점수를 함께 보여 드려요."
        )
        status = gr.Markdown(status_markdown(service), visible=not service.ready, elem_id="status")
        meta = gr.State({})
        with gr.Tabs():
            with gr.Tab("💬 상담", id="chat"):
                with gr.Row(equal_height=True):
                    category = gr.Dropdown(
                        choices=[ALL_CATEGORIES], value=ALL_CATEGORIES, label="분야", visible=False, interactive=True,
                        elem_id="category", scale=1, min_width=200,
                    )
                    with gr.Column(scale=3):
                        gr.Markdown(
                            "분야를 고르면 그 분야의 FAQ에서만 찾습니다. 답 아래의 👍/👎로 답이 도움이 되었는지 알려 주세요.",
                            elem_id="hint",
                        )
                chatbot = gr.Chatbot(
                    label="상담",
                    show_label=False,
                    elem_id="chat",
                    height="62vh",
                    min_height=420,
                    render_markdown=False,
                    sanitize_html=True,
                    latex_delimiters=[],
                    allow_tags=False,
                    buttons=[],
                    feedback_options=("Like", "Dislike"),
                    placeholder="궁금한 점을 아래에 입력하거나 예시 질문을 눌러 보세요.",
                    autoscroll=True,
                )
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        placeholder="궁금한 점을 입력하세요 (Enter로 보내기)", show_label=False, scale=8, elem_id="question",
                        max_lines=4, autofocus=True,
                    )
                    send = gr.Button("보내기", variant="primary", scale=1, min_width=90, elem_id="send")
                examples = gr.Dataset(label="예시 질문", components=[question], samples=[], visible=False, elem_id="examples")

            with gr.Tab("🛠 운영", id="operator") as operator_tab:
                gr.Markdown(
                    "FAQ 파일(csv·tsv·xlsx·json·jsonl) 또는 문서(pdf·docx·hwpx·md·txt·html)를 올려 색인합니다. "
                    "같은 파일을 다시 올리면 바뀐 부분만 반영되고, 파일에서 사라진 항목은 삭제됩니다."
                    + ("" if need_password else "\n\n⚠️ 운영자 비밀번호가 설정되지 않았습니다 (`FAQBOT_APP__PASSWORD`).")
                )
                with gr.Row(visible=need_password):
                    password = gr.Textbox(label="운영자 비밀번호", type="password", scale=4, elem_id="password")
                    unlock_btn = gr.Button("잠금 해제", scale=1)
                lock_message = gr.Markdown()
                with gr.Column(visible=not need_password) as operator:
                    with gr.Row():
                        with gr.Column(scale=3):
                            files = gr.File(
                                label="파일 올리기 (FAQ와 문서는 확장자로 구분합니다)", file_count="multiple",
                                file_types=[*FAQ_SUFFIXES, *DOC_SUFFIXES], elem_id="upload",
                            )
                            dry_run = gr.Checkbox(label="미리보기만 (저장하지 않고 개수만 확인)", value=False)
                            ingest_btn = gr.Button("색인하기", variant="primary", elem_id="ingest")
                            summary = gr.Markdown(elem_id="ingest-summary")
                            counts = gr.Dataframe(
                                headers=["출처", *(COUNT_LABELS[n] for n in COUNT_NAMES)], interactive=False,
                                label="출처별 결과", elem_id="ingest-counts",
                            )
                            rejected = gr.Textbox(label="거부된 행 (파일:줄: 이유)", lines=5, interactive=False)
                        with gr.Column(scale=2):
                            stats_md = gr.Markdown(elem_id="stats")
                            sources = gr.Dataframe(headers=["출처", "레코드 수"], interactive=False, label="출처별 레코드")
                            stats_btn = gr.Button("통계 새로고침", size="sm")
        timer = gr.Timer(2.0, active=not service.ready)

        # The page's own endpoints stay private: /api/* is the documented API.
        on = {"api_visibility": "private"}
        chat = {**on, "concurrency_limit": 4, "concurrency_id": "chat"}
        chat_io = {"inputs": [question, chatbot, category, meta], "outputs": [question, chatbot, meta]}
        question.submit(chat_turn, **chat_io, **chat)
        send.click(chat_turn, **chat_io, **chat)
        examples.click(ask_example, [examples, chatbot, category, meta], [question, chatbot, meta], **chat)
        chatbot.option_select(ask_option, [chatbot, category, meta], [question, chatbot, meta], **chat)
        chatbot.like(like, [meta], None, **on)
        chatbot.clear(lambda: {}, None, [meta], **on)

        page_outputs = [status, category, examples, timer]
        demo.load(refresh_page, None, page_outputs, **on)
        timer.tick(refresh_page, None, page_outputs, **on)

        operator_outputs = [operator, lock_message, stats_md, sources]
        unlock_btn.click(unlock, [password], operator_outputs, **on)
        password.submit(unlock, [password], operator_outputs, **on)
        operator_tab.select(stats_or_skip, [password], [stats_md, sources], **on)
        ingest_btn.click(
            run_ingest, [files, dry_run, password], [summary, counts, rejected, stats_md, sources],
            concurrency_limit=1, concurrency_id="ingest", **on,
        ).then(refresh_page, None, page_outputs, **on)
        stats_btn.click(show_stats, [password], [stats_md, sources], **on)
    return demo


def _without_options(message: dict) -> dict:
    """Suggestion buttons belong to the latest answer only."""
    if message.get("options"):
        message = {**message, "options": []}
    return message


def _md_text(value: Any) -> str:
    """Plain text for a gr.Markdown line: HTML escaped, Markdown punctuation neutralised."""
    return "".join(f"&#{ord(ch)};" if ch in "\\`*_{}[]()#+-.!|<>&~$" else ch for ch in str(value))


def _md_code(value: Any) -> str:
    return str(value).replace("`", "'")


# ------------------------------------------------------------------------------------------------
# Everything together
# ------------------------------------------------------------------------------------------------
CSS = """
#chat .message-wrap p { margin: 0.2em 0; }
#chat blockquote { border-left: 3px solid var(--border-color-primary); margin: 0.3em 0; padding-left: 0.8em; }
footer { display: none !important; }
"""
FONTS = ["Pretendard", "Noto Sans KR", "NanumGothic", "Nanum Gothic", "Malgun Gothic", "Apple SD Gothic Neo", "sans-serif"]


def create_app(settings: Settings | None = None, pipeline: Pipeline | None = None) -> FastAPI:
    """FastAPI with /api/* and the Gradio page at "/"; the pipeline loads when the server starts."""
    settings = settings or load_settings()
    service = Service(settings, pipeline)
    app = build_api(service)
    demo = build_ui(service)
    demo.queue(default_concurrency_limit=4)
    theme = gr.themes.Soft(font=FONTS, font_mono=["ui-monospace", "monospace"])  # local fonts: no CDN request
    return gr.mount_gradio_app(
        app, demo, path="/", theme=theme, css=CSS, footer_links=[], show_error=True, max_file_size="50mb",
        ssr_mode=False, run_history=False,
    )


def main_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{shown}:{port}/"


def warn_if_exposed(settings: Settings, host: str) -> None:
    if host not in ("127.0.0.1", "localhost", "::1") and not settings.app.password:
        _say(
            f"경고: {host}에서 외부 접속을 받지만 운영자 비밀번호가 없습니다. 운영 탭(파일 색인)이 누구에게나 열립니다. "
            "FAQBOT_APP__PASSWORD를 설정하세요."
        )


__all__ = [
    "AskRequest", "AskResponse", "Catalog", "FeedbackRequest", "NotReadyError", "Service", "answer_html", "build_api",
    "build_catalog", "build_ui", "create_app", "describe_source", "main_url", "report_rejections", "report_rows",
    "split_by_kind", "summarise_report", "text_html", "warn_if_exposed",
]
