"""An APIRoute whose whole request runs on one request thread: the body's JSON and its validation, the
endpoint, the response's JSON. The event loop, which every request of the process shares, only reads the
body and sends the bytes.

Why: after each encoder batch, the ~24 clients it answered ask again at once, and FastAPI's own handling of
each request (body parsing, dependency solving, the response model) ran on the event loop first. Under 50
parallel clients (`bench/api_load.py --fresh`, five A/B pairs) /api/ask on this route kept its median
(154–167 ms against 166–174) and lost its slow tail: p95 211–231 ms instead of 376–413, a median 289
questions/s instead of 275 (docs/benchmarks.md): the later requests of a burst no longer miss the next batch. The
endpoint's signature still documents the route in /docs and /openapi.json, and errors keep FastAPI's
contract: a body that cannot be decoded is 400, invalid JSON or fields are 422 (RequestValidationError, with
locations under "body").
"""
from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, get_type_hints

import anyio.to_thread
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response


def parse_body(body: bytes, model: type[BaseModel]) -> BaseModel:
    """The body as `model`, failing as FastAPI's own body handling does."""
    if not body:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error",
                                       "input": {}, "ctx": {"error": exc.msg}}], body=exc.doc) from None
    except (UnicodeDecodeError, RecursionError, ValueError) as exc:  # not UTF-8, nested past Python's limit
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=data) from None


class ThreadRoute(APIRoute):
    """For a sync endpoint of one body model that returns a pydantic model (its response_model)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint
        hints = {name: kind for name, kind in get_type_hints(endpoint).items() if name != "return"}
        (model,) = hints.values()

        def answer(body: bytes) -> bytes:
            return endpoint(parse_body(body, model)).model_dump_json().encode("utf-8")

        async def handle(request: Request) -> Response:
            body = await request.body()
            return Response(await anyio.to_thread.run_sync(answer, body), media_type="application/json")

        return handle
