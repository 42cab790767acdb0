"""What the question log costs: record() latency on the request path and the background write rate.

    python bench/question_log.py                                   # SQLite in a temp folder
    python bench/question_log.py --postgres postgresql+psycopg://user@127.0.0.1:5432/db

record() is timed twice: paced (one question per ms, the writer thread running alongside, as in
the app) and in a burst. The write rate is rows per second from the first record() of a burst to the
end of flush(): masking, batching and inserting, through the product's QuestionLog.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chatbot.questionlog import QuestionEntry, QuestionLog  # noqa: E402
from chatbot.questionlog.db import open_engine  # noqa: E402
from chatbot.questionlog.schema import migrate  # noqa: E402

QUESTION = "주문한 상품 환불은 언제 되나요? 연락처는 010-1234-5678 입니다"


def _entry(i: int) -> QuestionEntry:
    return QuestionEntry(
        f"{QUESTION} #{i}", outcome="answer", channel="web", normalised=f"{QUESTION} #{i}", mode="hybrid",
        top=[("faq-1", 0.93), ("faq-2", 0.81), ("doc-3", 0.7)], latency_ms=21.0, session="bench",
    )


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6  # noqa: E731
    return f"p50 {pick(0.5):.1f} µs  p95 {pick(0.95):.1f} µs  p99 {pick(0.99):.1f} µs  (n={len(samples)})"


def bench(url: str, n: int, paced: int, batch_size: int) -> None:
    engine = open_engine(url)
    migrate(engine)
    qlog = QuestionLog(engine, batch_size=batch_size, interval_s=0.2, queue_size=max(n, 10_000) + 10)
    entries = [_entry(i) for i in range(max(n, paced))]

    timings = []
    for entry in entries[:paced]:
        start = time.perf_counter()
        qlog.record(entry)
        timings.append(time.perf_counter() - start)
        time.sleep(0.001)
    qlog.flush()
    print(f"  record(), paced 1/ms, writer running: {_percentiles(timings)}")

    timings = []
    burst_start = time.perf_counter()
    for entry in entries[:n]:
        start = time.perf_counter()
        qlog.record(entry)
        timings.append(time.perf_counter() - start)
    enqueued = time.perf_counter() - burst_start
    qlog.flush()
    total = time.perf_counter() - burst_start
    print(f"  record(), burst of {n}:               {_percentiles(timings)}")
    print(f"  batched writes: {n} rows in {total:.2f} s = {n / total:,.0f} rows/s "
          f"(enqueue {enqueued:.2f} s, batch_size {batch_size}; dropped {qlog.dropped}, failed {qlog.failed})")
    baseline = []
    for _ in range(paced):
        start = time.perf_counter()
        baseline.append(time.perf_counter() - start)
    print(f"  timer overhead for reference: p50 {statistics.median(baseline) * 1e6:.2f} µs")
    qlog.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="entries in the burst")
    parser.add_argument("--paced", type=int, default=2_000, help="entries recorded one per ms")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--postgres", help="a postgresql+psycopg:// URL to measure as well (tables are created in it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print(f"SQLite (WAL) {folder}/questions.db")
        bench(f"sqlite:///{folder}/questions.db", args.n, args.paced, args.batch_size)
    if args.postgres:
        print(f"PostgreSQL {args.postgres.split('@')[-1]}")
        bench(args.postgres, args.n, args.paced, args.batch_size)


if __name__ == "__main__":
    main()
