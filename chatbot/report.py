"""Analytics from the question log, and the operator's labels as evaluation data.

    python -m chatbot.report [--since 7d] [--out DIR] [--no-clusters]
        DIR/report.md + outcomes.png + latency.png: questions per day, answer/clarify/fallback rates,
        👍/👎 ratio, most-asked FAQs, biggest unanswered clusters (encoder only, no store), p50/p95 latency
    python -m chatbot.report export-questions --out FILE
        labelled inbox questions as a CSV (question, expected_id; empty = out of scope) for chatbot.evaluate
"""
from __future__ import annotations

import argparse
from pathlib import Path

from sqlalchemy import Engine, select

from chatbot.operator.analytics import Analytics, compute_analytics, summary_markdown
from chatbot.operator.labels import labelled_examples
from chatbot.operator.period import parse_since
from chatbot.questionlog.factory import migrated_engine
from chatbot.questionlog.schema import questions
from chatbot.settings import Settings, load_settings
from chatbot.spreadsheet_safety import safe_csv_writer

CLUSTERS_SHOWN = 10


def write_report(settings: Settings, engine: Engine, since_text: str, out: Path, clusters: bool = True) -> Path:
    from chatbot.operator.charts import latency_figure, outcomes_figure

    since = parse_since(since_text, settings.operator.inbox_days)
    data = compute_analytics(engine, since)
    out.mkdir(parents=True, exist_ok=True)
    outcomes_figure(data).savefig(out / "outcomes.png", dpi=100)
    latency_figure(_latencies(engine, since)).savefig(out / "latency.png", dpi=100)
    parts = [f"# FAQ 챗봇 보고서 ({since:%Y-%m-%d} 이후)", summary_markdown(data), "![날짜별 질문](outcomes.png)",
             _per_day_table(data), _top_faqs(data), "![응답 시간](latency.png)"]
    if clusters:
        parts.append(_clusters_section(settings, engine, since))
    path = out / "report.md"
    path.write_text("\n\n".join(p for p in parts if p) + "\n", encoding="utf-8")
    return path


def _latencies(engine: Engine, since) -> list[float]:
    with engine.connect() as conn:
        query = select(questions.c.latency_ms).where(questions.c.time >= since, questions.c.latency_ms.is_not(None))
        return [float(v) for v in conn.execute(query).scalars()]


def _per_day_table(data: Analytics) -> str:
    rows = [f"| {day} | {sum(c.values()):,} | {c.get('answer', 0):,} | {c.get('passage', 0):,} | {c.get('clarify', 0):,} | {c.get('fallback', 0):,} |"
            for day, c in data.per_day.items()]
    head = "| 날짜 | 질문 | 답변 | 문서 | 되묻기 | 답 없음 |\n|---|---|---|---|---|---|"
    return "## 날짜별\n\n" + head + "\n" + "\n".join(rows) if rows else ""


def _top_faqs(data: Analytics) -> str:
    rows = "\n".join(f"| {faq_id} | {n:,} |" for faq_id, n in data.top_faqs)
    return f"## 많이 답한 FAQ\n\n| FAQ | 횟수 |\n|---|---|\n{rows}" if rows else ""


def _clusters_section(settings: Settings, engine: Engine, since) -> str:
    """Biggest clusters of unanswered questions; loads only the encoder (the store may belong to the app)."""
    from chatbot.encoder import load_encoder
    from chatbot.operator.inbox import build_clusters, inbox_questions

    items = inbox_questions(engine, since, settings.operator, threshold=settings.answer.threshold)
    if not items:
        return "## 답하지 못한 질문 묶음\n\n없습니다."
    encoder = load_encoder(settings.encoder)
    cfg = settings.operator
    clusters = build_clusters(items, encoder.encode_questions, cfg.cluster_distance, cfg.cluster_sample)[:CLUSTERS_SHOWN]
    rows = "\n".join(f"| {c.size:,} | {c.examples[0].replace('|', '/')} | {c.last_seen:%Y-%m-%d} |" for c in clusters)
    return f"## 답하지 못한 질문 묶음 (큰 순서)\n\n| 질문 수 | 대표 질문 | 마지막 |\n|---|---|---|\n{rows}"


def export_questions(engine: Engine, out: Path) -> int:
    """Labelled questions → question,expected_id (the columns chatbot.evaluate reads); returns the row count."""
    rows = labelled_examples(engine)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = safe_csv_writer(handle)
        writer.writerow(["question", "expected_id"])
        writer.writerows(rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chatbot.report", description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=["report", "export-questions"], default="report")
    parser.add_argument("--since", default=None, help="7d, 24h or a date (default: operator.inbox_days)")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default var/report) or CSV file")
    parser.add_argument("--no-clusters", action="store_true", help="skip the unanswered clusters (no model load)")
    args = parser.parse_args(argv)
    settings = load_settings()
    try:
        with migrated_engine(settings) as engine:
            if args.command == "export-questions":
                out = args.out or Path("var/labelled_questions.csv")
                print(f"{export_questions(engine, out):,} labelled questions → {out}")
            else:
                path = write_report(settings, engine, args.since or "", args.out or Path("var/report"), not args.no_clusters)
                print(f"report → {path}")
    except ValueError as exc:  # e.g. an unreadable --since
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
