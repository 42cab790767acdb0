"""What a training run reports: :class:`TrainingReport`, saved next to the model as JSON and Markdown."""
from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPORT_JSON = "training_report.json"
REPORT_MD = "training_report.md"


@dataclass(frozen=True)
class TrainingReport:
    """What a finished run wrote and measured; saved next to the model as JSON and Markdown."""

    base_model: str
    base_path: str
    output: str
    command: str
    recipe: dict[str, Any]
    prefix: str
    input: str
    rows: dict[str, int]
    files: dict[str, str]
    device: str
    batch_size: int
    steps: int
    steps_per_epoch: int
    best_step: int | None
    train_seconds: float
    train_cpu_seconds: float  # all threads of this process; wall time varies with load
    threads: int
    total_seconds: float
    metrics: dict[str, dict[str, float]]
    versions: dict[str, str]
    finished: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_report(folder: Path, report: TrainingReport) -> None:
    (folder / REPORT_JSON).write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    before, after = report.metrics["before"], report.metrics["after"]
    lines = [
        "# Encoder adaptation report",
        "",
        f"- base model: `{report.base_model}`",
        f"- command: `{report.command}`",
        f"- device: {report.device} ({report.threads} threads), training time {report.train_seconds:.0f} s "
        f"(CPU {report.train_cpu_seconds:.0f} s), "
        f"{report.steps} steps, best checkpoint step {report.best_step or 'last'}",
        f"- training rows: {json.dumps(report.rows)}",
        "",
        "| metric | before | after |",
        "|---|---|---|",
    ]
    for key in sorted(set(before) | set(after)):
        lines.append(f"| {key} | {before.get(key, '')} | {after.get(key, '')} |")
    lines += ["", "| data file | sha256 |", "|---|---|"]
    lines += [f"| {path} | `{digest[:16]}…` |" for path, digest in report.files.items()]
    (folder / REPORT_MD).write_text("\n".join(lines) + "\n", encoding="utf-8")


def torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def versions() -> dict[str, str]:
    import sentence_transformers
    import torch
    import transformers

    return {
        "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "sentence_transformers": sentence_transformers.__version__,
    }
