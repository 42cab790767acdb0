"""Retriever and Answerer on a small store filled through the real encoder (tiny BERT)."""
from __future__ import annotations

import threading
import numpy as np
import pytest

from chatbot.answer import QuestionError
from chatbot.pipeline import open_pipeline
from chatbot.records import Hit, Record
from chatbot.retrieval import group_hits, with_doc_offset
from chatbot.text import is_unspaced
from ingest.items import FaqEntry
from ingest.records import faq_records as ingest_faq_records

FAQS = [
    ("ship-1", "배송", "배송은 얼마나 걸리나요?", ["택배는 언제 도착해요?"], "주문 후 2~3일 안에 도착합니다."),
    ("refund-1", "환불", "환불은 어떻게 받나요?", ["돈 돌려받고 싶어요"], "반품이 확인되면 3영업일 안에 환불됩니다."),
    ("account-1", "회원", "비밀번호를 잊어버렸어요", ["로그인 password 찾기"], "로그인 화면에서 비밀번호 찾기를 누르세요."),
    ("coupon-1", "쿠폰", "쿠폰은 어디에서 입력하나요?", [], "결제 화면에서 쿠폰 코드를 입력합니다."),
]


def faq_records() -> list[Record]:
    """The FAQS rows as ingestion turns them into records."""
    return ingest_faq_records(
        FaqEntry(question, answer, "faq.csv", line, faq_id, tuple(alternatives), category)
        for line, (faq_id, category, question, alternatives, answer) in enumerate(FAQS, start=2)
    )


@pytest.fixture()
def pipeline(make_settings):
    p = open_pipeline(make_settings())
    records = faq_records()
    p.store.upsert(records, p.encoder.encode_questions([r.text for r in records]))
    return p


def test_lexical_matches_particles_and_endings(pipeline):
    hits = pipeline.retriever.search("환불해 주세요", mode="lexical")
    assert hits[0].metadata["faq_id"] == "refund-1"


def test_each_mode_groups_by_faq_id(pipeline):
    for mode in ("lexical", "dense", "hybrid"):
        hits = pipeline.retriever.search("택배 언제 와요 배송", mode=mode)
        ids = [h.answer_id for h in hits]
        assert len(ids) == len(set(ids)), mode
    assert pipeline.retriever.search("배송 택배 도착", mode="hybrid")[0].answer_id == "ship-1"


def test_category_filter(pipeline):
    hits = pipeline.retriever.search("배송 환불", mode="hybrid", category="환불")
    assert hits and all(h.metadata["category"] == "환불" for h in hits)


def test_exact_question_is_answered_with_source_and_score(pipeline):
    answer = pipeline.answerer.ask("비밀번호를 잊어버렸어요")
    assert answer.type == "faq" and answer.faq_id == "account-1"
    assert answer.sources[0]["source"] == "faq.csv" and answer.score > 0.9


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_empty_question_is_refused(pipeline, question):
    with pytest.raises(QuestionError, match="비어"):
        pipeline.answerer.ask(question)


def test_overlong_question_is_refused(pipeline):
    with pytest.raises(QuestionError, match="너무 깁니다"):
        pipeline.answerer.ask("배송 " * 5000)


def test_emoji_only_question_falls_back(pipeline):
    assert pipeline.answerer.ask("😀😀🙏").type == "fallback"


def test_unrelated_question_falls_back_with_suggestions(pipeline):
    answer = pipeline.answerer.ask("오늘 서울 날씨 어때")
    assert answer.type == "fallback" and len(answer.suggestions) <= 3


def test_lexical_cache_is_rebuilt_when_store_changes(pipeline):
    before = pipeline.retriever.lexical.fingerprint
    record = Record("faq-new", "적립금은 언제 사라지나요?", "faq", "faq.csv",
                    {"faq_id": "point-1", "question": "적립금은 언제 사라지나요?", "answer": "1년 뒤 소멸합니다."})
    pipeline.store.upsert([record], pipeline.encoder.encode_questions([record.text]))
    pipeline.retriever.refresh()
    assert pipeline.retriever.lexical.fingerprint != before
    assert pipeline.retriever.search("적립금 소멸", mode="lexical")[0].answer_id == "point-1"


def test_hybrid_finds_a_record_written_after_the_cache_was_checked(pipeline):
    """Dense hits take their texts from the BM25 cache; one it does not know yet is read from Chroma."""
    pipeline.retriever.search("배송", mode="hybrid")  # loads the cache
    record = Record("faq-new", "적립금은 언제 사라지나요?", "faq", "faq.csv",
                    {"faq_id": "point-1", "question": "적립금은 언제 사라지나요?", "answer": "1년 뒤 소멸합니다.", "kind": "faq"})
    pipeline.store.upsert([record], pipeline.encoder.encode_questions([record.text]))
    found = {c.hit.record_id: c for c in pipeline.retriever.candidates(record.text).hits}
    assert "faq-new" not in pipeline.retriever.lexical.position  # still unknown to the cache
    new = found["faq-new"]
    assert new.hit.metadata["answer"] == "1년 뒤 소멸합니다." and new.hit.text == record.text
    assert new.cosine > 0.99 and new.lexical == 0.0


def test_group_hits_keeps_best_variant():
    from chatbot.records import Hit
    hits = [Hit("a", "q1", "faq", 0.5, {"faq_id": "x"}), Hit("b", "q2", "faq", 0.9, {"faq_id": "x"}),
            Hit("c", "d", "doc", 0.7, {})]
    grouped = group_hits(hits, 10)
    assert [h.record_id for h in grouped] == ["b", "c"]


def test_doc_offset_shifts_passages_only():
    doc = Hit("d1", "배송은 2일 걸립니다", "doc", 0.84, {"source": "배송안내.txt"})
    faq = Hit("f1", "배송 기간", "faq", 0.86, {"source": "faq.csv", "faq_id": "ship-1"})
    assert [h.record_id for h in group_hits([with_doc_offset(h, 0.03) for h in (doc, faq)], 2)] == ["d1", "f1"]
    assert with_doc_offset(faq, 0.03).score == 0.86


def test_passage_threshold_follows_the_mode_scale(make_settings):
    """By default a passage needs its mode's threshold (0.7 is a good BM25 coverage, a poor e5 cosine)."""
    passage = Hit("d1", "배송은 주문 후 2일 걸립니다", "doc", 0.7, {"source": "배송안내.txt", "chunk_index": 0})
    answerer = open_pipeline(make_settings()).answerer
    assert answerer.decide([passage], "lexical").type == "doc"
    assert answerer.decide([passage], "dense").type == "fallback"
    overridden = open_pipeline(make_settings(answer={"doc_threshold": 0.6})).answerer
    assert overridden.decide([passage], "dense").type == "doc"


@pytest.mark.parametrize("question", ["택배는 언제 와요?", "환불 돈 돌려받기", "비밀번호 찾기", "쿠폰 코드"])
def test_pruned_keyword_candidates_never_change_the_top_hit(make_settings, question):
    """With 2 candidates per side, k=1 skips fetching vectors that k=10 (fewer groups: no pruning) fetches."""
    p = open_pipeline(make_settings(retrieval={"candidates": 2, "lexical_weight": 0.3}))
    records = faq_records()
    p.store.upsert(records, p.encoder.encode_questions([r.text for r in records]))
    first = p.retriever.search(question, k=1, mode="hybrid")[0]
    unpruned = p.retriever.search(question, k=10, mode="hybrid")
    assert (first.record_id, round(first.score, 6)) == (unpruned[0].record_id, round(unpruned[0].score, 6))
    two = p.retriever.search(question, k=2, mode="hybrid")  # candidates dropped on their real cosine: same top 2
    assert [(h.record_id, round(h.score, 6)) for h in two] == [(h.record_id, round(h.score, 6)) for h in unpruned[:2]]


def test_fusion_bound_is_exact():
    """A keyword-only candidate is skipped only when even the best cosine it could have cannot reach the k-th group."""
    from chatbot import fusion

    assert float(fusion.fuse(0.8, 1.7, 0.25)) == 0.75 * 0.8 + 0.25 * 1.0  # BM25 coverage capped at 1
    nearest = [("a", 0.9), ("b", 0.7)]
    assert fusion.cosine_ceiling(nearest, 2) == 0.7 and fusion.cosine_ceiling(nearest, 3) == 1.0
    hits = [Hit("a", "q", "faq", 0.8, {"faq_id": "x"}), Hit("d", "p", "doc", 0.6, {})]
    assert fusion.pruning_floor(hits, 2, 0.05) == pytest.approx(0.55)
    assert fusion.pruning_floor(hits, 3, 0.05) == float("-inf")
    mask = fusion.reachable(np.array([0.0, 0.5, 1.0], dtype=np.float32), 0.5, 0.7, 0.8)
    assert mask.tolist() == [False, False, True]
    # after their vectors are read, each candidate's own cosine replaces the ceiling
    assert fusion.reachable(np.array([1.0, 1.0, 0.9]), 0.5, [0.5, 0.6, 0.7], 0.8).tolist() == [False, True, True]


def test_candidates_expose_score_parts_and_group_like_search(pipeline, make_settings):
    """Retriever.candidates: the ungrouped hybrid candidates with cosine and lexical parts; grouped(k) is search()."""
    retriever = pipeline.retriever
    weight = retriever.settings.retrieval.lexical_weight
    for question in ("택배 언제 와요 배송", "환불해 주세요", "비밀번호 password"):
        ranking = retriever.candidates(question, 5)
        assert ranking.tokens and len(ranking.hits) >= len(ranking.grouped(5))
        for c in ranking.hits:
            assert c.fused == pytest.approx((1 - weight) * c.cosine + weight * min(c.lexical, 1.0))
        assert [c.hit for c in ranking.grouped(5)] == retriever.search(question, k=5, mode="hybrid")
    ranking = retriever.candidates("배송은 얼마나 걸리나요?", 5)
    top = ranking.grouped(5)[0]
    # leaving out the exact variant (the decision model's training) keeps the same FAQ through its alternative
    again = ranking.grouped(5, exclude={top.hit.record_id})
    assert top.hit.answer_id == "ship-1" and again[0].hit.record_id != top.hit.record_id


def test_concurrent_questions_share_chroma_queries_and_get_their_own_results(pipeline):
    """Vectors of questions asked together go to Chroma in one query; each asker gets its own ranking."""
    from concurrent.futures import ThreadPoolExecutor

    questions = ["배송은 얼마나 걸리나요?", "환불은 어떻게 받나요?", "비밀번호를 잊어버렸어요", "쿠폰은 어디에서 입력하나요?"] * 6
    alone = {q: [h.record_id for h in pipeline.retriever.search(q, mode="hybrid")] for q in set(questions)}
    with ThreadPoolExecutor(12) as pool:
        together = list(pool.map(lambda q: [h.record_id for h in pipeline.retriever.search(q, mode="hybrid")], questions))
    assert together == [alone[q] for q in questions]
    batcher = pipeline.retriever.nearest_batcher
    assert batcher is not None and batcher.items >= len(questions)  # every one went through the batcher
    vectors = pipeline.encoder.encode_questions(questions[:4])
    assert pipeline.store.nearest_many(list(vectors), 5) == [pipeline.store.nearest(v, 5) for v in vectors]


def test_keyword_only_candidates_vectors_are_read_once_until_the_store_changes(pipeline, monkeypatch):
    ids = list(pipeline.retriever.lexical.records.ids)
    vector = pipeline.encoder.encode_questions(["배송"])[0]
    reads: list[int] = []
    real = pipeline.store.vectors
    monkeypatch.setattr(pipeline.store, "vectors", lambda wanted: reads.append(len(wanted)) or real(wanted))
    first = pipeline.retriever.cosines(ids, vector)
    assert pipeline.retriever.cosines(ids, vector) == first and reads == [len(ids)]
    record = Record("faq-new", "적립금은 언제 사라지나요?", "faq", "faq.csv", {"faq_id": "point-1", "kind": "faq"})
    pipeline.store.upsert([record], pipeline.encoder.encode_questions([record.text]))
    pipeline.retriever.refresh()
    pipeline.retriever.search("적립금", mode="lexical")  # the cache sees the change
    pipeline.retriever.cosines(ids, vector)
    assert reads == [len(ids), len(ids)]  # read again: the store changed


def test_keyword_candidates_vectors_are_read_while_the_encoder_works(pipeline, monkeypatch):
    """A hybrid question reads the vectors of its best keyword matches on the lexical side thread, so
    nothing is left to read from the store after the encoder and Chroma answered."""
    readers: list[str] = []
    real = pipeline.store.vectors
    monkeypatch.setattr(pipeline.store, "vectors", lambda wanted: readers.append(threading.current_thread().name) or real(wanted))
    pipeline.retriever._vectors = ("", {})  # an empty vector cache
    pipeline.retriever.search("교환 반품 배송비 환불 쿠폰", mode="hybrid")
    assert readers and all(name.startswith("lexical") for name in readers)


def test_a_full_vector_cache_drops_its_older_half(pipeline, monkeypatch):
    import chatbot.retrieval as retrieval

    ids = list(pipeline.retriever.lexical.records.ids)[:10]
    vector = pipeline.encoder.encode_questions(["배송"])[0]
    monkeypatch.setattr(retrieval, "VECTOR_CACHE_SIZE", 8)
    pipeline.retriever._vectors = ("", {})
    pipeline.retriever.cosines(ids[:6], vector)
    pipeline.retriever.cosines(ids[6:], vector)
    cache = pipeline.retriever._vector_cache()
    assert len(cache) == 7 and set(ids[6:]) <= set(cache)  # three of the first six dropped, the new four kept


@pytest.mark.parametrize(("question", "unspaced"), [
    ("배송비얼마예요", True), ("주문취소하고싶어요", True), ("배송비 얼마예요?", False), ("회원가입은 어떻게 하나요", False),
    ("비밀번호를 잊어버렸어요", False), ("개인통관고유부호를어디에입력하나요?", True), ("refund please", False), ("환불", False),
    ("반품하려는데 주문취소도같이하고싶어요", True),
])
def test_unspaced_questions_are_told_apart(question, unspaced):
    assert is_unspaced(question) == unspaced


def test_a_question_typed_without_spaces_is_respaced_for_the_encoder(pipeline, monkeypatch):
    retriever = pipeline.retriever
    assert retriever.dense_text("배송비 얼마예요?") == "배송비 얼마예요?"
    assert retriever.dense_text("배송조회어떻게해요") == "배송 조회 어떻게 해요"
    seen: list[str] = []
    original = retriever.encoder.encode_questions
    monkeypatch.setattr(retriever.encoder, "encode_questions", lambda texts, *a: seen.extend(texts) or original(texts, *a))
    retriever.candidates("배송조회어떻게해요")
    assert seen == ["배송 조회 어떻게 해요"]
    off = retriever.settings.with_overrides(text={"respace_unspaced": False})
    monkeypatch.setattr(retriever, "settings", off)
    assert retriever.dense_text("배송조회어떻게해요") == "배송조회어떻게해요"


def test_the_keyword_side_respaces_only_a_question_typed_without_spaces(pipeline):
    retriever = pipeline.retriever
    # respacing a spaced question split words a store uses ("반품비" → 반품 + 비, "변심" → 변 + 심)
    assert retriever.candidates("단순변심 반품비 얼마").tokens == ("단순", "변심", "반품비", "얼마")
    assert {"배송", "조회"} <= set(retriever.candidates("배송조회어떻게해요").tokens)


def test_a_new_question_is_analysed_by_kiwi_once(pipeline, monkeypatch):
    """Typo repair, the keyword tokens and the topic check read one analysis (each Kiwi call holds the GIL)."""
    from kiwipiepy import Kiwi

    question = "환불받으려면 영수증이 필요한가요 처음 묻는 질문"
    seen: list[str] = []
    original = Kiwi.tokenize
    monkeypatch.setattr(Kiwi, "tokenize", lambda self, text, *a, **kw: seen.append(text) or original(self, text, *a, **kw))
    pipeline.answerer.ask(question)
    assert seen.count(question) == 1


def test_the_retriever_reads_a_slip_as_the_store_word_on_both_sides(pipeline, monkeypatch):
    retriever = pipeline.retriever
    assert retriever.dense_text("쿠퐁은 어디에서 입력하나요?") == "쿠폰은 어디에서 입력하나요?"
    ranking = retriever.candidates("쿠퐁은 어디에서 입력하나요?")
    assert "쿠폰" in ranking.tokens and ranking.grouped(1)[0].hit.answer_id == "coupon-1"
    off = retriever.settings.with_overrides(text={"typo_repair": False})
    monkeypatch.setattr(retriever, "settings", off)
    assert retriever.dense_text("쿠퐁은 어디에서 입력하나요?") == "쿠퐁은 어디에서 입력하나요?"
    assert "쿠폰" not in retriever.candidates("쿠퐁은 어디에서 입력하나요?").tokens


def test_an_answer_says_what_was_searched_when_a_typo_was_repaired(pipeline):
    from chatbot.chat import format_answer
    from chatbot.web.render import answer_html

    answer = pipeline.answerer.ask("쿠퐁은 어디에서 입력하나요?")
    assert answer.read_as == "쿠폰은 어디에서 입력하나요?" and answer.to_dict()["read_as"] == answer.read_as
    assert "“쿠폰은 어디에서 입력하나요?”(으)로 찾았어요" in answer_html(answer)
    assert format_answer(answer).startswith("(“쿠폰은 어디에서 입력하나요?”(으)로 찾았어요)")
    assert pipeline.answerer.ask("쿠폰은 어디에서 입력하나요?").read_as is None
