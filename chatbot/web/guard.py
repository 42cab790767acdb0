"""An ASGI guard in front of the whole app: body-size caps, per-client rates, and no server paths in page events.

Why here and not in each handler: Gradio copies any file a component value names into its cache
*before* a handler runs (and, in an app mounted with `gr.mount_gradio_app`, without its own path
check), so a crafted chat history or upload value naming `/etc/hostname` would be served back.
Checking every event's JSON body before Gradio sees it covers every event on the page, present and
future: a file object is accepted only when it points into this app's own upload folder, i.e. a
file that this app's upload endpoint wrote itself.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from chatbot.settings import AppSettings
from chatbot.web.limits import RateLimiter

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

GRADIO_PREFIX = "/gradio_api/"
UPLOAD_PATH = "/gradio_api/upload"


class RequestRejected(Exception):
    """A request refused before it reaches the app: status code and a Korean/English message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def client_key(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def file_paths(value: Any) -> list[str]:
    """Every `path` a Gradio file object (any dict with a string "path") inside a JSON value names."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("path"), str):
                found.append(item["path"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def inside(path: str, folder: Path) -> bool:
    """True only for a local path that resolves (links followed) to somewhere inside folder."""
    if "://" in path or path.startswith("//"):
        return False  # URLs would make the server fetch them
    try:
        resolved = Path(os.path.realpath(path))
    except (OSError, ValueError):
        return False
    return resolved == folder or folder in resolved.parents


class FolderSize:
    """The size of the upload folder, re-measured at most every few seconds (uploads are rare)."""

    def __init__(self, folder: Path, every_s: float = 5.0) -> None:
        self.folder, self.every_s = folder, every_s
        self._value, self._at = 0, float("-inf")

    def bytes(self) -> int:
        if time.monotonic() - self._at > self.every_s:
            total = 0
            for root, _dirs, files in os.walk(self.folder):
                for name in files:
                    try:
                        total += os.lstat(os.path.join(root, name)).st_size
                    except OSError:
                        continue
            self._value, self._at = total, time.monotonic()
        return self._value

    def add(self, size: int) -> None:
        """Counts an accepted upload at once, so a burst cannot slip in between two measurements."""
        self._value += size


class RequestGuard:
    """Pure ASGI middleware; see the module docstring for why it exists."""

    def __init__(self, app: ASGIApp, settings: AppSettings, upload_folder: Path) -> None:
        self.app = app
        self.settings = settings
        self.upload_folder = Path(os.path.realpath(upload_folder))
        self.upload_size = FolderSize(self.upload_folder)
        self.limits = {
            "/api/ask": RateLimiter(settings.ask_per_minute),
            "/api/feedback": RateLimiter(settings.feedback_per_minute),
            UPLOAD_PATH: RateLimiter(settings.uploads_per_minute),
            GRADIO_PREFIX: RateLimiter(settings.events_per_minute),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        try:
            self._check_rate(path, client_key(scope))
            if scope.get("method") in ("POST", "PUT", "PATCH"):
                if path == UPLOAD_PATH or path.startswith(UPLOAD_PATH + "/"):
                    receive = self._upload_receive(scope, receive)
                elif path.startswith(GRADIO_PREFIX):
                    body = await self._read_body(scope, receive, self.settings.max_event_body_kb * 1024)
                    self._check_event_files(body)
                    receive = _replay(body, receive)
                elif path.startswith("/api/"):
                    body = await self._read_body(scope, receive, self.settings.max_api_body_kb * 1024)
                    receive = _replay(body, receive)
        except RequestRejected as rejected:
            if rejected.status != 429:
                log.warning("Refused %s %s from %s: %s", scope.get("method"), path, client_key(scope), rejected.message)
            await _respond(send, rejected)
            return
        await self.app(scope, receive, send)

    # --- rates --------------------------------------------------------------------------------------
    def _check_rate(self, path: str, key: str) -> None:
        limiter = self.limits.get(path) or (self.limits[GRADIO_PREFIX] if _is_gradio_call(path) else None)
        if limiter is not None and not limiter.allow(key):
            raise RequestRejected(
                429, "요청이 너무 많습니다. 잠시 후 다시 시도해 주세요. (Too many requests; slow down.)",
                {"Retry-After": str(limiter.retry_after())},
            )

    # --- bodies -------------------------------------------------------------------------------------
    @staticmethod
    def _declared_length(scope: Scope) -> int | None:
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    raise RequestRejected(400, "Content-Length가 올바르지 않습니다. (Bad Content-Length.)") from None
        return None

    async def _read_body(self, scope: Scope, receive: Receive, limit: int) -> bytes:
        """The whole body, refused with 413 as soon as it (declared or streamed) passes the limit."""
        declared = self._declared_length(scope)
        if declared is not None and declared > limit:
            raise _too_large(limit)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)

    def _check_event_files(self, body: bytes) -> None:
        """A page event may name only files this app's upload endpoint wrote (see the module docstring).

        Always parsed: a raw-bytes pre-check for `"path"` would miss a key written with JSON escapes."""
        if not body.strip():
            return
        try:
            payload = json.loads(body)
        except ValueError:
            return  # not JSON: Gradio answers it with its own error and reads no file
        for path in file_paths(payload):
            if not inside(path, self.upload_folder):
                raise RequestRejected(
                    403, "서버의 파일은 요청에 넣을 수 없습니다. 파일은 업로드로만 보낼 수 있습니다. "
                    "(Server file paths are not accepted; upload the file instead.)",
                )

    def _upload_receive(self, scope: Scope, receive: Receive) -> Receive:
        """Uploads stream through (no buffering) but are cut at the size cap; a full folder refuses them."""
        limit = self.settings.max_upload_mb * 1024 * 1024
        declared = self._declared_length(scope)
        if declared is not None and declared > limit:
            raise _too_large(limit)
        if self.upload_size.bytes() > self.settings.upload_dir_max_mb * 1024 * 1024:
            raise RequestRejected(
                507, "업로드 공간이 가득 찼습니다. 잠시 후 다시 시도해 주세요. (Upload space is full; try again later.)"
            )
        self.upload_size.add(declared or 0)
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                return {"type": "http.disconnect"}  # the upload handler stops reading; nothing is kept
            return message

        return counted


def _is_gradio_call(path: str) -> bool:
    """Event calls (queue joins, runs) — not the page's static assets, which load many files at once."""
    return path.startswith(GRADIO_PREFIX) and any(
        part in path for part in ("/queue/join", "/run/", "/call/", "/api/", "/upload")
    )


def _too_large(limit: int) -> RequestRejected:
    return RequestRejected(
        413, f"요청이 너무 큽니다 (최대 {limit // 1024:,} KB). (Request body too large; limit {limit // 1024:,} KB.)"
    )


def _replay(body: bytes, original: Receive) -> Receive:
    """The body already read, then the client's own messages (a real disconnect, when it comes)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await original()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _respond(send: Send, rejected: RequestRejected) -> None:
    body = json.dumps({"detail": rejected.message}, ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in rejected.headers.items()]
    await send({"type": "http.response.start", "status": rejected.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
