"""`python -m ingest faq FILE…` / `python -m ingest docs PATH…` (console script `faqbot-ingest`).

Prints one line of counts per file, the total, and every rejection as `file:line: reason`.
Exit status: 0 success, 1 some rows or files rejected, 2 fatal (missing path, model or store error,
encoder mismatch, an embedded store owned by a running app), 130 interrupted (a rerun finishes the job).

An embedded Chroma folder belongs to one process: the CLI claims it for its run and refuses (exit 2)
when a running app owns it, since the app's in-process client would not see what the CLI writes.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from chatbot.cli_errors import describe, fatal

log = logging.getLogger("ingest")

EXIT_OK, EXIT_REJECTED, EXIT_INTERRUPTED = 0, 1, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        description="FAQ 파일과 문서를 색인합니다 (ingest FAQ files and documents into the store). "
        "같은 파일을 다시 넣으면 바뀐 것만 반영됩니다 (re-ingesting only applies changes).",
    )
    sub = parser.add_subparsers(dest="kind", required=True, metavar="{faq,docs}")
    for kind, help_text, paths_help in (
        ("faq", "FAQ 표 (.csv .tsv .jsonl .json .xlsx)", "FAQ 파일 또는 폴더 (FAQ files or folders)"),
        ("docs", "문서 (.txt .md .pdf .docx .html .hwpx)", "문서 파일 또는 폴더 (document files or folders, recursive)"),
    ):
        p = sub.add_parser(kind, help=help_text, description=help_text)
        p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help=paths_help)
        p.add_argument("--dry-run", action="store_true", help="바뀔 내용만 보여 주고 저장하지 않음 (show counts, write nothing)")
        p.add_argument(
            "--rebuild", action="store_true",
            help="이 종류를 모두 다시 인코딩하고 목록에 없는 출처는 지움; 인코더가 바뀌었으면 컬렉션을 새로 만듦 "
            "(re-encode everything of this kind, drop its other sources; recreate the collection after an encoder change)",
        )
        p.add_argument("--quiet", "-q", action="store_true", help="진행 표시와 안내 로그 없이 (no progress bar or info logs)")
        p.add_argument("--verbose", "-v", action="store_true", help="자세한 로그와 오류 추적 (debug logs, tracebacks)")
    return parser


def _configure_logging(quiet: bool, verbose: bool) -> None:
    if quiet:
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # transformers' "Loading weights" bar
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    for name in ("ingest", "chatbot"):
        logging.getLogger(name).setLevel(level)



def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.quiet, args.verbose)
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        return fatal(f"경로가 없습니다 (not found): {', '.join(missing)}")

    from chatbot.settings import load_settings
    from chatbot.store_claim import claimed
    from ingest.sync import ingest_paths

    try:
        settings = load_settings()
        with claimed(settings.store):
            report = ingest_paths(
                settings, args.kind, args.paths, dry_run=args.dry_run, rebuild=args.rebuild, show_progress=not args.quiet
            )
    except KeyboardInterrupt:
        print("중단되었습니다. 다시 실행하면 이어서 완료합니다 (interrupted; rerun to finish).", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a clear message, no traceback (unless --verbose)
        if args.verbose:
            log.exception("ingest failed")
        return fatal(describe(exc))

    print(format_report(report))
    return EXIT_REJECTED if report.rejected else EXIT_OK


def format_report(report) -> str:
    """Per-source lines, the total, notes and rejections (the CLI's output; the web app has its own table)."""
    lines: list[str] = []
    if report.dry_run:
        lines.append("[미리보기 dry run] 저장하지 않았습니다 (nothing written).")
    lines.extend(str(counts) for counts in report.sources.values())
    if len(report.sources) != 1:
        lines.append(str(report.total()))
    lines.extend(report.notes)
    if report.store_count is not None:
        lines.append(f"저장소 레코드 수 (records in store): {report.store_count:,}")
    if report.rejected:
        lines.append(f"거부 (rejected) {len(report.rejected):,}:")
        lines.extend(f"  {rejection}" for rejection in report.rejected)
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
