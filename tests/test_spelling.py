"""Typo repair against the store's own words (chatbot/spelling.py); the retriever's use of it: tests/test_retrieval.py."""
from __future__ import annotations

import pytest

from chatbot.spelling import Speller, slipped, slips

# A store vocabulary as the BM25 cache gives it: morpheme → how many records use it.
WORDS = {"배송": 9, "기간": 3, "환불": 7, "교환": 5, "현금": 2, "영수증": 2, "쿠폰": 4, "무료": 6, "주류": 1,
         "한빛마켓": 2, "주문": 8, "취소": 5, "결제": 6, "수단": 1, "가입": 3}


@pytest.fixture(scope="module")
def speller() -> Speller:
    return Speller(WORDS)


def test_slips_are_what_a_thumb_or_an_ear_gives_on_the_2_set_keyboard():
    assert {"배송", "매숑", "배숑"} - set(slips("배숑")) == {"배숑"}  # ㅛ/ㅗ and ㅂ/ㅁ touch; the word itself is no slip
    assert "배슝" not in set(slips("배숑"))  # ㅛ and ㅜ are two rows apart
    assert slipped("ㄱ") >= {"ㄷ", "ㅅ", "ㄹ", "ㅇ", "ㄲ"} and "ㅁ" not in slipped("ㄱ")
    assert {"ㅔ", "ㅒ"} <= slipped("ㅐ") and "ㅘ" in slipped("ㅗ") and "ㅗ" in slipped("ㅘ")
    assert {"ㄴ", "ㅈ", "-"} <= slipped("ㄵ", final=True)  # a key of a compound final left out, or the final
    assert "환" in set(slips("홙")) and "배소" in set(slips("배송")) and "배송" in set(slips("배소"))
    assert list(slips("AB")) == []


@pytest.mark.parametrize(("typed", "repaired"), [
    ("배숑 기간 얼마나 걸려요", "배송 기간 얼마나 걸려요"),
    ("홙불 언제 돼요", "환불 언제 돼요"),
    ("쿠퐁 어디서 받아요", "쿠폰 어디서 받아요"),
    ("현금영수즌 나중에 신청해도 돼요?", "현금영수증 나중에 신청해도 돼요?"),  # two store words
    ("받은지 10일 됐는데 겨환되나요", "받은지 10일 됐는데 교환되나요"),  # the start of an unsplit word
    ("주료 배송 되나요", "무료 배송 되나요"),  # 무료 is used six times as often as 주류
])
def test_an_unknown_word_one_key_from_a_store_word_is_read_as_it(speller, typed, repaired):
    assert speller.repair(typed) == repaired


@pytest.mark.parametrize("question", [
    "결재는 됐는데 주문이 안보여요",  # 결재 is a word kiwi knows: never changed
    "한빛마켓 회원가입",  # unknown to kiwi, but the store's own word
    "관세는 누가 내요",  # a known word the store does not use
    "취뽀하고 싶다",  # slang: ㅃ and ㅅ do not touch, so not a slip of 취소
    "가이폰 케이스 있어요",  # 가이 → 가입 leaves 폰, a noun, not an ending: no 가입폰
    "오늘 날씨 어때",
    "refund please",
    "",
])
def test_known_words_store_words_and_ties_stay_as_typed(speller, question):
    assert speller.repair(question) == question


def test_two_store_words_as_likely_are_no_guess():
    assert Speller({"주문": 4, "조문": 4}).repair("즈문 취소") == "즈문 취소"
    assert Speller({"주문": 8, "조문": 4}).repair("즈문 취소") == "주문 취소"


def test_an_empty_store_repairs_nothing():
    assert Speller({}).repair("배숑 기간") == "배숑 기간"

