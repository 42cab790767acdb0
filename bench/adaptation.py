"""Base vs adapted encoder on held-out public Korean data, side by side (dense, hybrid, training time).

    python bench/adaptation.py --model models/chat-e5            # measure an adapted folder
    python bench/adaptation.py --recipe answer-aware             # train one with a named recipe, then measure
    python bench/adaptation.py --recipe answer-aware --extra "--epochs 2"

Protocol (fixed, so runs compare):
- chatbot_data_dev.csv (Q,A): questions grouped by identical answer. The answer groups and the
  question_pair duplicates (built from the same questions) join texts into components; 30% of the
  components (stable hash) are the test split, never trained on. One question per multi-question
  answer group is asked; every other test question is an FAQ variant (singleton groups are
  distractors). Dense numbers rank by cosine; hybrid goes through the product's Retriever
  (Chroma + kiwi-BM25, via chatbot.evaluation.temporary_pipeline).
- question_pair_train.csv: rows with both texts in test components; each duplicate pair's
  question1 is asked against all those rows' question2s: top-1 / MRR@10.
- korsts_dev.tsv: Spearman of cosine against the gold score (korsts_train.tsv may be trained on).
Every text carries the configured question prefix, as in the product.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shlex
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatbot.settings import PROJECT_ROOT, Settings, load_settings  # noqa: E402
from chatbot.training.pairs import read_table, stable_fraction  # noqa: E402

DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"
TEST_FRACTION = 0.3
CACHE = PROJECT_ROOT / "var" / "bench" / "adaptation-cache.json"

# Named recipes: flags for `python -m chatbot.train` (the data flags are added by the bench).
RECIPES: dict[str, list[str]] = {
    # in-batch negatives on question pairs only (the simplest recipe, the baseline; group-aware batches)
    "naive": ["--epochs", "1", "--batch-size", "64"],
    # + question→answer pairs: the shared answer ties a group's questions together
    "answer-aware": ["--answer-pairs", "--epochs", "1", "--batch-size", "64", "--symmetric"],
    # + one mined hard negative per pair, larger effective batch through the cached loss
    "hard-negatives": ["--answer-pairs", "--hard-negatives", "--cached", "--batch-size", "128",
                       "--mini-batch-size", "32", "--epochs", "2", "--symmetric"],
}


# --- data ----------------------------------------------------------------------------------------
def _key(text: str) -> str:
    from chatbot.text import normalise

    return normalise(text)


@lru_cache(maxsize=2)
def splits(folder: Path) -> dict[str, list[dict[str, str]]]:
    """Train/test rows of chatbot_data and question_pair, split by joint paraphrase component.

    The two sets share most of their questions (question_pair was built from the chatbot data), so
    they are split together: answer groups and duplicate pairs join texts into components, and a
    stable hash of the component decides. A chatbot answer group is always wholly in or out; a
    question_pair row is used only when both its texts fall on the same side.
    """
    from chatbot.training.pairs import Components

    chat = [r for r in read_table(folder / "chatbot_data_dev.csv") if _key(r["Q"]) and _key(r["A"])]
    qp = [r for r in read_table(folder / "question_pair_train.csv") if _key(r["question1"]) and _key(r["question2"])]
    comps = Components()
    first: dict[str, str] = {}
    for row in chat:
        comps.union(first.setdefault(_key(row["A"]), row["Q"]), row["Q"])
    for row in qp:
        comps.add(row["question1"]), comps.add(row["question2"])
        if row["is_duplicate"].strip() == "0":
            comps.union(row["question1"], row["question2"])

    def test(text: str) -> bool:
        return stable_fraction(comps.of(text), "adaptation-test") < TEST_FRACTION

    out: dict[str, list[dict[str, str]]] = {"chatbot_train": [], "chatbot_test": [], "qp_train": [], "qp_test": []}
    for row in chat:
        out["chatbot_test" if test(row["Q"]) else "chatbot_train"].append(row)
    for row in qp:
        sides = {test(row["question1"]), test(row["question2"])}
        if sides == {True}:
            out["qp_test"].append(row)
        elif sides == {False}:
            out["qp_train"].append(row)
    return out


def write_training_files(folder: Path, out: Path) -> dict[str, Path]:
    """The train sides of the splits as files for the train command."""
    parts = splits(folder)
    out.mkdir(parents=True, exist_ok=True)
    files = {"chatbot": out / "chatbot_train.csv", "question_pair": out / "question_pair_train.csv"}
    for path, rows, cols in ((files["chatbot"], parts["chatbot_train"], ["Q", "A"]),
                             (files["question_pair"], parts["qp_train"], ["question1", "question2", "is_duplicate"])):
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=cols, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    return files


def training_argv(recipe: list[str], files: dict[str, Path], folder: Path, output: Path, extra: list[str]) -> list[str]:
    return [
        "--grouped", str(files["chatbot"]), "--text-col", "Q", "--group-col", "A",
        "--pairs", str(files["question_pair"]), "--anchor-col", "question1", "--positive-col", "question2",
        "--label-col", "is_duplicate", "--positive-label", "0",
        "--sts", str(folder / "korsts_train.tsv"), "--sts-dev", str(folder / "korsts_dev.tsv"),
        "--output", str(output), "--overwrite", *recipe, *extra,
    ]


# --- measuring -----------------------------------------------------------------------------------
def measure(model_dir: Path, folder: Path, settings: Settings, hybrid: bool = True) -> dict[str, float]:
    """All numbers for one model folder (dense via the model, hybrid/dense/lexical via the product)."""
    from sentence_transformers import SentenceTransformer

    from chatbot.train import Preparer
    from chatbot.training.metrics import encode_fn, grouped_retrieval, rank_by_group, rank_metrics, sts_spearman

    t0 = time.monotonic()
    prepare = Preparer.of(settings.encoder)
    model = SentenceTransformer(str(model_dir), device=settings.encoder.device or "cpu")
    model.max_seq_length = settings.encoder.max_seq_length
    encode = encode_fn(model, prepare)
    out: dict[str, float] = {}

    chat_test = splits(folder)["chatbot_test"]
    texts, groups = [_key(r["Q"]) for r in chat_test], [_key(r["A"]) for r in chat_test]
    dense = grouped_retrieval(encode, texts, groups)
    out.update({"chatbot_dense_top1": dense["top1"], "chatbot_dense_mrr@10": dense["mrr@10"], "chatbot_queries": dense["queries"]})

    qp_test = splits(folder)["qp_test"]
    corpus = sorted({_key(r["question2"]) for r in qp_test})
    queries = [(_key(r["question1"]), _key(r["question2"])) for r in qp_test if r["is_duplicate"].strip() == "0"]
    q_vec, c_vec = encode([q for q, _ in queries]), encode(corpus)
    ranked = [rank_by_group(row, corpus, 10) for row in q_vec @ c_vec.T]
    qp = rank_metrics(ranked, [want for _, want in queries])
    out.update({"question_pair_top1": qp["top1"], "question_pair_mrr@10": qp["mrr@10"]})

    sts = read_table(folder / "korsts_dev.tsv")
    out["korsts_dev_spearman"] = sts_spearman(
        encode, [r["sentence1"] for r in sts], [r["sentence2"] for r in sts], [float(r["score"]) for r in sts]
    )
    if hybrid:
        out.update(product_metrics(model_dir, texts, groups, settings))
    out["measure_seconds"] = round(time.monotonic() - t0, 1)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


def product_metrics(model_dir: Path, texts: list[str], groups: list[str], settings: Settings) -> dict[str, float]:
    """The same grouped task through the product: a temporary Chroma store, Retriever.search per mode."""
    from chatbot.evaluation import FaqItem, faq_records, temporary_pipeline
    from chatbot.training.metrics import rank_metrics
    from chatbot.training.pairs import pick_queries

    queries = pick_queries(groups, texts)
    asked = set(queries)
    group_id = {g: hashlib.sha1(g.encode("utf-8")).hexdigest()[:16] for g in groups}
    items = [FaqItem(text, group_id[group], answer=group)
             for i, (text, group) in enumerate(zip(texts, groups)) if i not in asked]
    with tempfile.TemporaryDirectory(prefix="faqbot-bench-") as tmp:
        pipe = temporary_pipeline(settings.with_overrides(encoder={"model": str(model_dir)}), faq_records(items, "chatbot"),
                                  folder=tmp)
        gold = [group_id[groups[i]] for i in queries]
        out = {}
        for mode in ("lexical", "dense", "hybrid"):
            ranked = [[h.answer_id for h in pipe.retriever.search(texts[i], k=10, mode=mode)] for i in queries]
            metrics = rank_metrics(ranked, gold)
            out[f"chatbot_{mode}_product_top1"] = metrics["top1"]
            out[f"chatbot_{mode}_product_mrr@10"] = metrics["mrr@10"]
    return out


def _fingerprint(model_dir: Path, folder: Path, settings: Settings) -> str:
    digest = hashlib.sha1()
    for path in sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*/*.safetensors")):
        # content, not mtime: a re-export of the same weights keeps its cached numbers
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(1 << 20)
            handle.seek(max(0, size - (1 << 20)))
            tail = handle.read()
        digest.update(f"{path.name}:{size}".encode() + hashlib.sha1(head + tail).digest())
    digest.update(str(model_dir.resolve()).encode())
    digest.update(json.dumps([TEST_FRACTION, settings.encoder.question_prefix, settings.encoder.input,
                              settings.retrieval.model_dump(), settings.lexical.model_dump()]).encode())
    for name in ("chatbot_data_dev.csv", "question_pair_train.csv", "korsts_dev.tsv"):
        digest.update(str((folder / name).stat().st_size).encode())
    return digest.hexdigest()


def measure_cached(model_dir: Path, folder: Path, settings: Settings, hybrid: bool = True) -> dict[str, float]:
    key = _fingerprint(model_dir, folder, settings) + (":h" if hybrid else ":d")
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    if key not in cache:
        cache[key] = measure(model_dir, folder, settings, hybrid)
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        CACHE.write_text(json.dumps(cache, indent=1))
    return cache[key]


# --- output --------------------------------------------------------------------------------------
ROWS = [
    ("chatbot group split: dense top-1", "chatbot_dense_top1"),
    ("chatbot group split: dense MRR@10", "chatbot_dense_mrr@10"),
    ("chatbot group split: hybrid top-1 (product)", "chatbot_hybrid_product_top1"),
    ("chatbot group split: hybrid MRR@10 (product)", "chatbot_hybrid_product_mrr@10"),
    ("chatbot group split: dense top-1 (product)", "chatbot_dense_product_top1"),
    ("chatbot group split: BM25 top-1 (product)", "chatbot_lexical_product_top1"),
    ("question_pair held-out duplicates: top-1", "question_pair_top1"),
    ("KorSTS dev: Spearman", "korsts_dev_spearman"),
]


def table(base: dict[str, Any], adapted: dict[str, Any]) -> str:
    lines = [f"{'metric':48s} {'base':>8s} {'adapted':>8s} {'Δ':>8s}"]
    for label, key in ROWS:
        if key in base or key in adapted:
            b, a = base.get(key), adapted.get(key)
            delta = f"{(a - b) * 100:+7.1f}p" if isinstance(a, float) and isinstance(b, float) else ""
            lines.append(f"{label:48s} {_fmt(b):>8s} {_fmt(a):>8s} {delta:>8s}")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", type=Path, help="an adapted sentence-transformers folder")
    what.add_argument("--recipe", choices=sorted(RECIPES), help="train one with this recipe, then measure")
    p.add_argument("--extra", default="", help="more flags for the train command, e.g. \"--epochs 3 --lr 3e-5\"")
    p.add_argument("--output", type=Path, default=None, help="where a trained model goes (default models/bench-RECIPE)")
    p.add_argument("--datasets", type=Path, default=DATASETS)
    p.add_argument("--no-hybrid", action="store_true", help="skip the product (Chroma + BM25) numbers")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = p.parse_args(argv)
    if not (args.datasets / "chatbot_data_dev.csv").exists():
        print(f"skipped: the public datasets folder {args.datasets} is absent (see ../shared/datasets/README.md)")
        return 0
    settings = load_settings()
    from chatbot.encoder import resolve_model
    from chatbot.train import set_hub_timeouts

    set_hub_timeouts()

    base_dir = resolve_model(settings.encoder.model, settings.encoder.hub_timeout_s).path
    train_seconds = None
    model_dir = args.model
    if args.recipe:
        from chatbot import train

        model_dir = args.output or PROJECT_ROOT / "models" / f"bench-{args.recipe}"
        with tempfile.TemporaryDirectory(prefix="faqbot-bench-data-") as tmp:
            files = write_training_files(args.datasets, Path(tmp))
            argv_train = training_argv(RECIPES[args.recipe], files, args.datasets, model_dir, shlex.split(args.extra))
            print("python -m chatbot.train " + shlex.join(argv_train))
            code = train.main(argv_train)
            if code:
                return code
    report_path = Path(model_dir) / "training_report.json"
    if report_path.exists():
        train_seconds = json.loads(report_path.read_text(encoding="utf-8")).get("train_seconds")
    base = measure_cached(base_dir, args.datasets, settings, not args.no_hybrid)
    adapted = measure_cached(Path(model_dir), args.datasets, settings, not args.no_hybrid)
    print(f"\nbase: {base_dir}\nadapted: {model_dir}"
          + (f" (trained in {train_seconds / 60:.1f} min)" if train_seconds else ""))
    print(f"chatbot test queries: {int(base.get('chatbot_queries', 0))}\n")
    print(table(base, adapted))
    if args.json:
        args.json.write_text(json.dumps({"base": base, "adapted": adapted, "train_seconds": train_seconds,
                                         "model": str(model_dir)}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
