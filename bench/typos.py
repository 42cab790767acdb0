"""Questions with one typing slip, for measuring typo repair (chatbot/spelling.py) on any question set.

The slip is what a thumb does on the 2-set (두벌식) keyboard: one jamo of one syllable of one noun of two or
more syllables (chosen by kiwi, at random) becomes a key next to it on the same kind of key (consonant ↔
consonant, vowel ↔ vowel; a final stays a valid final). Seeded, so every run asks the same questions.
A question with no such noun is left as written.
"""
from __future__ import annotations

import random

from chatbot.spelling import FINALS, INITIALS, MEDIALS, is_syllable, jamo_of, neighbours, syllable_of
from chatbot.text import get_kiwi


def slips(syllable: str) -> list[str]:
    """Every syllable one neighbouring key away from `syllable` (the repair's slips also include the
    shifted key, sound-alike vowels and keys added or left out: these are the most common slips only)."""
    i, m, f = jamo_of(syllable)
    out = []
    for k in neighbours(INITIALS[i]):
        if k in INITIALS:
            out.append((INITIALS.index(k), m, f))
    for k in neighbours(MEDIALS[m]):
        out.append((i, MEDIALS.index(k), f))
    if f:
        for k in neighbours(FINALS[f]):
            if k in FINALS:
                out.append((i, m, FINALS.index(k)))
    return [syllable_of(a, b, c) for a, b, c in out]


def with_typo(question: str, rng: random.Random) -> str:
    """The question with one slip in one of its nouns of two or more syllables (as written when it has none)."""
    nouns = [t for t in get_kiwi().tokenize(question)
             if t.tag in ("NNG", "NNP") and len(t.form) >= 2 and question[t.start : t.end] == t.form
             and all(is_syllable(ch) for ch in t.form)]
    if not nouns:
        return question
    token = rng.choice(nouns)
    place = rng.randrange(len(token.form))
    options = slips(token.form[place])
    if not options:
        return question
    word = token.form[:place] + rng.choice(options) + token.form[place + 1 :]
    return question[: token.start] + word + question[token.end :]
