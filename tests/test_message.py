"""Emoticons and courtesy formulas around a question are taken off before matching; the question itself never is."""
from __future__ import annotations

import pytest

from chatbot.message import courtesy_only, question_of, strip_courtesies, strip_emoticons, strip_identifiers
from chatbot.evaluation import FaqItem, faq_records, temporary_pipeline
from chatbot.text import normalise


@pytest.mark.parametrize(("message", "question"), [
    ("안녕하세요. 배송비 얼마예요?", "배송비 얼마예요?"),
    ("안녕하세요 문의드립니다. 배송비 얼마예요? 감사합니다!", "배송비 얼마예요?"),  # several; the "?" stays
    ("저기요, 찜한 상품 목록은 어디서 보나요?", "찜한 상품 목록은 어디서 보나요?"),
    ("안녕하세요!!!배송 언제와요", "배송 언제와요"),
    ("수고 많으십니다^^ 교환 언제 돼요", "교환 언제 돼요"),
    ("궁금한 게 있는데요, 포인트 유효기간", "포인트 유효기간"),
    ("배송 언제 와요 빠른 답변 부탁드립니다", "배송 언제 와요"),
])
def test_formulas_before_and_after_the_question_are_taken_off(message, question):
    assert strip_courtesies(message) == question


@pytest.mark.parametrize("message", [
    "안녕하세요",  # nothing but courtesy: kept, so the user still gets a reply to what they wrote
    "감사합니다!",
    "안녕히 계세요",  # not a formula of the list (word boundary: 안녕 + 히)
    "하이브리드 상품 있나요",
    "환불 부탁드립니다",  # the request itself, not a courtesy
    "배송 언제 와요감사합니다",  # glued to the question: left alone
    "주문했는데 안녕하세요 문구가 안 보여요",  # inside the question
    "사장님 누구예요",
])
def test_the_question_itself_is_left_alone(message):
    assert strip_courtesies(message) == message


@pytest.mark.parametrize(("message", "question"), [
    ("배송비 얼마예요 ㅠㅠ", "배송비 얼마예요"),
    ("환불 언제돼요ㅠㅠ", "환불 언제돼요"),
    ("쿠폰이 안써져요~~", "쿠폰이 안써져요"),
    ("배송?? 언제 와요!!", "배송? 언제 와요!"),
    ("ㅇㅇ 교환 되나요 ^^;;", "교환 되나요"),
    ("ㅋㅋㅋ", "ㅋㅋㅋ"),  # nothing else: kept
    ("3.5kg 이상 배송비", "3.5kg 이상 배송비"),
])
def test_emoticons_and_repeated_marks_are_taken_off(message, question):
    assert strip_emoticons(message) == question
    assert strip_emoticons(normalise(message)) == normalise(question)  # NFKC turns ㅠ into the conjoining ᅲ


def test_a_message_loses_both():
    assert question_of("안녕하세요~ 배송비 얼마예요?? 감사합니다 ㅎㅎ") == "배송비 얼마예요?"


@pytest.mark.parametrize(("message", "question"), [
    ("주문번호 2024112500123 배송비 얼마예요?", "주문번호 배송비 얼마예요?"),
    ("배송비 얼마예요? 연락처 010-1234-5678", "배송비 얼마예요?"),
    ("환불 언제 돼요 전화번호: 010 1234 5678", "환불 언제 돼요"),
    ("ORD-20241125-0001 취소해주세요", "취소해주세요"),
    ("송장번호 6012 3456 7890 조회가 안 돼요", "송장번호 조회가 안 돼요"),
    ("답변은 hong.gd@example.com 으로 주세요", "답변은 으로 주세요"),
])
def test_identifiers_are_taken_off(message, question):
    assert strip_identifiers(message) == question


@pytest.mark.parametrize("message", [
    "3만원 이상 사면 무료배송인가요?", "2,000원 쿠폰 언제 써요", "7일 지났는데 반품돼요?", "아이폰 15 케이스 있어요?",
    "12:30까지 주문하면 오늘 출고돼요?", "GS25에서 택배 보낼 수 있어요?", "2024년 11월 25일 주문", "1234567",
    "녹차  마실래?",  # two spaces: nothing taken off, nothing changed
])
def test_prices_amounts_short_numbers_and_number_only_messages_stay(message):
    assert strip_identifiers(message) == message


def test_answers_do_not_depend_on_courtesies(make_settings, tmp_path):
    items = [FaqItem("배송비는 얼마인가요?", "ship", "3,000원"), FaqItem("택배비 얼마예요?", "ship"),
             FaqItem("환불은 언제 되나요?", "refund", "3영업일"), FaqItem("감사 인사는 어디에 남기나요?", "thanks", "게시판")]
    pipeline = temporary_pipeline(make_settings(), faq_records(items), tmp_path / "store")
    pipeline.answerer.prepare(120)  # both asks decided by the same rule
    plain = pipeline.answerer.ask("배송비는 얼마인가요?")
    polite = pipeline.answerer.ask("안녕하세요, 수고하십니다. 배송비는 얼마인가요? 감사합니다~ ㅎㅎ")
    assert (polite.type, [h.record_id for h in polite.hits]) == (plain.type, [h.record_id for h in plain.hits])
    ordered = pipeline.answerer.ask("배송비는 얼마인가요? 010-1234-5678 hong@example.com ORD-2024112500123")
    assert (ordered.type, [h.record_id for h in ordered.hits]) == (plain.type, [h.record_id for h in plain.hits])


@pytest.mark.parametrize(("message", "kind"), [
    ("안녕하세요", "greeting"), ("저기요!", "greeting"), ("수고하십니다", "greeting"),
    ("감사합니다 ㅎㅎ", "thanks"), ("수고하세요~", "thanks"), ("안녕하세요 감사합니다", "thanks"),
    ("안녕하세요 배송비 얼마예요", None), ("감사합니다를 일본어로 뭐라고 해?", None), ("ㅋㅋㅋ", None), ("안녕 잘 지냈어?", None),
])
def test_a_message_of_courtesy_alone_is_told_apart(message, kind):
    assert courtesy_only(strip_emoticons(normalise(message))) == kind


def test_courtesy_alone_gets_a_word_back_not_no_answer_found(make_settings, tmp_path):
    items = [FaqItem("배송비는 얼마인가요?", "ship", "3,000원"), FaqItem("환불은 언제 되나요?", "refund", "3영업일")]
    pipeline = temporary_pipeline(make_settings(), faq_records(items), tmp_path / "store")
    settings = pipeline.settings.answer
    hello, thanks = pipeline.answerer.ask("안녕하세요~"), pipeline.answerer.ask("감사합니다!! ㅎㅎ")
    assert (hello.type, hello.answer, hello.suggestions) == ("fallback", settings.greeting_reply, ())
    assert (thanks.type, thanks.answer) == ("fallback", settings.thanks_reply)
    assert pipeline.answerer.ask("안녕하세요 배송비는 얼마인가요?").answer not in (settings.greeting_reply, settings.thanks_reply)


def test_a_question_that_names_nothing_is_asked_for_its_topic(make_settings, tmp_path):
    """"언제요?" / "모르겠어요" were answered with the nearest FAQ at P 0.6–0.7 on the sample shop."""
    items = [FaqItem("배송은 언제 오나요?", "ship", "2–3일"), FaqItem("아이디를 모르겠어요", "id", "아이디 찾기에서")]
    pipeline = temporary_pipeline(make_settings(), faq_records(items), tmp_path / "store")
    reply = pipeline.settings.answer.no_topic_reply
    for question in ("언제요?", "모르겠어요", "뭐해?"):
        answer = pipeline.answerer.ask(question)
        assert (answer.type, answer.answer, answer.hits) == ("fallback", reply, ()), question
    assert pipeline.answerer.ask("아이디를 모르겠어요").answer != reply


def test_a_store_of_lines_that_name_no_topic_still_answers_them(make_settings, tmp_path):
    """Chit-chat stores (13 % of the public chatbot set's questions name no noun) match on such lines."""
    items = [FaqItem("뭐해?", "chat", "쉬고 있어요"), FaqItem("배송은 언제 오나요?", "ship", "2–3일")]
    pipeline = temporary_pipeline(make_settings(), faq_records(items), tmp_path / "chat")
    answer = pipeline.answerer.ask("뭐해?")
    assert answer.answer != pipeline.settings.answer.no_topic_reply and answer.hits[0].answer_id == "chat"
