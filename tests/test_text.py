"""Kiwi text processing: the lexical side must see through particles, endings and spacing."""
from __future__ import annotations

from chatbot.text import (
    correct_spacing, is_meaningful, morphemes, morphemes_batch, names_a_topic, normalise, split_sentences,
)


def test_particles_and_endings_share_the_stem():
    for text in ["환불해 주세요", "환불받을 수 있나요", "환불", "환불은요?", "환불 좀 해줘"]:
        assert "환불" in morphemes(text), text


def test_honorific_and_casual_forms_share_content():
    assert set(morphemes("배송 조회는 어떻게 하나요?")) == set(morphemes("배송 조회 어떻게 해"))


def test_spacing_mistakes_are_corrected():
    assert correct_spacing("배송조회어떻게해요") == "배송 조회 어떻게 해요"
    assert {"배송", "조회"} <= set(morphemes(correct_spacing("배송조회어떻게해요")))


def test_normalise_fullwidth_controls_and_spaces():
    assert normalise("ＡＢＣ１２３\u200b  주문\t\n했어요 ") == "ABC123 주문 했어요"


def test_batch_equals_single():
    texts = ["쿠폰 code 어디에 넣어요?", "", "비밀번호를 잊어버렸어요"]
    assert morphemes_batch(texts) == [morphemes(t) for t in texts]


def test_sentences_split_without_periods():
    assert len(split_sentences("주문은 오늘 합니다 배송은 내일 출발합니다\n\n둘째 문단입니다.")) >= 2


def test_a_question_names_a_topic_with_a_noun_foreign_word_or_root():
    for question in ("배송비 얼마예요?", "비번 까먹음", "쿠퐁", "환불 ㄱㄴ?", "refund?", "주문취소", "할부?"):
        assert names_a_topic(question), question
    for question in ("언제요?", "뭐해?", "모르겠어요", "이거 뭐예요?", "있어요?", "네네", "3", "ㅠㅠ", "어디서 해요"):
        assert not names_a_topic(question), question


def test_meaningful_questions():
    assert not is_meaningful("😀🙏!!") and not is_meaningful("   ")
    assert is_meaningful("배송?") and is_meaningful("ㅠㅠ")


def test_a_question_is_foreign_when_it_has_latin_words_and_no_hangul():
    from chatbot.text import is_foreign

    assert is_foreign("How much is shipping?") and is_foreign("refund pls")
    assert not is_foreign("international shipping 가능?") and not is_foreign("배송비 얼마예요?")
    assert not is_foreign("ㅠㅠ ok") and not is_foreign("1234") and not is_foreign("A/S")


def test_only_short_texts_keep_their_analysis():
    """A question's Kiwi analysis is kept for the other steps that read it, but not a long text's: anonymous
    clients must not be able to fill memory with them."""
    from chatbot.text import KEPT_CHARS, _kept_analysis, analysis

    short, long = "교환 신청은 어디서 하나요 분석 보관 시험", "배송 문의 " * (KEPT_CHARS // 5)
    assert len(long) > KEPT_CHARS
    before = _kept_analysis.cache_info().currsize
    assert analysis(short) is analysis(short)
    assert _kept_analysis.cache_info().currsize == before + 1
    assert [t.form for t in analysis(long)][:2] == ["배송", "문의"]
    assert _kept_analysis.cache_info().currsize == before + 1
