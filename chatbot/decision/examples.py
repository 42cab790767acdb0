"""Training rows from the store itself, no labels needed.

positives  each FAQ question variant asked with only itself removed: its FAQ's other variants stay,
           so the right FAQ should be on top (label = whether it is);
negatives  the same variant asked with its whole FAQ removed (what an out-of-scope question looks
           like: the nearest wrong FAQ), and the bundled out-of-scope questions against the full store.
Big stores are bounded by sampling variants (max_variants).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from chatbot.decision.candidates import Ranking, rank
from chatbot.decision.features import candidate_features
from chatbot.retrieval import Retriever

NEAR_DUPLICATE = 0.97  # a bundled "out-of-scope" question this close to a stored one is the store's topic


@dataclass
class Examples:
    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray  # FAQ key (bundled negatives: their own), for grouped cross-validation
    kinds: list[str]  # variant | faq-removed | bundled


def build_examples(
    retriever: Retriever, bundled: tuple[str, ...], max_variants: int = 1500, seed: int = 0
) -> Examples:
    index = retriever.lexical
    records = index.records
    doc_freq, n = index.doc_freq, max(len(records.ids), 1)
    group_of: dict[str, list[str]] = {}
    variants: list[tuple[str, str, str]] = []  # (record id, text, group key)
    for record_id, text, meta in zip(records.ids, records.texts, records.metadatas):
        if meta.get("kind", "faq") == "faq" and meta.get("faq_id"):
            key = f"{meta.get('source', '')}::{meta['faq_id']}"
            group_of.setdefault(key, []).append(record_id)
            variants.append((record_id, text, key))
    # Only FAQs with at least two variants can give a positive (one variant left to find).
    askable = [v for v in variants if len(group_of[v[2]]) >= 2]
    if len(askable) > max_variants:
        askable = random.Random(seed).sample(askable, max_variants)

    rows: list[np.ndarray] = []
    labels: list[int] = []
    groups: list[str] = []
    kinds: list[str] = []

    def add(ranking: Ranking, exclude: set[str], label_group: str | None, group: str, kind: str) -> None:
        ranked = ranking.grouped(exclude)
        if not ranked:
            return
        top = ranked[0]
        if kind == "faq-removed" and top.hit.kind == "doc":
            return  # a passage may well answer an FAQ's question: no trustworthy label
        label = int(label_group is not None and top.hit.group_key == label_group)
        rows.append(candidate_features(ranking.question, ranking.tokens, ranked, 0, doc_freq, n))
        labels.append(label)
        groups.append(group)
        kinds.append(kind)

    for record_id, text, key in askable:
        ranking = rank(retriever, text)
        add(ranking, {record_id}, key, key, "variant")
        add(ranking, set(group_of[key]), None, key, "faq-removed")
    for i, question in enumerate(bundled):
        ranking = rank(retriever, question)
        if ranking.hits and max(c.cosine for c in ranking.hits) >= NEAR_DUPLICATE:
            continue
        add(ranking, set(), None, f"bundled-{i % 50}", "bundled")
    X = np.vstack(rows) if rows else np.zeros((0, 0))
    return Examples(X, np.asarray(labels, dtype=np.int64), np.asarray(groups), kinds)
