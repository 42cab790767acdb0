"""Question-like rewordings of stored FAQ questions, for the decision model's in-scope rows.

Users rarely type an FAQ's polished question: they type its key words, drop particles and polite
endings, or add a casual ending ("반품 어케 해요", "비회원 주문 되나요?"). Rows built only from an
FAQ's own alternative questions are too clean, so the model learns that only near-copies are right
and falls back on ordinary rewordings. A rewording keeps the question's nouns (in order, one may
be dropped) and adds a common ending; it is asked against the whole store, and again with its FAQ
removed (the matching out-of-scope row).
"""
from __future__ import annotations

import random

from chatbot.text import get_kiwi, normalise

NOUN_TAGS = ("NNG", "NNP", "NR", "SL", "SN", "XR", "XPN", "XSN")
ENDINGS = ("", "?", " 어떻게 해요?", " 알려주세요", " 궁금해요", " 되나요?", " 방법", " 문의요", " 어케 해요", " 하고 싶어요")


def key_words(question: str) -> list[str]:
    """The noun part of each word, particles and endings cut off: '비회원으로도 주문할' → ['비회원', '주문']."""
    words: dict[int, str] = {}
    text = normalise(question)
    for token in get_kiwi().tokenize(text):
        start = text.rfind(" ", 0, token.start) + 1  # the word (eojeol) the token belongs to
        if token.tag.split("-")[0] not in NOUN_TAGS:
            words.setdefault(start, "")
            words[start] += "\0"  # the noun part ended
        elif "\0" not in words.get(start, ""):
            words[start] = words.get(start, "") + token.form
    return list(dict.fromkeys(w.split("\0")[0] for w in words.values() if w.split("\0")[0]))


def reworded(question: str, rng: random.Random) -> str | None:
    """A keyword-style rewording of question, or None when it has fewer than two key words to keep."""
    nouns = key_words(question)
    if len(nouns) < 2:
        return None
    if len(nouns) >= 3:
        del nouns[rng.randrange(len(nouns))]
    text = " ".join(nouns) + rng.choice(ENDINGS)
    return None if normalise(text) == normalise(question) else text
