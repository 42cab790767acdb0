"""Encoder backends side by side: torch fp32, ONNX Runtime fp32 (ORT_ENABLE_ALL), ONNX Runtime dynamic int8.

    python bench/encoder_backends.py            # ~1 min on 2 quiet cores (the first run also exports/quantises)
    python bench/encoder_backends.py --rounds 4 --out bench/results/encoder_backends.md

ORT fp32 runs twice: as one all-core run per call, and as the default, where a call of several texts
is split over one single-threaded run per core side by side (chatbot/onnx_encoder.py, "lanes"). Both
run one question on the graph with onnxruntime's transformer fusions (`fused_graph`). Two more rows show
what the export is compared with: the same graph without the fused one for single questions, and the graph
`torch.export` gives (the product's export before 2026-11-28), both with lanes.
Per backend, in interleaved rounds so every backend sees the same machine load:
  * one question: p50 latency of `encode_questions([q])` (micro-batching off: this is the raw call);
  * questions/s: batches of 64 short questions (data/questions.csv);
  * passages/s: batches of 64 FAQ answers (longer texts, the ingestion shape);
  * quality: min/mean cosine to the torch vectors, and top-1 of data/questions.csv against the FAQ
    questions + alternatives of data/faq.csv (the same check `evaluate` does, encoder only).
Ratios are against torch measured in the same run; on a shared 2-core machine only they are meaningful.
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import e5_settings, emit, markdown_table  # noqa: E402
from chatbot.encoder import Encoder, load_encoder  # noqa: E402
from chatbot.onnx_encoder import MODEL_FILE, OnnxEncoder, export_onnx, model_tokenizer  # noqa: E402
from chatbot.settings import PROJECT_ROOT  # noqa: E402

DATA = PROJECT_ROOT / "data"
BATCH = 64


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def faq_questions() -> tuple[list[str], list[str], list[str]]:
    """(stored texts, their FAQ ids, answers) from data/faq.csv: each question and its alternatives."""
    texts, ids, answers = [], [], []
    for row in read_csv(DATA / "faq.csv"):
        answers.append(row["answer"])
        for text in [row["question"], *(row.get("alternatives") or "").split("|")]:
            if text.strip():
                texts.append(text.strip())
                ids.append(row["id"])
    return texts, ids, answers


def encoders(int8: bool, scratch: Path) -> dict[str, Encoder]:
    """One torch model shared by all rows; ONNX rows add their session next to it."""
    settings = e5_settings(encoder={"backend": "torch", "micro_batch_max": 1, "device": "cpu"})
    torch = load_encoder(settings.encoder)
    folder = torch.resolved.path
    served = OnnxEncoder.for_model(torch.model, folder)
    served.wait_fused()  # a first export makes its fused graph in the background: time what is served after it
    rows = {"torch fp32": torch,
            "ORT fp32 (one all-core run per call)": Encoder(torch.model, torch.resolved, torch.settings,
                                                            OnnxEncoder.for_model(torch.model, folder, lanes=1)),
            "ORT fp32 (default: batches on one-thread lanes)": Encoder(torch.model, torch.resolved, torch.settings, served)}
    plain = OnnxEncoder.for_model(torch.model, folder)
    plain.fused_session = None
    rows["ORT fp32 lanes, no fused graph for one question"] = Encoder(torch.model, torch.resolved, torch.settings, plain)
    rows["ORT fp32 lanes, torch.export graph"] = Encoder(torch.model, torch.resolved, torch.settings,
                                                          dynamo_export(torch, scratch))
    if int8:
        rows["ORT int8"] = Encoder(torch.model, torch.resolved, torch.settings,
                                   OnnxEncoder.for_model(torch.model, folder, int8=True))
    return rows


def dynamo_export(torch: Encoder, directory: Path) -> OnnxEncoder:
    """The model exported by torch.export (dynamo) into a scratch folder, served as the product serves its export."""
    path = export_onnx(torch.model, directory / MODEL_FILE, traced=False)
    tokenizer, pad_id = model_tokenizer(torch.model)
    return OnnxEncoder(path, tokenizer, pad_id, int(torch.model.max_seq_length), lanes=os.cpu_count() or 1)


TORCH_SPIN_S = 0.5


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument("--singles", type=int, default=15, help="single-question calls per backend per round")
    parser.add_argument("--no-int8", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="also write the report as markdown")
    args = parser.parse_args(argv)

    questions = [r["question"] for r in read_csv(DATA / "questions.csv")]
    expected = [r["expected_id"] for r in read_csv(DATA / "questions.csv")]
    stored, stored_ids, answers = faq_questions()
    question_batch = (questions * 2)[:BATCH]
    passage_batch = (answers * 2)[:BATCH]
    scratch = Path(tempfile.mkdtemp(prefix="faqbot-backends-"))
    rows = encoders(not args.no_int8, scratch)
    for encoder in rows.values():  # warm-up: first calls allocate
        encoder.encode_questions(question_batch[:8])

    single: dict[str, list[float]] = {name: [] for name in rows}
    q_rate: dict[str, list[float]] = {name: [] for name in rows}
    p_rate: dict[str, list[float]] = {name: [] for name in rows}
    for round_ in range(args.rounds):
        for name, encoder in rows.items():
            for i in range(args.singles):
                q = questions[(round_ * args.singles + i) % len(questions)]
                single[name].append(timed(lambda: encoder.encode_questions([q])))
            q_rate[name].append(BATCH / timed(lambda: encoder.encode_questions(question_batch)))
            p_rate[name].append(BATCH / timed(lambda: encoder.encode_passages(passage_batch)))
            if encoder.backend == "torch":
                time.sleep(TORCH_SPIN_S)  # its OpenMP threads spin on after a call: the next row would share the cores

    reference = rows["torch fp32"]
    ref_vectors = reference.encode_questions(questions)
    table = []
    base_single = statistics.median(single["torch fp32"])
    base_q, base_p = statistics.median(q_rate["torch fp32"]), statistics.median(p_rate["torch fp32"])
    for name, encoder in rows.items():
        vectors = encoder.encode_questions(questions)
        cosines = np.sum(vectors * ref_vectors, axis=1)
        top1 = np.asarray(stored_ids)[np.argmax(vectors @ encoder.encode_questions(stored).T, axis=1)]
        accuracy = float(np.mean(top1 == np.asarray(expected)))
        p50, qs, ps = statistics.median(single[name]), statistics.median(q_rate[name]), statistics.median(p_rate[name])
        table.append([name, f"{p50 * 1000:.1f}", f"{base_single / p50:.2f}×", f"{qs:.0f}", f"{qs / base_q:.2f}×",
                      f"{ps:.0f}", f"{ps / base_p:.2f}×", f"{cosines.min():.5f}", f"{cosines.mean():.6f}", f"{accuracy:.3f}"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    report = "\n".join([
        f"## Encoder backends ({reference.model_id}, {os.cpu_count()} cores, load average {load:.1f})",
        "",
        f"{args.rounds} interleaved rounds; one question = p50 of {args.rounds * args.singles} calls; "
        f"batches of {BATCH}; speed-up = torch time / backend time in this run.",
        "",
        markdown_table(["backend", "1 question ms (p50)", "speed-up", "questions/s (batch 64)", "vs torch",
                        "passages/s (batch 64)", "vs torch", "min cos vs torch", "mean cos", "top-1 data/questions"],
                       table),
    ])
    emit(report, args.out)
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
