"""Builds the encoder, store, retriever and answerer from one Settings object (models load once)."""
from __future__ import annotations

from dataclasses import dataclass

from chatbot import dictionary
from chatbot.answer import Answerer
from chatbot.encoder import Encoder, load_encoder
from chatbot.retrieval import Retriever
from chatbot.settings import Settings, load_settings
from chatbot.store import Store


@dataclass
class Pipeline:
    """The objects every entry point shares: page, API, terminal chat, evaluation, benchmarks, tests."""

    settings: Settings
    encoder: Encoder
    store: Store
    retriever: Retriever
    answerer: Answerer


def open_pipeline(
    settings: Settings | None = None, *, encoder: Encoder | None = None, store: Store | None = None, claim: bool = True
) -> Pipeline:
    """The one way to build a Pipeline. encoder/store: ones the caller already holds (a second store for an
    evaluation, a cached encoder in a benchmark). claim: own an embedded store folder for this process's
    lifetime (the serving process: a CLI ingest on the same folder then refuses instead of writing behind
    this process's Chroma client)."""
    settings = settings or load_settings()
    dictionary.configure(settings.text)  # this Settings' synonym dictionary on the lexical side
    encoder = encoder or load_encoder(settings.encoder)
    store = store or Store(settings.store, encoder.identity(), claim=claim)
    retriever = Retriever(settings, encoder, store, refresh_s=settings.lexical.refresh_s)
    return Pipeline(settings, encoder, store, retriever, Answerer(retriever, settings.answer))
