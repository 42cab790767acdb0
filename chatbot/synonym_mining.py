"""Synonym candidates from the question log: where the encoder answered but BM25 had no word in common.

A question answered confidently whose content morphemes share nothing with the matched FAQ's
morphemes is a lexical miss the encoder bridged (돈 돌려받 … ↔ 환불). Counting the (question
morpheme, FAQ morpheme) pairs over many such questions surfaces the pairs an operator may add to
the dictionary. mine_synonym_pairs() is pure; candidates_from_log() only fetches its input.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from chatbot.questionlog.reader import questions_since
from chatbot.store import Store
from chatbot.text import morphemes


@dataclass(frozen=True)
class SynonymCandidate:
    """A proposed pair: the customer's morpheme, the FAQ's morpheme, in how many missed questions, one example."""

    question_term: str
    faq_term: str
    count: int
    example: str


def mine_synonym_pairs(
    matches: Iterable[tuple[str, str]],
    tokenize: Callable[[str], Sequence[str]] = morphemes,
    min_count: int = 1,
    limit: int = 100,
) -> list[SynonymCandidate]:
    """(question, matched FAQ text) pairs → candidate pairs from those with no morpheme in common.

    Tokens come from the dictionary-aware tokeniser, so pairs the dictionary already rewrites never
    reappear. Most frequent first (ties: alphabetical), at most `limit`.
    """
    counts: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], str] = {}
    for question, faq_text in matches:
        asked, known = set(tokenize(question)), set(tokenize(faq_text))
        if not asked or not known or asked & known:
            continue
        for pair in ((a, k) for a in sorted(asked) for k in sorted(known)):
            counts[pair] += 1
            examples.setdefault(pair, question)
    ranked = sorted((item for item in counts.items() if item[1] >= min_count), key=lambda item: (-item[1], item[0]))
    return [SynonymCandidate(q, f, n, examples[(q, f)]) for (q, f), n in ranked[:limit]]


def faq_texts(store: Store) -> dict[str, str]:
    """FAQ id → all its stored question variants, one per line (a miss means none of them shares a word)."""
    texts: dict[str, list[str]] = {}
    for _, meta in store.iter_metadata():
        if meta.get("faq_id") and meta.get("question"):
            texts.setdefault(str(meta["faq_id"]), []).append(str(meta["question"]))
    return {faq_id: "\n".join(questions) for faq_id, questions in texts.items()}


def confident_matches(
    engine: Engine, texts: Mapping[str, str], since: datetime, min_p: float = 0.9, min_score: float | None = None,
    max_questions: int = 20_000,
) -> list[tuple[str, str]]:
    """(question, matched FAQ text) of logged answers with P ≥ min_p (rows without P: top score ≥ min_score)."""
    out: list[tuple[str, str]] = []
    for row in questions_since(engine, since, outcomes=["answer"], limit=max_questions):
        if not row.top or row.top[0][0] not in texts:
            continue
        confident = row.p >= min_p if row.p is not None else min_score is not None and row.top[0][1] >= min_score
        if confident:
            out.append((row.question, texts[row.top[0][0]]))
    return out


def candidates_from_log(
    engine: Engine, store: Store, since: datetime, min_p: float = 0.9, min_score: float | None = None,
    min_count: int = 2, limit: int = 100,
) -> list[SynonymCandidate]:
    """What the operator tab lists: mined pairs from the log's confident answers since `since`."""
    matches = confident_matches(engine, faq_texts(store), since, min_p, min_score)
    return mine_synonym_pairs(matches, min_count=min_count, limit=limit)
