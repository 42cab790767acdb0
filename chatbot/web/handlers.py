"""What the page's events do, as plain functions of the Service (testable without Gradio).

The chat history comes back from the browser on every turn, so it is treated as untrusted input:
only plain-text user/assistant messages survive, and only the newest ones.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatbot.answer import QuestionError
from chatbot.feedback import Feedback
from chatbot.store import StoreUnavailableError
from chatbot.web.api import STORE_DOWN
from chatbot.web.guard import inside
from chatbot.web.limits import LoginThrottle
from chatbot.web.render import answer_html, answer_id, error_html, follow_ups, md_code, md_text, text_html
from chatbot.web.reports import report_rejections, report_rows, split_by_kind, summarise_report
from chatbot.web.service import NOT_READY, NotReadyError, Service
from ingest.doc_readers import DOC_SUFFIXES
from ingest.faq_readers import FAQ_SUFFIXES
from ingest.sync import IngestCancelled

log = logging.getLogger(__name__)

MAX_HISTORY = 60
Message = dict[str, Any]
Progress = Callable[[float, str], None]


class OperatorError(RuntimeError):
    """An operator action refused or failed; the message is shown to the operator as it is."""


def clean_history(history: Sequence[Any] | None) -> list[Message]:
    """Only the text of user/assistant messages from the client's copy (Gradio hands content over as a
    list of parts; anything but text parts, e.g. a file part naming a server path, is dropped), newest
    MAX_HISTORY; suggestion buttons stay on the newest answer only, so none are kept here."""
    out: list[Message] = []
    for message in list(history or [])[-MAX_HISTORY:]:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            continue
        content = message.get("content")
        parts = [content] if isinstance(content, str) else content if isinstance(content, list) else []
        texts = [
            part if isinstance(part, str) else part.get("text")
            for part in parts
            if isinstance(part, str) or (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str))
        ]
        if texts:
            out.append({"role": message["role"], "content": "".join(texts)})
    return out


def chat_turn(
    service: Service, question: str, history: Sequence[Any] | None, category: str | None, meta: dict | None,
    session: str | None = None,
) -> tuple[str, list[Message], dict]:
    """One question → the history with the answer appended, and what 👍/👎 and the buttons under it record."""
    question = (question or "").strip()
    history = clean_history(history)
    meta = {k: v for k, v in meta.items() if isinstance(k, str) and k.isdigit()} if isinstance(meta, dict) else {}
    if not question:
        return "", history, meta
    history.append({"role": "user", "content": text_html(question)})
    try:
        answer, question_id = service.ask(question, category=category, channel="web", session=session)
    except (QuestionError, NotReadyError, StoreUnavailableError) as exc:
        text = STORE_DOWN if isinstance(exc, StoreUnavailableError) else str(exc)
        history.append({"role": "assistant", "content": error_html(text)})
        return ("" if isinstance(exc, QuestionError) else question), history, meta
    message: Message = {"role": "assistant", "content": answer_html(answer)}
    options = follow_ups(answer)
    if options:
        message["options"] = [{"value": text, "label": text} for text, _ in options]
    history.append(message)
    meta[str(len(history) - 1)] = {
        "question": question,
        "question_id": question_id,
        "answer_id": answer_id(answer),
        "answer_type": answer.type,
        "score": round(float(answer.score), 4),
        "mode": service.mode,
    }
    meta["last"] = {"question_id": question_id, "type": answer.type, "options": dict(options)}
    return "", history, meta


def record_option_click(service: Service, meta: dict | None, clicked: str, session: str | None = None) -> None:
    """A click on a clarify candidate or a suggestion labels the question it was offered for."""
    last = meta.get("last") if isinstance(meta, dict) else None
    if not isinstance(last, dict) or clicked not in (last.get("options") or {}):
        return
    kind = "clarify" if last.get("type") == "clarify" else "suggestion"
    service.record_click(kind, last.get("question_id"), str(last["options"][clicked] or clicked), session=session)


def like(service: Service, meta: dict | None, index: Any, liked: Any, session: str | None = None) -> str | None:
    """Records a 👍/👎 for the rated message; returns the thank-you text (None when nothing was recorded)."""
    info = (meta or {}).get(str(index)) if isinstance(meta, dict) else None
    if not isinstance(info, dict) or liked not in (True, False):  # "" = the user took the 👍/👎 back
        return None
    rating = "up" if liked else "down"
    allowed = {"question", "answer_id", "answer_type", "score", "mode"}
    try:
        entry = Feedback(rating=rating, channel="web", **{k: v for k, v in info.items() if k in allowed})
        question_id = info.get("question_id")
        service.record_feedback(entry, question_id=question_id if isinstance(question_id, str) else None, session=session)
    except (TypeError, ValueError) as exc:
        log.warning("Ignored malformed feedback from the page: %s", exc)
        return None
    return "의견 감사합니다! 👍" if rating == "up" else "의견 감사합니다. 더 나은 답을 준비하겠습니다."


@dataclass
class Operator:
    """The operator tab's actions: every one re-checks the password, with a per-client back-off."""

    service: Service
    upload_folder: Path
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    _cancel: threading.Event = field(default_factory=threading.Event)

    def check(self, password: str | None, client: str) -> None:
        wait = self.throttle.wait_s(client)
        if wait > 0:
            raise OperatorError(f"비밀번호를 여러 번 틀렸습니다. {wait:.0f}초 후에 다시 시도해 주세요. (Too many wrong passwords.)")
        if not self.service.check_password(password):
            lock = self.throttle.failed(client)
            log.warning("Failed operator unlock from %s%s", client, f" (locked out for {lock:.0f} s)" if lock else "")
            raise OperatorError("운영자 비밀번호가 올바르지 않습니다. (Wrong operator password.)")
        self.throttle.succeeded(client)

    def require_ready(self) -> None:
        if not self.service.ready:
            raise OperatorError(NOT_READY)

    def cancel(self) -> str:
        self._cancel.set()
        return "⏹ 색인을 멈추는 중입니다… 저장된 내용은 그대로 남습니다."

    def ingest(self, files: Sequence[Any] | None, dry_run: bool, progress: Progress) -> tuple[str, list[list[Any]], str]:
        """Uploaded files (only from this app's own upload folder) → the same ingestion as the CLI."""
        paths = [Path(f if isinstance(f, str) else getattr(f, "name", f)) for f in (files or [])]
        if not paths:
            raise OperatorError("먼저 파일을 올려 주세요. (Upload a file first.)")
        outside = [p.name for p in paths if not inside(str(p), self.upload_folder)]
        if outside:
            raise OperatorError(f"업로드한 파일만 색인할 수 있습니다: {', '.join(outside)} (Only uploaded files.)")
        by_kind, unknown = split_by_kind(paths)
        if unknown:
            raise OperatorError(
                f"지원하지 않는 형식입니다: {', '.join(p.name for p in unknown)}. "
                f"FAQ {' '.join(FAQ_SUFFIXES)} · 문서 {' '.join(DOC_SUFFIXES)}"
            )
        self._cancel.clear()
        deadline = time.monotonic() + self.service.settings.app.ingest_timeout_s

        def should_stop() -> bool:
            return self._cancel.is_set() or time.monotonic() > deadline

        reports = []
        for number, (kind, group) in enumerate(by_kind.items()):
            share, start = 1 / len(by_kind), number / len(by_kind)
            label = "FAQ" if kind == "faq" else "문서"

            def report_progress(fraction: float, message: str = "", start=start, share=share, label=label) -> None:
                progress(start + share * fraction, f"{label}: {message}")

            try:
                # A source is named by its file name, so re-uploading faq.csv updates the faq.csv source.
                reports.append(self.service.ingest(kind, group, dry_run=dry_run, progress=report_progress, should_stop=should_stop))
            except IngestCancelled as exc:
                why = "시간 제한을 넘어" if time.monotonic() > deadline else "요청에 따라"
                raise OperatorError(f"{why} 색인을 멈췄습니다. 저장된 내용은 그대로입니다. ({exc})") from exc
            except Exception as exc:  # a bad file is the operator's to fix: say why, keep serving
                log.exception("Ingestion of %s failed", [p.name for p in group])
                raise OperatorError(f"색인하지 못했습니다: {exc}") from exc
        title = "미리보기 (저장하지 않음)" if dry_run else "색인 완료"
        notes = "".join(f"\n- {md_text(note)}" for report in reports for note in report.notes)
        summary = f"**{title}** — {summarise_report(*reports)}{notes}"
        rejections = "\n".join(report_rejections(*reports)) or "거부된 행이 없습니다."
        return summary, report_rows(*reports), rejections

    def stats(self) -> tuple[str, list[list[Any]]]:
        stats = self.service.stats()
        text = (
            f"- 레코드 수: **{stats['records']:,}**\n"
            f"- 출처 수: **{len(stats['sources']):,}**\n"
            f"- 인코더: `{md_code(stats['encoder'])}` ({stats['dimension']}차원)\n"
            f"- 마지막 색인: {md_code(stats['last_ingest'] or '기록 없음')}\n"
            f"- 컬렉션: `{md_code(stats['collection'])}` · 검색 방식: `{stats['mode']}`"
        )
        rows = [[name, count] for name, count in sorted(stats["sources"].items())]
        return text, rows
