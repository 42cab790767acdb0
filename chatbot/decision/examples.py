"""Training rows from the store itself, no labels needed.

in scope (what a user of the store asks):
  variant   each FAQ question variant asked with only itself removed: its FAQ's other variants stay,
            so the right FAQ should be on top (label = whether it is);
  stand-in  an FAQ with a single wording (a plain question/answer list has nothing else) asked in other
            words with its record kept: its question's keywords alone and the opening of its answer;
  passage   a sentence of a document chunk, cut to its first words, asked with that chunk removed:
            right when a passage of the same file comes first (how the evaluation judges passages;
            the overlapping neighbour chunks usually hold it). Rows whose top is an FAQ are dropped
            (an FAQ may well answer a document sentence: no trustworthy label).
out of scope (label 0):
  faq-removed  the same variant or stand-in asked with its whole FAQ removed (the nearest wrong FAQ);
  bundled      the bundled out-of-scope questions against the full store.
labelled (answer.calibration_files, then the operators' labels from the question log; the newest MAX_LABELLED):
  labelled     a logged question with the FAQ the operator said it meant: right when that FAQ comes first;
  not-for-us   a logged question the operator marked out of scope (label 0).
Labelled questions that are now stored themselves (added as an alternative) teach nothing and are skipped.
Big stores are bounded by sampling variants and passages (max_variants).
"""
from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from chatbot.decision.candidates import Ranking, rank
from chatbot.decision.features import candidate_features, candidate_tokens, variant_scores
from chatbot.records import hit_label
from chatbot.retrieval import Retriever
from chatbot.text import analyses, normalise, split_sentences

ANSWER_OPENER = re.compile(r"^(네|예|아니요|아니오|아뇨)[,.!\s]+")  # "네, …": the rest restates the question
KEYWORD_TAGS = ("NNG", "NNP", "XPN", "XR", "SL", "SN")  # the words a keyword search would keep
STAND_INS = 2  # wordings per single-wording FAQ (stand_in_questions)
NEAR_DUPLICATE = 0.97  # a bundled "out-of-scope" question this close to a stored one is the store's topic
IN_SCOPE_KINDS = ("variant", "stand-in", "passage", "labelled")
# In-scope rows worded from the store's own text (a document's sentence, an FAQ's keywords or answer) are easier
# than real questions and flatter a raw threshold: the safety rule compares the model with it on the rest.
MADE_KINDS = ("stand-in", "passage")
MAX_LABELLED = 5000
PASSAGE_QUESTIONS = 3  # sentences asked per document chunk
PASSAGE_WORDS = (3, 8)  # a sentence is cut to 60 % of its words, within these bounds
RANKING_THREADS = 16  # enough to fill an encoder micro-batch of a few tens
RANKING_CHUNK = 256  # rankings made ahead of their use
VERIFIED = 3  # candidates per row kept for the verifier (the Answerer scores up to answer.clarify_candidates)


@dataclass
class Examples:
    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray  # FAQ key / file (bundled negatives: their own), for grouped cross-validation
    kinds: list[str]  # variant | passage | faq-removed | bundled
    fused: np.ndarray | None = None  # the top candidate's fused score (the old threshold rule's input)
    pairs: list[tuple[str, str]] | None = None  # (question, top candidate's text), for reading the rows
    # the first VERIFIED grouped candidates of each row as (text, kind), for the verifier's features
    tops: list[list[tuple[str, str]]] | None = None

    @property
    def in_scope(self) -> np.ndarray:
        return np.array([k in IN_SCOPE_KINDS for k in self.kinds], dtype=bool)

    @property
    def judged(self) -> np.ndarray:
        """The rows the safety rule weighs the model against the threshold on (MADE_KINDS left out)."""
        return np.array([k not in MADE_KINDS for k in self.kinds], dtype=bool)


def passage_questions(text: str, n: int = PASSAGE_QUESTIONS) -> list[str]:
    """Up to n question-sized pieces of a chunk: sentences of 15–200 characters cut to their first words."""
    sentences = [s for line in text.splitlines() for s in split_sentences(line) if 15 <= len(s) <= 200]
    if len(sentences) > n:  # spread over the chunk: first, middle, last …
        step = (len(sentences) - 1) / (n - 1) if n > 1 else 0
        sentences = [sentences[round(i * step)] for i in range(n)]
    out = []
    for sentence in sentences:
        words = sentence.split()
        keep = max(PASSAGE_WORDS[0], min(PASSAGE_WORDS[1], round(len(words) * 0.6)))
        out.append(" ".join(words[:keep]))
    return list(dict.fromkeys(out))


def stand_in_questions(faqs: Sequence[tuple[str, str]]) -> list[list[str]]:
    """Other wordings of FAQs (question, answer) that have a single one, for their positive rows: the
    question's keywords alone, as a keyword search would ask ("배송비 얼마", "비회원 주문"), and the opening
    of the answer, cut like a passage sentence (it restates what is asked in other words: "회원가입 없이도
    비회원 …"). Measured on the sample FAQ without its alternatives (bench/decision.py --plain), either alone
    gave a worse decision than both together."""
    out = []
    for (question, answer), tokens in zip(faqs, analyses([normalise(q) for q, _ in faqs])):
        text = normalise(question)
        words: list[str] = []
        end = -1
        for token in tokens:
            if not token.tag.split("-")[0].startswith(KEYWORD_TAGS):
                continue
            piece = text[token.start : token.start + token.len]
            if token.start == end and words:  # 비밀+번호, 비+회원: one word as written
                words[-1] += piece
            else:
                words.append(piece)
            end = token.start + token.len
        keywords = " ".join(words)
        wordings = [keywords] if keywords and keywords != text else []
        wordings += passage_questions(ANSWER_OPENER.sub("", answer.strip()), 1)
        out.append(list(dict.fromkeys(wordings)))
    return out


def rank_all(retriever: Retriever, questions: Sequence[str]) -> Iterator[Ranking]:
    """The rankings of many questions, in order, RANKING_CHUNK at a time (a big store's thousands of
    training questions never hold all their candidates at once). Each chunk's questions are encoded in
    one batched call, so the model built from them is the same on every run and every replica (vectors
    from micro-batches formed by timing differ in their last bits, enough to flip a borderline P), and
    the rest of each ranking runs from RANKING_THREADS threads (its Chroma queries are batched together)."""
    with ThreadPoolExecutor(max_workers=RANKING_THREADS, thread_name_prefix="decision-rank") as pool:
        for start in range(0, len(questions), RANKING_CHUNK):
            chunk = list(questions[start : start + RANKING_CHUNK])
            vectors = retriever.question_vectors(chunk) if chunk else []
            yield from pool.map(lambda pair: rank(retriever, pair[0], vector=pair[1]), zip(chunk, vectors))


def build_examples(
    retriever: Retriever, bundled: tuple[str, ...], max_variants: int = 1500, seed: int = 0,
    labelled: Sequence[tuple[str, str]] = (),
) -> Examples:
    """labelled: (question, the FAQ id the operator said it meant; "" = not for us), oldest first."""
    index = retriever.lexical
    records = index.records
    doc_freq, n = index.doc_freq, max(len(records.ids), 1)
    group_of: dict[str, list[str]] = {}
    variants: list[tuple[str, str, str]] = []  # (record id, text, group key)
    chunks: list[tuple[str, str, str]] = []  # (record id, text, source)
    for record_id, text, meta in zip(records.ids, records.texts, records.metadatas):
        kind = meta.get("kind", "faq")
        if kind == "faq" and meta.get("faq_id"):
            key = f"{meta.get('source', '')}::{meta['faq_id']}"
            group_of.setdefault(key, []).append(record_id)
            variants.append((record_id, text, key))
        elif kind == "doc":
            chunks.append((record_id, text, str(meta.get("source", ""))))
    # An FAQ with at least two variants gives a positive by leaving one out; one with a single wording
    # is asked in stand-in wordings with its record kept.
    askable = [v for v in variants if len(group_of[v[2]]) >= 2]
    lone = [v for v in variants if len(group_of[v[2]]) == 1]
    rng = random.Random(seed)
    if len(askable) > max_variants:
        askable = rng.sample(askable, max_variants)
    if len(lone) * STAND_INS > max_variants:
        lone = rng.sample(lone, max(max_variants // STAND_INS, 1))
    rows = index.position.lookup([record_id for record_id, _, _ in lone])
    faqs = [(text, str(records.metadatas[row].get("answer") or "")) for (_, text, _), row in zip(lone, rows)]
    stand_ins = [(record_id, wording, key) for (record_id, _, key), wordings in zip(lone, stand_in_questions(faqs))
                 for wording in wordings]
    if len(chunks) * PASSAGE_QUESTIONS > max_variants:
        chunks = rng.sample(chunks, max(max_variants // PASSAGE_QUESTIONS, 1))

    rows: list[np.ndarray] = []
    labels: list[int] = []
    groups: list[str] = []
    kinds: list[str] = []
    fused: list[float] = []
    pairs: list[tuple[str, str]] = []
    tops: list[list[tuple[str, str]]] = []

    def add(ranking: Ranking, exclude: set[str], right: str | None, group: str, kind: str) -> None:
        ranked = ranking.grouped(exclude=exclude)
        if not ranked:
            return
        top = ranked[0]
        if kind == "faq-removed" and top.hit.kind == "doc":
            return  # a passage may well answer an FAQ's question: no trustworthy label
        if kind == "passage" and top.hit.kind != "doc":
            return  # ... and an FAQ a document's sentence
        if kind == "passage":
            label = int(str(top.hit.metadata.get("source", "")) == right)
        elif kind == "labelled":  # an FAQ id, or `source:FILE` for any passage of that document
            label = int(hit_label(top.hit) == right)
        else:
            label = int(right is not None and top.hit.answer_key == right)
        pool = [c for c in ranking.hits if c.hit.record_id not in exclude]
        rows.append(candidate_features(ranking.question, ranking.tokens, ranked, 0, doc_freq, n, variant_scores(pool),
                                       candidate_tokens(ranked[:1], index)))
        labels.append(label)
        groups.append(group)
        kinds.append(kind)
        fused.append(top.fused)
        pairs.append((ranking.question, top.hit.text))
        tops.append([(c.hit.text, c.hit.kind) for c in ranked[:VERIFIED]])

    passages = [(record_id, question, source) for record_id, text, source in chunks for question in passage_questions(text)]
    labelled = list(labelled)[-MAX_LABELLED:]
    rankings = rank_all(retriever, [text for _, text, _ in askable] + [q for _, q, _ in stand_ins]
                        + [q for _, q, _ in passages] + list(bundled) + [question for question, _ in labelled])
    for (record_id, text, key), ranking in zip(askable, rankings):
        add(ranking, {record_id}, key, key, "variant")
        add(ranking, set(group_of[key]), None, key, "faq-removed")
    for (record_id, wording, key), ranking in zip(stand_ins, rankings):
        add(ranking, set(), key, key, "stand-in")
        add(ranking, {record_id}, None, key, "faq-removed")
    for (record_id, question, source), ranking in zip(passages, rankings):
        add(ranking, {record_id}, source, f"doc::{source}", "passage")
    for (i, question), ranking in zip(enumerate(bundled), rankings):
        if ranking.hits and max(c.cosine for c in ranking.hits) >= NEAR_DUPLICATE:
            continue
        add(ranking, set(), None, f"bundled-{i % 50}", "bundled")
    for (i, (question, faq_id)), ranking in zip(enumerate(labelled), rankings):
        asked = normalise(question)
        if faq_id and any(normalise(c.hit.text) == asked for c in ranking.hits):
            continue
        add(ranking, set(), faq_id or None, f"labelled-{i % 50}", "labelled" if faq_id else "not-for-us")
    X = np.vstack(rows) if rows else np.zeros((0, 0))
    return Examples(X, np.asarray(labels, dtype=np.int64), np.asarray(groups), kinds, np.asarray(fused), pairs, tops)
