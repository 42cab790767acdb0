"""Concurrent single questions at the Encoder level: micro-batching on vs off, against batched encoding.

    python bench/concurrency.py                  # 50 threads, 10 s per phase, the configured backend
    python bench/concurrency.py --threads 20 --seconds 5 --backend torch

The web app answers each request on its own thread and every question costs one `encode_questions([q])`.
Here N threads ask in a closed loop (each asks again as soon as it has its vector) for a fixed time,
once with micro-batching off (micro_batch_max 1) and once on (the configured micro_batch_max/wait),
and the same model encodes batches of 64 in one thread: the ceiling a perfect batcher could reach.
Reported: questions/s, its ratio to that ceiling, per-question latency p50/p95, the mean batch the
batcher formed, and the process CPU time per question: on a shared machine many runnable threads win
a bigger share of the cores, which flatters unbatched wall-clock rates; CPU ms/question does not move
with that share. All phases share one model and run interleaved in --rounds slices (off, on, ceiling,
off, ...), so a machine whose load swings affects them alike and their ratios stay meaningful.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import e5_settings, emit, markdown_table  # noqa: E402
from chatbot.encoder import Encoder, load_encoder  # noqa: E402
from chatbot.settings import PROJECT_ROOT  # noqa: E402

BATCH = 64


def closed_loop(encoder: Encoder, questions: list[str], threads: int, seconds: float) -> tuple[float, np.ndarray, float]:
    """(questions/s, latencies in s, process CPU s) of ``threads`` threads each asking one question at a time."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads + 1)
    deadline = [0.0]

    def worker(slot: int) -> None:
        start.wait()
        i = slot
        while time.perf_counter() < deadline[0]:
            began = time.perf_counter()
            encoder.encode_questions([questions[i % len(questions)]])
            latencies[slot].append(time.perf_counter() - began)
            i += threads

    pool = [threading.Thread(target=worker, args=(slot,), daemon=True) for slot in range(threads)]
    for thread in pool:
        thread.start()
    began, cpu = time.perf_counter(), time.process_time()
    deadline[0] = began + seconds
    start.wait()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - began  # includes the calls still running at the deadline
    flat = np.array([x for per in latencies for x in per])
    return len(flat) / elapsed, flat, time.process_time() - cpu


def batched_rate(encoder: Encoder, questions: list[str], seconds: float) -> tuple[float, int, float]:
    """(questions/s, questions, process CPU s) of one thread encoding batches of 64: the micro-batching ceiling."""
    batch = (questions * (BATCH // len(questions) + 1))[:BATCH]
    done, began, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - began < seconds:
        encoder.encode_questions(batch)
        done += BATCH
    return done / (time.perf_counter() - began), done, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase, all rounds together (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved slices per phase (default 3)")
    parser.add_argument("--backend", choices=["auto", "torch", "onnx"], default=None, help="default: the configured one")
    parser.add_argument("--out", type=Path, default=None, help="also write the report as markdown")
    args = parser.parse_args(argv)

    with open(PROJECT_ROOT / "data" / "questions.csv", encoding="utf-8-sig", newline="") as handle:
        questions = [row["question"] for row in csv.DictReader(handle)]
    overrides = {"device": "cpu", "micro_batch_max": 1} | ({"backend": args.backend} if args.backend else {})
    settings = e5_settings(encoder=overrides)
    unbatched = load_encoder(settings.encoder)
    configured = e5_settings().encoder
    batched = Encoder(unbatched.model, unbatched.resolved, unbatched.settings.model_copy(update={
        "micro_batch_max": configured.micro_batch_max, "micro_batch_wait_ms": configured.micro_batch_wait_ms}),
        unbatched.onnx)
    unbatched.encode_questions(questions[:BATCH])  # warm-up

    phases = {"micro-batching off": unbatched,
              f"micro-batching on (max {configured.micro_batch_max}, wait {configured.micro_batch_wait_ms:g} ms)": batched}
    rates: dict[str, list[float]] = {label: [] for label in phases}
    latencies: dict[str, list[np.ndarray]] = {label: [] for label in phases}
    cpu: dict[str, float] = {label: 0.0 for label in phases}
    ceilings, ceiling_done, ceiling_cpu = [], 0, 0.0
    slice_s = args.seconds / args.rounds
    for _ in range(args.rounds):
        for label, encoder in phases.items():
            rate, lat, seconds = closed_loop(encoder, questions, args.threads, slice_s)
            rates[label].append(rate)
            latencies[label].append(lat)
            cpu[label] += seconds
        rate, done, seconds = batched_rate(unbatched, questions, slice_s / 2)
        ceilings.append(rate)
        ceiling_done, ceiling_cpu = ceiling_done + done, ceiling_cpu + seconds
    ceiling = float(np.mean(ceilings))
    rows = []
    for label, encoder in phases.items():
        rate, lat = float(np.mean(rates[label])), np.concatenate(latencies[label])
        batcher = encoder.micro_batcher
        mean_batch = f"{batcher.items / max(batcher.calls, 1):.1f}" if batcher else "1"
        rows.append([label, f"{rate:.0f}", f"{rate / ceiling:.2f}", f"{np.percentile(lat, 50) * 1000:.0f}",
                     f"{np.percentile(lat, 95) * 1000:.0f}", mean_batch, f"{cpu[label] / len(lat) * 1000:.1f}"])
    batched.close()
    rows.append([f"one thread, batches of {BATCH} (ceiling)", f"{ceiling:.0f}", "1.00", "–", "–", str(BATCH),
                 f"{ceiling_cpu / max(ceiling_done, 1) * 1000:.1f}"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    report = "\n".join([
        f"## Concurrent questions ({unbatched.backend} backend, {args.threads} threads × {args.seconds:g} s "
        f"in {args.rounds} interleaved slices, "
        f"{os.cpu_count()} cores, load average {load:.1f})",
        "",
        markdown_table(["encode_questions([q]) from many threads", "questions/s", "÷ batched", "p50 ms", "p95 ms",
                        "mean batch", "CPU ms/question"], rows),
    ])
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
