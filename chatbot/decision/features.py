"""Numbers that say whether a candidate answers the question, beyond its raw score.

e5 rates unrelated Korean questions 0.85–0.90, so the fused score alone cannot separate; what
differs is how much the candidate stands out from the rest (margin, gap to the mean of the next
ones) and whether the question's rare content words appear in it at all.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import numpy as np

from chatbot.decision.candidates import Candidate
from chatbot.dictionary import active_dictionary
from chatbot.lexical import LexicalIndex, tokeniser_key
from chatbot.records import related_texts
from chatbot.text import morphemes_batch

NAMES: tuple[str, ...] = (
    "fused", "cosine", "lexical", "margin", "gap_mean", "is_doc",
    "unmatched", "unmatched_idf", "unmatched_answer_idf", "question_tokens", "candidate_chars_log",
    "question_chars_log", "support", "support_margin",
)


class TokenCache:
    """Morpheme sets of candidate texts (a candidate's wording, its FAQ's main question and answer) the BM25
    cache does not hold yet, the most recent `size` kept. Misses are tokenised in one batched Kiwi call (7 short
    texts: ~1.0 ms against ~1.5 ms one by one). Cleared when the dictionary in force changes: its synonyms
    rewrite the tokens."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._kept: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._dictionary: object = None
        self._lock = threading.Lock()

    def many(self, texts: Sequence[str]) -> list[frozenset[str]]:
        dictionary = active_dictionary()
        with self._lock:
            if dictionary is not self._dictionary:
                self._kept.clear()
                self._dictionary = dictionary
            found = {t: self._kept[t] for t in texts if t in self._kept}
            for text in found:
                self._kept.move_to_end(text)
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            made = {t: frozenset(tokens) for t, tokens in zip(missing, morphemes_batch(missing))}
            with self._lock:
                if dictionary is self._dictionary:
                    self._kept.update(made)
                    while len(self._kept) > self.size:
                        self._kept.popitem(last=False)
            found.update(made)
        return [found[t] for t in texts]


TOKENS = TokenCache()
TokenSets = tuple[frozenset[str], frozenset[str]]  # a candidate's own words; its whole entry's (own, main question, answer)


def entry_texts(candidate: Candidate) -> list[str]:
    """What a candidate's words are read from: its own text, then its FAQ's main question and answer."""
    return [candidate.hit.text, *related_texts(candidate.hit.metadata)]


def candidate_tokens(candidates: Sequence[Candidate], index: LexicalIndex | None = None) -> dict[str, TokenSets]:
    """TokenSets by record id: from the BM25 cache, which tokenised every record it holds with the same Kiwi
    and dictionary, else (a record stored since its last refresh, a cache made under another tokeniser) from
    TOKENS, the misses in one batched Kiwi call."""
    out: dict[str, TokenSets] = {}
    ids = list(dict.fromkeys(c.hit.record_id for c in candidates))
    if index is not None and not index.typos and index.token_key == tokeniser_key(False):
        out = {record_id: found for record_id, found in zip(ids, index.token_sets(ids)) if found is not None}
    rest = list({c.hit.record_id: c for c in candidates if c.hit.record_id not in out}.values())
    made = TOKENS.many([text for c in rest for text in entry_texts(c)])
    for j, c in enumerate(rest):
        own, main, answer = made[3 * j : 3 * j + 3]
        out[c.hit.record_id] = (own, own | main | answer)
    return out


def idf(token: str, doc_freq: dict[str, int], n: int) -> float:
    """BM25's IDF; a token the store never saw gets the largest value (it is the most telling)."""
    df = doc_freq.get(token, 0)
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def variant_scores(pool: Sequence[Candidate]) -> dict[str, list[tuple[str, float]]]:
    """(record id, fused score) of every candidate in the pool, by answer key: each FAQ's ranked wordings."""
    out: dict[str, list[tuple[str, float]]] = {}
    for r in pool:
        out.setdefault(r.hit.answer_key, []).append((r.hit.record_id, r.fused))
    return out


def candidate_features(
    question: str, tokens: Sequence[str], ranked: Sequence[Candidate], i: int,
    doc_freq: dict[str, int], n_records: int, variants: Mapping[str, list[tuple[str, float]]] | None = None,
    tokens_of: Mapping[str, TokenSets] | None = None,
) -> np.ndarray:
    """Features of ranked[i] as the answer to `question` (ranked: grouped candidates, best first;
    variants: variant_scores of the ungrouped candidates they came from, for how many wordings of the FAQ
    agree (made once for the several candidates of one ranking; none: ranked[i] alone);
    tokens_of: candidate_tokens of ranked[i] and maybe others, else read here)."""
    c = ranked[i]
    others = [r.fused for j, r in enumerate(ranked) if j != i]
    best_other = max(others) if others else c.fused - 0.1
    following = [r.fused for r in ranked[i + 1 : i + 6]] or [c.fused - 0.1]
    # an FAQ also "contains" the words of its main question and its answer (a passage is its own answer)
    text_tokens, entry_tokens = (tokens_of or candidate_tokens([c]))[c.hit.record_id]
    unique = list(dict.fromkeys(tokens))
    missing = [t for t in unique if t not in text_tokens]
    weights = {t: idf(t, doc_freq, n_records) for t in unique}
    total = sum(weights.values())
    # other variants of the same FAQ that also rank high: several wordings agreeing is stronger evidence
    wordings = (variants or {}).get(c.hit.answer_key, ())
    siblings = sorted((fused for record_id, fused in wordings if record_id != c.hit.record_id), reverse=True)
    support = sum(1 for f in siblings if f >= best_other)
    second = siblings[0] if siblings else c.fused - 0.1
    return np.array([
        c.fused,
        c.cosine,
        c.lexical,
        c.fused - best_other,
        c.fused - float(np.mean(following)),
        1.0 if c.hit.kind == "doc" else 0.0,
        len(missing) / len(unique) if unique else 1.0,
        sum(weights[t] for t in missing) / total if total else 1.0,
        sum(weights[t] for t in unique if t not in entry_tokens) / total if total else 1.0,
        float(len(unique)),
        math.log1p(len(c.hit.text)),
        math.log1p(len(question)),
        float(support),
        second - best_other,
    ], dtype=np.float64)
