"""The synonym/user dictionary: rewrite on both BM25 sides, kiwi user nouns, files, cache key, mining."""
from __future__ import annotations

import numpy as np
import pytest

from chatbot import dictionary as active
from chatbot.encoder import load_encoder
from chatbot.lexical import LexicalIndex, load_or_build
from chatbot.records import Record
from chatbot.settings import PROJECT_ROOT, LexicalSettings, TextSettings
from chatbot.store import Store, StoredRecords
from chatbot.synonym_files import dictionary_csv, load_dictionary, save_dictionary
from chatbot.synonym_mining import mine_synonym_pairs
from chatbot.synonyms import Dictionary, DictionaryError, Expander
from chatbot.text import morphemes, morphemes_batch

SHOP = Dictionary.from_rows([
    {"canonical": "환불", "variants": ["돈 돌려받기", "리턴"]},
    {"canonical": "회원 탈퇴", "variants": "계정 삭제 | 계정 탈퇴"},
    {"canonical": "적립금", "variants": ["포인트"]},
    {"canonical": "한빛마켓", "variants": ["한빛몰"], "tag": "NNP"},
])


@pytest.fixture(autouse=True)
def _restore_active_dictionary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the process's dictionary; the original comes back afterwards."""
    active.active_dictionary()
    monkeypatch.setattr(active, "_active", active._active)


def test_variants_become_the_canonical_morpheme_whatever_the_endings():
    active.use_dictionary(SHOP)
    assert morphemes("돈을 돌려받을 수 있나요?") == ["환불"]
    assert morphemes("리턴 언제 돼요") == morphemes("환불 언제 돼요")
    assert morphemes("계정을 삭제하고 싶어요") == morphemes("회원 탈퇴 하고 싶어요") == ["회원", "탈퇴"]
    assert morphemes_batch(["포인트 사용법", ""]) == [["적립금", "사용법"], []]


def test_without_a_dictionary_tokens_are_plain_morphemes():
    active.use_dictionary(None)
    assert morphemes("돈을 돌려받을 수 있나요?") == ["돈", "돌려받"]
    assert morphemes("한빛마켓 앱") == ["한빛", "마켓", "앱"]


def test_bm25_matches_a_variant_question_to_the_canonical_faq_and_back():
    active.use_dictionary(SHOP)
    records = StoredRecords(["r", "p"], ["환불은 언제 처리되나요?", "포인트는 얼마나 쌓이나요?"], [{}, {}])
    index = LexicalIndex.build(records, LexicalSettings(), "fp")
    assert index.search("돈 돌려받기 언제 돼요", 2)[0].record_id == "r"  # question side rewritten
    assert index.search("적립금 얼마나 쌓여요", 2)[0].record_id == "p"  # document side rewritten


def test_user_nouns_stay_one_morpheme():
    active.use_dictionary(SHOP)
    assert morphemes("한빛마켓에서 산 물건") [0] == "한빛마켓"
    assert morphemes("한빛몰 앱 어디서 받아요")[0] == "한빛마켓"  # tagged variant: a user word, then rewritten


def test_longest_variant_wins_and_canonicals_are_not_rewritten_again():
    rules = Dictionary.from_rows([{"canonical": "가", "variants": ["나", "나 다"]}, {"canonical": "라", "variants": ["가"]}])
    expander = Expander(rules, lambda text: text.split())
    assert expander.expand(["나", "다", "마"]) == ["가", "마"]
    assert expander.expand(["가"]) == ["라"]


def test_invalid_rows_are_refused_with_the_row_number():
    with pytest.raises(DictionaryError, match="row 2"):
        Dictionary.from_rows([{"canonical": "환불", "variants": "리턴"}, {"canonical": "반품", "variants": "리턴"}])
    with pytest.raises(DictionaryError, match="row 1"):
        Dictionary.from_rows([{"canonical": " ", "variants": "리턴"}])
    with pytest.raises(DictionaryError, match="tag"):
        Dictionary.from_rows([{"canonical": "한빛", "tag": "XYZ"}])


def test_fingerprint_follows_the_entries():
    same = Dictionary.from_rows(SHOP.rows())
    assert same.fingerprint == SHOP.fingerprint and same == SHOP
    edited = SHOP.merged(Dictionary.from_rows([{"canonical": "환불", "variants": ["반환"]}]))
    assert edited.fingerprint != SHOP.fingerprint
    assert edited.entries[0].variants == ("돈 돌려받기", "리턴", "반환")
    assert Dictionary().fingerprint == "none"


def test_bm25_cache_is_rebuilt_when_the_dictionary_changes(make_settings):
    settings = make_settings()
    store = Store(settings.store, load_encoder(settings.encoder).identity())
    records = [Record("faq-1", "환불은 언제 되나요", "faq", "a.csv", {"faq_id": "f1", "content_hash": "h1"}),
               Record("faq-2", "배송비는 얼마인가요", "faq", "a.csv", {"faq_id": "f2", "content_hash": "h2"})]
    store.upsert(records, np.random.default_rng(0).normal(size=(2, load_encoder(settings.encoder).dimension)))
    active.use_dictionary(None)
    plain = load_or_build(store, settings.lexical)
    assert plain.query_tokens("돈 돌려받기") == ["돈", "돌려받"] and "환불" in plain.doc_freq
    active.use_dictionary(SHOP)
    rebuilt = load_or_build(store, settings.lexical, current=plain)
    assert rebuilt is not plain and rebuilt.fingerprint != plain.fingerprint
    assert rebuilt.search("돈 돌려받기", 2)[0].record_id == "faq-1"
    assert load_or_build(store, settings.lexical, current=rebuilt) is rebuilt  # unchanged: no rebuild


def test_yaml_and_csv_round_trip(tmp_path):
    for name in ("d.yaml", "d.csv", "d.tsv"):
        save_dictionary(SHOP, tmp_path / name)
        assert load_dictionary(tmp_path / name) == SHOP, name


def test_operator_csv_with_korean_headers_blank_rows_and_cp949(tmp_path):
    path = tmp_path / "upload.csv"
    path.write_bytes("대표어,동의어,품사\n환불,돈 돌려받기|리턴,\n\n한빛마켓,,nnp\n".encode("cp949"))
    loaded = load_dictionary(path)
    assert loaded.rows() == [{"canonical": "환불", "variants": ["돈 돌려받기", "리턴"]},
                             {"canonical": "한빛마켓", "variants": [], "tag": "NNP"}]
    assert dictionary_csv(loaded).splitlines()[1] == "환불,돈 돌려받기 | 리턴,"


def test_xlsx_upload(tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    for row in (["canonical", "variants", "tag"], ["환불", "돈 돌려받기 | 리턴", None], [None, None, None],
                ["한빛마켓", "한빛몰", "NNP"]):
        sheet.append(row)
    workbook.save(tmp_path / "upload.xlsx")
    assert load_dictionary(tmp_path / "upload.xlsx") == Dictionary.from_rows([
        {"canonical": "환불", "variants": ["돈 돌려받기", "리턴"]},
        {"canonical": "한빛마켓", "variants": ["한빛몰"], "tag": "NNP"},
    ])


def test_tables_without_a_canonical_column_or_of_another_format_are_refused(tmp_path):
    (tmp_path / "bad.csv").write_text("word,other\n환불,리턴\n", encoding="utf-8")
    with pytest.raises(DictionaryError, match="canonical"):
        load_dictionary(tmp_path / "bad.csv")
    (tmp_path / "d.json").write_text("{}", encoding="utf-8")
    with pytest.raises(DictionaryError, match="unsupported"):
        load_dictionary(tmp_path / "d.json")


def test_update_dictionary_saves_and_applies_at_once(tmp_path):
    path = tmp_path / "synonyms.yaml"
    active.configure(TextSettings(synonyms=path))
    assert active.active_dictionary() == Dictionary()  # a missing file is an empty dictionary
    saved = active.update_dictionary([{"canonical": "환불", "variants": "돈 돌려받기"}])
    assert load_dictionary(path) == saved == active.active_dictionary()
    assert morphemes("돈 돌려받기") == ["환불"]
    with pytest.raises(DictionaryError):
        active.update_dictionary([{"canonical": ""}])
    assert active.active_dictionary() == saved  # a refused edit changes nothing


def test_an_edit_by_another_process_is_picked_up_and_a_broken_file_ignored(tmp_path):
    path = tmp_path / "synonyms.yaml"
    save_dictionary(SHOP, path)
    active.configure(TextSettings(synonyms=path, synonyms_reload_s=0))
    assert active.active_dictionary() == SHOP
    edited = Dictionary.from_rows([{"canonical": "배송", "variants": ["택배"]}])
    save_dictionary(edited, path)
    assert active.active_dictionary() == edited
    path.write_text("entries: [unclosed", encoding="utf-8")
    assert active.active_dictionary() == edited


def test_settings_switch_the_dictionary_off(monkeypatch: pytest.MonkeyPatch):
    assert TextSettings(synonyms="").synonyms is None and TextSettings(synonyms=None).synonyms is None
    assert TextSettings().synonyms is not None


def test_shipped_shop_dictionary_loads():
    shipped = load_dictionary(PROJECT_ROOT / "configs" / "synonyms.yaml")
    active.use_dictionary(shipped)
    assert morphemes("돈을 돌려받고 싶어요") == ["환불"]
    assert morphemes("택배비 얼마예요") == morphemes("배송비 얼마예요")
    assert morphemes("이메일 주소 바꾸고 싶어요") == ["이메일", "주소", "바꾸"]  # no one-word 바꾸기 → 교환


def test_mining_proposes_pairs_from_lexical_misses_only():
    tokenize = str.split
    matches = [
        ("돈 돌려받기", "환불 처리"),  # miss: every pair counted
        ("돈 언제", "환불 처리"),  # miss
        ("환불 언제", "환불 처리"),  # shares 환불: not a miss
        ("", "환불 처리"),  # nothing asked
    ]
    candidates = mine_synonym_pairs(matches, tokenize=tokenize)
    assert [(c.question_term, c.faq_term, c.count) for c in candidates[:2]] == [("돈", "처리", 2), ("돈", "환불", 2)]
    assert candidates[0].example == "돈 돌려받기"
    assert {(c.question_term, c.count) for c in candidates} == {("돈", 2), ("돌려받기", 1), ("언제", 1)}
    assert mine_synonym_pairs(matches, tokenize=tokenize, min_count=2, limit=1)[0].faq_term == "처리"


def test_mining_with_kiwi_skips_what_the_dictionary_already_joins():
    active.use_dictionary(None)
    assert mine_synonym_pairs([("돈을 돌려받고 싶어요", "환불은 언제 되나요")])
    active.use_dictionary(SHOP)
    assert not mine_synonym_pairs([("돈을 돌려받고 싶어요", "환불은 언제 되나요")])


def test_decision_features_read_candidate_words_with_the_dictionary_in_force():
    """The decision model's token cache batches its misses and forgets what an older dictionary made."""
    from chatbot.decision.features import TokenCache

    cache = TokenCache(size=2)
    active.use_dictionary(Dictionary())
    plain = cache.many(["포인트 사용법", "", "포인트 사용법"])
    assert plain == [frozenset(morphemes("포인트 사용법")), frozenset(), frozenset(morphemes("포인트 사용법"))]
    active.use_dictionary(SHOP)
    assert cache.many(["포인트 사용법"]) == [frozenset({"적립금", "사용법"})]  # not the cached plain tokens
    cache.many(["배송 조회", "환불 문의"])
    assert len(cache._kept) == 2  # bounded: the least recent dropped
