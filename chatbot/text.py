"""Korean text processing with one shared Kiwi: normalisation, spacing, sentences, morpheme tokens.

The Kiwi carries the operator dictionary's user words and morpheme tokens its synonym rewrite
(chatbot.dictionary), so every caller sees the same tokens.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from kiwipiepy import Kiwi

from chatbot.dictionary import active_dictionary
from chatbot.synonyms import Dictionary, Expander

# Content morphemes: nouns, verb/adjective stems, roots, foreign words, numbers, hanja.
# Particles (J*), endings (E*), suffix-like verbs (XSV 하다) are dropped, so
# 환불해 주세요 / 환불받을 수 있나요 / 환불 all share 환불.
CONTENT_TAGS = ("NNG", "NNP", "NR", "NP", "VV", "VA", "XR", "SL", "SN", "SH", "MAG", "XPN")
# Light verbs and filler words that every question shares; dropping them keeps BM25 on the topic.
_STOP_STEMS = frozenset({"하", "되", "있", "이", "않", "주", "싶", "보"})
_STOP_FORMS = frozenset({"어떻", "어떻게", "어떡", "좀", "그냥", "너무", "진짜", "정말", "혹시", "제발", "많이"})
_SPACES = re.compile(r"\s+")
_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200b-\u200f\u2028-\u202f\ufeff]")


def get_kiwi(typos: bool = False) -> Kiwi:
    """One Kiwi per process (and per typo mode) with the active dictionary's user words."""
    return _kiwi(typos, active_dictionary())


@lru_cache(maxsize=4)
def _kiwi(typos: bool, dictionary: Dictionary) -> Kiwi:
    """Loading Kiwi takes about a second; a dictionary edit builds a new one (user words cannot be removed)."""
    kiwi = Kiwi(typos="basic_with_continual") if typos else Kiwi()
    for word, tag in dictionary.user_words():
        kiwi.add_user_word(word, tag)
    return kiwi


@lru_cache(maxsize=4)
def _expander(typos: bool, dictionary: Dictionary) -> Expander:
    """Variants compiled with the very tokeniser that makes index tokens (user words included)."""
    kiwi = _kiwi(typos, dictionary)
    return Expander(dictionary, lambda text: _content_forms(kiwi.tokenize(normalise(text))))


def normalise(text: str) -> str:
    """NFKC (full-width → ASCII, compatibility jamo kept composable), drop control chars, collapse spaces."""
    text = unicodedata.normalize("NFKC", text or "")
    text = _CONTROL.sub("", text)
    return _SPACES.sub(" ", text).strip()


def correct_spacing(text: str) -> str:
    """Kiwi's spacing model: '배송조회어떻게해요' → '배송 조회 어떻게 해요'."""
    text = normalise(text)
    if not text:
        return text
    return get_kiwi().space(text, reset_whitespace=False)


def split_sentences(text: str) -> list[str]:
    """Sentence boundaries for chunking; Kiwi copes with missing periods and Korean endings."""
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text or ""):
        paragraph = normalise(paragraph)
        if paragraph:
            sentences.extend(s.text.strip() for s in get_kiwi().split_into_sents(paragraph) if s.text.strip())
    return sentences


ANALYSES_KEPT, KEPT_CHARS = 1024, 200  # a kept 2,000-character question's tokens take ~150 KB: only short texts are kept


def analysis(text: str, typos: bool = False) -> tuple:
    """Kiwi's tokens of a text, those of the most recent 1,024 texts up to 200 characters kept: a question's
    typo check, keyword tokens and topic check all read this one analysis (each call holds the GIL for
    ~0.1-0.4 ms). A longer text, rare for a question, is analysed each time, so no client can fill memory."""
    analyse = _kept_analysis if len(text) <= KEPT_CHARS else _analysis
    return analyse(text, typos, active_dictionary())


def analyses(texts: list[str]) -> list[tuple]:
    """analysis() of many texts in one batched Kiwi call, not kept: training data, not questions."""
    return [tuple(tokens) for tokens in _kiwi(False, active_dictionary()).tokenize(texts)] if texts else []


def forget_analyses() -> None:
    """Drop the kept analyses (a benchmark times what a new question's costs)."""
    _kept_analysis.cache_clear()


def _analysis(text: str, typos: bool, dictionary: Dictionary) -> tuple:
    return tuple(_kiwi(typos, dictionary).tokenize(text))


_kept_analysis = lru_cache(maxsize=ANALYSES_KEPT)(_analysis)


def morphemes(text: str, typos: bool = False) -> list[str]:
    """Lexical-index tokens: content morphemes and verb/adjective stems, lower-cased, synonyms made canonical."""
    text = normalise(text)
    if not text:
        return []
    return _expander(typos, active_dictionary()).expand(_content_forms(analysis(text, typos)))


def morphemes_batch(texts: list[str], typos: bool = False) -> list[list[str]]:
    """Batch form of morphemes(); Kiwi tokenises a list faster than one call per text.

    Documents and questions both come through here or morphemes(), so a dictionary variant
    (돈 돌려받기) becomes its canonical morpheme (환불) on both sides of BM25.
    """
    kiwi, expander = _tokeniser(typos)
    cleaned = [normalise(t) for t in texts]
    return [expander.expand(_content_forms(tokens)) if text else [] for text, tokens in zip(cleaned, kiwi.tokenize(cleaned))]


def _tokeniser(typos: bool) -> tuple[Kiwi, Expander]:
    dictionary = active_dictionary()
    return _kiwi(typos, dictionary), _expander(typos, dictionary)


def _content_forms(tokens: list) -> list[str]:
    out: list[str] = []
    for token in tokens:
        tag = token.tag.split("-")[0]
        if token.form in _STOP_FORMS or (tag in ("VV", "VA") and token.form in _STOP_STEMS):
            continue
        if tag.startswith(CONTENT_TAGS):
            out.append(token.form.lower())
    return out


_HANGUL_RUN = re.compile(r"[가-힣]+")


def is_unspaced(text: str) -> bool:
    """True when a question looks typed without spaces: six or more Hangul syllables and no space at all
    ("배송조회어떻게해요"), or a run of ten or more anywhere. A spaced question with one long word
    ("비밀번호를 잊어버렸어요") is not: respacing it would move it away from the same FAQ wording."""
    runs = [len(run) for run in _HANGUL_RUN.findall(text)]
    if not runs:
        return False
    return max(runs) >= 10 or (not any(ch.isspace() for ch in text.strip()) and sum(runs) >= 6)


# What a question can be about: common and proper nouns, foreign words, hanja, roots. Not pronouns
# (뭐, 이거), bound nouns (수, 것), numbers, adverbs (언제) or verbs alone (모르다, 깨지다).
TOPIC_TAGS = frozenset({"NNG", "NNP", "SL", "SH", "XR"})
_JAMO = "\u1100-\u11ff\u3130-\u318f"  # Hangul jamo and compatibility jamo (ㅋ, ㅠ)
_JAMO_ONLY = re.compile(f"[{_JAMO}]+")  # ㅋㅋ, ㅠㅠ (kiwi calls them nouns after NFKC)


def names_a_topic(text: str) -> bool:
    """True when a text names something to look up. "언제요?", "뭐해?", "모르겠어요" name nothing: the
    nearest FAQ, which does, matched them at P 0.5–0.7 (a confident wrong answer); no question of the
    sample's evaluation sets that has an answer lacks such a word (the Answerer asks for the topic only
    when the candidate names one). Cached per text (and dictionary: its user words are nouns); a question's
    reads the analysis the keyword side made, and a passage's (longer than analyses are kept) is made once."""
    return _names_a_topic(normalise(text), active_dictionary())


@lru_cache(maxsize=4096)
def _names_a_topic(text: str, dictionary: Dictionary) -> bool:
    return any(token.tag.split("-")[0] in TOPIC_TAGS and not _JAMO_ONLY.fullmatch(token.form)
               for token in analysis(text))


_HANGUL = re.compile(f"[{_JAMO}\uac00-\ud7a3]")  # jamo or syllables
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def is_foreign(text: str) -> bool:
    """A question with Latin words and no Hangul at all ("How much is shipping?"): the store is Korean, so a
    reply that says only "no answer" in Korean would not reach its writer."""
    return not _HANGUL.search(text) and bool(_LATIN_WORD.search(text))


def is_meaningful(text: str) -> bool:
    """True when a question has letters or digits (emoji-only or punctuation-only is not a question)."""
    return any(ch.isalnum() for ch in normalise(text))
