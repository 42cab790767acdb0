"""python -m chatbot.report: markdown + PNGs from the question log, and labelled questions as evaluation CSV."""
from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone

from chatbot.evaluation import read_cases
from chatbot.operator.labels import label_questions
from chatbot.questionlog import FeedbackEntry, QuestionEntry, open_log
from chatbot.report import main


def fill_log(settings) -> dict[str, str]:
    log = open_log(settings)
    day = timedelta(days=1)
    now = datetime.now(timezone.utc)
    ids = {}
    for i, (text, outcome) in enumerate([("배송 언제 와요", "answer"), ("주차 요금", "fallback"), ("주차비 얼마", "fallback"),
                                          ("환불 할래요", "clarify")]):
        ids[text] = log.record(QuestionEntry(text, outcome=outcome, top=[("ship-1", 0.995)], latency_ms=10.0 * (i + 1),
                                             time=now - day * (i % 2)))
    log.record_feedback(FeedbackEntry(kind="rating", question_id=ids["배송 언제 와요"], rating="up"))
    log.flush()
    label_questions(log.engine, {ids["주차 요금"]: "주차 요금"}, "out_of_scope", None, "kim")
    label_questions(log.engine, {ids["환불 할래요"]: "환불 할래요"}, "answer", "refund-1", "kim")
    log.close()
    return ids


def test_report_writes_markdown_and_charts(make_settings, tmp_path, monkeypatch):
    settings = make_settings(operator={"score_margin": 0.0})  # tiny model: threshold 0.99
    fill_log(settings)
    monkeypatch.setattr("chatbot.report.load_settings", lambda: settings)
    assert main(["--since", "7d", "--out", str(tmp_path / "r")]) == 0
    text = (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
    assert "질문 수: **4**" in text and "답 없음 50.0%" in text and "👍 비율: 100%" in text
    assert "| ship-1 | 1 |" in text and "p50 25 ms" in text
    assert "주차비 얼마" in text  # the one unlabelled unanswered cluster
    assert (tmp_path / "r" / "outcomes.png").stat().st_size > 1000 and (tmp_path / "r" / "latency.png").exists()


def test_export_questions_is_read_by_evaluate(make_settings, tmp_path, monkeypatch):
    settings = make_settings(operator={"score_margin": 0.0})  # tiny model: threshold 0.99
    fill_log(settings)
    monkeypatch.setattr("chatbot.report.load_settings", lambda: settings)
    out = tmp_path / "labelled.csv"
    assert main(["export-questions", "--out", str(out)]) == 0
    assert list(csv.reader(out.open(encoding="utf-8"))) == [["question", "expected_id"], ["주차 요금", ""], ["환불 할래요", "refund-1"]]
    cases = read_cases(out)
    assert [(c.question, sorted(c.expected)) for c in cases] == [("주차 요금", []), ("환불 할래요", ["refund-1"])]
