"""The training command's flags (:func:`build_parser`) and the run they describe (:class:`TrainConfig`)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m chatbot.train",
        description="Fine-tune the sentence encoder on your FAQ and pair files; writes a sentence-transformers folder.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--output", "-o", required=True, type=Path, help="folder for the adapted model (written atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace --output if it exists (only once training succeeded)")
    p.add_argument("--base", default=None, help="model to start from (default: encoder.model of the settings)")

    data = p.add_argument_group("training data (any combination)")
    data.add_argument("--faq", nargs="+", default=[], type=Path, metavar="FILE",
                      help="FAQ files (the product's readers): alternative questions are paraphrases of each other")
    data.add_argument("--grouped", nargs="+", default=[], type=Path, metavar="FILE",
                      help="rows sharing --group-col are paraphrases (e.g. chatbot Q/A grouped by answer)")
    data.add_argument("--text-col", default="Q", help="question column of --grouped/--eval files")
    data.add_argument("--group-col", default="A", help="group column of --grouped/--eval files")
    data.add_argument("--answer-pairs", action="store_true",
                      help="also train question→answer (FAQ answer, or the --group-col text of --grouped files)")
    data.add_argument("--pairs", nargs="+", default=[], type=Path, metavar="FILE", help="positive pairs (CSV/TSV/JSONL)")
    data.add_argument("--anchor-col", default="anchor")
    data.add_argument("--positive-col", default="positive")
    data.add_argument("--label-col", default=None, help="keep only rows whose label equals --positive-label")
    data.add_argument("--positive-label", default="1")
    data.add_argument("--qa", nargs="+", default=[], type=Path, metavar="FILE", help="question→answer pairs")
    data.add_argument("--question-col", default="question")
    data.add_argument("--answer-col", default="answer")
    data.add_argument("--sts", nargs="+", default=[], type=Path, metavar="FILE", help="scored pairs, trained with CoSENT")
    data.add_argument("--sentence1-col", default="sentence1")
    data.add_argument("--sentence2-col", default="sentence2")
    data.add_argument("--score-col", default="score")
    data.add_argument("--max-pairs-per-group", type=int, default=30, help="cap on question pairs taken from one group")

    ev = p.add_argument_group("evaluation")
    ev.add_argument("--eval", nargs="+", default=[], type=Path, metavar="FILE",
                    help="held-out question set (--text-col/--group-col); default: --eval-split of the groups")
    ev.add_argument("--eval-split", type=float, default=0.1, help="fraction of groups held out for validation")
    ev.add_argument("--sts-dev", type=Path, default=None, help="STS file to watch (Spearman), e.g. korsts_dev.tsv")
    ev.add_argument("--evals-per-epoch", type=float, default=2.0)

    tr = p.add_argument_group("recipe")
    tr.add_argument("--epochs", type=float, default=3.0)
    tr.add_argument("--max-steps", type=int, default=-1, help="stop after this many steps (overrides --epochs)")
    tr.add_argument("--batch-size", type=int, default=None, help="pairs per batch (default 64 on CPU, 256 on CUDA)")
    tr.add_argument("--cached", action="store_true",
                    help="CachedMultipleNegativesRankingLoss: a large batch computed in --mini-batch-size pieces")
    tr.add_argument("--mini-batch-size", type=int, default=32)
    tr.add_argument("--symmetric", action="store_true", help="in-batch loss in both directions (anchor↔positive)")
    tr.add_argument("--scale", type=float, default=20.0, help="similarity scale (1/temperature) of the in-batch loss")
    tr.add_argument("--hard-negatives", action="store_true", help="mine one hard negative per pair with the base model")
    tr.add_argument("--negatives-pool", type=int, default=10, help="sample the negative among the top N candidates")
    tr.add_argument("--lr", type=float, default=5e-5)
    tr.add_argument("--warmup", type=float, default=0.1, help="warm-up fraction of the steps")
    tr.add_argument("--weight-decay", type=float, default=0.01)
    tr.add_argument("--max-seq-length", type=int, default=64)
    tr.add_argument("--train-embeddings", action="store_true",
                    help="also train the word-embedding matrix (slower on CPU, overfits rare tokens)")
    tr.add_argument("--freeze-layers", type=int, default=0,
                    help="keep the lowest N transformer layers fixed (faster backward pass on CPU)")
    tr.add_argument("--threads", type=int, default=None,
                    help="CPU threads for torch (default: torch's choice; 1 is faster on a busy machine)")
    tr.add_argument("--seed", type=int, default=42)
    tr.add_argument("--device", default=None, help="cpu / cuda (default: the settings' device, else cuda when present)")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


@dataclass(frozen=True)
class TrainConfig:
    """One training run, as the command line gives it (the flags of :func:`build_parser`, same names)."""

    output: Path
    overwrite: bool
    base: str | None
    # training data
    faq: list[Path]
    grouped: list[Path]
    text_col: str
    group_col: str
    answer_pairs: bool
    pairs: list[Path]
    anchor_col: str
    positive_col: str
    label_col: str | None
    positive_label: str
    qa: list[Path]
    question_col: str
    answer_col: str
    sts: list[Path]
    sentence1_col: str
    sentence2_col: str
    score_col: str
    max_pairs_per_group: int
    # evaluation
    eval: list[Path]
    eval_split: float
    sts_dev: Path | None
    evals_per_epoch: float
    # recipe
    epochs: float
    max_steps: int
    batch_size: int | None
    cached: bool
    mini_batch_size: int
    symmetric: bool
    scale: float
    hard_negatives: bool
    negatives_pool: int
    lr: float
    warmup: float
    weight_decay: float
    max_seq_length: int
    train_embeddings: bool
    freeze_layers: int
    threads: int | None
    seed: int
    device: str | None
    quiet: bool
    argv: tuple[str, ...] = ()  # the command line it came from, for the report

    @classmethod
    def from_argv(cls, argv: list[str]) -> "TrainConfig":
        """Parse the command-line flags (exits with the usage message on bad ones, like any CLI)."""
        return cls(**vars(build_parser().parse_args(argv)), argv=tuple(argv))

    def recipe(self) -> dict[str, Any]:
        """The settings that shape the model (no data files, no output handling), for the report."""
        skip = {"output", "overwrite", "quiet", "argv"}
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in values.items() if not isinstance(v, list)}
