"""The Gradio page: layout and wiring only; what each event does lives in handlers.py.

Access: the operator tab (upload + ingest, collection statistics) is the only part that changes
anything, so settings.app.password protects that part, not the whole page: an FAQ chat is meant for
anyone, and Gradio's login would not cover the /api routes anyway. Every operator action re-checks
the password sent with it on the server (constant-time compare, per-client back-off), so hiding the
controls is only convenience.
"""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no phoning home from an offline server

import gradio as gr  # noqa: E402 - after the analytics switch

from chatbot.pipeline import Pipeline  # noqa: E402
from chatbot.web import handlers  # noqa: E402
from chatbot.web.handlers import Operator, OperatorError  # noqa: E402
from chatbot.web.operator_ui import build_operator_tabs  # noqa: E402
from chatbot.web.render import status_markdown  # noqa: E402
from chatbot.web.reports import COUNT_LABELS, COUNT_NAMES  # noqa: E402
from chatbot.web.service import ALL_CATEGORIES, Service  # noqa: E402
from ingest.doc_readers import DOC_SUFFIXES  # noqa: E402
from ingest.faq_readers import FAQ_SUFFIXES  # noqa: E402


def _client(request: gr.Request | None) -> str:
    client = getattr(request, "client", None)
    return str(getattr(client, "host", None) or "unknown")


def _session(request: gr.Request | None) -> str | None:
    """Gradio's random per-page-load id: an anonymous session for the question log."""
    return getattr(request, "session_hash", None)


def build_ui(target: "Pipeline | Service", upload_folder: Path | None = None, cache_age_s: int | None = None) -> gr.Blocks:
    """The page: chat tab (examples, category filter, 👍/👎, suggestion buttons) and operator tab (ingest, stats)."""
    service = Service.of(target)
    need_password = bool(service.settings.app.password)
    operator_actions = Operator(service, Path(upload_folder or os.environ.get("GRADIO_TEMP_DIR") or "/nonexistent"))

    def chat_turn(question, history, category, meta, request: gr.Request):
        return handlers.chat_turn(service, question, history, category, meta, _session(request))

    def ask_example(sample, history, category, meta, request: gr.Request):
        return handlers.chat_turn(service, (sample or [""])[0], history, category, meta, _session(request))

    def ask_option(history, category, meta, event: gr.SelectData, request: gr.Request):
        handlers.record_option_click(service, meta, str(event.value), _session(request))
        return handlers.chat_turn(service, str(event.value), history, category, meta, _session(request))

    def like(meta, event: gr.LikeData, request: gr.Request) -> None:
        thanks = handlers.like(service, meta, event.index, event.liked, _session(request))
        if thanks:
            gr.Info(thanks)

    def refresh_page():
        catalog = service.catalog()
        return (
            gr.Markdown(status_markdown(service.state, service.detail), visible=not service.ready),
            gr.Dropdown(choices=[ALL_CATEGORIES, *catalog.categories], visible=bool(catalog.categories)),
            gr.Dataset(samples=[[q] for q in catalog.examples], visible=bool(catalog.examples)),
            gr.Timer(active=service.state in ("starting", "loading")),
        )

    def checked(password: str, request: gr.Request | None, need_ready: bool = True) -> None:
        try:
            operator_actions.check(password, _client(request))
            if need_ready:
                operator_actions.require_ready()
        except OperatorError as exc:
            raise gr.Error(str(exc)) from exc

    def unlock(password: str, request: gr.Request):
        try:
            operator_actions.check(password, _client(request))
        except OperatorError as exc:
            return gr.Column(visible=False), f"❌ {exc}", gr.skip(), gr.skip()
        stats = operator_actions.stats() if service.ready else (gr.skip(), gr.skip())
        return gr.Column(visible=True), "🔓 잠금이 해제되었습니다.", *stats

    def stats_on_tab(password: str, request: gr.Request):
        """Statistics when already unlocked and loaded; no password check counted for merely opening the tab."""
        if service.ready and service.check_password(password) and operator_actions.throttle.wait_s(_client(request)) == 0:
            return operator_actions.stats()
        return gr.skip(), gr.skip()

    def run_ingest(files, dry_run: bool, password: str, request: gr.Request, progress=gr.Progress()):
        checked(password, request)
        try:
            result = operator_actions.ingest(files, dry_run, lambda f, m="": progress(f, desc=m))
        except OperatorError as exc:
            raise gr.Error(str(exc)) from exc
        return *result, *operator_actions.stats()

    def cancel_ingest(password: str, request: gr.Request):
        checked(password, request, need_ready=False)
        return operator_actions.cancel()

    def show_stats(password: str, request: gr.Request):
        checked(password, request)
        return operator_actions.stats()

    with gr.Blocks(title="FAQ 챗봇", analytics_enabled=False, delete_cache=(max(1, (cache_age_s or 3600) // 4), cache_age_s or 3600)) as demo:
        gr.Markdown(
            "## 🙋 FAQ 챗봇\n"
            "자주 묻는 질문과 안내 문서에서 답을 찾아 드립니다. 답마다 근거가 된 질문·출처·점수를 함께 보여 드려요."
        )
        status = gr.Markdown(status_markdown(service.state, service.detail), visible=not service.ready, elem_id="status")
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
                    label="상담", show_label=False, elem_id="chat", height="62vh", min_height=420,
                    render_markdown=False, sanitize_html=True, latex_delimiters=[], allow_tags=False, buttons=[],
                    feedback_options=("Like", "Dislike"),
                    placeholder="궁금한 점을 아래에 입력하거나 예시 질문을 눌러 보세요.", autoscroll=True,
                )
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        placeholder="궁금한 점을 입력하세요 (Enter로 보내기)", show_label=False, scale=8, elem_id="question",
                        max_lines=4, autofocus=True, max_length=service.settings.answer.max_question_chars,
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
                lock_message = gr.Markdown(elem_id="operator-lock")
                with gr.Column(visible=not need_password) as operator:
                    with gr.Row():
                        with gr.Column(scale=3):
                            files = gr.File(
                                label="파일 올리기 (FAQ와 문서는 확장자로 구분합니다)", file_count="multiple",
                                file_types=[*FAQ_SUFFIXES, *DOC_SUFFIXES], elem_id="upload",
                            )
                            dry_run = gr.Checkbox(label="미리보기만 (저장하지 않고 개수만 확인)", value=False)
                            with gr.Row():
                                ingest_btn = gr.Button("색인하기", variant="primary", elem_id="ingest")
                                cancel_btn = gr.Button("색인 멈추기", variant="stop", elem_id="cancel-ingest")
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
            build_operator_tabs(service, operator_actions, password)  # operator loop tabs (chatbot/web/operator_ui.py)
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
        operator_tab.select(stats_on_tab, [password], [stats_md, sources], **on)
        ingest_btn.click(
            run_ingest, [files, dry_run, password], [summary, counts, rejected, stats_md, sources],
            concurrency_limit=1, concurrency_id="ingest", **on,
        ).then(refresh_page, None, page_outputs, **on)
        cancel_btn.click(cancel_ingest, [password], [summary], **on)
        stats_btn.click(show_stats, [password], [stats_md, sources], **on)
    return demo
