"""Retrieval quality of every mode and setting on public Korean data and on the sample FAQ.

    python bench/retrieval_quality.py                 # everything (≈10-15 min on 2 cores with e5-small)
    python bench/retrieval_quality.py --quick         # 300 queries per public set
    python bench/retrieval_quality.py --out var/bench/retrieval_quality.md
    python bench/retrieval_quality.py --typos --only "hybrid w=0.05*"   # every query with one typing slip

Tasks (queries are never stored; FAQ ids are the groups):
- chatbot_data_dev.csv (Q,A,label): questions grouped by identical answer text; groups with ≥ 2
  questions; per group one seeded-random question is the query, the others are the FAQ's variants.
- question_pair_train.csv: question1 of each duplicate pair (is_duplicate 0) is the query; every
  question2 (of all pairs, non-duplicates included as distractors) is an FAQ entry.
- data/faq.csv (read by the product's FAQ reader) asked data/questions.csv (25 out of scope): also
  reports answer F1 at the threshold recommended for that configuration.

Every configuration goes through the product's Retriever/Answerer (chatbot.evaluation.run_mode) over a
temporary embedded Chroma store. Vectors are cached per exact encoder input (prefix + text), so each
text is encoded once per prefix/input policy and the sweeps cost only retrieval time.

Compared, one factor at a time from the configured defaults:
- modes: lexical, static (distilled from the encoder / Word2Vec on the corpus), dense, hybrid
- hybrid with and without the decision model's P reranking the top few (answer.rerank)
- prefix policy: `query: ` on both sides (the product's) vs FAQ side encoded with `passage: `
- retrieval.lexical_weight 0 … 0.5 (hybrid), and which values make hybrid ≥ max(dense, lexical) on
  both public sets
- text.spacing_correction on/off and text.typo_tolerant on/off (lexical side), text.typo_repair on/off
  (both sides; with --typos every query has one typing slip, bench/typos.py), encoder.input
  raw/normalised (dense side)
The public data folder (../shared/datasets) is optional: without it only the sample FAQ is measured.
"""
from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    DATASETS, CachingEncoder, FaqTask, chatbot_task, e5_settings, emit, load_caching_encoder, markdown_table,
    question_pair_task, sample_task,
)
from chatbot.answer import Answerer  # noqa: E402
from chatbot.evaluation import ModeReport, ModeRunner, faq_records, run_mode, summarise, temporary_pipeline  # noqa: E402
from chatbot.pipeline import Pipeline  # noqa: E402
from chatbot.retrieval import Retriever  # noqa: E402
from chatbot.settings import Settings  # noqa: E402
from chatbot.static import StaticRetriever  # noqa: E402

WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)


@dataclass(frozen=True)
class Config:
    """One measured configuration: a retrieval kind over a vector policy with some setting overrides."""

    label: str
    kind: str  # lexical | dense | hybrid | static-distilled | static-word2vec
    policy: str = "symmetric"  # symmetric | asymmetric | normalised (how the FAQ side was encoded)
    overrides: tuple[tuple[str, str, Any], ...] = ()  # (section, field, value)

    def settings(self, base: Settings) -> Settings:
        sections: dict[str, dict[str, Any]] = {}
        for section, name, value in self.overrides:
            sections.setdefault(section, {})[name] = value
        return base.with_overrides(**sections) if sections else base


def configs(base: Settings) -> list[Config]:
    w = base.retrieval.lexical_weight
    out = [
        Config("lexical", "lexical"),
        Config("static (distilled)", "static-distilled"),
        Config("static (word2vec)", "static-word2vec"),
        Config("dense", "dense"),
        Config(f"hybrid w={w:g}", "hybrid"),
        Config(f"hybrid w={w:g}, no P rerank", "hybrid", overrides=(("answer", "rerank", False),)),
        Config("dense, FAQ side `passage: `", "dense", "asymmetric"),
        Config(f"hybrid w={w:g}, FAQ side `passage: `", "hybrid", "asymmetric"),
        Config("dense, input normalised", "dense", "normalised", (("encoder", "input", "normalised"),)),
        Config(f"hybrid w={w:g}, input normalised", "hybrid", "normalised", (("encoder", "input", "normalised"),)),
        Config("dense, unspaced questions as typed", "dense", overrides=(("text", "respace_unspaced", False),)),
        Config(f"hybrid w={w:g}, unspaced questions as typed", "hybrid", overrides=(("text", "respace_unspaced", False),)),
        Config("lexical, spacing off", "lexical", overrides=(("text", "spacing_correction", False),)),
        Config(f"hybrid w={w:g}, spacing off", "hybrid", overrides=(("text", "spacing_correction", False),)),
        Config("dense, typo repair off", "dense", overrides=(("text", "typo_repair", False),)),
        Config(f"hybrid w={w:g}, typo repair off", "hybrid", overrides=(("text", "typo_repair", False),)),
        Config("lexical, typo model", "lexical", overrides=(("text", "typo_tolerant", True),)),
        Config(f"hybrid w={w:g}, typo model", "hybrid", overrides=(("text", "typo_tolerant", True),)),
    ]
    for weight in WEIGHTS:
        if abs(weight - w) > 1e-9:
            out.append(Config(f"hybrid w={weight:g}", "hybrid", overrides=(("retrieval", "lexical_weight", weight),)))
        out.append(Config(f"hybrid w={weight:g}, FAQ side `passage: `", "hybrid", "asymmetric",
                          (("retrieval", "lexical_weight", weight),)))
    return list({c.label: c for c in out}.values())


@dataclass
class TaskRun:
    """The stores (one per vector policy) of one task and the reports of its configurations."""

    task: FaqTask
    encoder: CachingEncoder
    base: Settings
    workdir: Path
    pipelines: dict[str, Pipeline] = field(default_factory=dict)
    reports: dict[str, ModeReport] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    warmed: set[str] = field(default_factory=set)

    def pipeline(self, policy: str) -> Pipeline:
        if policy not in self.pipelines:
            records = self.task.records or faq_records(self.task.items)
            encoder = self.encoder_for(policy)
            texts = [r.text for r in records]
            encode: Callable = encoder.encode_passages if policy == "asymmetric" else encoder.encode_questions
            started = time.perf_counter()
            self.pipelines[policy] = temporary_pipeline(
                self.base, records, self.workdir / policy, encoder=encoder, vectors=lambda _: encode(texts),
                collection=f"bench-{policy}",
            )
            log(f"  {self.task.name}: stored {len(records)} records ({policy}) in {time.perf_counter() - started:.0f}s")
        return self.pipelines[policy]

    def encoder_for(self, policy: str) -> CachingEncoder:
        encoder = self.encoder.with_settings(input="normalised") if policy == "normalised" else self.encoder
        if policy not in self.warmed:  # all queries in batches once: the runs then find them in the cache
            started = time.perf_counter()
            encoder.encode_questions([c.question for c in self.task.cases])
            self.warmed.add(policy)
            log(f"  {self.task.name}: encoded {len(self.task.cases)} queries ({policy}) in {time.perf_counter() - started:.0f}s")
        return encoder

    def run(self, config: Config) -> ModeReport:
        pipeline = self.pipeline(config.policy)
        settings = config.settings(pipeline.settings)
        encoder = self.encoder_for(config.policy)
        if config.kind.startswith("static"):
            retriever: Any = StaticRetriever(settings, pipeline.store, encoder, method=config.kind.split("-", 1)[1])
            retriever.index.embedder.embed([c.question for c in self.task.cases])  # distils unseen words in batches
            search_mode = "static"
        else:
            retriever = Retriever(settings, encoder, pipeline.store)
            search_mode = config.kind
        runner = ModeRunner(config.label, Answerer(retriever, settings.answer), search_mode)
        started = time.perf_counter()
        outcomes = run_mode(runner, self.task.cases)
        report = summarise(config.label, outcomes, runner.answerer.threshold(search_mode))
        self.reports[config.label] = report
        self.seconds[config.label] = time.perf_counter() - started
        return report


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- tables ----------------------------------------------------------------------------------------------------
def side_by_side(runs: list[TaskRun], labels: list[str], extra: bool = False) -> str:
    header = ["configuration"]
    for run in runs:
        short = run.task.name.split(" ")[0]
        header += [f"{short} top-1", f"{short} MRR@10", f"{short} R@10"]
        if extra and run.task.cases and any(not c.answerable for c in run.task.cases):
            header += [f"{short} thr*", f"{short} F1@thr*"]
    rows = []
    for label in labels:
        if not any(label in run.reports for run in runs):  # not measured (--only)
            continue
        row: list[Any] = [label]
        for run in runs:
            r = run.reports.get(label)
            row += [r.metrics["top1"], r.metrics["mrr@10"], r.metrics["r@10"]] if r else ["", "", ""]
            if extra and any(not c.answerable for c in run.task.cases):
                row += [r.recommended, r.recommended_f1] if r else ["", ""]
        rows.append(row)
    return markdown_table(header, rows)


def weight_verdict(runs: list[TaskRun], weights: tuple[float, ...], suffix: str = "") -> list[str]:
    """Which lexical weights make hybrid ≥ max(dense, lexical) top-1 (and MRR) on every public set."""
    lines = []
    dense_label = "dense" + (", FAQ side `passage: `" if suffix else "")
    public = [r for r in runs if not any(not c.answerable for c in r.task.cases)]
    good = []
    for weight in weights:
        label = f"hybrid w={weight:g}{suffix}"
        ok = all(
            label in r.reports and r.reports[label].metrics["top1"] >= max(r.reports[dense_label].metrics["top1"],
                                                                              r.reports["lexical"].metrics["top1"])
            for r in public
        )
        if ok:
            good.append(weight)
    lines.append(f"hybrid ≥ max(dense, lexical) top-1 on every public set{suffix and ' (' + suffix.strip(', ') + ')'}: "
                 f"w ∈ {{{', '.join(f'{w:g}' for w in good) or 'none'}}}")
    if public:
        best = max(weights, key=lambda w: sum(r.reports.get(f"hybrid w={w:g}{suffix}").metrics["top1"]
                                              for r in public if f"hybrid w={w:g}{suffix}" in r.reports))
        lines.append(f"best mean top-1 over the public sets{suffix and ' (' + suffix.strip(', ') + ')'}: w = {best:g}")
    return lines


def with_slips(task: FaqTask, seed: int) -> FaqTask:
    """The task with one typing slip in each query (seeded; bench/typos.py)."""
    from bench.typos import with_typo

    rng = random.Random(seed)
    return replace(task, name=f"{task.name}, one slip per query",
                   cases=[replace(c, question=with_typo(c.question, rng)) for c in task.cases])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 queries per public set (and fewer FAQ rows)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many queries per public set")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--model", default=None, help="encoder folder (default: the configured one; e5 → offline export)")
    parser.add_argument("--out", type=Path, default=None, help="also write the tables (markdown) here")
    parser.add_argument("--typos", action="store_true", help="every query with one typing slip (bench/typos.py)")
    parser.add_argument("--only", default=None, help="semicolon-separated configuration labels to run (exact; a trailing * matches a prefix)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    limit = args.limit or (300 if args.quick else None)

    overrides: dict[str, Any] = {"encoder": {"model": args.model}} if args.model else {}
    base = e5_settings(**overrides)
    encoder = load_caching_encoder(base)
    tasks: list[FaqTask] = []
    if DATASETS.exists() and (DATASETS / "chatbot_data_dev.csv").exists():
        tasks.append(chatbot_task(DATASETS, args.seed, limit))
        tasks.append(question_pair_task(DATASETS, limit, args.seed))
    else:
        print(f"SKIPPED the public sets: {DATASETS} is absent (see shared/datasets/README.md); measuring the sample FAQ only.")
    tasks.append(sample_task(base))
    if args.typos:
        tasks = [with_slips(task, args.seed) for task in tasks]

    started = time.perf_counter()
    all_configs = configs(base)
    if args.only:
        wanted = [w.strip() for w in args.only.split(";")]  # labels contain commas
        keep = {"lexical", "dense", "dense, FAQ side `passage: `"}
        all_configs = [c for c in all_configs if c.label in keep or any(
            c.label.startswith(w[:-1]) if w.endswith("*") else c.label == w for w in wanted)]
    with tempfile.TemporaryDirectory(prefix="faqbot-bench-") as tmp:
        runs = [TaskRun(task, encoder, base, Path(tmp) / f"task{i}") for i, task in enumerate(tasks)]
        for run in runs:
            log(run.task.describe())
            for config in all_configs:
                report = run.run(config)
                log(f"  {config.label:45s} top-1 {report.metrics['top1']:.3f}  MRR {report.metrics['mrr@10']:.3f}  "
                    f"({run.seconds[config.label]:.0f}s)")
        for run in runs:  # Chroma clients hold the folders open
            run.pipelines.clear()

    w = base.retrieval.lexical_weight
    labels = [c.label for c in all_configs]
    sections = [
        f"Encoder {encoder.model_id} (prefix `{base.encoder.question_prefix}`), defaults: lexical_weight {w:g}, "
        f"spacing_correction {base.text.spacing_correction}, typo_tolerant {base.text.typo_tolerant}, input "
        f"{base.encoder.input}; {encoder.encoded} texts encoded in {encoder.seconds:.0f}s; total {time.perf_counter() - started:.0f}s.",
        "\n".join(r.task.describe() for r in runs),
        "### Modes (defaults)\n" + side_by_side(runs, [lbl for lbl in labels if lbl in (
            "lexical", "static (distilled)", "static (word2vec)", "dense", f"hybrid w={w:g}",
            f"hybrid w={w:g}, no P rerank")], extra=True),
        "### Prefix policy (user questions always `query: `)\n" + side_by_side(runs, [lbl for lbl in labels if lbl in (
            "dense", "dense, FAQ side `passage: `", f"hybrid w={w:g}", f"hybrid w={w:g}, FAQ side `passage: `")]),
        "### retrieval.lexical_weight (hybrid)\n" + side_by_side(
            runs, [f"hybrid w={x:g}" for x in WEIGHTS] + [f"hybrid w={x:g}, FAQ side `passage: `" for x in WEIGHTS], extra=True),
        "\n".join(weight_verdict(runs, WEIGHTS) + weight_verdict(runs, WEIGHTS, ", FAQ side `passage: `")),
        "### Text settings\n" + side_by_side(runs, [lbl for lbl in labels if lbl.startswith(("lexical", "dense")) or any(
            k in lbl for k in ("spacing", "typo", "normalised")) or lbl == f"hybrid w={w:g}"]),
    ]
    emit("\n\n".join(sections), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
