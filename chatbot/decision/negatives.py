"""The bundled general out-of-scope questions (written for this project, MIT; see data/README.md)."""
from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def bundled_out_of_scope() -> tuple[str, ...]:
    """One question per non-comment line of data/out_of_scope_ko.txt, shipped as package data."""
    text = resources.files("chatbot.decision").joinpath("data/out_of_scope_ko.txt").read_text(encoding="utf-8")
    lines = (line.strip() for line in text.splitlines())
    return tuple(dict.fromkeys(line for line in lines if line and not line.startswith("#")))


def bundled_digest() -> str:
    """Part of the artefact fingerprint: editing the set retrains the model."""
    return hashlib.sha1("\n".join(bundled_out_of_scope()).encode("utf-8")).hexdigest()[:12]
