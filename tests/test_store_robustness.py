"""The store and its derived BM25 cache under abuse: a foreign cache, a second process writing the
embedded folder, a CLI ingest against a running app's store, and a Chroma server killed or frozen."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from chatbot.encoder import load_encoder
from chatbot.lexical import LexicalIndex, cache_folder, load_or_build
from chatbot.pipeline import open_pipeline
from chatbot.records import Record
from chatbot.settings import PROJECT_ROOT
from chatbot.store import Store, StoreUnavailableError, StoredRecords
from chatbot.store_claim import OWNER_FILE, StoreInUseError, claim_store, release_store
from tests.test_retrieval import faq_records

CSV = "id,question,answer\nnew-1,적립금은 언제 사라지나요?,1년 뒤 소멸합니다.\nnew-2,포인트 소멸 기간이 궁금해요,1년입니다.\n"


def _filled(settings, records: list[Record] | None = None) -> Store:
    store = Store(settings.store, load_encoder(settings.encoder).identity())
    records = records if records is not None else faq_records()
    store.upsert(records, load_encoder(settings.encoder).encode_questions([r.text for r in records]))
    return store


def _env(settings) -> dict[str, str]:
    """The settings as FAQBOT_* variables, for a child process."""
    return {
        **os.environ, "PYTHONPATH": str(PROJECT_ROOT), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
        "FAQBOT_ENCODER__MODEL": settings.encoder.model, "FAQBOT_ENCODER__DEVICE": "cpu",
        "FAQBOT_STORE__PATH": str(settings.store.path), "FAQBOT_STORE__CACHE_DIR": str(settings.store.cache_dir),
    }


# ------------------------------------------------------------------------------------------------
# 1. A bm25/ folder from another index beside a valid records.json
# ------------------------------------------------------------------------------------------------
def test_bm25_folder_from_another_index_is_rebuilt(make_settings, tmp_path):
    settings = make_settings()
    store = _filled(settings)
    good = load_or_build(store, settings.lexical)
    other = make_settings(store={"path": str(tmp_path / "other" / "chroma")})
    other_records = [Record(f"o-{i}", f"다른 색인의 문장 {i} 회원가입 쿠폰 배송", "faq", "o.csv", {"faq_id": f"o{i}"})
                     for i in range(25)]
    load_or_build(_filled(other, other_records), other.lexical)

    folder = cache_folder(settings.store)
    shutil.rmtree(folder / "bm25")
    shutil.copytree(cache_folder(other.store) / "bm25", folder / "bm25")
    assert LexicalIndex.load(folder) is None  # the foreign arrays are noticed, not trusted

    index = load_or_build(store, settings.lexical)
    assert index.inconsistency() is None and len(index.records.ids) == len(good.records.ids)
    assert index.search("환불은 어떻게 받나요", 3)[0].metadata["faq_id"] == "refund-1"
    assert LexicalIndex.load(folder) is not None  # the rebuilt cache was saved over the bad one


def test_cache_with_a_wrong_record_count_is_not_trusted(make_settings):
    """The fingerprint on disk is checked against this process's store: same string, other size → rebuilt."""
    settings = make_settings()
    store = _filled(settings)
    index = load_or_build(store, settings.lexical)
    short = StoredRecords(index.records.ids[:-1], index.records.texts[:-1], index.records.metadatas[:-1])
    LexicalIndex.build(short, settings.lexical, index.fingerprint).save(cache_folder(settings.store))
    assert len(load_or_build(store, settings.lexical).records.ids) == store.count()


# ------------------------------------------------------------------------------------------------
# 2. Ids the store cannot read: skipped, logged, the cache rebuilt at the next question
# ------------------------------------------------------------------------------------------------
def test_cache_ids_unknown_to_the_store_are_skipped_and_the_cache_heals(make_settings, caplog):
    settings = make_settings(retrieval={"lexical_weight": 0.5})
    store = _filled(settings)
    real = load_or_build(store, settings.lexical)
    renamed = ["faq-phantom" if m["faq_id"] == "refund-1" and m["variant"] == 0 else i
               for i, m in zip(real.records.ids, real.records.metadatas)]
    phantom = StoredRecords(renamed, real.records.texts, real.records.metadatas)
    LexicalIndex.build(phantom, settings.lexical, real.fingerprint).save(cache_folder(settings.store))

    pipeline = open_pipeline(settings)
    assert "faq-phantom" in pipeline.retriever.lexical.position  # same fingerprint and count: accepted
    asked: list[str] = []
    read = pipeline.store.vectors
    pipeline.store.vectors = lambda ids: (asked.extend(ids), read(ids))[1]
    hits = pipeline.retriever.search("환불은 어떻게 받나요?", mode="hybrid")
    assert hits and "faq-phantom" not in {h.record_id for h in hits}
    assert caplog.text.count("unknown to the store") == 1
    assert asked.count("faq-phantom") == 1  # read once (the lexical side), not again for the keyword-only candidates
    assert "faq-phantom" not in pipeline.retriever.lexical.position  # rebuilt from the store, no restart
    assert pipeline.retriever.search("환불은 어떻게 받나요?", mode="hybrid")[0].answer_id == "refund-1"


@pytest.mark.slow
def test_another_process_writing_the_embedded_folder_breaks_no_question(make_settings, tmp_path, caplog):
    """A second process writes behind this process's embedded client (which cannot read the new vectors)."""
    settings = make_settings(retrieval={"lexical_weight": 0.5})
    pipeline = open_pipeline(settings)
    records = faq_records()
    pipeline.store.upsert(records, pipeline.encoder.encode_questions([r.text for r in records]))
    assert pipeline.retriever.search("배송", mode="hybrid")
    (tmp_path / "new.csv").write_text(CSV, encoding="utf-8")
    code = textwrap.dedent(f"""
        from chatbot.settings import load_settings
        from ingest.sync import ingest_paths
        print(ingest_paths(load_settings(), "faq", [{str(tmp_path / 'new.csv')!r}]).store_count)
    """)
    child = subprocess.run([sys.executable, "-c", code], env=_env(settings), cwd=PROJECT_ROOT,
                           capture_output=True, text=True, timeout=180)
    assert child.returncode == 0, child.stderr[-2000:]
    assert int(child.stdout.split()[-1]) == len(records) + 2

    pipeline.retriever.refresh()
    assert len(pipeline.retriever.lexical.records.ids) == len(records) + 2  # the cache learnt the new ids
    readable = set(pipeline.store.vectors([r.id for r in records]))
    for mode in ("hybrid", "dense", "lexical"):
        hits = pipeline.retriever.search("적립금은 언제 사라지나요? 환불", mode=mode)
        assert hits, mode
        if mode != "lexical":
            assert {h.record_id for h in hits} <= readable, mode
    assert "unknown to the store" in caplog.text
    assert pipeline.answerer.ask("적립금은 언제 사라지나요?").type in ("faq", "fallback", "clarify")


# ------------------------------------------------------------------------------------------------
# 2a. One owner per embedded folder: the CLI refuses a store a running app has claimed
# ------------------------------------------------------------------------------------------------
def test_claim_is_reentrant_in_a_process_and_released(make_settings):
    settings = make_settings()
    assert claim_store(settings.store) is True
    assert claim_store(settings.store) is False  # already ours
    assert (settings.store.path / OWNER_FILE).read_text().strip() == str(os.getpid())
    release_store(settings.store)
    assert claim_store(settings.store) is True
    release_store(settings.store)


def test_cli_ingest_refuses_a_store_claimed_by_a_running_app(make_settings, tmp_path, monkeypatch):
    settings = make_settings()
    env = _env(settings)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom chatbot.settings import load_settings\n"
         "from chatbot.store_claim import claim_store\nclaim_store(load_settings().store)\nprint('claimed', flush=True)\n"
         "time.sleep(120)"],
        env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "claimed", holder.stderr.read()
        (tmp_path / "faq.csv").write_text(CSV, encoding="utf-8")
        started = time.monotonic()
        cli = subprocess.run([sys.executable, "-m", "ingest", "faq", str(tmp_path / "faq.csv")], env=env,
                             cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
        assert cli.returncode == 2, cli.stderr
        assert "🛠 운영" in cli.stderr and "FAQBOT_STORE__HOST" in cli.stderr and f"pid {holder.pid}" in cli.stderr
        assert time.monotonic() - started < 60
        with pytest.raises(StoreInUseError):
            claim_store(settings.store)
    finally:
        holder.kill()
        holder.wait(10)
    # the kernel dropped the dead owner's lock: the CLI (here in-process) may write now
    from ingest.cli import main as cli_main

    for key, value in env.items():
        if key.startswith("FAQBOT_"):
            monkeypatch.setenv(key, value)
    assert cli_main(["faq", str(tmp_path / "faq.csv"), "-q"]) == 0
    assert claim_store(settings.store) is True  # the CLI gave its claim back when it finished
    release_store(settings.store)


# ------------------------------------------------------------------------------------------------
# 3. A Chroma server killed or frozen: one clear error, bounded time, recovery when it returns
# ------------------------------------------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _chroma(folder: Path, port: int) -> Iterator[subprocess.Popen]:
    """Our own `chroma run` (the session's shared server must not be killed or frozen)."""
    import httpx

    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    log = open(folder.parent / f"chroma-{port}-{time.monotonic_ns()}.log", "wb")
    proc = subprocess.Popen([chroma, "run", "--path", str(folder), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"chroma run did not start: {Path(log.name).read_text(errors='replace')[-2000:]}")
            time.sleep(0.3)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            proc.wait(10)
        log.close()


def _until_it_works(call, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except StoreUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.server
def test_killed_server_gives_store_unavailable_quickly_then_recovers(make_settings, tmp_path):
    port = _free_port()
    settings = make_settings(store={"host": "127.0.0.1", "port": port, "timeout_s": 2})
    with _chroma(tmp_path / "server-data", port) as proc:
        pipeline = open_pipeline(settings)
        records = faq_records()
        pipeline.store.upsert(records, pipeline.encoder.encode_questions([r.text for r in records]))
        assert pipeline.retriever.search("배송", mode="hybrid")
        proc.kill()
        proc.wait(10)
        for call in (pipeline.store.count, lambda: pipeline.retriever.search("배송 기간", mode="hybrid"),
                     lambda: pipeline.answerer.ask("배송 기간"), lambda: Store(settings.store, pipeline.store.identity)):
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError, match="Chroma"):
                call()
            assert time.monotonic() - started < 3
    with _chroma(tmp_path / "server-data", port):  # back, same data: the same objects work again
        assert _until_it_works(pipeline.store.count) == len(records)
        assert pipeline.retriever.search("배송 택배 도착", mode="hybrid")[0].answer_id == "ship-1"


@pytest.mark.server
def test_frozen_server_gives_store_unavailable_within_the_timeout_then_recovers(make_settings, tmp_path):
    port = _free_port()
    timeout = 2.0
    settings = make_settings(store={"host": "127.0.0.1", "port": port, "timeout_s": timeout})
    with _chroma(tmp_path / "server-data", port) as proc:
        pipeline = open_pipeline(settings)
        records = faq_records()
        pipeline.store.upsert(records, pipeline.encoder.encode_questions([r.text for r in records]))
        assert pipeline.retriever.search("배송", mode="hybrid")
        proc.send_signal(signal.SIGSTOP)
        try:
            for call in (lambda: pipeline.retriever.search("배송 기간", mode="dense"),
                         lambda: Store(settings.store, pipeline.store.identity)):
                started = time.monotonic()
                with pytest.raises(StoreUnavailableError):
                    call()
                assert time.monotonic() - started < timeout + 3
        finally:
            proc.send_signal(signal.SIGCONT)
        assert _until_it_works(lambda: pipeline.retriever.search("배송 택배 도착", mode="hybrid"))[0].answer_id == "ship-1"
        assert Store(settings.store, pipeline.store.identity).count() == len(records)
