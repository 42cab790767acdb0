"""Concurrent single questions at the Encoder level: micro-batching on vs off, against batched encoding.

    python bench/concurrency.py                  # 50 threads, 10 s per phase, the configured backend
    python bench/concurrency.py --threads 20 --seconds 5 --backend torch

The web app answers each request on its own thread and every question costs one `encode_questions([q])`.
Here N threads ask in a closed loop (each asks again as soon as it has its vector) for a fixed time,
once with micro-batching off (micro_batch_max 1) and once on (the configured micro_batch_max/wait),
and the same model encodes batches of 64 in one thread: the ceiling a perfect batcher could reach.
Reported: questions/s, its ratio to that ceiling, per-question latency p50/p95, and the mean batch the
batcher formed. All phases share one model and one run, so their ratios survive a noisy machine.
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


def closed_loop(encoder: Encoder, questions: list[str], threads: int, seconds: float) -> tuple[float, np.ndarray]:
    """(questions per second, latencies in s) of ``threads`` threads each asking one question at a time."""
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
    began = time.perf_counter()
    deadline[0] = began + seconds
    start.wait()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - began  # includes the calls still running at the deadline
    flat = np.array([x for per in latencies for x in per])
    return len(flat) / elapsed, flat


def batched_rate(encoder: Encoder, questions: list[str], seconds: float) -> float:
    """Questions/s of one thread encoding batches of 64: the ceiling for micro-batching."""
    batch = (questions * (BATCH // len(questions) + 1))[:BATCH]
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        encoder.encode_questions(batch)
        done += BATCH
    return done / (time.perf_counter() - began)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase (default 10)")
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

    ceiling = batched_rate(unbatched, questions, min(args.seconds, 5.0))
    rows = []
    for label, encoder in (("micro-batching off", unbatched),
                           (f"micro-batching on (max {configured.micro_batch_max}, wait {configured.micro_batch_wait_ms:g} ms)", batched)):
        rate, latencies = closed_loop(encoder, questions, args.threads, args.seconds)
        batcher = encoder.micro_batcher
        mean_batch = f"{batcher.items / max(batcher.calls, 1):.1f}" if batcher else "1"
        rows.append([label, f"{rate:.0f}", f"{rate / ceiling:.2f}", f"{np.percentile(latencies, 50) * 1000:.0f}",
                     f"{np.percentile(latencies, 95) * 1000:.0f}", mean_batch])
    batched.close()
    rows.append([f"one thread, batches of {BATCH} (ceiling)", f"{ceiling:.0f}", "1.00", "–", "–", str(BATCH)])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    report = "\n".join([
        f"## Concurrent questions ({unbatched.backend} backend, {args.threads} threads × {args.seconds:g} s, "
        f"{os.cpu_count()} cores, load average {load:.1f})",
        "",
        markdown_table(["encode_questions([q]) from many threads", "questions/s", "÷ batched", "p50 ms", "p95 ms",
                        "mean batch"], rows),
    ])
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
