"""What the page shows, as small HTML/Markdown strings. All stored or typed text is escaped here.

Safety: FAQ and document text is shown as text. Every piece of stored or typed text that reaches the
chat goes through html.escape before it is put into the small HTML we build; the Chatbot has
Markdown and LaTeX rendering off and keeps Gradio's HTML sanitiser on as a second layer, and
suggestion buttons are rendered by Gradio as text nodes.
"""
from __future__ import annotations

import html
from typing import Any

from chatbot.answer import describe_source
from chatbot.records import Answer


def text_html(text: Any) -> str:
    """Stored or typed text → HTML that shows exactly that text (tags included, never interpreted)."""
    return html.escape(str(text), quote=True).replace("\r\n", "\n").replace("\n", "<br>")


def md_text(value: Any) -> str:
    """Plain text for a gr.Markdown line: HTML escaped, Markdown punctuation neutralised."""
    return "".join(f"&#{ord(ch)};" if ch in "\\`*_{}[]()#+-.!|<>&~$" else ch for ch in str(value))


def md_code(value: Any) -> str:
    return str(value).replace("`", "'")


def answer_id(answer: Answer) -> str | None:
    """What a 👍/👎 rates: the FAQ id, or the passage's record id."""
    if answer.faq_id:
        return answer.faq_id
    if answer.type == "doc" and answer.sources:
        return str(answer.sources[0].get("id") or "") or None
    return None


def follow_ups(answer: Answer) -> list[tuple[str, str | None]]:
    """The questions offered as buttons under an answer, with the FAQ id each stands for:
    the clarify candidates, else (on a fallback or a quoted passage) the suggestions. A passage is
    no longer asked back about when an FAQ is nearly as likely, so its FAQs stay one click away."""
    candidates = getattr(answer, "candidates", ()) or ()
    if answer.type == "clarify" and candidates:
        offered = [(str(c["question"]), c.get("faq_id")) for c in candidates if c.get("question")]
        shown = {text for text, _ in offered}  # a lone candidate is topped up with the related questions
        offered += [(s, None) for s in answer.suggestions if s not in shown][: max(0, 3 - len(offered))]
        return offered
    if answer.type in ("fallback", "doc", "clarify"):  # clarify here: a quoted passage and no FAQ candidate
        return [(s, None) for s in answer.suggestions]
    return []


def answer_html(answer: Answer) -> str:
    """The assistant message: matched question or quoted passage, source, score. All text escaped.
    A question read with a typo repaired says so first, so a user sees what was searched."""
    read_as = getattr(answer, "read_as", None)
    note = f"<p><small>🔤 “{text_html(read_as)}”(으)로 찾았어요.</small></p>" if read_as else ""
    return note + _answer_body(answer)


def _answer_body(answer: Answer) -> str:
    score = f"점수 {answer.score:.3f}"
    p = getattr(answer, "p", None)
    if p is not None:
        score += f" · 확신도 {p:.0%}"
    if answer.type == "faq":
        source = describe_source(answer.sources[0]) if answer.sources else ""
        return (
            f"<p><b>Q. {text_html(answer.matched_question or '')}</b></p>"
            f"<p>{text_html(answer.answer)}</p>"
            f"<p><small>📄 출처: {text_html(source)} · {score}</small></p>"
        )
    if answer.type == "doc":
        return _quoted("문서에서 찾은 내용입니다.", answer.answer, answer, score)
    if answer.type == "clarify":
        passage = getattr(answer, "passage", None)
        if passage:  # a document passage that may answer: quoted, with the question buttons (if any) below
            more = " 아래 질문 중에 찾으시는 것이 있으면 눌러 주세요." if answer.candidates else ""
            return (_quoted(answer.answer, passage, answer, score)  # answer.clarify_passage, as the API says
                    + f"<p><small>💡 확실하지 않아 문서의 해당 부분을 보여 드려요.{more}</small></p>")
        return (
            f"<p><b>{text_html(answer.answer)}</b></p>"  # answer.clarify, as the API says
            "<p><small>💡 아래에서 찾으시는 질문을 눌러 주세요. 없으면 다른 표현으로 다시 물어봐 주세요.</small></p>"
        )
    if not answer.hits and not answer.suggestions:  # nothing was searched (a greeting, a thank-you, emoji only)
        return f"<p>{text_html(answer.answer)}</p>"
    hint = "아래 추천 질문을 누르면 바로 물어볼 수 있어요." if answer.suggestions else "다른 표현으로 다시 물어봐 주세요."
    best = f" (가장 가까운 후보의 {score})" if answer.score else ""
    return f"<p>{text_html(answer.answer)}</p><p><small>💡 {hint}{best}</small></p>"


def _quoted(title: str, passage: str, answer: Answer, score: str) -> str:
    """A document passage quoted under a title, with its files and the score line."""
    sources = "<br>".join(f"📄 {text_html(describe_source(s))}" for s in answer.sources)
    return (
        f"<p><b>{text_html(title)}</b></p>"
        f"<blockquote>{text_html(passage)}</blockquote>"
        f"<p><small>{sources}<br>{score}</small></p>"
    )


def error_html(message: Any) -> str:
    return f"<p>{text_html(message)}</p>"


def status_markdown(state: str, detail: str) -> str:
    """The status line above the chat while the service starts (empty once ready)."""
    if state == "error":
        return f"⚠️ 챗봇을 시작하지 못했습니다: {md_text(detail)}"
    if state != "ready":
        return f"⏳ 준비 중입니다… {md_text(detail)}"
    return ""
