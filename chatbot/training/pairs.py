"""Training data for the encoder: paraphrase groups, positive pairs and scored pairs, read from files.

Every positive relation (two questions of one FAQ, a question and its answer, a labelled duplicate
pair) joins its two texts in one *component* (union-find over normalised texts). Components are what
the batch sampler keeps apart, so an in-batch negative is never a paraphrase of the anchor, and what
the validation split holds out whole, so no validation question has a paraphrase in training.
"""
from __future__ import annotations

import csv
import hashlib
import itertools
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from chatbot.text import normalise

PairKind = Literal["paraphrase", "answer", "pair"]


# --- reading tables ------------------------------------------------------------------------------
def read_table(path: str | Path) -> list[dict[str, str]]:
    """Rows of a CSV, TSV (by extension, or a tab in the header line) or JSON-lines file, as dicts of strings."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        rows = []
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        item = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{path}:{number}: not a JSON object per line ({exc.msg})") from None
                    rows.append({str(k): "" if v is None else str(v) for k, v in item.items()})
        return rows
    with path.open(encoding="utf-8-sig", newline="") as handle:
        first = handle.readline()
        handle.seek(0)
        if suffix in (".tsv", ".tab") or ("\t" in first and "," not in first):
            # KorSTS-style TSVs carry stray quote characters inside sentences: no quoting at all.
            reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        else:
            reader = csv.DictReader(handle)
        return [{k.strip(): (v or "") for k, v in row.items() if k is not None} for row in reader]


def _column(rows: list[dict[str, str]], name: str, path: Path) -> None:
    if rows and name not in rows[0]:
        raise ValueError(f"{path}: no column {name!r} (columns: {', '.join(rows[0])})")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stable_fraction(key: str, salt: str = "") -> float:
    """A number in [0, 1) fixed by the key: splits that do not depend on file order or Python's hash seed."""
    return int(hashlib.sha1(f"{salt}\x1f{key}".encode("utf-8")).hexdigest()[:12], 16) / float(1 << 48)


# --- the data -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pair:
    anchor: str
    positive: str
    kind: PairKind
    source: str


@dataclass(frozen=True)
class ScoredPair:
    first: str
    second: str
    score: float  # 0..1
    source: str


@dataclass(frozen=True)
class GroupedText:
    """A question with the FAQ/group it belongs to (the unit of retrieval evaluation)."""

    text: str
    group: str
    source: str


class Components:
    """Union-find over normalised texts: texts joined by any positive relation share a component."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}

    @staticmethod
    def key(text: str) -> str:
        return normalise(text)

    def _find(self, key: str) -> str:
        parent = self._parent.setdefault(key, key)
        if parent == key:
            return key
        root = self._find(parent)
        self._parent[key] = root
        return root

    def add(self, text: str) -> None:
        self._find(self.key(text))

    def union(self, a: str, b: str) -> None:
        ra, rb = self._find(self.key(a)), self._find(self.key(b))
        if ra != rb:
            # Deterministic root (the smaller key), so component names do not depend on input order.
            small, big = sorted((ra, rb))
            self._parent[big] = small

    def of(self, text: str) -> str:
        """The component of a text; an unseen text is its own component."""
        key = self.key(text)
        return self._find(key) if key in self._parent else key


@dataclass
class TrainingData:
    """Everything read from the input files, before splitting and prefixing."""

    groups: list[GroupedText] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)  # group → answer text (for answer pairs)
    pairs: list[Pair] = field(default_factory=list)
    scored: list[ScoredPair] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # path → sha256

    def components(self) -> Components:
        comps = Components()
        members: dict[str, list[str]] = defaultdict(list)
        for item in self.groups:
            members[item.group].append(item.text)
        for group, texts in members.items():
            for text in texts:
                comps.add(text)
                comps.union(texts[0], text)
            if group in self.answers:
                comps.union(texts[0], self.answers[group])
        for pair in self.pairs:
            comps.union(pair.anchor, pair.positive)
        return comps

    def summary(self) -> dict[str, int]:
        return {
            "grouped_questions": len(self.groups),
            "groups": len({g.group for g in self.groups}),
            "groups_with_answer": len(self.answers),
            "pairs": len(self.pairs),
            "scored_pairs": len(self.scored),
        }


def _remember(data: TrainingData, path: Path) -> None:
    data.files[str(path)] = file_sha256(path)


def add_grouped(
    data: TrainingData, path: str | Path, text_col: str, group_col: str, group_is_answer: bool = False
) -> None:
    """Rows sharing a group value are paraphrases (e.g. chatbot Q/A grouped by A); the group text may be an answer."""
    path = Path(path)
    rows = read_table(path)
    _column(rows, text_col, path)
    _column(rows, group_col, path)
    for row in rows:
        text, group = normalise(row[text_col]), normalise(row[group_col])
        if text and group:
            data.groups.append(GroupedText(text, f"{path.name}:{group}", str(path)))
            if group_is_answer:
                data.answers[f"{path.name}:{group}"] = group
    _remember(data, path)


def add_faq(data: TrainingData, path: str | Path) -> int:
    """FAQ files through the product's readers: main question + alternatives form a group; answers kept."""
    from ingest.faq_readers import read_faq
    from ingest.records import faq_id_of

    path = Path(path)
    result = read_faq(path)
    for entry in result.items:
        group = f"{path.name}:{faq_id_of(entry)}"
        for text in (entry.question, *entry.alternatives):
            if normalise(text):
                data.groups.append(GroupedText(normalise(text), group, str(path)))
        if normalise(entry.answer):
            data.answers.setdefault(group, normalise(entry.answer))
    _remember(data, path)
    return len(result.rejected)


def add_pairs(
    data: TrainingData,
    path: str | Path,
    anchor_col: str,
    positive_col: str,
    label_col: str | None = None,
    positive_label: str | None = None,
    kind: PairKind = "pair",
) -> None:
    """Positive pairs; with a label column only rows whose label equals positive_label are kept."""
    path = Path(path)
    rows = read_table(path)
    for name in (anchor_col, positive_col, *([label_col] if label_col else [])):
        _column(rows, name, path)
    for row in rows:
        if label_col and row[label_col].strip() != str(positive_label).strip():
            continue
        anchor, positive = normalise(row[anchor_col]), normalise(row[positive_col])
        if anchor and positive and anchor != positive:
            data.pairs.append(Pair(anchor, positive, kind, str(path)))
    _remember(data, path)


def add_scored(data: TrainingData, path: str | Path, first_col: str, second_col: str, score_col: str) -> None:
    """Scored pairs (e.g. KorSTS 0-5), scaled to 0..1 by the largest score seen."""
    path = Path(path)
    rows = read_table(path)
    for name in (first_col, second_col, score_col):
        _column(rows, name, path)
    items = []
    for row in rows:
        try:
            score = float(row[score_col])
        except ValueError:
            continue
        first, second = normalise(row[first_col]), normalise(row[second_col])
        if first and second:
            items.append((first, second, score))
    top = max((s for _, _, s in items), default=1.0) or 1.0
    data.scored.extend(ScoredPair(a, b, s / top, str(path)) for a, b, s in items)
    _remember(data, path)


# --- splitting and pair building ------------------------------------------------------------------
@dataclass
class Split:
    """Training relations with the validation components removed, and the validation questions."""

    pairs: list[Pair]
    scored: list[ScoredPair]
    eval_texts: list[str]
    eval_groups: list[str]
    components: Components


def split_data(
    data: TrainingData,
    eval_fraction: float,
    seed: int = 42,
    eval_data: TrainingData | None = None,
    max_pairs_per_group: int = 30,
    answer_pairs: bool = True,
) -> Split:
    """Hold out whole components (never single questions) for validation, then build training pairs.

    With eval_data (an explicit question set), its components are held out instead and nothing of
    them is trained on.
    """
    comps = data.components()
    if eval_data is not None:
        for item in eval_data.groups:
            comps.add(item.text)
        members: dict[str, list[str]] = defaultdict(list)
        for item in eval_data.groups:
            members[item.group].append(item.text)
        for texts in members.values():
            for text in texts[1:]:
                comps.union(texts[0], text)
        held = {comps.of(item.text) for item in eval_data.groups}
        eval_items = eval_data.groups
    else:
        candidates = sorted({comps.of(item.text) for item in data.groups})
        held = {c for c in candidates if stable_fraction(c, f"eval-{seed}") < eval_fraction} if eval_fraction > 0 else set()
        eval_items = [item for item in data.groups if comps.of(item.text) in held]
    pairs = [p for p in build_pairs(data, seed, max_pairs_per_group, answer_pairs) if comps.of(p.anchor) not in held and comps.of(p.positive) not in held]
    scored = [s for s in data.scored if comps.of(s.first) not in held and comps.of(s.second) not in held]
    # Validation groups are components: two FAQ groups that share a question text count as one.
    seen: set[tuple[str, str]] = set()
    eval_texts, eval_groups = [], []
    for item in eval_items:
        key = (item.text, comps.of(item.text))
        if key not in seen:
            seen.add(key)
            eval_texts.append(item.text)
            eval_groups.append(key[1])
    return Split(pairs, scored, eval_texts, eval_groups, comps)


def build_pairs(
    data: TrainingData, seed: int = 42, max_pairs_per_group: int = 30, answer_pairs: bool = True
) -> list[Pair]:
    """Question pairs within each group (capped per group), question→answer pairs, and the explicit pairs."""
    rng = random.Random(seed)
    members: dict[str, list[str]] = defaultdict(list)
    for item in data.groups:
        if item.text not in members[item.group]:
            members[item.group].append(item.text)
    out: list[Pair] = []
    for group, texts in members.items():
        combos = list(itertools.combinations(texts, 2))
        if len(combos) > max_pairs_per_group:
            combos = rng.sample(combos, max_pairs_per_group)
        for a, b in combos:
            # Both directions matter for question-to-question matching; alternate so neither side is always the anchor.
            a, b = (a, b) if rng.random() < 0.5 else (b, a)
            out.append(Pair(a, b, "paraphrase", group))
        if answer_pairs and group in data.answers:
            out.extend(Pair(text, data.answers[group], "answer", group) for text in texts)
    out.extend(data.pairs)
    return out


def dedupe_pairs(pairs: Iterable[Pair]) -> list[Pair]:
    seen: set[tuple[str, str]] = set()
    out = []
    for pair in pairs:
        key = tuple(sorted((pair.anchor, pair.positive)))
        if key not in seen:
            seen.add(key)
            out.append(pair)
    return out


def pick_queries(groups: Sequence[str], texts: Sequence[str]) -> list[int]:
    """One query per group with ≥ 2 texts: the one with the smallest stable hash (order-independent)."""
    best: dict[str, tuple[float, int]] = {}
    counts: dict[str, int] = defaultdict(int)
    for i, (group, text) in enumerate(zip(groups, texts)):
        counts[group] += 1
        score = stable_fraction(text, "query")
        if group not in best or score < best[group][0]:
            best[group] = (score, i)
    return sorted(i for g, (_, i) in best.items() if counts[g] >= 2)
