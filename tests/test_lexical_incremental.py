"""The incremental BM25 cache: an index updated by ids gives a full rebuild's scores, tokenises only new
records, survives save/load, and filters by category with a vectorised mask."""
from __future__ import annotations

import dataclasses

import bm25s
import numpy as np
import pytest

import chatbot.columns as columns
import chatbot.lexical as lexical
from chatbot.bm25 import TokenTable
from chatbot.encoder import load_encoder
from chatbot.columns import Positions, id_array
from chatbot.lexical import LexicalIndex, cache_folder, load_or_build, top_positions
from chatbot.records import Record
from chatbot.settings import LexicalSettings
from chatbot.store import Store, StoredRecords
from chatbot.text import morphemes_batch

SETTINGS = LexicalSettings()
QUESTIONS = ["배송은 얼마나 걸려요", "환불 받고 싶어요", "비밀번호 찾기", "쿠폰 입력 배송 환불", "주문 취소 방법", "적립금 소멸"]
TEXTS = {
    "a": ("배송은 얼마나 걸리나요?", "배송"), "b": ("택배는 언제 도착해요?", "배송"),
    "c": ("환불은 어떻게 받나요?", "환불"), "d": ("돈 돌려받고 싶어요", "환불"),
    "e": ("비밀번호를 잊어버렸어요", "회원"), "f": ("쿠폰은 어디에서 입력하나요?", "쿠폰"),
    "g": ("주문을 취소하고 싶어요", "주문"), "h": ("배송 주소를 바꾸고 싶어요", "배송"),
}


def records(table: dict[str, tuple[str, str]]) -> StoredRecords:
    ids = sorted(table)
    return StoredRecords(ids, [table[i][0] for i in ids],
                         [{"category": table[i][1], "kind": "faq", "faq_id": i, "main_question": f"{table[i][1]} 문의",
                           "answer": f"{table[i][1]} 안내: 마이페이지에서 {i} 항목을 확인해 주세요."} for i in ids])


def expected_token_sets(recs: StoredRecords) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """What Kiwi makes of each record's own text and of its main question + answer, tokenised one by one."""
    out = {}
    for record_id, text, meta in zip(recs.ids, recs.texts, recs.metadatas):
        own, main, answer = morphemes_batch([text, meta["main_question"], meta["answer"]])
        out[record_id] = (frozenset(own), frozenset(own) | frozenset(main) | frozenset(answer))
    return out


def by_id(index: LexicalIndex, question: str) -> dict[str, float]:
    scores = index.scores(index.query_tokens(question))
    return dict(zip(index.records.ids, scores.tolist()))


def fetcher(table: dict[str, tuple[str, str]], asked: list[str]):
    def fetch(ids: list[str]) -> StoredRecords:
        asked.extend(ids)
        return records({i: table[i] for i in ids})
    return fetch


def test_scores_equal_bm25s_lucene():
    """The numpy matrix is bm25s' default (Lucene) BM25, so the hybrid calibration did not move."""
    recs = records(TEXTS)
    index = LexicalIndex.build(recs, SETTINGS, "fp")
    reference = bm25s.BM25(k1=SETTINGS.k1, b=SETTINGS.b)
    reference.index(morphemes_batch(list(recs.texts)), show_progress=False)
    for question in QUESTIONS:
        tokens = index.query_tokens(question)
        known = [t for t in tokens if t in reference.vocab_dict]
        ours = index.matrix.scores([index.vocab_dict[t] for t in known])
        expected = reference.get_scores(known) if known else np.zeros(len(recs.ids))
        np.testing.assert_allclose(ours, expected, atol=1e-6)


@pytest.mark.parametrize("change", ["add", "delete", "change", "all"])
def test_incremental_update_equals_full_rebuild(change):
    after = dict(TEXTS)
    if change in ("add", "all"):
        after["i"] = ("적립금은 언제 소멸되나요?", "포인트")
        after["j"] = ("배송 환불 동시에 가능한가요?", "배송")
    if change in ("delete", "all"):
        del after["b"], after["e"]
    if change in ("change", "all"):  # ids are content hashes: changed content = old id gone, new id
        del after["c"]
        after["c2"] = ("환불은 며칠 걸리나요?", "환불")
    asked: list[str] = []
    old = LexicalIndex.build(records(TEXTS), SETTINGS, "old")
    updated = old.updated(list(after), fetcher(after, asked), SETTINGS, "new")
    full = LexicalIndex.build(records(after), SETTINGS, "new")

    assert sorted(asked) == sorted(set(after) - set(TEXTS))  # only new records are read and tokenised
    assert sorted(updated.records.ids) == sorted(full.records.ids) and updated.inconsistency() is None
    assert updated.doc_freq == full.doc_freq  # deleted-only tokens dropped
    for question in QUESTIONS:
        got, want = by_id(updated, question), by_id(full, question)
        assert got.keys() == want.keys()
        assert max(abs(got[i] - want[i]) for i in want) <= 1e-6, question
    for category in ("배송", "환불", "없는 분류"):
        got_ids = {updated.records.ids[i] for i in np.flatnonzero(updated.mask({"category": category}))}
        assert got_ids == {i for i, (_, c) in after.items() if c == category}
    position = updated.position
    assert all(updated.records.ids[position[i]] == i for i in after)
    assert not any(i in position for i in set(TEXTS) - set(after))
    # the answer decision's token sets: kept, dropped and added with their records
    ids = sorted(after) + ["gone"]
    assert updated.token_sets(ids) == [expected_token_sets(records(after))[i] for i in sorted(after)] + [None]


def test_a_damaged_token_table_is_noticed():
    """Either token table pointing past its vocabulary or its records makes the cache untrusted (rebuilt)."""
    index = LexicalIndex.build(records(TEXTS), SETTINGS, "fp")
    broken = TokenTable(index.entries.vocab[:1], index.entries.ptr, index.entries.ids)
    assert dataclasses.replace(index, entries=broken).inconsistency() == "FAQ entry token table points past its vocabulary"
    short = TokenTable(index.tokens.vocab, index.tokens.ptr[:-1], index.tokens.ids)
    assert dataclasses.replace(index, tokens=short).inconsistency() == "token table does not match the records"


def test_updated_index_round_trips_through_the_cache(tmp_path):
    after = {**TEXTS, "i": ("적립금은 언제 소멸되나요?", "포인트")}
    index = LexicalIndex.build(records(TEXTS), SETTINGS, "old").updated(list(after), fetcher(after, []), SETTINGS, "new")
    index.save(tmp_path / "cache")
    loaded = LexicalIndex.load(tmp_path / "cache")
    assert loaded is not None and loaded.fingerprint == "new" and loaded.inconsistency() is None
    for question in QUESTIONS:
        assert by_id(loaded, question) == by_id(index, question)
    assert loaded.token_sets(sorted(after)) == index.token_sets(sorted(after))
    assert loaded.records.metadatas[loaded.position["i"]]["category"] == "포인트"
    assert loaded.search("적립금 소멸", 1, {"category": "포인트"})[0].record_id == "i"
    assert loaded.search("적립금 소멸", 1, {"category": "배송"}) == []


def test_id_lookup_is_exact_even_when_hashes_collide(monkeypatch):
    ids = [f"faq-{i:040x}" for i in range(1000)] + ["한글-id", "x"]
    for collide in (False, True):
        if collide:
            monkeypatch.setattr(columns, "id_keys", lambda raw: np.zeros(len(raw), dtype=np.uint64))
        positions = Positions(id_array(ids))
        assert (positions.keys is None) == collide
        assert [positions[i] for i in ids] == list(range(len(ids)))
        assert "faq-missing" not in positions and "" not in positions
        # a question's batch: an array of another width (ids of 1 to 9 bytes, past 8-byte words) finds the same rows
        asked = ["x", "한글-id", ids[7], "faq-missing", "faq-"]
        assert positions.lookup(asked) == [len(ids) - 1, len(ids) - 2, 7, -1, -1]


@pytest.mark.parametrize("size", [10, 5000, 100_000])
def test_top_positions_equal_a_full_sort(size):
    rng = np.random.default_rng(size)
    scores = np.where(rng.random(size) < 0.3, rng.random(size), 0).astype(np.float32)
    scores[rng.integers(0, size, 20)] = 0.5  # ties
    for k in (1, 10, 50):
        top = top_positions(scores, k)
        expected = np.argsort(-scores, kind="stable")[:k]
        assert np.array_equal(scores[top], scores[expected[scores[expected] > 0]])


def test_token_table_take_and_extend_keep_each_records_tokens():
    table = TokenTable.from_lists([["a", "b"], [], ["b", "b", "c"], ["d"]])
    taken = table.take(np.array([2, 0, 3])).extended([["e", "a"], []]).compacted()
    decoded = [[taken.vocab[t] for t in taken.ids[taken.ptr[r]:taken.ptr[r + 1]]] for r in range(len(taken))]
    assert decoded == [["b", "b", "c"], ["a", "b"], ["d"], ["e", "a"], []]


def test_store_change_reads_and_tokenises_only_new_records(make_settings, monkeypatch):
    """Through a real store: one new record costs one fetch and one tokenisation, not a rebuild."""
    settings = make_settings()
    encoder = load_encoder(settings.encoder)
    store = Store(settings.store, encoder.identity())
    first = [Record(f"r{i}", text, "faq", "f.csv", {"faq_id": f"f{i}", "category": cat})
             for i, (text, cat) in enumerate(TEXTS.values())]
    store.upsert(first, encoder.encode_questions([r.text for r in first]))
    index = load_or_build(store, SETTINGS)

    tokenised: list[str] = []
    real = lexical.morphemes_batch
    monkeypatch.setattr(lexical, "morphemes_batch", lambda texts, typos=False: tokenised.extend(texts) or real(texts, typos))
    new = Record("r-new", "적립금은 언제 소멸되나요?", "faq", "f.csv", {"faq_id": "new", "category": "포인트"})
    store.upsert([new], encoder.encode_questions([new.text]))
    store.delete(["r0"])
    updated = load_or_build(store, SETTINGS, current=index)
    assert tokenised == [new.text]
    assert updated.search("적립금 소멸", 1)[0].record_id == "r-new" and "r0" not in updated.position
    full = load_or_build(store, SETTINGS, rebuild=True)
    for question in QUESTIONS:
        got, want = by_id(updated, question), by_id(full, question)
        assert max(abs(got[i] - want[i]) for i in want) <= 1e-6
    assert LexicalIndex.load(cache_folder(settings.store)).fingerprint == full.fingerprint


def test_big_caches_are_rewritten_only_after_many_new_records(make_settings, monkeypatch):
    """Saving a 1M-record cache costs ~2 s: a few new records wait (a restarted process redoes only them)."""
    monkeypatch.setattr(lexical, "_SAVE_ALWAYS_BELOW", 0)
    monkeypatch.setattr(lexical, "_SAVE_AFTER", 2)
    settings = make_settings()
    encoder = load_encoder(settings.encoder)
    store = Store(settings.store, encoder.identity())
    index = None
    for i, text in enumerate(["배송은 얼마나 걸리나요?", "환불은 어떻게 받나요?", "쿠폰은 어디에서 입력하나요?"]):
        store.upsert([Record(f"r{i}", text, "faq", "f.csv", {"faq_id": f"f{i}"})], encoder.encode_questions([text]))
        index = load_or_build(store, SETTINGS, current=index)
        on_disk = LexicalIndex.load(cache_folder(settings.store))
        assert (on_disk.fingerprint == index.fingerprint) == (i != 1), i  # built: saved; +1: waits; +2: saved
    assert index.unsaved == 0 and len(LexicalIndex.load(cache_folder(settings.store))) == 3


def test_new_records_are_read_by_their_write_stamp_without_listing_every_id(make_settings, monkeypatch):
    """Adding records (nothing deleted) reads only what was written since the last sync: store.ids(),
    seconds at 1M records, is not called; a deletion still goes through the full listing."""
    settings = make_settings()
    encoder = load_encoder(settings.encoder)
    store = Store(settings.store, encoder.identity())
    first = [Record(f"r{i}", text, "faq", "f.csv", {"faq_id": f"f{i}"}) for i, (text, _) in enumerate(TEXTS.values())]
    store.upsert(first, encoder.encode_questions([r.text for r in first]))
    index = load_or_build(store, SETTINGS)
    assert index.revision == store.state()[1] and index.revision.isdigit()

    listed: list[int] = []
    real_ids = store.ids
    monkeypatch.setattr(store, "ids", lambda: listed.append(1) or real_ids())
    new = Record("r-new", "적립금은 언제 소멸되나요?", "faq", "f.csv", {"faq_id": "new"})
    store.upsert([new], encoder.encode_questions([new.text]))
    updated = load_or_build(store, SETTINGS, current=index)
    assert not listed and len(updated) == len(first) + 1
    assert updated.search("적립금 소멸", 1)[0].record_id == "r-new"
    store.delete(["r0"])
    after_delete = load_or_build(store, SETTINGS, current=updated)
    assert listed and "r0" not in after_delete.position and len(after_delete) == len(first)
