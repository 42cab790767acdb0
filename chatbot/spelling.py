"""Typos in the store's own words: an unknown word one slip away from a store word is read as it.

Users type on phones: "배숑 기간", "홙불 언제 돼요", "쿠퐁 어디서 받아요". Kiwi marks such a word unknown
(oov), the encoder cuts it into pieces that mean nothing and the keyword side finds nothing, so the
question falls back or lands on the wrong FAQ. A slip is one jamo of one syllable typed as what a thumb
or an ear gives on the 2-set (두벌식) keyboard: a neighbouring key, the shifted or unshifted key (ㄱ/ㄲ,
ㅐ/ㅒ), a sound-alike vowel (ㅐ/ㅔ, ㅙ/ㅚ/ㅞ), one key of a compound vowel or final added or left out
(ㅘ/ㅗ, ㄵ/ㄴ), or a final consonant typed or left out. Other changes are not slips: slang kiwi does not
know ("취뽀", "필망") stays as written instead of turning into a store word. Never changed either: a word
kiwi knows (결재 is a word; the encoder copes with it), a word the store itself uses (a brand name),
words shorter than two syllables, and a word two store words are equally close to (no guess).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache

from chatbot.text import analysis, get_kiwi

_FIRST, _LAST = 0xAC00, 0xD7A3
INITIALS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
MEDIALS = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
FINALS = "-ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ"  # "-": no final consonant
KEY_ROWS = ("ㅂㅈㄷㄱㅅㅛㅕㅑㅐㅔ", "ㅁㄴㅇㄹㅎㅗㅓㅏㅣ", "ㅋㅌㅊㅍㅠㅜㅡ")  # the 2-set keyboard, unshifted
SHIFTED = {"ㅂ": "ㅃ", "ㅈ": "ㅉ", "ㄷ": "ㄸ", "ㄱ": "ㄲ", "ㅅ": "ㅆ", "ㅐ": "ㅒ", "ㅔ": "ㅖ"}
SOUND_ALIKE = ("ㅐㅔ", "ㅒㅖ", "ㅙㅚㅞ")
COMPOUNDS = {"ㅘ": "ㅗㅏ", "ㅙ": "ㅗㅐ", "ㅚ": "ㅗㅣ", "ㅝ": "ㅜㅓ", "ㅞ": "ㅜㅔ", "ㅟ": "ㅜㅣ", "ㅢ": "ㅡㅣ",
             "ㄳ": "ㄱㅅ", "ㄵ": "ㄴㅈ", "ㄶ": "ㄴㅎ", "ㄺ": "ㄹㄱ", "ㄻ": "ㄹㅁ", "ㄼ": "ㄹㅂ", "ㄽ": "ㄹㅅ",
             "ㄾ": "ㄹㅌ", "ㄿ": "ㄹㅍ", "ㅀ": "ㄹㅎ", "ㅄ": "ㅂㅅ"}
_VOWELS = frozenset(MEDIALS)
MIN_SYLLABLES = 2
MAX_SYLLABLES = 10  # longer runs are not one word; only their first MAX_SYLLABLES are tried
MAX_UNKNOWN = 3  # unknown words tried per question (each costs up to ~1 ms; garbage text has many)
CACHE_SIZE = 4096


def is_syllable(ch: str) -> bool:
    return _FIRST <= ord(ch) <= _LAST


def jamo_of(syllable: str) -> tuple[int, int, int]:
    """The (initial, vowel, final) positions in INITIALS / MEDIALS / FINALS of one Hangul syllable."""
    code = ord(syllable) - _FIRST
    return code // (21 * 28), (code // 28) % 21, code % 28


def syllable_of(initial: int, medial: int, final: int) -> str:
    """The Hangul syllable of those positions (jamo_of's inverse)."""
    return chr(_FIRST + (initial * 21 + medial) * 28 + final)


def neighbours(jamo: str) -> list[str]:
    """The keys touching `jamo`'s key (same row ±1; the rows above and below at the same or the next
    place) that are of its kind (consonant or vowel)."""
    for r, row in enumerate(KEY_ROWS):
        c = row.find(jamo)
        if c < 0:
            continue
        out = [row[x] for x in (c - 1, c + 1) if 0 <= x < len(row)]
        for other in (r - 1, r + 1):
            if 0 <= other < len(KEY_ROWS):
                out += [KEY_ROWS[other][x] for x in (c - 1, c, c + 1) if 0 <= x < len(KEY_ROWS[other])]
        return [k for k in out if (k in _VOWELS) == (jamo in _VOWELS)]
    return []


@lru_cache(maxsize=None)
def slipped(jamo: str, final: bool = False) -> frozenset[str]:
    """What `jamo` becomes by one slip (final=True: as a final consonant, "-" = none)."""
    out: set[str] = set()
    plain = {v: k for k, v in SHIFTED.items()}
    for key in (jamo, plain.get(jamo, "")):
        out.update(neighbours(key) if key else ())
    out.update(x for x in (SHIFTED.get(jamo), plain.get(jamo)) if x)
    out.update(ch for group in SOUND_ALIKE if jamo in group for ch in group)
    out.update(COMPOUNDS.get(jamo, ""))  # one key of a compound left out
    out.update(c for c, parts in COMPOUNDS.items() if jamo in parts)  # a key added to make a compound
    if final:
        out.update("-" if jamo != "-" else FINALS[1:])  # a final left out, or typed where there was none
        out &= set(FINALS)
    else:
        out &= set(INITIALS) | set(MEDIALS)
    out.discard(jamo)
    return frozenset(out)


def slips(word: str, places: Iterable[int] | None = None) -> Iterator[str]:
    """Every word one slip away from `word` (see the module docstring); places: only at these syllables."""
    for i in range(len(word)) if places is None else places:
        ch = word[i]
        if not is_syllable(ch):
            continue
        initial, medial, final = jamo_of(ch)
        options = [(INITIALS.index(x), medial, final) for x in slipped(INITIALS[initial])]
        options += [(initial, MEDIALS.index(x), final) for x in slipped(MEDIALS[medial])]
        options += [(initial, medial, FINALS.index(x)) for x in slipped(FINALS[final], final=True)]
        for a, b, c in options:
            yield word[:i] + syllable_of(a, b, c) + word[i + 1 :]


class Speller:
    """Repairs questions against one store vocabulary (the BM25 cache's morphemes); built once per cache."""

    def __init__(self, doc_freq: Mapping[str, int]) -> None:
        self.doc_freq = doc_freq  # the cache's own table, not a copy (a 1M-record store has a large one)
        words = "\n".join(doc_freq)  # one string, scanned in C: built on the first question after every cache change
        self.syllables = frozenset(ch for ch in set(words) if is_syllable(ch))
        self.longest = min(max(map(len, doc_freq), default=0), MAX_SYLLABLES)  # a repaired span is never longer
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def repair(self, text: str) -> str:
        """The question with each repairable unknown word replaced (the rest as typed)."""
        with self._lock:
            if text in self._cache:
                self._cache.move_to_end(text)
                return self._cache[text]
        repaired = self._repair(text)
        with self._lock:
            self._cache[text] = repaired
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return repaired

    def _repair(self, text: str) -> str:
        if not self.doc_freq or not any(is_syllable(ch) for ch in text):
            return text
        out, at = [], 0
        unknown = [t for t in analysis(text)
                   if t.oov and text[t.start : t.end] == t.form and t.form not in self.doc_freq]
        for token in unknown[:MAX_UNKNOWN]:
            fixed = self.fix(token.form)
            if fixed:
                out += [text[at : token.start], fixed]
                at = token.end
        return "".join(out) + text[at:] if out else text

    def fix(self, word: str) -> str | None:
        """`word` with its longest repairable start (two syllables or more) read as store words, or None.

        A start is repairable when exactly one spelling one slip away splits into the fewest store words;
        among several such spellings, the one the store uses at least twice as often as any other wins."""
        for end in range(min(len(word), MAX_SYLLABLES), MIN_SYLLABLES - 1, -1):
            head = word[:end]
            if not all(map(is_syllable, head)):
                continue
            strange = [i for i, ch in enumerate(head) if ch not in self.syllables]
            if len(strange) > 1:  # one slip mends one syllable; every other must be one the store uses
                continue
            scored = []
            for variant in set(slips(head, strange or None)):
                if all(ch in self.syllables for ch in variant) and (split := self.split(variant)):
                    scored.append((len(split), -min(self.doc_freq[w] for w in split), variant))
            if scored:
                scored.sort()
                best = scored[0]
                rivals = [s for s in scored[1:] if s[0] == best[0]]
                if rivals and -best[1] < 2 * -rivals[0][1]:
                    return None  # two store words as likely: no guess
                fixed = best[2] + word[end:]
                return fixed if end == len(word) or self._ending(fixed, end) else None
        return None

    @staticmethod
    def _ending(fixed: str, end: int) -> bool:
        """True when the rest of an unsplit word after its repaired start reads as an ending, a particle or a
        verb kiwi knows ("겨환되나요" → 교환 + 되 + 나요), not as another noun ("가이폰" is no 가입 + 폰)."""
        tokens = get_kiwi().tokenize(fixed)
        rest = [t for t in tokens if t.end > end]
        return (any(t.end == end for t in tokens) and bool(rest)
                and all(t.start >= end and not t.oov and t.tag.startswith(("J", "E", "V", "XSV", "XSA")) for t in rest))

    def split(self, text: str) -> list[str] | None:
        """`text` as the fewest store words (each of two syllables or more), or None when it is not made of them."""
        best: list[list[str] | None] = [[]] + [None] * len(text)
        for end in range(1, len(text) + 1):
            for start in range(max(0, end - self.longest), end - MIN_SYLLABLES + 1):
                piece, before = text[start:end], best[start]
                if before is not None and piece in self.doc_freq and (best[end] is None or len(before) + 1 < len(best[end])):
                    best[end] = before + [piece]
        return best[-1]
