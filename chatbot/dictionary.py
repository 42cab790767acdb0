"""The process's active synonym/user dictionary (`text.synonyms`), shared by every Kiwi call.

Kiwi's user words live inside the Kiwi object, which is one per process (chatbot.text), so the
dictionary is process-wide too. It is loaded from the configured file on first use, rechecked every
`text.synonyms_reload_s` (replicas sharing the file pick up an operator's edit) and replaced at once
by update_dictionary(). Its fingerprint is part of the BM25 cache key (chatbot.lexical), so the
index is rebuilt with the new tokens at the retriever's next fingerprint check.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatbot.settings import PROJECT_ROOT, TextSettings, load_settings
from chatbot.synonym_files import load_dictionary, save_dictionary
from chatbot.synonyms import Dictionary, DictionaryEntry

log = logging.getLogger(__name__)


@dataclass
class _Active:
    dictionary: Dictionary
    path: Path | None = None
    reload_s: float = 5.0
    stamp: tuple[int, int] | None = None
    checked_at: float = 0.0


_lock = threading.Lock()
_active: _Active | None = None


def resolve(path: Path) -> Path:
    """A relative path is taken from the working directory, else from the project (configs/ ships there)."""
    if path.is_absolute() or path.exists():
        return path
    return PROJECT_ROOT / path


def configure(settings: TextSettings) -> Dictionary:
    """Make the settings' dictionary the active one; entry points with their own Settings call this."""
    state = _state_for(settings)
    _install(state)
    return state.dictionary


def use_dictionary(dictionary: Dictionary | None) -> None:
    """Activate a dictionary held in memory (no file, no reloading): tests, benchmarks; None = none."""
    _install(_Active(dictionary or Dictionary()))


def active_dictionary() -> Dictionary:
    """The dictionary now in force; the first call loads the default settings' file."""
    global _active
    with _lock:
        if _active is None:
            _active = _state_for(load_settings().text)
        state = _active
        if state.path is not None and time.monotonic() - state.checked_at >= state.reload_s:
            _reload(state)
        return state.dictionary


def dictionary_fingerprint() -> str:
    return active_dictionary().fingerprint


def dictionary_path() -> Path | None:
    """Where update_dictionary() writes (None when the dictionary is switched off or held in memory)."""
    active_dictionary()
    return _active.path if _active else None


def update_dictionary(entries: Iterable[Mapping[str, Any] | DictionaryEntry], path: str | Path | None = None) -> Dictionary:
    """The operator's edit: validate (DictionaryError says which row is wrong), save, and use it now.

    `entries` are rows {canonical, variants (list or `a | b`), tag?} — the whole dictionary, as
    the editor shows it. Saved to `path` or the configured `text.synonyms` file.
    """
    dictionary = Dictionary.from_rows(entries)
    target = Path(path) if path else dictionary_path()
    if target is None:
        raise ValueError("text.synonyms is switched off (null): no dictionary file to save to")
    save_dictionary(dictionary, target)
    state = _Active(dictionary, target, _active.reload_s if _active else 5.0)
    state.stamp, state.checked_at = _stamp(target), time.monotonic()
    _install(state)
    log.info("Dictionary saved to %s: %d entries (fingerprint %s)", target, len(dictionary.entries), dictionary.fingerprint)
    return dictionary


def _state_for(settings: TextSettings) -> _Active:
    if not settings.synonyms:
        return _Active(Dictionary())
    state = _Active(Dictionary(), resolve(settings.synonyms), settings.synonyms_reload_s)
    _reload(state)
    return state


def _install(state: _Active) -> None:
    global _active
    with _lock:
        _active = state


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


def _reload(state: _Active) -> None:
    """Load the file when it changed since the last look; a broken edit keeps the dictionary in force."""
    assert state.path is not None
    state.checked_at = time.monotonic()
    stamp = _stamp(state.path)
    if stamp == state.stamp:
        return
    state.stamp = stamp
    if stamp is None:
        log.warning("Dictionary file %s does not exist: no synonyms or user words", state.path)
        state.dictionary = Dictionary()
        return
    try:
        state.dictionary = load_dictionary(state.path)
    except (OSError, ValueError) as exc:
        log.warning("Keeping the previous dictionary: %s cannot be used (%s)", state.path, exc)
