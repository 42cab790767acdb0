"""Several app processes on one Chroma server and one PostgreSQL question log: an FAQ ingested by a third
process is answered by every replica within `lexical.refresh_s`, with no 5xx meanwhile, and every question
either replica answered is in the one log; `--workers` is refused on an embedded store."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from chatbot.settings import PROJECT_ROOT
from tests.helpers import app_env, free_port, start_chroma, stop, wait_healthy, write_faq
from tests.postgres import postgres_server, postgres_url  # noqa: F401 - fixtures

REFRESH_S = 2.0
NEW_FAQ = ("points-1", "포인트", "적립 포인트는 언제 소멸되나요?", "적립일로부터 1년 뒤 소멸됩니다.", "")


@contextmanager
def app_process(tmp: Path, env: dict[str, str], *args: str) -> Iterator[str]:
    """`python app.py --port P [args]` until the block ends; yields its base URL."""
    port = free_port()
    log_path = tmp / f"app-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), *args], cwd=PROJECT_ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", 180, proc, log_path)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(proc)


def ingest(env: dict[str, str], path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "ingest", "faq", str(path), "--quiet"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def answered_faq(base: str, question: str, mode: str | None = None) -> str | None:
    response = httpx.post(f"{base}/api/ask", json={"question": question, "mode": mode}, timeout=30)
    return response.json().get("faq_id") if response.status_code == 200 else None


class Poller(threading.Thread):
    """Asks every replica continuously, counts the HTTP statuses (connection errors as 'error') and keeps the
    question log ids each replica returned."""

    def __init__(self, bases: list[str]) -> None:
        super().__init__(daemon=True)
        self.bases, self.statuses, self.halt = bases, Counter[str](), threading.Event()
        self.logged: dict[str, set[str]] = {base: set() for base in bases}

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.halt.is_set():
                for base in self.bases:
                    try:
                        response = client.post(f"{base}/api/ask", json={"question": "배송은 얼마나 걸리나요?"})
                        status = str(response.status_code)
                        if response.status_code == 200:
                            self.logged[base].add(response.json()["question_id"])
                    except httpx.HTTPError as exc:
                        status = f"error {type(exc).__name__}"
                    self.statuses[status] += 1


def logged_ids(url: str) -> set[str]:
    """The ids of the question log's rows (the database every replica writes)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(text("SELECT id FROM questions")).scalars())
    finally:
        engine.dispose()


@pytest.mark.app
@pytest.mark.server
@pytest.mark.postgres
@pytest.mark.slow
def test_faq_ingested_beside_two_replicas_is_answered_by_both_within_refresh(tmp_path, tiny_model_dir, postgres_url):
    chroma, port = start_chroma(tmp_path / "chroma-server")
    try:
        env = app_env(tmp_path, tiny_model_dir, store__host="127.0.0.1", store__port=str(port), store__collection="replicas",
                      lexical__refresh_s=str(REFRESH_S), app__ask_per_minute="0", log__url=postgres_url)
        ingest(env, write_faq(tmp_path / "faq.csv"))
        # replica A: two uvicorn workers on one port; replica B: one process. One question log (PostgreSQL), as
        # the README's deployment has it, and one cache folder.
        with app_process(tmp_path, env, "--workers", "2") as a, app_process(tmp_path, env) as b:
            poller = Poller([a, b])
            poller.start()
            time.sleep(1.0)
            ingest(env, write_faq(tmp_path / "extra.csv", [NEW_FAQ]))
            ingested_at = time.monotonic()
            waited: dict[str, float] = {}
            for name, base in (("a", a), ("b", b)):
                deadline = ingested_at + REFRESH_S + 20  # + a question's time on two loaded cores
                # lexical mode too: the replica's BM25 cache learnt the record, not only Chroma's dense side
                while {answered_faq(base, NEW_FAQ[2], mode) for mode in ("hybrid", "lexical")} != {NEW_FAQ[0]}:
                    assert time.monotonic() < deadline, f"replica {name} never answered the new FAQ"
                    time.sleep(0.2)
                waited[name] = time.monotonic() - ingested_at
            # both workers of A, once the refresh interval is over for each of them (the first answer above may
            # have come from one worker while the other, which checked just before the ingest, is still in its
            # interval): repeated asks land on either process
            time.sleep(max(0.0, ingested_at + REFRESH_S + 1.0 - time.monotonic()))
            for _ in range(8):
                assert answered_faq(a, NEW_FAQ[2]) == NEW_FAQ[0]
            time.sleep(1.0)
            poller.halt.set()
            poller.join(timeout=60)
            # each process writes its log in batches (log.flush_interval_ms); the rows must all reach the one database
            deadline, wanted = time.monotonic() + 20, set().union(*poller.logged.values())
            while not wanted <= (found := logged_ids(postgres_url)):
                assert time.monotonic() < deadline, f"{len(wanted - found)} of {len(wanted)} answered questions not logged"
                time.sleep(0.5)
        print(f"new FAQ answered after {waited} s; statuses {dict(poller.statuses)}; "
              f"logged {[len(ids) for ids in poller.logged.values()]} questions")
        assert poller.statuses["200"] > 10
        assert set(poller.statuses) == {"200"}, poller.statuses  # no 5xx, no dropped connection
        assert all(poller.logged.values())  # both replicas answered and logged
    finally:
        stop(chroma)


@pytest.mark.app
def test_workers_are_refused_on_the_embedded_store(tmp_path, tiny_model_dir):
    done = subprocess.run([sys.executable, "app.py", "--workers", "2", "--port", str(free_port())], cwd=PROJECT_ROOT,
                          env=app_env(tmp_path, tiny_model_dir), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "FAQBOT_STORE__HOST" in done.stderr and "single-process" in done.stderr
    assert not (tmp_path / "chroma").exists()  # refused before anything was opened
