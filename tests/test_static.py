"""Static-embedding retrieval: both builders, the Retriever-shaped search, caching and rebuilds (tiny model)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from chatbot.evaluation import FaqItem, faq_records
from chatbot.pipeline import open_pipeline
from chatbot.static import DistilledEmbedder, StaticRetriever, Word2VecEmbedder, distilled_cache_dir


class WordVectors:
    """Stands in for the encoder's SentenceTransformer: a fixed random vector per word.

    The tiny test BERT's tokenizer maps most Korean words to [UNK], so every word would get the same
    vector; the real e5 is measured in bench/retrieval_quality.py.
    """

    def __init__(self, dimension: int = 24) -> None:
        self.dimension = dimension
        self.calls = 0

    def get_embedding_dimension(self) -> int:
        return self.dimension

    def encode(self, words, **_: object) -> np.ndarray:
        self.calls += 1
        import zlib

        return np.stack([np.random.default_rng(zlib.crc32(w.encode())).normal(size=self.dimension) for w in words])


def fake_encoder(tmp_path):
    return SimpleNamespace(model=WordVectors(), model_id="fake-words", resolved=SimpleNamespace(path=tmp_path / "none"))

FAQ = [
    FaqItem("배송은 얼마나 걸리나요?", "ship-1", "주문 후 2~3일 안에 도착합니다.", "배송"),
    FaqItem("택배는 언제 도착해요?", "ship-1", "주문 후 2~3일 안에 도착합니다.", "배송"),
    FaqItem("환불은 어떻게 받나요?", "refund-1", "반품이 확인되면 3영업일 안에 환불됩니다.", "환불"),
    FaqItem("돈 돌려받고 싶어요", "refund-1", "반품이 확인되면 3영업일 안에 환불됩니다.", "환불"),
    FaqItem("비밀번호를 잊어버렸어요", "account-1", "로그인 화면에서 비밀번호 찾기를 누르세요.", "회원"),
    FaqItem("쿠폰은 어디에서 입력하나요?", "coupon-1", "결제 화면에서 쿠폰 코드를 입력합니다.", "쿠폰"),
]


@pytest.fixture()
def pipeline(make_settings):
    p = open_pipeline(make_settings())
    records = faq_records(FAQ, source="faq.csv")
    p.store.upsert(records, p.encoder.encode_questions([r.text for r in records]))
    return p


def test_word2vec_embedder_gives_unit_rows_and_zero_for_unknown_words():
    corpus = [item.question for item in FAQ] + [item.answer for item in FAQ]
    embedder = Word2VecEmbedder.train(corpus, dimension=16)
    vectors = embedder.embed(["배송 기간", "완전히모르는말😀", ""])
    assert vectors.shape == (3, 16)
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0, abs=1e-5)
    assert not vectors[1].any() and not vectors[2].any()
    again = Word2VecEmbedder.train(corpus, dimension=16).embed(["배송 기간"])
    assert np.allclose(again, vectors[:1], atol=1e-5)  # seeded, single worker: reproducible


@pytest.mark.parametrize("method", ["distilled", "word2vec"])
def test_search_is_grouped_by_faq_and_finds_the_exact_question(pipeline, method, tmp_path):
    encoder = fake_encoder(tmp_path) if method == "distilled" else pipeline.encoder
    retriever = StaticRetriever(pipeline.settings, pipeline.store, encoder, method=method)
    hits = retriever.search("환불은 어떻게 받나요?", k=5)
    ids = [h.answer_id for h in hits]
    assert ids[0] == "refund-1" and len(ids) == len(set(ids))
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert all(-1.0 <= h.score <= 1.0 + 1e-5 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].metadata["answer"].startswith("반품")


def test_category_filter_and_k(pipeline, tmp_path):
    retriever = StaticRetriever(pipeline.settings, pipeline.store, fake_encoder(tmp_path))
    hits = retriever.search("배송 환불 쿠폰", k=10, category="환불")
    assert hits and {h.metadata["category"] for h in hits} == {"환불"}
    assert len(retriever.search("배송 환불 쿠폰 비밀번호", k=2)) <= 2


def test_distilled_words_are_cached_per_encoder_and_unseen_words_distilled_on_demand(pipeline, tmp_path):
    settings = pipeline.settings
    encoder = fake_encoder(tmp_path)
    retriever = StaticRetriever(settings, pipeline.store, encoder, method="distilled")
    retriever.search("배송")
    cache = distilled_cache_dir(settings, encoder) / "words.npz"
    assert cache.exists()
    embedder = retriever.index.embedder
    assert isinstance(embedder, DistilledEmbedder)
    known = len(embedder._vectors)
    retriever.search("냉장고 설치")  # words the FAQ never uses
    assert len(embedder._vectors) > known
    reloaded = DistilledEmbedder(WordVectors(), cache.parent)
    assert len(reloaded._vectors) >= known  # the corpus words come back from disk
    reloaded.fit([item.question for item in FAQ])
    assert reloaded.model.calls == 0  # nothing re-encoded
    assert np.allclose(reloaded.embed(["배송 기간"]), DistilledEmbedder(WordVectors()).fit(
        [item.question for item in FAQ]).embed(["배송 기간"]), atol=1e-5)


def test_the_real_encoder_path_runs(pipeline):
    """With the tiny BERT (words → [UNK]) the vectors are degenerate, but the encoder path must work."""
    retriever = StaticRetriever(pipeline.settings, pipeline.store, pipeline.encoder, method="distilled")
    assert all(h.score <= 1.0 + 1e-5 for h in retriever.search("환불은 어떻게 받나요?"))


def test_rebuilt_when_the_store_changes(pipeline):
    retriever = StaticRetriever(pipeline.settings, pipeline.store, pipeline.encoder, method="word2vec", refresh_s=0)
    assert "gift-1" not in {h.answer_id for h in retriever.search("선물 포장", k=10)}
    records = faq_records([FaqItem("선물 포장 되나요?", "gift-1", "네, 선물 포장이 가능합니다.")], source="faq.csv")
    pipeline.store.upsert(records, pipeline.encoder.encode_questions([r.text for r in records]))
    assert retriever.search("선물 포장 되나요?", k=3)[0].answer_id == "gift-1"


def test_empty_store_and_bad_arguments(make_settings):
    p = open_pipeline(make_settings())
    assert StaticRetriever(p.settings, p.store, p.encoder).search("배송") == []
    with pytest.raises(ValueError, match="unknown static method"):
        StaticRetriever(p.settings, p.store, p.encoder, method="glove")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs the encoder"):
        StaticRetriever(p.settings, p.store, None, method="distilled")
