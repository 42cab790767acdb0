"""`python -m chatbot.train`: fine-tune the encoder on your own FAQ and pairs (domain adaptation).

    python -m chatbot.train --faq data/faq.csv --output models/faq-e5
    python -m chatbot.train --grouped chatbot.csv --text-col Q --group-col A --answer-pairs \\
        --pairs question_pair.csv --anchor-col question1 --positive-col question2 \\
        --label-col is_duplicate --positive-label 0 --sts korsts_train.tsv --sts-dev korsts_dev.tsv \\
        --output models/chat-e5

Every text gets the configured question prefix (the product matches question to question with it on
both sides). Paraphrase groups (FAQ alternatives, grouped rows, positive pairs) never share a batch
(no false in-batch negatives); a part of the groups is held out for validation, which picks the best
checkpoint. The model is written atomically: a stopped run never leaves half a model at --output.
"""
from __future__ import annotations

import logging
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatbot.encoder import _default_device, resolve_model
from chatbot.settings import EncoderSettings, Settings, load_settings
from chatbot.text import correct_spacing, normalise
from chatbot.training.config import TrainConfig, build_parser
from chatbot.training.output import AtomicOutput, OutputExistsError
from chatbot.training.pairs import (
    Split,
    TrainingData,
    add_faq,
    add_grouped,
    add_pairs,
    add_scored,
    dedupe_pairs,
    file_sha256,
    read_table,
    split_data,
)
from chatbot.training.report import REPORT_JSON, REPORT_MD, TrainingReport, torch_threads, versions, write_report

__all__ = ["REPORT_JSON", "REPORT_MD", "Preparer", "TrainConfig", "TrainingReport", "build_parser", "main", "run",
           "set_hub_timeouts"]

log = logging.getLogger(__name__)


# --- text preparation: exactly what the product embeds -------------------------------------------
@dataclass(frozen=True)
class Preparer:
    """question prefix + the encoder's input policy (raw → NFKC/spaces; normalised → kiwi spacing)."""

    prefix: str
    input: str

    @classmethod
    def of(cls, settings: EncoderSettings) -> "Preparer":
        return cls(settings.question_prefix, settings.input)

    def __call__(self, text: str) -> str:
        return self.prefix + (correct_spacing(text) if self.input == "normalised" else normalise(text))


# --- data ----------------------------------------------------------------------------------------
def read_inputs(args: TrainConfig) -> tuple[TrainingData, TrainingData | None]:
    data = TrainingData()
    for path in args.faq:
        rejected = add_faq(data, path)
        if rejected:
            print(f"{path}: {rejected} rows rejected by the FAQ reader (see `python -m ingest faq --dry-run`)")
    for path in args.grouped:
        add_grouped(data, path, args.text_col, args.group_col, group_is_answer=args.answer_pairs)
    for path in args.pairs:
        add_pairs(data, path, args.anchor_col, args.positive_col, args.label_col, args.positive_label)
    for path in args.qa:
        add_pairs(data, path, args.question_col, args.answer_col, kind="answer")
    for path in args.sts:
        add_scored(data, path, args.sentence1_col, args.sentence2_col, args.score_col)
    eval_data = None
    if args.eval:
        eval_data = TrainingData()
        for path in args.eval:
            add_grouped(eval_data, path, args.text_col, args.group_col)
    return data, eval_data


def read_sts(path: Path, args: TrainConfig) -> tuple[list[str], list[str], list[float]]:
    first, second, scores = [], [], []
    for row in read_table(path):
        try:
            score = float(row[args.score_col])
        except (KeyError, ValueError):
            continue
        first.append(row[args.sentence1_col])
        second.append(row[args.sentence2_col])
        scores.append(score)
    return first, second, scores


def build_datasets(split: Split, prepare: Preparer, negatives: list[str | None] | None):
    """HF datasets: in-batch pairs (anchor, positive[, negative]) and scored pairs; plus text → component."""
    from datasets import Dataset

    component: dict[str, str] = {}

    def prep(text: str) -> str:
        prepared = prepare(text)
        component.setdefault(prepared, split.components.of(text))
        return prepared

    datasets: dict[str, Any] = {}
    if split.pairs:
        columns: dict[str, list[str]] = {
            "anchor": [prep(p.anchor) for p in split.pairs],
            "positive": [prep(p.positive) for p in split.pairs],
        }
        if negatives is not None:
            columns["negative"] = [prep(n) if n else prep(p.positive) for n, p in zip(negatives, split.pairs)]
        datasets["pairs"] = Dataset.from_dict(columns)
    if split.scored:
        datasets["sts"] = Dataset.from_dict({
            "sentence1": [prepare(s.first) for s in split.scored],
            "sentence2": [prepare(s.second) for s in split.scored],
            "score": [float(s.score) for s in split.scored],
        })
    return datasets, component


# --- model / trainer -----------------------------------------------------------------------------
def load_model(path: Path, device: str, max_seq_length: int, train_embeddings: bool, freeze_layers: int = 0):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path), device=device)
    model.base_max_seq_length = model.max_seq_length  # restored before saving: training length ≠ serving length
    model.max_seq_length = max_seq_length
    first = model[0]
    inner = getattr(first, "auto_model", None) or getattr(first, "model", None)
    if inner is not None and not train_embeddings and hasattr(inner, "get_input_embeddings"):
        inner.get_input_embeddings().weight.requires_grad_(False)
    if inner is not None and freeze_layers > 0:
        layers = _encoder_layers(inner)
        if layers is None:
            raise ValueError("--freeze-layers: this model has no recognisable stack of transformer layers")
        embeddings = getattr(inner, "embeddings", None)
        for module in [*([embeddings] if embeddings is not None else []), *layers[:freeze_layers]]:
            for parameter in module.parameters():
                parameter.requires_grad_(False)
    return model


def _encoder_layers(inner):
    """The list of transformer blocks of a BERT-like model (encoder.layer), else None."""
    encoder = getattr(inner, "encoder", None)
    layers = getattr(encoder, "layer", None) if encoder is not None else None
    return list(layers) if layers is not None else None


def make_loss(model, args: TrainConfig, has_sts: bool, has_pairs: bool):
    from sentence_transformers.sentence_transformer import losses

    directions = ("query_to_doc", "doc_to_query") if args.symmetric else ("query_to_doc",)
    partition = "per_direction" if args.symmetric else "joint"
    out = {}
    if has_pairs:
        if args.cached:
            out["pairs"] = losses.CachedMultipleNegativesRankingLoss(
                model, scale=args.scale, mini_batch_size=args.mini_batch_size, directions=directions, partition_mode=partition
            )
        else:
            out["pairs"] = losses.MultipleNegativesRankingLoss(model, scale=args.scale, directions=directions, partition_mode=partition)
    if has_sts:
        out["sts"] = losses.CoSENTLoss(model)
    return out


def _progress_callback():
    from transformers.trainer_callback import ProgressCallback

    class LossProgress(ProgressCallback):
        """The trainer's progress bar with the running loss and the latest validation numbers in it."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and self.training_bar is not None and logs:
                shown = {}
                if "loss" in logs:
                    shown["loss"] = f"{logs['loss']:.4f}"
                for key, value in logs.items():
                    if key.startswith("eval_") and isinstance(value, float) and not key.endswith(("runtime", "per_second")):
                        shown[key[5:]] = f"{value:.4f}"
                if any(k.startswith("eval_") for k in logs):
                    self.training_bar.write(f"step {state.global_step}: " + ", ".join(f"{k} {v}" for k, v in shown.items()))
                self.training_bar.set_postfix(shown, refresh=True)

    return LossProgress


def evaluate_all(model, evaluators: list) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for evaluator in evaluators:
        metrics.update({k: round(float(v), 4) for k, v in evaluator(model).items()})
    return metrics


# --- the command ---------------------------------------------------------------------------------
def run(args: TrainConfig, settings: Settings | None = None) -> TrainingReport:
    """Trains and publishes the model; returns the report. Raises on bad input, before any training."""
    from transformers import set_seed

    from chatbot.training.metrics import GroupedRetrievalEvaluator, StsEvaluator, encode_fn
    from chatbot.training.negatives import mine
    from chatbot.training.sampler import group_aware_sampler

    started = time.monotonic()
    settings = settings or load_settings()
    prepare = Preparer.of(settings.encoder)
    base = resolve_model(args.base or settings.encoder.model, settings.encoder.hub_timeout_s)
    device = args.device or settings.encoder.device or _default_device()
    cuda = device.startswith("cuda")
    batch_size = args.batch_size or (256 if cuda else 64)
    set_seed(args.seed)

    data, eval_data = read_inputs(args)
    split = split_data(data, args.eval_split, args.seed, eval_data, args.max_pairs_per_group, args.answer_pairs)
    split.pairs = dedupe_pairs(split.pairs)
    if not split.pairs and not split.scored:
        raise ValueError("no training pairs: give --faq, --grouped, --pairs, --qa or --sts files with usable rows")
    print(f"training rows: {len(split.pairs)} pairs, {len(split.scored)} scored pairs; "
          f"validation: {len(split.eval_texts)} questions in {len(set(split.eval_groups))} groups")

    with AtomicOutput(args.output, args.overwrite) as out:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        model = load_model(base.path, device, args.max_seq_length, args.train_embeddings, args.freeze_layers)
        evaluators: list = []
        if len(set(split.eval_groups)) >= 2 and len(split.eval_texts) > len(set(split.eval_groups)):
            evaluators.append(GroupedRetrievalEvaluator(split.eval_texts, split.eval_groups, prepare))
        if args.sts_dev:
            evaluators.append(StsEvaluator(*read_sts(args.sts_dev, args), prepare=prepare))
            data.files[str(args.sts_dev)] = file_sha256(args.sts_dev)
        before = evaluate_all(model, evaluators)
        if before:
            print("before: " + ", ".join(f"{k} {v:.4f}" for k, v in before.items()))

        negatives = None
        if args.hard_negatives and split.pairs:
            t0 = time.monotonic()
            negatives = mine(split.pairs, encode_fn(model, prepare), split.components.of,
                             pool=args.negatives_pool, seed=args.seed)
            print(f"hard negatives mined in {time.monotonic() - t0:.0f} s")
        datasets, component = build_datasets(split, prepare, negatives)
        train_dataset = datasets if len(datasets) > 1 else next(iter(datasets.values()))
        loss = make_loss(model, args, "sts" in datasets, "pairs" in datasets)
        loss = loss if len(loss) > 1 else next(iter(loss.values()))

        trainer, steps_per_epoch = _make_trainer(model, args, out.work, train_dataset, loss, evaluators, batch_size,
                                                 cuda, group_aware_sampler(component))
        t0, cpu0 = time.monotonic(), time.process_time()
        trainer.train()
        train_seconds, train_cpu = time.monotonic() - t0, time.process_time() - cpu0
        best_step = None
        if trainer.state.best_model_checkpoint:
            best_step = int(trainer.state.best_model_checkpoint.rsplit("-", 1)[-1])
        after = evaluate_all(model, evaluators)
        if after:
            print("after:  " + ", ".join(f"{k} {v:.4f}" for k, v in after.items()))

        model.max_seq_length = model.base_max_seq_length
        model.save(str(out.model))
        report = TrainingReport(
            base_model=base.model_id,
            base_path=str(base.path),
            output=str(out.target),
            command=shlex.join([Path(sys.executable).name, "-m", "chatbot.train", *args.argv]),
            recipe=args.recipe(),
            prefix=settings.encoder.question_prefix,
            input=settings.encoder.input,
            rows={"pairs": len(split.pairs), "scored": len(split.scored), "validation_questions": len(split.eval_texts),
                  **{f"pairs_{kind}": sum(1 for p in split.pairs if p.kind == kind) for kind in ("paraphrase", "answer", "pair")}},
            files=data.files,
            device=device,
            batch_size=batch_size,
            steps=trainer.state.global_step,
            steps_per_epoch=steps_per_epoch,
            best_step=best_step,
            train_seconds=round(train_seconds, 1),
            train_cpu_seconds=round(train_cpu, 1),
            threads=torch_threads(),
            total_seconds=round(time.monotonic() - started, 1),
            metrics={"before": before, "after": after},
            versions=versions(),
            finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        write_report(out.model, report)
        out.commit()
    return report


def _make_trainer(model, args: TrainConfig, work: Path, train_dataset, loss, evaluators, batch_size: int, cuda: bool, sampler):
    import math

    import torch
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    rows = sum(len(d) for d in train_dataset.values()) if isinstance(train_dataset, dict) else len(train_dataset)
    steps_per_epoch = max(1, math.ceil(rows / batch_size))
    total = args.max_steps if args.max_steps > 0 else math.ceil(steps_per_epoch * args.epochs)
    eval_steps = max(1, int(steps_per_epoch / max(args.evals_per_epoch, 1e-6)))
    eval_steps = min(eval_steps, total)
    has_eval = bool(evaluators)
    bf16 = cuda and torch.cuda.is_bf16_supported()
    training_args = SentenceTransformerTrainingArguments(
        output_dir=str(work / "checkpoints"),
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        learning_rate=args.lr,
        warmup_steps=max(0, int(args.warmup * total)),
        weight_decay=args.weight_decay,
        seed=args.seed,
        data_seed=args.seed,
        bf16=bf16,
        fp16=cuda and not bf16,
        batch_sampler=sampler,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=eval_steps,
        save_strategy="steps" if has_eval else "no",
        save_steps=eval_steps,
        save_total_limit=2,
        save_only_model=True,
        load_best_model_at_end=has_eval,
        metric_for_best_model=_primary_metric(evaluators) if has_eval else None,
        greater_is_better=True,
        logging_steps=max(1, min(25, total // 20 or 1)),
        report_to="none",
        disable_tqdm=args.quiet,
        dataloader_num_workers=0,
        use_cpu=not cuda,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=training_args, train_dataset=train_dataset, loss=loss,
        evaluator=evaluators if has_eval else None,
    )
    trainer.remove_callback(PrinterCallback)
    if not args.quiet:
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(_progress_callback()())
    return trainer, steps_per_epoch


def _primary_metric(evaluators) -> str:
    first = evaluators[0]
    name = first.primary_metric
    prefix = f"{first.name}_"
    return f"eval_{name if name.startswith(prefix) else prefix + name}"


def reindex_hint(model_dir: Path, faq_files: list[Path]) -> str:
    files = " ".join(shlex.quote(str(p)) for p in faq_files) or "FAQ_FILE…"
    return f"FAQBOT_ENCODER__MODEL={shlex.quote(str(model_dir))} python -m ingest faq {files} --rebuild"


def set_hub_timeouts() -> None:
    """Point huggingface_hub's time-outs at encoder.hub_timeout_s, unless the environment already sets them.

    huggingface_hub reads HF_HUB_ETAG_TIMEOUT / HF_HUB_DOWNLOAD_TIMEOUT once, when it is first imported (by
    transformers, before resolve_model runs), and parses them with int(): so whole seconds, and early.
    """
    import math

    timeout = str(math.ceil(load_settings().encoder.hub_timeout_s))
    for name in ("HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT"):
        os.environ.setdefault(name, timeout)


def main(argv: list[str] | None = None) -> int:
    args = TrainConfig.from_argv(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    set_hub_timeouts()
    try:
        report = run(args)
    except OutputExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: nothing was written to {args.output}", file=sys.stderr)
        return 130
    target = Path(report.output)
    print(f"\nAdapted encoder written to {target} (report: {target / REPORT_MD})")
    print("Point the product at it (or set encoder.model in your config YAML):")
    print(f"  export FAQBOT_ENCODER__MODEL={shlex.quote(str(target))}")
    print("The store refuses vectors from another encoder, so re-index with it:")
    print(f"  {reindex_hint(target, args.faq)}")
    print("  (and `python -m ingest docs PATH… --rebuild` if you index documents)")
    print("The answer decision model rebuilds itself from the re-indexed store. An adapted encoder spreads its")
    print("scores differently: compare it with the base encoder and pick answer.threshold (used while the decision")
    print("model builds) again with")
    print("  python -m chatbot.evaluate QUESTIONS.csv --modes hybrid   (it prints precision, coverage and the threshold)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
