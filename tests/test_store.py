"""The Chroma store against both the embedded client and a real `chroma run` server."""
from __future__ import annotations

import numpy as np
import pytest

from chatbot.encoder import load_encoder
from chatbot.lexical import load_or_build
from chatbot.records import Record
from chatbot.store import EncoderMismatchError, Store


def _records(n: int, source: str = "a.csv") -> list[Record]:
    return [
        Record(f"faq-{source}-{i}", f"질문 {i} 배송 환불", "faq", source,
               {"faq_id": f"f{i}", "question": f"질문 {i}", "answer": f"답 {i}", "content_hash": f"h{i}", "category": None})
        for i in range(n)
    ]


def _open(settings) -> Store:
    return Store(settings.store, load_encoder(settings.encoder).identity())


def test_upsert_query_delete_roundtrip(store_settings):
    store = _open(store_settings)
    encoder = load_encoder(store_settings.encoder)
    records = _records(7)
    store.upsert(records, encoder.encode_questions([r.text for r in records]))
    assert store.count() == 7
    assert set(store.hashes({"source": "a.csv"})) == {r.id for r in records}
    hits = store.query(encoder.encode_questions([records[3].text])[0], 3)
    assert hits[0].record_id == records[3].id and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert "category" not in hits[0].metadata  # None is dropped, never stored
    store.delete([records[0].id])
    assert store.count() == 6 and store.sources() == {"a.csv": 6}


def test_upsert_is_idempotent_and_fingerprint_tracks_writes(store_settings):
    store = _open(store_settings)
    records = _records(3)
    vectors = np.eye(3, store.identity["encoder_dimension"], dtype=np.float32)
    store.upsert(records, vectors)
    first = store.fingerprint()
    assert store.fingerprint() == first  # no write, no change
    store.upsert(records, vectors)
    assert store.count() == 3
    second = store.fingerprint()
    store.delete([records[1].id])
    assert len({first, second, store.fingerprint()}) == 3
    # another process (a replica) sees the same fingerprint through its own client
    assert _open(store_settings).fingerprint() == store.fingerprint()


def test_other_encoder_is_refused_with_reindex_hint(store_settings):
    store = _open(store_settings)
    store.upsert(_records(2), np.eye(2, store.identity["encoder_dimension"], dtype=np.float32))
    other = {**store.identity, "encoder_model": "someone/else", "encoder_dimension": 768}
    with pytest.raises(EncoderMismatchError, match="--rebuild"):
        Store(store_settings.store, other)
    assert store.count() == 2  # nothing lost


def test_empty_collection_adopts_new_encoder(store_settings):
    store = _open(store_settings)
    other = {**store.identity, "encoder_model": "someone/else"}
    assert Store(store_settings.store, other).info()["encoder_model"] == "someone/else"


def test_lexical_cache_persists_and_is_rebuilt_when_stale(store_settings):
    store = _open(store_settings)
    store.upsert(_records(4), np.eye(4, store.identity["encoder_dimension"], dtype=np.float32))
    index = load_or_build(store, store_settings.lexical)
    again = load_or_build(store, store_settings.lexical)
    assert again.fingerprint == index.fingerprint and len(again.records.ids) == 4
    store.upsert(_records(2, "b.csv"), np.eye(2, store.identity["encoder_dimension"], dtype=np.float32))
    assert len(load_or_build(store, store_settings.lexical).records.ids) == 6


def test_reads_by_id_skip_unknown_ids_and_old_copies_can_be_dropped(store_settings):
    store = _open(store_settings)
    records = _records(3)
    vectors = np.eye(3, store.identity["encoder_dimension"], dtype=np.float32)
    store.upsert(records, vectors)
    ids = [records[0].id, "never-stored", records[2].id]
    got = store.vectors(ids)
    assert set(got) == {records[0].id, records[2].id} and np.allclose(got[records[2].id], vectors[2])
    assert set(store.hits(ids)) == set(got)
    assert dict(store.iter_metadata({"source": "a.csv"}))[records[1].id]["faq_id"] == "f1"
    copy = Store(store_settings.store.model_copy(update={"collection": store_settings.store.collection + "-old-1"}),
                 store.identity)
    copy.upsert(records[:1], vectors[:1])
    assert store.drop_collections(store_settings.store.collection + "-old-") == [copy.settings.collection]
    assert store.count() == 3  # never its own collection
