"""ChromaDB, the single source of truth: embedded folder or server, cosine space, encoder identity recorded."""
from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from chatbot.records import Hit, Record
from chatbot.settings import StoreSettings

log = logging.getLogger(__name__)

_IDENTITY_KEYS = ("encoder_model", "encoder_dimension", "encoder_question_prefix", "encoder_passage_prefix", "encoder_input")
_WRITE_BATCH = 1000


class EncoderMismatchError(RuntimeError):
    """The collection was built with another encoder; mixing vectors would silently ruin search."""


@dataclass(frozen=True)
class StoredRecords:
    """Everything the lexical index needs, as plain parallel lists."""

    ids: list[str]
    texts: list[str]
    metadatas: list[dict[str, Any]]


def make_client(settings: StoreSettings):
    """PersistentClient in a folder by default; HttpClient when a server host is configured."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.host:
        headers = {settings.auth_header: settings.auth_token} if settings.auth_header and settings.auth_token else None
        return chromadb.HttpClient(
            host=settings.host, port=settings.port, ssl=settings.ssl, headers=headers, settings=chroma_settings
        )
    settings.path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.path), settings=chroma_settings)


class Store:
    """One Chroma collection of FAQ question variants and document chunks."""

    def __init__(self, settings: StoreSettings, identity: dict[str, Any], client=None) -> None:
        self.settings = settings
        self.identity = identity
        self.client = client or make_client(settings)
        self.collection = self.client.get_or_create_collection(
            settings.collection,
            metadata=dict(identity),
            configuration={"hnsw": {"space": "cosine"}},
            embedding_function=None,
        )
        self._check_identity()

    def _check_identity(self) -> None:
        stored = {k: v for k, v in (self.collection.metadata or {}).items() if k in _IDENTITY_KEYS}
        wanted = {k: v for k, v in self.identity.items() if k in _IDENTITY_KEYS}
        if stored == wanted:
            return
        if self.collection.count() == 0:
            self._set_metadata(**wanted)
            return
        raise EncoderMismatchError(
            f"Collection {self.settings.collection!r} was built with encoder {stored.get('encoder_model')!r} "
            f"(dimension {stored.get('encoder_dimension')}, input {stored.get('encoder_input')!r}, prefixes "
            f"{stored.get('encoder_question_prefix')!r}/{stored.get('encoder_passage_prefix')!r}), "
            f"but the configured encoder is {wanted.get('encoder_model')!r} (dimension {wanted.get('encoder_dimension')}). "
            "Re-index with the new encoder: `python -m ingest faq FILE… --rebuild` (and `python -m ingest docs PATH… "
            "--rebuild`), or point encoder.model back at the model that built it."
        )

    # --- metadata -------------------------------------------------------------------------------
    def _set_metadata(self, **values: Any) -> None:
        metadata = {**(self.collection.metadata or {}), **values}
        self.collection.modify(metadata={k: v for k, v in metadata.items() if v is not None})

    def info(self) -> dict[str, Any]:
        return dict(self.collection.metadata or {})

    def mark_ingested(self, when: str) -> None:
        self._set_metadata(last_ingest=when)

    # --- writes ---------------------------------------------------------------------------------
    def upsert(self, records: list[Record], vectors: np.ndarray) -> None:
        self._bump_revision()
        for start in range(0, len(records), _WRITE_BATCH):
            batch = records[start : start + _WRITE_BATCH]
            self.collection.upsert(
                ids=[r.id for r in batch],
                documents=[r.text for r in batch],
                embeddings=vectors[start : start + _WRITE_BATCH],
                metadatas=[_clean_metadata({**r.metadata, "kind": r.kind, "source": r.source}) for r in batch],
            )
        self._bump_revision()

    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if not ids:
            return
        self._bump_revision()
        for start in range(0, len(ids), _WRITE_BATCH):
            self.collection.delete(ids=ids[start : start + _WRITE_BATCH])
        self._bump_revision()

    def _bump_revision(self) -> None:
        """Before and after each write, so a reader never pairs new content with an old revision."""
        self._set_metadata(revision=uuid.uuid4().hex)

    def reset(self) -> None:
        """Drop every record (for --rebuild): the collection is recreated with the current encoder."""
        self.client.delete_collection(self.settings.collection)
        self.collection = self.client.get_or_create_collection(
            self.settings.collection,
            metadata=dict(self.identity),
            configuration={"hnsw": {"space": "cosine"}},
            embedding_function=None,
        )

    # --- reads ----------------------------------------------------------------------------------
    def count(self) -> int:
        return self.collection.count()

    def hashes(self, where: dict[str, Any] | None = None) -> dict[str, str]:
        """id → content hash, for one source or all: enough to plan an idempotent sync."""
        out: dict[str, str] = {}
        for ids, metas, _ in self._pages(where, include=["metadatas"]):
            out.update({i: str((m or {}).get("content_hash", "")) for i, m in zip(ids, metas)})
        return out

    def sources(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, metas, _ in self._pages(None, include=["metadatas"]):
            for m in metas:
                key = str((m or {}).get("source", "?"))
                counts[key] = counts.get(key, 0) + 1
        return counts

    def all_records(self) -> StoredRecords:
        ids: list[str] = []
        texts: list[str] = []
        metas: list[dict[str, Any]] = []
        for page_ids, page_metas, page_docs in self._pages(None, include=["metadatas", "documents"]):
            ids.extend(page_ids)
            metas.extend(m or {} for m in page_metas)
            texts.extend(d or "" for d in page_docs)
        return StoredRecords(ids, texts, metas)

    def fingerprint(self) -> str:
        """Changes whenever records are written or deleted, by this process or another replica.

        Every write goes through upsert()/delete(), which set a fresh revision in the collection's
        metadata before and after writing; with the record count that is two cheap reads, where
        hashing every id would cost seconds at 100k records.
        """
        fresh = self.client.get_collection(self.settings.collection, embedding_function=None)
        return f"{fresh.count()}-{(fresh.metadata or {}).get('revision', '')}"

    def _pages(self, where: dict[str, Any] | None, include: list[str], page: int = 5000) -> Iterator[tuple]:
        offset = 0
        while True:
            got = self.collection.get(where=where, include=include, limit=page, offset=offset)
            ids = got["ids"]
            if not ids:
                return
            yield ids, got.get("metadatas") or [None] * len(ids), got.get("documents") or [None] * len(ids)
            offset += len(ids)

    def query(self, vector: np.ndarray, k: int, where: dict[str, Any] | None = None) -> list[Hit]:
        # No count() first: Chroma returns fewer than k when it holds fewer, and the call costs a round trip.
        got = self.collection.query(
            query_embeddings=[vector], n_results=k, where=where, include=["documents", "metadatas", "distances"]
        )
        return [
            _hit(i, d, m, 1.0 - float(dist))
            for i, d, m, dist in zip(got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0])
        ]

    def nearest(self, vector: np.ndarray, k: int, where: dict[str, Any] | None = None) -> list[tuple[str, float]]:
        """Ids and cosines only: half the cost of query() when the caller has the texts already."""
        got = self.collection.query(query_embeddings=[vector], n_results=k, where=where, include=["distances"])
        return [(i, 1.0 - float(dist)) for i, dist in zip(got["ids"][0], got["distances"][0])]

    def hits(self, ids: list[str]) -> dict[str, Hit]:
        """Stored records by id (score 0), for ids a derived cache does not know yet."""
        if not ids:
            return {}
        got = self.collection.get(ids=ids, include=["documents", "metadatas"])
        return {i: _hit(i, d, m, 0.0) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])}


def _hit(record_id: str, document: str | None, metadata: dict[str, Any] | None, score: float) -> Hit:
    meta = metadata or {}
    return Hit(record_id=record_id, text=document or "", kind=meta.get("kind", "faq"), score=score, metadata=meta)


def _clean_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Chroma takes str/int/float/bool only; None is dropped rather than stored."""
    return {k: v for k, v in metadata.items() if v is not None}
