"""Everything together: FastAPI with /api/*, the Gradio page at "/", and the request guard in front."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from fastapi import FastAPI

from chatbot.pipeline import Pipeline
from chatbot.settings import Settings, load_settings

log = logging.getLogger("faqbot")

CSS = """
#chat .message-wrap p { margin: 0.2em 0; }
#chat blockquote { border-left: 3px solid var(--border-color-primary); margin: 0.3em 0; padding-left: 0.8em; }
footer { display: none !important; }
"""
FONTS = ["Pretendard", "Noto Sans KR", "NanumGothic", "Nanum Gothic", "Malgun Gothic", "Apple SD Gothic Neo", "sans-serif"]


def upload_folder(settings: Settings) -> Path:
    """This app's own upload folder (Gradio's GRADIO_TEMP_DIR), created before Gradio is imported."""
    folder = Path(settings.app.upload_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    return folder


def create_app(settings: Settings | None = None, pipeline: Pipeline | None = None) -> FastAPI:
    """FastAPI with /api/* and the Gradio page at "/"; the pipeline loads when the server starts."""
    settings = settings or load_settings()
    folder = upload_folder(settings)
    import gradio as gr

    from chatbot.web.api import build_api
    from chatbot.web.guard import RequestGuard
    from chatbot.web.operator_api import include_operator_api
    from chatbot.web.service import Service
    from chatbot.web.ui import build_ui

    service = Service(settings, pipeline)
    app = build_api(service)
    include_operator_api(app, service)  # operator loop: /api/operator/* (chatbot/web/operator_api.py)
    demo = build_ui(service, upload_folder=folder, cache_age_s=settings.app.upload_max_age_s)
    demo.queue(default_concurrency_limit=4, max_size=settings.app.queue_max_size)
    theme = gr.themes.Soft(font=FONTS, font_mono=["ui-monospace", "monospace"])  # local fonts: no CDN request
    app = gr.mount_gradio_app(
        app, demo, path="/", theme=theme, css=CSS, footer_links=[], show_error=True,
        max_file_size=f"{settings.app.max_upload_mb}mb", ssr_mode=False, run_history=False,
    )
    app.add_middleware(RequestGuard, settings=settings.app, upload_folder=folder)
    return app


def create_app_from_env() -> FastAPI:
    """The app of one uvicorn worker (`python app.py --workers N`): workers are separate processes that
    import this by name, so each builds its own app from configs/*.yaml and FAQBOT_* variables."""
    return create_app(load_settings())


def main_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{shown}:{port}/"


def warn_if_exposed(settings: Settings, host: str) -> None:
    if host not in ("127.0.0.1", "localhost", "::1") and not settings.app.password:
        log.warning(
            "경고: %s에서 외부 접속을 받지만 운영자 비밀번호가 없습니다. 운영 탭(파일 색인)이 누구에게나 열립니다. "
            "FAQBOT_APP__PASSWORD를 설정하세요.", host,
        )
