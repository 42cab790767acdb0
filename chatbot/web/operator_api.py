"""/api/operator/*: the inbox, FAQ edits, export and analytics over HTTP, behind a Bearer token.

`app.operator_token` (FAQBOT_APP__OPERATOR_TOKEN) unset: every endpoint answers 403 (switched off);
set: a request without `Authorization: Bearer <token>` (compared in constant time) answers 401.
The logic is chatbot.operator's OperatorDesk, the same object the operator page uses.
"""
from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from chatbot.operator.analytics import compute_analytics
from chatbot.operator.desk import OperatorActionError, OperatorDesk, desk_of
from chatbot.operator.export import FORMATS
from chatbot.operator.period import parse_since

PREFIX = "/api/operator"
QuestionIds = list[str]
_ID = Field(..., min_length=1, max_length=200)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    who: str | None = Field(None, max_length=100, description="운영자 이름 (기록용)")


class AlternativeRequest(_Body):
    question_ids: QuestionIds = Field(..., min_length=1, max_length=10_000)
    faq_id: str = _ID
    texts: list[str] | None = Field(None, max_length=200, description="질문 기록 대신 이 문장들을 추가")


class QuestionsRequest(_Body):
    question_ids: QuestionIds = Field(..., min_length=1, max_length=10_000)


class LabelRequest(QuestionsRequest):
    faq_id: str = _ID


class FaqRequest(_Body):
    question: str = Field(..., min_length=1, max_length=2_000)
    answer: str = Field(..., min_length=1, max_length=20_000)
    category: str | None = Field(None, max_length=200)
    alternatives: list[str] = Field(default_factory=list, max_length=200)
    question_ids: QuestionIds = Field(default_factory=list, max_length=10_000)


class FaqEdit(_Body):
    question: str | None = Field(None, max_length=2_000)
    answer: str | None = Field(None, max_length=20_000)
    category: str | None = Field(None, max_length=200)
    alternatives: list[str] | None = Field(None, max_length=200)


def bearer_guard(token_of: Callable[[], str | None]) -> Callable[[Request], None]:
    """A dependency: 403 when no token is configured, 401 unless the request carries it."""

    def guard(request: Request) -> None:
        wanted = token_of()
        if not wanted:
            raise _Refused(403, "운영 API가 꺼져 있습니다: app.operator_token을 설정하세요 (operator API disabled: set app.operator_token).")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("utf-8"), wanted.encode("utf-8")):
            raise _Refused(401, "운영 API 토큰이 없거나 틀렸습니다 (missing or wrong Bearer token).", {"WWW-Authenticate": "Bearer"})

    return guard


class _Refused(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers


def operator_router(service: Any) -> APIRouter:
    desk: OperatorDesk = desk_of(service)
    router = APIRouter(prefix=PREFIX, tags=["operator"],
                       dependencies=[Depends(bearer_guard(lambda: service.settings.app.operator_token))])
    cfg = service.settings.operator

    @router.get("/inbox")
    def inbox(since: str | None = Query(None, max_length=40), limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
        clusters = desk.inbox(_since(since, cfg.inbox_days), limit)
        return {"clusters": [c.as_dict() for c in clusters]}

    @router.post("/inbox/alternative")
    def add_alternative(body: AlternativeRequest) -> dict[str, Any]:
        return desk.add_alternatives(body.question_ids, body.faq_id, body.who, body.texts).as_dict()

    @router.post("/inbox/out-of-scope")
    def not_for_us(body: QuestionsRequest) -> dict[str, Any]:
        return {"labelled": desk.not_for_us(body.question_ids, body.who)}

    @router.post("/inbox/label")
    def right_answer(body: LabelRequest) -> dict[str, Any]:
        return {"labelled": desk.right_answer(body.question_ids, body.faq_id, body.who)}

    @router.get("/out-of-scope")
    def out_of_scope() -> dict[str, Any]:
        return {"questions": desk.out_of_scope()}

    @router.get("/faqs")
    def faqs(q: str = Query("", max_length=200), limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
        return {"faqs": [item.as_dict() for item in desk.search(q, limit)]}

    @router.post("/faqs")
    def new_faq(body: FaqRequest) -> dict[str, Any]:
        return desk.new_faq(body.question, body.answer, body.category, body.alternatives, body.question_ids, body.who).as_dict()

    @router.get("/faqs/{faq_id}")
    def faq(faq_id: str) -> dict[str, Any]:
        return desk.find(faq_id).as_dict()

    @router.put("/faqs/{faq_id}")
    def edit_faq(faq_id: str, body: FaqEdit) -> dict[str, Any]:
        return desk.edit_faq(faq_id, body.who, question=body.question, answer=body.answer,
                             alternatives=body.alternatives, category=body.category).as_dict()

    @router.delete("/faqs/{faq_id}")
    def delete_faq(faq_id: str, who: str | None = Query(None, max_length=100)) -> dict[str, Any]:
        return {"detail": desk.delete_faq(faq_id, who)}

    @router.get("/audit")
    def audit(faq_id: str | None = Query(None, max_length=200), limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        rows = desk.audit(faq_id, limit)
        return {"audit": [{**row, "time": row["time"].isoformat()} for row in rows]}

    @router.post("/sync")
    def resync() -> dict[str, Any]:
        return {"detail": desk.resync()}

    @router.get("/export")
    def export(format: str = Query("csv", pattern="^(csv|xlsx)$")) -> Response:
        write, media = FORMATS[format]
        headers = {"Content-Disposition": f'attachment; filename="faq-export.{format}"'}
        return Response(write(desk.items()), media_type=media, headers=headers)

    @router.get("/analytics")
    def analytics(since: str | None = Query(None, max_length=40)) -> dict[str, Any]:
        return compute_analytics(desk.engine, _since(since, cfg.inbox_days)).as_dict()

    return router


def _since(text: str | None, default_days: int) -> Any:
    try:
        return parse_since(text, default_days)
    except ValueError as exc:
        raise OperatorActionError(str(exc)) from exc


def include_operator_api(app: FastAPI, service: Any) -> None:
    """Adds /api/operator/* ahead of the API's catch-all for unknown /api paths, with its error mapping."""

    @app.exception_handler(_Refused)
    async def _refused(request: Request, exc: _Refused) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content={"detail": exc.detail}, headers=exc.headers)

    @app.exception_handler(OperatorActionError)
    async def _action_error(request: Request, exc: OperatorActionError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content={"detail": str(exc)})

    app.include_router(operator_router(service))
    routes = app.router.routes
    catch_all = [r for r in routes if getattr(r, "path", "") == "/api/{rest:path}"]
    for route in catch_all:  # keep "unknown /api path" last, after the routes just added
        routes.remove(route)
        routes.append(route)
