"""From what a user typed to the question that is matched: emoticons, courtesy formulas and identifiers come off.

Chat messages carry more than the question: "안녕하세요. 배송비 얼마예요? 감사합니다", "환불 언제 돼요 ㅠㅠ",
"쿠폰이 안 써져요~~". None of it means anything for matching, but the encoder and the keyword side read
it as part of the question, which lowers the right FAQ's scores and lifts unrelated ones (the decision
model learned from FAQ wordings, which have none of it). So, before retrieval and the decision:

- runs of lone Hangul letters (ㅠㅠ ㅋㅋ ㅎㅎ ㅇㅇ: never part of a written word), ^^ ;; ~~ -_- are removed
  and repeated ?!. become one;
- courtesy formulas, a small closed set listed here, are removed as whole phrases at the start or end;
- identifiers are removed: e-mail addresses and codes of six digits or more (order, tracking, phone, card,
  account numbers; dates written as 2024-11-25), with the word naming a contact (연락처, 메일). They say
  whose or which order, not what is asked, and the encoder reads a code as a dozen meaningless pieces
  ("주문번호 2024112500123 배송비 얼마예요?"). Order and tracking labels (주문번호, 송장번호) stay, since they
  may be the topic; prices, amounts and short numbers ("3만원", "7일", "2,000원") stay.

A message that would be left with no letters or digits is kept as it is; one that is nothing but courtesy
("안녕하세요", "감사합니다 ㅎㅎ") gets a greeting or a "you're welcome" back (answer.greeting_reply /
answer.thanks_reply) instead of "no answer found". The question log keeps the message as typed.
"""
from __future__ import annotations

import re
from typing import Literal

from chatbot.questionlog.masking import BUILTIN_RULES
from chatbot.text import normalise

FORMULAS: tuple[str, ...] = (
    # greetings
    "안녕하세요", "안녕하십니까", "안녕", "하이", "반갑습니다", "반가워요",
    # a word to the person answering
    "수고하십니다", "수고 많으십니다", "수고 많으세요", "고생 많으십니다", "고생하십니다",
    # announcing a question
    "문의드립니다", "문의 드립니다", "문의드려요", "문의 드려요", "문의합니다", "문의 좀 드릴게요", "문의할게요",
    "질문 있습니다", "질문 있어요", "질문드립니다", "질문 드립니다", "질문드려요", "질문 드려요", "질문이요",
    "질문 하나만 할게요", "궁금한 게 있어요", "궁금한 게 있습니다", "궁금한 게 있는데요", "궁금한 점이 있어요",
    "궁금한 점이 있습니다", "하나 여쭤볼게요", "여쭤볼 게 있어요", "여쭤보고 싶은데요", "뭐 좀 물어볼게요",
    # getting attention, apologising for asking
    "저기요", "여기요", "실례합니다", "실례지만", "죄송한데요", "죄송하지만", "죄송합니다만",
    # closing requests (a bare "부탁드립니다" is not here: in "환불 부탁드립니다" it is the request itself)
    "답변 부탁드립니다", "답변 부탁드려요", "빠른 답변 부탁드립니다",
)
# thanks and goodbyes: alone, they get answer.thanks_reply
THANKS: tuple[str, ...] = ("감사합니다", "감사해요", "고맙습니다", "고마워요", "감사드립니다", "고마워", "수고하세요",
                           "수고하셨습니다", "좋은 하루 되세요")

_SEPARATOR = r"[\s\W_]"  # spaces, punctuation, emoticon characters between a formula and the question
_PHRASE = "|".join(sorted((r"\s*".join(map(re.escape, f.split())) for f in FORMULAS + THANKS), key=len, reverse=True))
_THANKS = re.compile("|".join(map(re.escape, THANKS)))
_LEADING = re.compile(rf"^{_SEPARATOR}*(?:{_PHRASE})(?:{_SEPARATOR}+|$)")
_TRAILING = re.compile(rf"(?<={_SEPARATOR})\s*(?:{_PHRASE}){_SEPARATOR}*$")  # the question's own "?" stays


# Hangul letters typed on their own: compatibility jamo (ㅠ, as typed) and conjoining jamo (ᅲ, what NFKC
# normalisation of the question turns them into)
_JAMO = re.compile(r"[\u1100-\u11FF\u3131-\u318E\uA960-\uA97F\uD7B0-\uD7FF]+")
_MARKS = re.compile(r"\^_*\^|;;+|~+|-_-|ㅡㅡ")
_REPEATED = re.compile(r"([?!.])[?!.]+")


def asks_something(message: str) -> bool:
    """False for a message with no question in it: emoji or marks only, or nothing but courtesy (the
    operators' inbox leaves these out: there is nothing to fix)."""
    text = strip_emoticons(normalise(message))
    return _has_word(text) and courtesy_only(text) is None


def question_of(message: str) -> str:
    """The question in a chat message: emoticons, then courtesy formulas, then identifiers taken off."""
    return strip_details(strip_emoticons(message))


def strip_details(text: str) -> str:
    """Courtesy formulas, then identifiers, off a message whose emoticons are off already (the Answerer
    reads courtesy_only in between)."""
    return strip_identifiers(strip_courtesies(text))


# a word naming a person's contact goes with it ("연락처 010-…", "메일: …"): whose, not what is asked. Order and
# tracking number labels stay ("송장번호 6012… 조회가 안 돼요" asks about tracking).
_LABEL = r"(?:(?:연락처|연락|이메일|메일|휴대폰|핸드폰|전화)(?:\s?번호)?(?:는|은)?\s*[:：]?\s*)?"
_EMAIL = re.compile(_LABEL + next(rule.pattern for rule in BUILTIN_RULES if rule.name == "email").pattern)
_CODE = re.compile(_LABEL + r"(?<![A-Za-z\d])(?:[A-Za-z]{1,4}[-#]?)?\d[\d. -]*\d(?![\d])")
MIN_CODE_DIGITS = 6


def strip_identifiers(text: str) -> str:
    """E-mail addresses and codes of MIN_CODE_DIGITS digits or more removed; the text itself when nothing else is left."""
    core = _EMAIL.sub(" ", text)
    core = _CODE.sub(lambda m: " " if sum(ch.isdigit() for ch in m.group(0)) >= MIN_CODE_DIGITS else m.group(0), core)
    if core == text:
        return text  # nothing taken off: the question exactly as it came (spaces included)
    core = " ".join(core.split())
    return core if _has_word(core) else text


def strip_emoticons(text: str) -> str:
    """ㅠㅠ, ㅋㅋ, ^^, ~~ and the like removed, ?!! shortened; the text itself when nothing else is left."""
    core = _REPEATED.sub(r"\1", _JAMO.sub(" ", _MARKS.sub(" ", text)))
    core = " ".join(core.split())
    return core if _has_word(core) else text


def strip_courtesies(text: str) -> str:
    """The question without the courtesy formulas before and after it; the text itself when nothing else is left."""
    core = _without_formulas(text)
    return core if _has_word(core) else text


def courtesy_only(text: str) -> Literal["thanks", "greeting"] | None:
    """What a message that is nothing but courtesy says ("감사합니다!", "수고하세요": thanks; "안녕하세요",
    "저기요": a greeting), so it gets a word back instead of "no answer found"; None for a message with a question."""
    if not _has_word(text) or _has_word(_without_formulas(text)):
        return None
    return "thanks" if _THANKS.search(text) else "greeting"


def _has_word(text: str) -> bool:
    """Letters or digits left (not only spaces, marks, emoji)."""
    return any(ch.isalnum() for ch in text)


def _without_formulas(text: str) -> str:
    core = text
    while (shorter := _LEADING.sub("", core, count=1)) != core:
        core = shorter
    while (shorter := _TRAILING.sub("", core, count=1)) != core:
        core = shorter
    return core.strip()
