"""Throughput of the running app under N parallel API clients, as a ratio of the encoder's own batched
throughput measured in the same run (the encoder is the bottleneck, so that is the ceiling).

    python bench/api_load.py [--clients 50] [--seconds 20] [--warm-up 3] [--rounds 3] [--question-cache 4096] [--fresh]

Starts the real app (`python app.py`, sample data, offline e5, configured encoder backend) on a
loopback port with the rate limits off, runs N closed-loop clients for the given time (bounded: it
stops by itself), and measures the encoder alone in this process before the app starts and after it
stops (the mean of the two is the ceiling: the machine's speed drifts over a run). The clients run
in this process too, so on a small machine they take some of the CPU the server would have. Prints
throughput, p50/p95/max latency, status counts and the ratios, and the CPU the server and the clients
used during the load (the server's per question beside the encoder's own).
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import e5_settings  # noqa: E402
from bench.thread_cpu import read_stat  # noqa: E402
from tests.helpers import free_port, wait_healthy  # noqa: E402

QUESTIONS = [
    "배송비 얼마예요?", "반품하려면 어케 해요", "주문 취소하고 싶어요", "적립금은 언제 들어와요?", "비밀번호를 잊어버렸어요",
    "오늘 주문하면 언제 와요?", "교환 신청은 어디서 하나요", "쿠폰이 안 써져요", "회원 탈퇴 방법", "오늘 서울 날씨 어때",
    "영수증 발급 되나요", "해외 배송도 하나요?", "카드 결제가 실패해요", "포장 선물로 해주세요", "매장 위치 알려줘",
]


def fresh_questions(n: int = 20_000) -> list[str]:
    """n distinct generated shop questions (bench/speed.py's), so that no text repeats within a round and
    no per-text cache (typo repair, Kiwi analysis, topic check) answers for the work a new question costs."""
    from bench.speed import asked_questions

    return asked_questions(n, seed=5)


def run_load(base: str, clients: int, seconds: float, questions: list[str] | None = None) -> tuple[list[float], Counter]:
    """Closed loop: each client asks, waits for the answer, asks the next question, until time is up.

    The clients are asyncio connections speaking plain HTTP/1.1 keep-alive, so that on a small
    machine the load generator takes little of the CPU the server needs (50 httpx threads took
    most of a core)."""
    return asyncio.run(_load(base, clients, seconds, questions or QUESTIONS))


async def _load(base: str, clients: int, seconds: float, questions: list[str]) -> tuple[list[float], Counter]:
    host, port = base.removeprefix("http://").split(":")
    latencies: list[float] = []
    statuses: Counter = Counter()
    deadline = time.monotonic() + seconds
    requests = [
        b"POST /api/ask HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (host.encode(), len(body), body)
        for body in (json.dumps({"question": q}).encode() for q in questions)
    ]
    sent = itertools.count()  # one sequence for all clients: with fresh questions, each is asked once

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                writer.write(requests[next(sent) % len(requests)])
                try:
                    status = await _response_status(reader)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    status = type(exc).__name__
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, int(port))
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, statuses


async def _response_status(reader: asyncio.StreamReader) -> int:
    """Reads one whole HTTP/1.1 response (Content-Length or chunked) and returns its status code."""
    status = int((await reader.readline()).split()[1])
    length, chunked = 0, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        elif name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if not chunked:
        await reader.readexactly(length)
        return status
    while (size := int((await reader.readline()).strip() or b"0", 16)):
        await reader.readexactly(size + 2)
    await reader.readline()
    return status


def wait_for_decision_model(base: str, timeout_s: float = 300) -> None:
    """The app answers at once and trains its decision model in the background: measure after that."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = httpx.get(f"{base}/api/health", timeout=5).json().get("decision")
        if status not in ("building", "waiting"):
            return
        if status == "waiting":  # the first question starts the build
            httpx.post(f"{base}/api/ask", json={"question": QUESTIONS[0]}, timeout=60)
        time.sleep(1)


def encoder_batched_rate(seconds: float = 10.0, questions: list[str] | None = None) -> tuple[float, float]:
    """Questions per second of the configured encoder alone, batches of 64 of the questions the load asks,
    in this process, and the CPU seconds it spent per question."""
    from chatbot.encoder import load_encoder

    encoder = load_encoder(e5_settings().encoder)
    batch = ((questions or QUESTIONS) * 64)[:64]
    encoder.encode_questions(batch)  # warm-up
    done, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        encoder.encode_questions(batch)
        done += len(batch)
    rate, cpu_each = done / (time.perf_counter() - started), (time.process_time() - cpu) / done
    encoder.close()
    return rate, cpu_each


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc; None elsewhere)."""
    read = read_stat(Path(f"/proc/{pid}/stat"))
    return None if read is None else read[1]


@dataclass
class Round:
    """One start of the app, one load, the encoder measured around it."""

    encoder_rate: float  # questions/s, the mean of before and after
    throughput: float  # questions/s under the load
    ratio: float
    line: str  # what the round printed


def one_round(args: argparse.Namespace) -> Round:
    settings = e5_settings()
    questions = fresh_questions() if args.fresh else QUESTIONS
    rate_before, cpu_before = encoder_batched_rate(questions=questions)  # before and after: the machine's speed drifts
    tmp = Path(tempfile.mkdtemp(prefix="faqbot-load-"))
    port = free_port()
    env = {
        **os.environ, "FAQBOT_ENCODER__MODEL": settings.encoder.model, "FAQBOT_STORE__PATH": str(tmp / "chroma"),
        "FAQBOT_STORE__CACHE_DIR": str(tmp / "cache"), "FAQBOT_APP__UPLOAD_DIR": str(tmp / "uploads"),
        "FAQBOT_APP__FEEDBACK_LOG": str(tmp / "feedback.jsonl"), "FAQBOT_LOG__URL": f"sqlite:///{tmp / 'q.db'}",
        "FAQBOT_APP__ASK_PER_MINUTE": "0", "HF_HUB_OFFLINE": "1", "FAQBOT_ENCODER__QUESTION_CACHE": str(args.question_cache),
    }
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, 600, proc, tmp / "server.log")
        wait_for_decision_model(base)
        single = []
        with httpx.Client(timeout=60) as http:  # one client: creating one costs tens of ms by itself
            for q in QUESTIONS * 2:
                started = time.perf_counter()
                http.post(f"{base}/api/ask", json={"question": q})
                single.append(time.perf_counter() - started)
        if args.warm_up > 0:  # the fresh questions' tail: never reached by the measured window
            run_load(base, args.clients, args.warm_up, questions[-2000:] if args.fresh else questions)
        server_before, client_before = process_cpu_seconds(proc.pid), time.process_time()
        latencies, statuses = run_load(base, args.clients, args.seconds, questions)
        server_after, client_cpu = process_cpu_seconds(proc.pid), time.process_time() - client_before
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    rate_after, cpu_after = encoder_batched_rate(questions=questions)
    rate, encoder_cpu = (rate_before + rate_after) / 2, (cpu_before + cpu_after) / 2
    throughput = len(latencies) / args.seconds
    lat = sorted(latencies)
    p95 = lat[int(0.95 * (len(lat) - 1))]
    lines = [
        f"encoder alone, batched (64): {rate:.0f} questions/s (before the load {rate_before:.0f}, after {rate_after:.0f})",
        f"one question over HTTP, alone: p50 {statistics.median(single) * 1000:.0f} ms",
        f"{args.clients} parallel clients, {args.seconds:.0f} s after {args.warm_up:.0f} s of warm-up: {throughput:.1f} questions/s = "
        f"{throughput / rate:.2f}× the batched encoder; p50 {statistics.median(lat) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms; statuses {dict(statuses)}",
    ]
    if server_before is not None and server_after is not None and latencies:
        server_cpu = server_after - server_before
        # Where the machine's cores went during the load: the server's CPU per question against the
        # encoder's own, and what the clients (in this process, on the same cores) took.
        lines.append(f"CPU during the load ({os.cpu_count()} cores): server {server_cpu / args.seconds:.2f} cores, "
                     f"{server_cpu / len(latencies) * 1000:.1f} ms per question (the encoder alone, batched: "
                     f"{encoder_cpu * 1000:.1f} ms); clients {client_cpu / args.seconds:.2f} cores")
    ok = bool(latencies) and set(statuses) == {200}
    return Round(rate, throughput, throughput / rate if ok else 0.0, "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=1,
                        help="start, load and stop the app this many times (one run's ratio varies by ±0.03 here); "
                             "prints each round and the median ratio")
    parser.add_argument("--question-cache", type=int, default=0,
                        help="the app's recent-question cache (encoder.question_cache); off by default: the clients "
                             "repeat 15 questions, and the ratio measures the encoder-bound path")
    parser.add_argument("--warm-up", type=float, default=3.0,
                        help="seconds of the same load before the measured window, not counted (a started server's "
                             "first seconds fill its caches of decoded records and analyses; --fresh warms up on "
                             "other questions than the measured ones); 0 measures from the first request")
    parser.add_argument("--fresh", action="store_true",
                        help="every request asks a question not asked before (20,000 generated ones) instead of "
                             "cycling through 15: what per-text caches cannot save")
    args = parser.parse_args(argv)
    rounds = []
    for number in range(1, args.rounds + 1):
        result = one_round(args)
        rounds.append(result)
        if args.rounds > 1:
            print(f"-- round {number} of {args.rounds}")
        print(result.line, flush=True)
    if args.rounds > 1:
        ratios = sorted(r.ratio for r in rounds)
        print(f"median of {args.rounds} rounds: {statistics.median(ratios):.2f}× the batched encoder "
              f"(rounds {' / '.join(f'{r:.2f}' for r in ratios)}; a failed round counts 0)")
    return 0 if all(r.ratio > 0 for r in rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
