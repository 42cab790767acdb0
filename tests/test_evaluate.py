"""Evaluation metrics on hand-made rankings, and `python -m chatbot.evaluate` end to end (tiny model)."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from chatbot.evaluate import main
from chatbot.evaluation import (
    Case, FaqItem, counts_at_threshold, decision_counts, faq_records, first_relevant_rank, hit_at, ndcg_at,
    hit_label, read_cases, reciprocal_rank, recommend_threshold, summarise, temporary_pipeline, Outcome,
)
from chatbot.pipeline import open_pipeline
from chatbot.records import Hit

# --- metrics -------------------------------------------------------------------------------------------------


def test_ranks_and_reciprocal_rank():
    ranked = ["a", "b", "c", "d"]
    assert first_relevant_rank(ranked, {"c"}) == 3
    assert first_relevant_rank(ranked, {"x"}) is None
    assert first_relevant_rank(ranked, {"c"}, k=2) is None
    assert reciprocal_rank(ranked, {"b"}) == 0.5
    assert reciprocal_rank(ranked, {"d", "b"}) == 0.5  # equivalent FAQs: the first one counts
    assert reciprocal_rank(ranked, {"d"}, k=3) == 0.0
    assert reciprocal_rank([], {"a"}) == 0.0


def test_recall_and_ndcg():
    ranked = ["a", "b", "c"]
    assert hit_at(ranked, {"a"}, 1) == 1.0
    assert hit_at(ranked, {"c"}, 1) == 0.0 and hit_at(ranked, {"c"}, 3) == 1.0
    assert ndcg_at(ranked, {"a"}) == 1.0
    assert ndcg_at(ranked, {"b"}) == pytest.approx(1 / math.log2(3))
    assert ndcg_at(ranked, {"z"}) == 0.0


def test_decision_counts_and_fallback_precision_recall():
    # answered?, top-1 right?, in scope?
    answered = [True, True, False, False, True, False]
    right = [True, False, False, False, False, True]
    in_scope = [True, True, True, False, False, True]
    c = decision_counts(answered, right, in_scope)
    assert (c.correct, c.wrong, c.answerable, c.out_of_scope) == (1, 2, 4, 2)
    assert c.precision == pytest.approx(1 / 3) and c.recall == pytest.approx(1 / 4)
    assert c.f1 == pytest.approx(2 * (1 / 3) * (1 / 4) / (1 / 3 + 1 / 4))
    assert c.fallbacks == 3 and c.fallback_precision == pytest.approx(1 / 3)  # one of three fallbacks was out of scope
    assert c.fallback_recall == pytest.approx(1 / 2)  # one of two out-of-scope questions fell back


def test_recommended_threshold_separates_right_from_wrong():
    scores = [0.95, 0.92, 0.90, 0.80, 0.70, 0.60]
    right = [True, True, True, False, False, False]
    in_scope = [True, True, True, True, False, False]
    threshold, f1 = recommend_threshold(scores, right, in_scope)
    assert threshold == pytest.approx(0.85)  # halfway between 0.90 (accepted) and 0.80 (rejected)
    assert f1 == pytest.approx(counts_at_threshold(scores, right, in_scope, threshold).f1)
    assert f1 == pytest.approx(2 * 1 * 0.75 / 1.75)
    assert recommend_threshold([], [], [])[1] == 0.0


def test_summarise_uses_only_answerable_questions_for_ranking_metrics():
    cases = [Case("q1", frozenset({"a"}), "a"), Case("q2", frozenset({"b"}), "b"), Case("q3")]
    outcomes = [
        Outcome(cases[0], ("a", "b"), 0.9, "faq", "a", 10.0),
        Outcome(cases[1], ("a", "b"), 0.8, "faq", "a", 20.0),
        Outcome(cases[2], ("c",), 0.5, "fallback", None, 30.0),
    ]
    report = summarise("dense", outcomes, threshold=0.7)
    m = report.metrics
    assert m["top1"] == 0.5 and m["mrr@10"] == 0.75 and m["r@3"] == 1.0
    assert m["fallback_precision"] == 1.0 and m["fallback_recall"] == 1.0
    assert m["p50_ms"] == 20.0
    assert report.recommended == pytest.approx(0.85) and report.recommended_f1 == pytest.approx(2 / 3)


def test_read_cases_by_id_and_by_answer_text(tmp_path: Path):
    by_id = tmp_path / "q.csv"
    by_id.write_text("question,expected_id\n배송 언제 와요,ship-1\n날씨 어때,\n,ship-1\n", encoding="utf-8")
    cases = read_cases(by_id)
    assert [c.answerable for c in cases] == [True, False] and cases[0].expected == {"ship-1"}

    records = faq_records([FaqItem("배송은 얼마나 걸리나요?", "ship-1", "2~3일 걸립니다."),
                           FaqItem("택배 언제 와요", "ship-2", "2~3일 걸립니다."),
                           FaqItem("환불은 어떻게 받나요?", "refund-1", "3영업일 안에 환불됩니다.")])
    from chatbot.store import StoredRecords

    stored = StoredRecords([r.id for r in records], [r.text for r in records], [r.metadata for r in records])
    by_answer = tmp_path / "a.csv"
    by_answer.write_text("question,expected_answer\n배송 기간,2~3일  걸립니다.\n", encoding="utf-8")
    [case] = read_cases(by_answer, stored)
    assert case.expected == {"ship-1", "ship-2"}
    with pytest.raises(ValueError, match="expected_id"):
        bad = tmp_path / "bad.csv"
        bad.write_text("question,answer\n질문,답\n", encoding="utf-8")
        read_cases(bad)


def test_document_questions_are_judged_by_source_file(tmp_path: Path):
    path = tmp_path / "d.csv"
    path.write_text("question,expected_source\n가입은 몇 살부터?,docs/이용약관.md\n", encoding="utf-8")
    [case] = read_cases(path)
    doc = Hit("doc-1", "만 14세 이상", "doc", 0.9, {"source": "/data/docs/이용약관.md"})
    faq = Hit("faq-1", "회원가입", "faq", 0.95, {"source": "faq.csv", "faq_id": "account-1"})
    assert case.answerable and hit_label(doc) in case.expected and hit_label(faq) not in case.expected


# --- end to end ------------------------------------------------------------------------------------------------
FAQS = [
    ("ship-1", "배송", "배송은 얼마나 걸리나요?", ["택배는 언제 도착해요?"], "주문 후 2~3일 안에 도착합니다."),
    ("refund-1", "환불", "환불은 어떻게 받나요?", ["돈 돌려받고 싶어요"], "반품이 확인되면 3영업일 안에 환불됩니다."),
    ("account-1", "회원", "비밀번호를 잊어버렸어요", ["로그인 password 찾기"], "로그인 화면에서 비밀번호 찾기를 누르세요."),
    ("coupon-1", "쿠폰", "쿠폰은 어디에서 입력하나요?", [], "결제 화면에서 쿠폰 코드를 입력합니다."),
]
QUESTIONS = [
    ("배송은 얼마나 걸리나요?", "ship-1"),
    ("택배 언제 도착해요", "ship-1"),
    ("환불 어떻게 받아요", "refund-1"),
    ("비밀번호 잊어버렸어요", "account-1"),
    ("쿠폰 어디에 입력해요", "coupon-1"),
    ("오늘 서울 날씨 어때", ""),
]


def use_settings_in_env(monkeypatch, settings) -> None:
    """main() loads its own settings: point them at the tmp store and the tiny model."""
    monkeypatch.setenv("FAQBOT_ENCODER__MODEL", settings.encoder.model)
    monkeypatch.setenv("FAQBOT_ENCODER__DEVICE", "cpu")
    monkeypatch.setenv("FAQBOT_STORE__PATH", str(settings.store.path))
    monkeypatch.setenv("FAQBOT_STORE__CACHE_DIR", str(settings.store.cache_dir))


@pytest.fixture()
def ingested(make_settings, monkeypatch, tmp_path):
    settings = make_settings()
    use_settings_in_env(monkeypatch, settings)
    pipeline = open_pipeline(settings)
    items = [FaqItem(text, faq_id, answer, category)
             for faq_id, category, question, alternatives, answer in FAQS for text in (question, *alternatives)]
    records = faq_records(items, source="faq.csv")
    pipeline.store.upsert(records, pipeline.encoder.encode_questions([r.text for r in records]))
    questions = tmp_path / "questions.csv"
    with open(questions, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([("question", "expected_id"), *QUESTIONS])
    return settings, questions


@pytest.mark.slow
def test_command_runs_every_mode_and_writes_failures_and_plot(ingested, tmp_path, capsys, tiny_model_dir):
    settings, questions = ingested
    failures, plot = tmp_path / "out" / "failures.csv", tmp_path / "out" / "scores.png"
    code = main([str(questions), "--modes", "lexical,static,dense,hybrid,adapted", "--adapted-model", str(tiny_model_dir),
                 "--failures", str(failures), "--plot", str(plot)])
    out = capsys.readouterr().out
    assert code == 0
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| mode | top-1 | MRR@10")
    assert [row.split(" | ")[0].strip("| ") for row in table[1:]] == ["lexical", "static", "dense", "hybrid", "adapted"]
    assert "6 questions (5 answerable, 1 out of scope)" in out
    assert "recommended answer.threshold" in out and "recommended answer.lexical_threshold" in out
    with open(failures, encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and set(rows[0]) >= {"mode", "question", "expected", "got", "score"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # exact FAQ wording is found by lexical retrieval: the first question never fails in lexical mode
    assert not any(r["mode"] == "lexical" and r["question"] == QUESTIONS[0][0] and r["got"] != "fallback" for r in rows)
    # the adapted collection lives in the cache folder, not in the configured store
    assert (Path(settings.store.cache_dir) / "evaluate-adapted").exists()


def test_command_refuses_an_empty_store_and_bad_modes(make_settings, monkeypatch, tmp_path, capsys):
    use_settings_in_env(monkeypatch, make_settings())
    questions = tmp_path / "q.csv"
    questions.write_text("question,expected_id\n배송,ship-1\n", encoding="utf-8")
    assert main([str(questions)]) == 2
    assert "empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(questions), "--modes", "dense,telepathy"])


def test_temporary_pipeline_answers_through_the_product_objects(make_settings, tmp_path):
    settings = make_settings()
    records = faq_records([FaqItem("배송은 얼마나 걸리나요?", "ship"), FaqItem("환불은 어떻게 받나요?", "refund")])
    pipeline = temporary_pipeline(settings, records, tmp_path / "eval")
    assert pipeline.store.count() == 2
    assert pipeline.retriever.search("환불은 어떻게 받나요?", mode="lexical")[0].answer_id == "refund"
    assert Path(pipeline.settings.store.path).is_relative_to(tmp_path / "eval")


def test_reliability_bins_and_expected_calibration_error():
    from chatbot.evaluation import expected_calibration_error, reliability_bins

    p = [0.05, 0.15, 0.95, 0.9, 1.0]
    right = [False, True, True, True, False]
    bins = reliability_bins(p, right)
    assert [(round(lo, 1), n) for lo, _, _, n in bins] == [(0.0, 1), (0.1, 1), (0.9, 3)]  # P = 1.0 falls in the last bin
    assert bins[2][2] == pytest.approx(2 / 3)
    expected = 0.2 * 0.05 + 0.2 * 0.85 + 0.6 * abs(2 / 3 - (0.95 + 0.9 + 1.0) / 3)
    assert expected_calibration_error(p, right) == pytest.approx(expected)
    assert math.isnan(expected_calibration_error([], []))


def test_calibrate_learns_from_labelled_questions_and_leaves_them_out_of_the_evaluation(ingested, tmp_path, capsys):
    settings, questions = ingested
    calibration = tmp_path / "labelled.csv"
    with open(calibration, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([("question", "expected_id"), QUESTIONS[0], ("택배 며칠 걸려요", "ship-1"),
                                      ("주식 시세 알려줘", "")])
    assert main([str(questions), "--modes", "hybrid", "--calibrate", str(calibration)]) == 0
    out = capsys.readouterr().out
    assert "5 questions (4 answerable, 1 out of scope)" in out  # QUESTIONS[0] is in the calibration file
    assert f"calibrated with the labelled questions of {calibration} (1 evaluated questions found there left out)" in out
    assert main([str(questions), "--calibrate", str(tmp_path / "missing.csv")]) == 2
