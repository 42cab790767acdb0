"""Terminal chat: `python -m chatbot.chat` answers with source and score (same Answerer as the web page)."""
from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid

from chatbot.answer import QuestionError, describe_source
from chatbot.cli_errors import describe, fatal
from chatbot.questionlog import entry_from_answer, open_log
from chatbot.modes import MODES
from chatbot.pipeline import open_pipeline
from chatbot.records import Answer
from chatbot.settings import load_settings


def format_answer(answer: Answer) -> str:
    lines: list[str] = [f"(“{answer.read_as}”(으)로 찾았어요)"] if answer.read_as else []
    if answer.type == "faq":
        lines.append(f"[FAQ · 점수 {answer.score:.3f}{_confidence(answer.p)}] {answer.matched_question}")
        lines.append(answer.answer)
    elif answer.type == "doc":
        lines.append(f"[문서 · 점수 {answer.score:.3f}{_confidence(answer.p)}]")
        lines.append(f"“{answer.answer}”")
    elif answer.type == "clarify":
        lines.append(answer.answer)
        if answer.passage:
            where = describe_source(answer.sources[0]) if answer.sources else ""
            lines.append(f"  [문서 · {where}{_confidence(answer.p)}] “{answer.passage}”")
        for i, candidate in enumerate(answer.candidates, 1):
            lines.append(f"  {i}. {candidate.get('question', '')}" + _confidence(candidate.get("p")))
        lines.append("  (번호를 입력하면 그 질문으로 답합니다.)")
        return "\n".join(lines)
    else:
        lines.append(answer.answer + (f" (최고 점수 {answer.score:.3f})" if answer.score else ""))
    for source in answer.sources:
        lines.append(f"  출처: {describe_source(source)}")
    for i, suggestion in enumerate(answer.suggestions, 1):
        lines.append(f"  {i}. {suggestion}")
    return "\n".join(lines)


def _confidence(p: float | None) -> str:
    return f" · 확신도 {p:.0%}" if p is not None else ""


def pick_candidate(line: str, previous: Answer | None) -> str:
    """A bare number after a clarify (or fallback) answer asks the numbered question instead."""
    if previous is None or not line.strip().isdigit():
        return line
    options = [str(c.get("question", "")) for c in previous.candidates] or list(previous.suggestions)
    n = int(line.strip())
    return options[n - 1] if 1 <= n <= len(options) else line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="한국어 FAQ 챗봇 (terminal)")
    parser.add_argument("question", nargs="*", help="ask once and exit; without it, an interactive prompt")
    parser.add_argument("--mode", choices=MODES, default=None)
    parser.add_argument("--category", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:  # a broken or busy store, a missing model: the same one-line message as the ingest command
        settings = load_settings()
        pipeline = open_pipeline(settings)
        if pipeline.store.count() == 0:
            return fatal("저장소가 비어 있습니다. 먼저 `python -m ingest faq data/faq.csv`로 FAQ를 넣어 주세요. (The store is empty.)")
    except Exception as exc:
        return fatal(describe(exc))
    questions_log = open_log(settings)
    session = uuid.uuid4().hex
    questions = [" ".join(args.question)] if args.question else None
    previous: Answer | None = None
    try:
        while True:
            question = questions.pop() if questions else _prompt()
            if question is None:
                return 0
            question = pick_candidate(question, previous)
            try:
                started = time.perf_counter()
                previous = pipeline.answerer.ask(question, mode=args.mode, category=args.category)
                print(format_answer(previous))
                if questions_log is not None:
                    questions_log.record(entry_from_answer(
                        question, previous, channel="terminal", mode=args.mode or settings.retrieval.mode,
                        category=args.category, session=session, latency_ms=(time.perf_counter() - started) * 1000,
                    ))
            except QuestionError as exc:
                print(str(exc))
            except Exception as exc:  # the store went away mid-session: say so, keep the prompt
                print(f"오류 (error): {describe(exc)}", file=sys.stderr)
            if args.question:
                return 0
    finally:
        if questions_log is not None:
            questions_log.close()


def _prompt() -> str | None:
    try:
        line = input("\n질문> ")
    except (EOFError, KeyboardInterrupt):
        return None
    return None if line.strip() in {"exit", "quit", "종료"} else line


if __name__ == "__main__":
    sys.exit(main())
