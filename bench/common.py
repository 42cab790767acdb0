"""Shared helpers for the benchmarks: the real e5 settings, public data splits, an encoding cache, tables.

Benchmarks go through the product's objects (Encoder, Store, Retriever, Answerer via
chatbot.evaluation.temporary_pipeline); the only thing added here is a cache so that a text is encoded
once per (prefix, input policy) within a run, which keeps sweeps over retrieval settings cheap.
"""
from __future__ import annotations

import csv
import os
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.tables import emit, markdown_table  # noqa: E402,F401  (re-exported: the bench scripts import them from here)
from chatbot.encoder import DEFAULT_MODEL_ID, Encoder, load_encoder  # noqa: E402
from chatbot.evaluation import Case, FaqItem  # noqa: E402
from chatbot.records import content_hash  # noqa: E402
from chatbot.settings import PROJECT_ROOT, Settings, load_settings  # noqa: E402

DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"


# --- settings and encoder ----------------------------------------------------------------------------
def e5_settings(**overrides: dict[str, Any]) -> Settings:
    """The configured settings; the default e5 id is pointed at the offline export (no hub needed)."""
    settings = load_settings(**overrides)
    if settings.encoder.model == DEFAULT_MODEL_ID:
        from chatbot.e5export import ensure_e5_export

        settings = settings.with_overrides(encoder={"model": str(ensure_e5_export())})
    return settings


class CachingEncoder(Encoder):
    """The product Encoder, memoising vectors by the exact string it feeds the model.

    The key is prefix + prepared text, so two encoders with other prefixes or input policies can
    share one cache (`with_settings`) without ever mixing vectors.
    """

    def __init__(self, encoder: Encoder, cache: dict[str, np.ndarray] | None = None) -> None:
        super().__init__(encoder.model, encoder.resolved, encoder.settings)
        self.cache: dict[str, np.ndarray] = {} if cache is None else cache
        self.encoded = 0  # texts actually run through the model
        self.seconds = 0.0

    def with_settings(self, **updates: Any) -> "CachingEncoder":
        other = CachingEncoder(Encoder(self.model, self.resolved, self.settings.model_copy(update=updates)), self.cache)
        return other

    def _encode(self, texts: list[str], show_progress: bool) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            started = time.perf_counter()
            vectors = super()._encode(missing, show_progress)
            self.seconds += time.perf_counter() - started
            self.encoded += len(missing)
            self.cache.update(zip(missing, vectors))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self.cache[t] for t in texts])


def load_caching_encoder(settings: Settings) -> CachingEncoder:
    return CachingEncoder(load_encoder(settings.encoder))


# --- data sets -----------------------------------------------------------------------------------------
@dataclass
class FaqTask:
    """A FAQ to store and the questions to ask it (expected = FAQ group ids)."""

    name: str
    items: list[FaqItem]
    cases: list[Case]
    records: list | None = None  # prebuilt Records (the sample FAQ goes through the real reader)

    def describe(self) -> str:
        groups = len({i.group for i in self.items}) if self.items else len({r.metadata["faq_id"] for r in self.records or []})
        stored = len(self.items) if self.items else len(self.records or [])
        oos = sum(not c.answerable for c in self.cases)
        return f"{self.name}: {stored} stored questions in {groups} FAQs, {len(self.cases)} queries" + (
            f" ({oos} out of scope)" if oos else "")


def read_rows(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def chatbot_task(folder: Path = DATASETS, seed: int = 13, limit: int | None = None) -> FaqTask:
    """chatbot_data_dev.csv split by answer group: one seeded query per group of ≥ 2, the rest the FAQ."""
    groups: dict[str, list[str]] = defaultdict(list)
    for row in read_rows(folder / "chatbot_data_dev.csv"):
        q, a = (row.get("Q") or "").strip(), (row.get("A") or "").strip()
        if q and a and q not in groups[a]:
            groups[a].append(q)
    rng = random.Random(seed)
    answers = [a for a in groups if len(groups[a]) >= 2]
    if limit:
        answers = rng.sample(answers, min(limit, len(answers)))
    items: list[FaqItem] = []
    cases: list[Case] = []
    for answer in answers:
        questions = list(groups[answer])
        query = questions.pop(rng.randrange(len(questions)))
        group = "g-" + content_hash(answer)
        items.extend(FaqItem(q, group, answer) for q in questions)
        cases.append(Case(query, frozenset({group}), group))
    return FaqTask("chatbot_data (answer groups)", items, cases)


def question_pair_task(folder: Path = DATASETS, limit: int | None = None, seed: int = 13) -> FaqTask:
    """question_pair_train.csv: question1 of each duplicate pair (is_duplicate 0) asked against every question2."""
    rows = read_rows(folder / "question_pair_train.csv")
    items: dict[str, FaqItem] = {}
    cases: list[Case] = []
    for row in rows:
        q2 = (row.get("question2") or "").strip()
        if q2 and q2 not in items:
            items[q2] = FaqItem(q2, "q-" + content_hash(q2))
    for row in rows:
        q1, q2 = (row.get("question1") or "").strip(), (row.get("question2") or "").strip()
        if q1 and q2 and (row.get("is_duplicate") or "").strip() == "0":
            cases.append(Case(q1, frozenset({items[q2].group}), items[q2].group))
    if limit and len(cases) > limit:
        cases = random.Random(seed).sample(cases, limit)
    return FaqTask("question_pair (duplicates)", list(items.values()), cases)


def sample_task(settings: Settings, faq: Path = PROJECT_ROOT / "data" / "faq.csv",
                questions: Path = PROJECT_ROOT / "data" / "questions.csv") -> FaqTask:
    """data/faq.csv read by the real FAQ reader, asked data/questions.csv (empty expected_id = out of scope)."""
    from chatbot.evaluation import read_cases
    from ingest.sync import read_records

    records, _ = read_records("faq", faq, settings)
    return FaqTask("data/faq.csv + data/questions.csv", [], read_cases(questions), records)


def datasets_or_exit(folder: Path = DATASETS) -> bool:
    """True when the public datasets are there; otherwise says so (the caller exits 0)."""
    if folder.exists() and (folder / "chatbot_data_dev.csv").exists():
        return True
    print(f"SKIPPED: public datasets folder {folder} is absent (see shared/datasets/README.md); nothing to measure.")
    return False
