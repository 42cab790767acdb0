"""Upkeep commands for the question log.

    python -m chatbot.questionlog purge [--days N]     # delete rows older than N (default log.retention_days)
    python -m chatbot.questionlog stats [--days N]     # counts per outcome and day over the last N days
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta, timezone

from chatbot.questionlog.factory import migrated_engine
from chatbot.questionlog.reader import stats
from chatbot.questionlog.retention import purge
from chatbot.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chatbot.questionlog", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    purge_cmd = commands.add_parser("purge", help="delete questions and feedback older than the retention")
    purge_cmd.add_argument("--days", type=int, default=None, help="default: log.retention_days")
    stats_cmd = commands.add_parser("stats", help="counts per outcome and per day")
    stats_cmd.add_argument("--days", type=int, default=30)
    args = parser.parse_args(argv)

    settings = load_settings()
    with migrated_engine(settings) as engine:
        if args.command == "purge":
            days = settings.log.retention_days if args.days is None else args.days
            result = purge(engine, days)
            print(f"deleted {result.questions} questions and {result.feedback} feedback rows older than {result.cutoff.isoformat(timespec='seconds')}")
        else:
            since = datetime.now(timezone.utc) - timedelta(days=args.days)
            print(json.dumps(stats(engine, since).__dict__, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
