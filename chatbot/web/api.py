"""The JSON API (/api/ask, /api/health, /api/feedback): request models, error mapping, routes over a Service.

Every refusal is a 4xx/503 JSON body {"detail": "Korean message (English)"}, never a plain-text 500.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from chatbot.answer import QuestionError
from chatbot.feedback import Feedback
from chatbot.pipeline import Pipeline
from chatbot.modes import MODES, Mode
from chatbot.store import StoreUnavailableError
from chatbot.web.service import NotReadyError, Service
from chatbot.web.thread_route import ThreadRoute

log = logging.getLogger(__name__)

MAX_K = 50
# A guard against giant fields; the configured limit (answer.max_question_chars, checked on the
# normalised text by the Answerer) is what users normally meet.
HARD_MAX_QUESTION_CHARS = 10_000
AnswerType = Literal["faq", "doc", "clarify", "fallback"]
STORE_DOWN = "검색 저장소에 연결할 수 없습니다. 잠시 후 다시 시도해 주세요. (The search store is unavailable; try again shortly.)"


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
    type: AnswerType
    answer: str
    score: float
    matched_question: str | None = None
    faq_id: str | None = None
    faq_source: str | None = None  # the file the FAQ came from: ids are unique per file, not across files
    sources: list[dict[str, Any]] = []
    suggestions: list[str] = []
    candidates: list[dict[str, Any]] = []
    p: float | None = None
    read_as: str | None = None  # the question as searched, when typo repair changed it
    passage: str | None = None  # clarify: a document passage that may answer, its file in sources
    mode: str
    question_id: str | None = None


class FeedbackRequest(BaseModel):
    """POST /api/feedback: every field bounded, so the log holds only what a real rating can say."""

    model_config = ConfigDict(extra="ignore")
    question: str = Field(..., min_length=1, max_length=HARD_MAX_QUESTION_CHARS)
    rating: Literal["up", "down"]
    answer_id: str | None = Field(None, max_length=200)
    answer_type: AnswerType | None = None
    score: float | None = Field(None, ge=-1.0, le=2.0, allow_inf_nan=False, strict=True)
    mode: Mode | None = None
    question_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$", description="/api/ask가 돌려준 question_id")

    @field_validator("question")
    @classmethod
    def _not_blank(cls, question: str) -> str:
        if not question.strip():
            raise ValueError("question is blank")
        return question.strip()

    @field_validator("score")
    @classmethod
    def _finite(cls, score: float | None) -> float | None:
        if score is not None and not math.isfinite(score):
            raise ValueError("score must be a finite number")
        return score


_ERROR_WORDS = {
    "missing": "필수 항목입니다",
    "string_type": "문자열이어야 합니다",
    "int_type": "정수여야 합니다",
    "int_parsing": "정수여야 합니다",
    "float_type": "숫자여야 합니다",
    "float_parsing": "숫자여야 합니다",
    "finite_number": "유한한 숫자여야 합니다",
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


def validation_message(errors: Sequence[dict[str, Any]]) -> str:
    parts = []
    for err in errors:
        parts_of_loc = () if err.get("type") == "json_invalid" else err.get("loc", ())  # not the character position
        loc = ".".join(str(p) for p in parts_of_loc if p not in ("body",)) or "body"
        korean = _ERROR_WORDS.get(str(err.get("type")), "올바르지 않습니다")
        parts.append(f"{loc}: {korean} ({err.get('msg')})")
    return "요청이 올바르지 않습니다. " + "; ".join(parts)


def _body_is_text(request: Request) -> bool:
    """False when the body is not UTF-8 (FastAPI would report it as a bare JSON error)."""
    body = getattr(request, "_body", None)
    if not isinstance(body, bytes):
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def use_request_threads(threads: int) -> None:
    """How many sync handlers (each question blocks one thread) run at once in this event loop.

    Concurrent questions are encoded together (chatbot/batching.py), so the more of them are in flight
    the bigger and cheaper each encoder batch: under 50 parallel clients anyio's default of 40 left ten
    waiting; 64 gave 0.61-0.64x the batched encoder instead of 0.58-0.62x, p95 266-291 ms instead of
    314-373 (bench/api_load.py, five A/B pairs; 24 and 12 threads: 0.57x and 0.49x). The number still
    bounds the threads a flood of requests can make the server start."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = threads


def build_api(target: "Pipeline | Service") -> FastAPI:
    """The /api routes over a ready Pipeline, or over a Service that loads when the server starts."""
    service = Service.of(target)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        use_request_threads(service.settings.app.request_threads)
        service.start()
        yield

    app = FastAPI(
        title="한국어 FAQ 챗봇 API",
        description="질문에 FAQ 답변, 문서 인용, 되묻기(clarify) 또는 추천 질문으로 답합니다.",
        lifespan=lifespan,
    )
    app.state.service = service

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if not _body_is_text(request):
            detail = "요청 본문이 UTF-8이 아닙니다. UTF-8 JSON으로 보내 주세요. (The request body is not UTF-8 JSON.)"
            return JSONResponse(status_code=422, content={"detail": detail})
        errors = [{"loc": list(e.get("loc", ())), "type": e.get("type"), "msg": e.get("msg")} for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": validation_message(errors), "errors": errors})

    @app.exception_handler(QuestionError)
    async def _bad_question(request: Request, exc: QuestionError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(NotReadyError)
    async def _not_ready(request: Request, exc: NotReadyError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc), "status": service.state}, headers={"Retry-After": "5"})

    @app.exception_handler(StoreUnavailableError)
    async def _store_down(request: Request, exc: StoreUnavailableError) -> JSONResponse:
        log.warning("Store unavailable during %s: %s", request.url.path, exc)
        return JSONResponse(status_code=503, content={"detail": STORE_DOWN}, headers={"Retry-After": "5"})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        words = {
            400: "요청 본문을 읽을 수 없습니다. UTF-8 JSON으로 보내 주세요. (Could not parse the body; send UTF-8 JSON.)",
            404: "없는 주소입니다. (Not found.)",
            405: "이 주소는 이 방식(메서드)을 받지 않습니다. (Method not allowed.)",
        }
        detail = words.get(exc.status_code, str(exc.detail))
        return JSONResponse(status_code=exc.status_code, content={"detail": detail}, headers=getattr(exc, "headers", None))

    def ask(request: AskRequest) -> AskResponse:
        # Runs on a request thread with its parsing and JSON (chatbot/web/thread_route.py): retrieval blocks.
        answer, question_id = service.ask(
            request.question, k=request.k, category=request.category, mode=request.mode, channel="api",
        )
        faq_source = answer.sources[0].get("source") if answer.faq_id and answer.sources else None
        return AskResponse.model_validate({
            **answer.to_dict(), "faq_source": faq_source, "mode": request.mode or service.mode, "question_id": question_id,
        })

    app.router.add_api_route("/api/ask", ask, methods=["POST"], response_model=AskResponse, tags=["chat"],
                             route_class_override=ThreadRoute)

    @app.get("/api/health", tags=["ops"])
    def health() -> JSONResponse:
        if not service.ready:
            return JSONResponse(status_code=503, content={"status": service.state, "detail": service.detail})
        pipeline = service.require()
        try:
            records = pipeline.store.count()
        except StoreUnavailableError:
            return JSONResponse(status_code=503, content={"status": "store-unavailable", "detail": STORE_DOWN})
        return JSONResponse(
            content={
                "status": "ok",
                "records": records,
                "encoder": pipeline.encoder.model_id,
                "dimension": pipeline.encoder.dimension,
                "backend": pipeline.encoder.backend,  # an operator sees whether ONNX Runtime or torch (and a GPU) serves
                "device": pipeline.encoder.device,
                "mode": service.mode,
                "decision": pipeline.answerer.decision.status if pipeline.answerer.decision is not None else "off",
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
            ),
            question_id=request.question_id,
        )
        return {"status": "ok"}

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def unknown_api(rest: str) -> JSONResponse:
        """Unknown /api paths answer JSON 404 here instead of falling through to the page; a known path
        asked with the wrong method answers 405 with the methods it takes."""
        allowed = sorted(
            method for route in app.routes if getattr(route, "path", None) == f"/api/{rest}"
            for method in getattr(route, "methods", ()) if method != "HEAD"
        )
        if allowed:
            detail = f"/api/{rest}는 {', '.join(allowed)} 요청만 받습니다. (Method not allowed; use {', '.join(allowed)}.)"
            return JSONResponse(status_code=405, content={"detail": detail}, headers={"Allow": ", ".join(allowed)})
        return JSONResponse(status_code=404, content={"detail": f"없는 API입니다: /api/{rest} (Unknown API path.)"})

    return app
