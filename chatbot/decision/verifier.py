"""A cross-encoder verifier: does this stored question ask the same thing as the user's? One more feature.

The encoder's own weights (the exported e5 folder: a BERT) get a one-logit head and a brief in-domain
fine-tune on pairs drawn from the store itself, no labels needed:

  positive   (a variant, another variant of the same FAQ);
  negative   (a variant, the retriever's nearest FAQ question of another FAQ) and
             (a bundled out-of-scope question, its nearest FAQ question).

Inputs are short question-to-question pairs (max_length 64); a passage is represented by its first
sentence(s). The word embeddings stay frozen (most of e5's parameters; a brief CPU fine-tune does not
need them). The folder is a plain transformers sequence-classification model, loadable by
sentence-transformers' CrossEncoder too, and lives beside the decision JSON (never in git).

Stacking: the decision model is fitted on rows from the same store, so its verifier feature comes from
verifiers that did not see that row's FAQ (two folds by FAQ); the verifier saved for serving is trained on
all pairs.

Off by default (answer.verifier): on the sample (bench/decision.py --verifier both) it made the decision
worse (precision 0.921 / coverage 0.749 / OOS answered 11 % vs 0.978 / 0.706 / 1.4 % without it), cost
~5 minutes of build on 2 shared cores and ~30–110 ms per question. Serving needs the Answerer to build its
rows with DecisionModel.candidate_rows; a caller that passes only features.NAMES gets the verifier columns
at their training mean (neutral).
"""
from __future__ import annotations

import hashlib
import logging
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chatbot.text import split_sentences

log = logging.getLogger(__name__)

MAX_LENGTH = 64
PASSAGE_CHARS = 120
MAX_PAIRS = 2000  # training pairs drawn from a big store
VERIFIED_MAX = 10  # candidates per training row at most (examples.VERIFIED)
VERSION = 1  # part of the artefact fingerprint: bump when training changes
NAMES: tuple[str, ...] = ("verifier", "verifier_gap")


def candidate_text(text: str, kind: str) -> str:
    """An FAQ variant as it is; a passage cut to its first sentence(s), about a question's length."""
    if kind != "doc":
        return text
    out = ""
    for line in text.splitlines():
        for sentence in split_sentences(line):
            out = f"{out} {sentence}".strip()
            if len(out) >= 40:
                return out[:PASSAGE_CHARS]
    return (out or text)[:PASSAGE_CHARS]


def fold_of(key: str, folds: int = 2) -> int:
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) % folds


@dataclass
class Pair:
    question: str
    candidate: str
    label: int
    group: str  # FAQ key of the asked question (bundled: "bundled-i") for the folds


class Verifier:
    """A trained cross-encoder: logits for (question, candidate text) pairs, one batched forward pass."""

    def __init__(self, model, tokenizer) -> None:  # noqa: ANN001 - transformers objects
        self.model = model.eval()
        self.tokenizer = tokenizer

    @classmethod
    def load(cls, folder: Path) -> "Verifier | None":
        if not (folder / "config.json").exists():
            return None
        try:
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            model = AutoModelForSequenceClassification.from_pretrained(str(folder), num_labels=1)
            return cls(model, AutoTokenizer.from_pretrained(str(folder)))
        except Exception as exc:  # noqa: BLE001 - a broken cache folder: retrain
            log.warning("Could not load the verifier from %s: %s", folder, exc)
            return None

    def save(self, folder: Path) -> None:
        """Into a temp folder renamed over the old one."""
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.parent / f".{folder.name}.tmp-{time.time_ns()}"
        self.model.save_pretrained(str(tmp))
        self.tokenizer.save_pretrained(str(tmp))
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)

    def logits(self, pairs: Sequence[tuple[str, str]], batch_size: int = 64) -> np.ndarray:
        import torch

        out: list[np.ndarray] = []
        with torch.inference_mode():
            for start in range(0, len(pairs), batch_size):
                chunk = pairs[start : start + batch_size]
                enc = self.tokenizer([q for q, _ in chunk], [c for _, c in chunk], truncation=True,
                                     max_length=MAX_LENGTH, padding=True, return_tensors="pt")
                out.append(self.model(**enc).logits[:, 0].float().numpy())
        return np.concatenate(out) if out else np.zeros(0)

    @classmethod
    def train(cls, base: str | Path, pairs: Sequence[Pair], epochs: int = 1, batch_size: int = 16,
              lr: float = 4e-5, seed: int = 0) -> "Verifier":
        """Brief fine-tune from the encoder folder (a new one-logit head), BCE on the pairs."""
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        torch.manual_seed(seed)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "newly initialised classifier" is the point here
        try:
            model = AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=1)
        finally:
            hf_logging.set_verbosity(verbosity)
        tokenizer = AutoTokenizer.from_pretrained(str(base))
        for name, param in model.named_parameters():
            if "word_embeddings" in name:
                param.requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
        order = list(range(len(pairs)))
        steps = max(1, epochs * ((len(pairs) + batch_size - 1) // batch_size))
        warmup = max(1, steps // 10)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(steps - warmup, 1))))
        positives = sum(p.label for p in pairs)
        pos_weight = torch.tensor([(len(pairs) - positives) / max(positives, 1)])
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        model.train()
        rng = random.Random(seed)
        for _ in range(epochs):
            rng.shuffle(order)
            for start in range(0, len(order), batch_size):
                batch = [pairs[i] for i in order[start : start + batch_size]]
                enc = tokenizer([p.question for p in batch], [p.candidate for p in batch], truncation=True,
                                max_length=MAX_LENGTH, padding=True, return_tensors="pt")
                target = torch.tensor([float(p.label) for p in batch])
                loss = loss_fn(model(**enc).logits[:, 0], target)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimiser.step()
                scheduler.step()
                optimiser.zero_grad(set_to_none=True)
        return cls(model, tokenizer)


def training_pairs(retriever, bundled: Sequence[str], max_pairs: int = 2000, seed: int = 0) -> list[Pair]:  # noqa: ANN001
    """Store-derived pairs: variant–sibling positives, variant–nearest-other-FAQ and bundled–nearest negatives."""
    from chatbot.decision.candidates import rank

    records = retriever.lexical.records
    groups: dict[str, list[str]] = {}
    for text, meta in zip(records.texts, records.metadatas):
        if meta.get("kind", "faq") == "faq" and meta.get("faq_id"):
            groups.setdefault(f"{meta.get('source', '')}::{meta['faq_id']}", []).append(text)
    rng = random.Random(seed)
    variants = [(key, text) for key, texts in groups.items() if len(texts) >= 2 for text in texts]
    budget = max(max_pairs // 2, 1)  # asked variants give ~2 pairs each; bundled ones 1
    if len(variants) > budget * 2 // 3:
        variants = rng.sample(variants, budget * 2 // 3)
    pairs: list[Pair] = []

    def nearest_other(question: str, exclude_key: str | None) -> str | None:
        for c in rank(retriever, question).grouped():
            if c.hit.kind == "faq" and c.hit.answer_key != exclude_key:
                return c.hit.text
        return None

    for key, text in variants:
        sibling = rng.choice([t for t in groups[key] if t != text] or [text])
        pairs.append(Pair(text, sibling, 1, key))
        wrong = nearest_other(text, key)
        if wrong is not None:
            pairs.append(Pair(text, wrong, 0, key))
    asked = list(enumerate(bundled))
    if len(asked) > budget // 3:
        asked = rng.sample(asked, budget // 3)
    for i, question in asked:
        near = nearest_other(question, None)
        if near is not None:
            pairs.append(Pair(question, near, 0, f"bundled-{i % 50}"))  # examples.py's groups: same folds
    return pairs


def feature_rows(logits: np.ndarray, is_faq: Sequence[bool]) -> np.ndarray:
    """Per candidate: its logit (0 for a passage) and the gap to the best other scored FAQ candidate."""
    z = np.where(np.asarray(is_faq, dtype=bool), np.asarray(logits, dtype=np.float64), 0.0)
    rows = []
    for i in range(len(z)):
        others = [z[j] for j in range(len(z)) if j != i and is_faq[j]]
        rows.append([z[i], z[i] - max(others) if others else z[i]])
    return np.asarray(rows, dtype=np.float64).reshape(len(z), len(NAMES))
