"""Chat page + JSON API on one server: `python app.py [--host 127.0.0.1] [--port 7860]`.

The page is at /, the API at /api/ask, /api/health, /api/feedback (OpenAPI docs at /docs).
All logic lives in the chatbot/web package; settings come from configs/default.yaml and FAQBOT_* variables.
"""
from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    from chatbot.settings import load_settings

    settings = load_settings()
    parser = argparse.ArgumentParser(description="한국어 FAQ 챗봇: 채팅 페이지와 JSON API")
    parser.add_argument("--host", default=settings.app.host, help=f"listen address (default {settings.app.host})")
    parser.add_argument("--port", type=int, default=settings.app.port, help=f"port (default {settings.app.port})")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faqbot").setLevel(logging.INFO)  # start-up progress is always shown
    import uvicorn

    from chatbot.web.app import create_app, main_url, warn_if_exposed

    settings = settings.with_overrides(app={"host": args.host, "port": args.port})
    warn_if_exposed(settings, args.host)
    app = create_app(settings)
    logging.getLogger("faqbot").info("%s 에서 열립니다 (API: /api/ask, /api/health, 문서: /docs).", main_url(args.host, args.port))
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
