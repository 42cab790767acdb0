"""Chat page + JSON API on one server: `python app.py [--host 127.0.0.1] [--port 7860] [--workers N]`.

The page is at /, the API at /api/ask, /api/health, /api/feedback (OpenAPI docs at /docs).
All logic lives in the chatbot/web package; settings come from configs/default.yaml and FAQBOT_* variables.
--workers N runs N worker processes on one port (each loads its own model, ~RSS per process in README);
they need server-mode Chroma (store.host), since an embedded Chroma folder belongs to one process.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

WORKER_FACTORY = "chatbot.web.app:create_app_from_env"


def workers_refusal(workers: int, store_host: str | None) -> str | None:
    """Why --workers cannot be used with these settings (None when it can)."""
    if workers > 1 and not store_host:
        return (
            f"--workers {workers}: 내장 Chroma 저장소는 한 프로세스만 쓸 수 있습니다. Chroma 서버(`chroma run`)를 띄우고 "
            "FAQBOT_STORE__HOST / FAQBOT_STORE__PORT 로 서버 모드를 쓰세요. "
            f"(--workers {workers} needs server-mode Chroma: the embedded store folder is single-process. "
            "Start `chroma run --path DIR` and set FAQBOT_STORE__HOST and FAQBOT_STORE__PORT.)"
        )
    return None


def main(argv: list[str] | None = None) -> int:
    from chatbot.settings import load_settings

    settings = load_settings()
    parser = argparse.ArgumentParser(description="한국어 FAQ 챗봇: 채팅 페이지와 JSON API")
    parser.add_argument("--host", default=settings.app.host, help=f"listen address (default {settings.app.host})")
    parser.add_argument("--port", type=int, default=settings.app.port, help=f"port (default {settings.app.port})")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--workers", type=int, default=1, help="worker processes on this port (> 1 needs a Chroma server)")
    args = parser.parse_args(argv)
    refusal = workers_refusal(args.workers, settings.store.host)
    if refusal:
        print(refusal, file=sys.stderr)
        return 2

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faqbot").setLevel(logging.INFO)  # start-up progress is always shown
    import uvicorn

    from chatbot.web.app import create_app, main_url, warn_if_exposed

    settings = settings.with_overrides(app={"host": args.host, "port": args.port})
    warn_if_exposed(settings, args.host)
    logging.getLogger("faqbot").info("%s 에서 열립니다 (API: /api/ask, /api/health, 문서: /docs).", main_url(args.host, args.port))
    if args.workers > 1:  # each worker process imports the factory and builds its app from the environment
        os.environ.update({"FAQBOT_APP__HOST": args.host, "FAQBOT_APP__PORT": str(args.port)})
        uvicorn.run(WORKER_FACTORY, factory=True, workers=args.workers, host=args.host, port=args.port,
                    log_level=args.log_level, timeout_graceful_shutdown=5)
        return 0
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
