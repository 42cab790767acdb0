"""ChromaDB, the single source of truth: embedded folder or server, cosine space, encoder identity recorded.

Only this module touches Chroma's client and collection: everything else goes through Store, whose
calls either succeed, raise StoreUnavailableError (server down or frozen: a bounded wait, then one
clear error), or, for ids this process's embedded client cannot see, skip them.
"""
from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from chatbot.records import Hit, Record
from chatbot.settings import StoreSettings
from chatbot.store_claim import claim_store

log = logging.getLogger(__name__)

_IDENTITY_KEYS = ("encoder_model", "encoder_dimension", "encoder_question_prefix", "encoder_passage_prefix", "encoder_input")
_WRITE_BATCH = 1000
WRITTEN = "written"  # metadata key: the revision stamp of the write that stored the record
_T = TypeVar("_T")


class EncoderMismatchError(RuntimeError):
    """The collection was built with another encoder; mixing vectors would silently ruin search."""


class StoreUnavailableError(RuntimeError):
    """Chroma cannot be reached (server stopped, frozen or timing out): the web layer answers 503.

    Raised within StoreSettings.timeout_s (plus a connect attempt) instead of hanging or leaking an
    httpx error; once the server is back the same Store works again.
    """

    def __init__(self, where: str, cause: BaseException | None = None) -> None:
        detail = f" ({type(cause).__name__}: {cause})" if cause else ""
        super().__init__(
            f"검색 저장소(Chroma)에 연결할 수 없습니다: {where}. 잠시 후 다시 시도해 주세요. "
            f"(The vector store is unavailable: {where}; try again shortly.){detail}"
        )


@dataclass(frozen=True)
class StoredRecords:
    """Everything the lexical index needs, as plain parallel lists."""

    ids: list[str]
    texts: list[str]
    metadatas: list[dict[str, Any]]


# --------------------------------------------------------------------------------------------
# Clients, and outages turned into one error
# --------------------------------------------------------------------------------------------
def _outage_types() -> tuple[type[BaseException], ...]:
    import httpx

    return (httpx.TransportError, ConnectionError, TimeoutError)


def _where(settings: StoreSettings) -> str:
    return f"{settings.host}:{settings.port}" if settings.host else str(settings.path)


@contextmanager
def _reachable(settings: StoreSettings) -> Iterator[None]:
    """Connection errors and time-outs become StoreUnavailableError; Chroma's own errors pass through."""
    try:
        yield
    except _outage_types() as exc:
        log.warning("Chroma at %s is unavailable: %s: %s", _where(settings), type(exc).__name__, exc)
        raise StoreUnavailableError(_where(settings), exc) from exc


def _guarded(method: Callable[..., _T]) -> Callable[..., _T]:
    @functools.wraps(method)
    def wrapper(self: "Store", *args: Any, **kwargs: Any) -> _T:
        with _reachable(self.settings):
            return method(self, *args, **kwargs)

    return wrapper


def _make_client(settings: StoreSettings):
    """PersistentClient in a folder by default; HttpClient (with time-outs) when a server host is configured."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.host:
        return _http_client(settings, chroma_settings)
    settings.path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.path), settings=chroma_settings)


def _http_client(settings: StoreSettings, chroma_settings):
    """chromadb 1.5's HttpClient builds its httpx session with timeout=None and makes requests in its
    constructor; a bounded heartbeat first makes a dead or frozen server fail fast, then the shared
    session gets the configured time-outs for every later call."""
    import chromadb
    import httpx

    timeout = httpx.Timeout(settings.timeout_s)
    headers = {settings.auth_header: settings.auth_token} if settings.auth_header and settings.auth_token else None
    scheme = "https" if settings.ssl else "http"
    with _reachable(settings):
        httpx.get(f"{scheme}://{settings.host}:{settings.port}/api/v2/heartbeat", timeout=timeout, headers=headers)
        client = chromadb.HttpClient(
            host=settings.host, port=settings.port, ssl=settings.ssl, headers=headers, settings=chroma_settings
        )
    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = timeout
    else:  # pragma: no cover - a chromadb without the attribute: calls could hang on a frozen server
        log.warning("Could not set Chroma HTTP time-outs (chromadb internals changed)")
    return client


class Store:
    """One Chroma collection of FAQ question variants and document chunks."""

    def __init__(
        self, settings: StoreSettings, identity: dict[str, Any], *, reset_on_mismatch: bool = False, claim: bool = False
    ) -> None:
        """claim: own the embedded folder for this process's lifetime (the serving process; see claim_store).
        reset_on_mismatch: drop a collection built by another encoder instead of refusing it (was_reset says so)."""
        self.settings = settings
        self.identity = identity
        self.was_reset = False
        if claim:
            claim_store(settings)
        with _reachable(settings):
            self._client = _make_client(settings)
            self._collection = self._open_collection()
            try:
                self._check_identity()
            except EncoderMismatchError as exc:
                if not reset_on_mismatch:
                    raise
                log.warning("%s", exc)
                self.reset()
                self.was_reset = True

    def claim(self) -> None:
        """Own the embedded folder for this process's lifetime; raises StoreInUseError if another process does."""
        claim_store(self.settings)

    def _open_collection(self):
        return self._client.get_or_create_collection(
            self.settings.collection,
            metadata=dict(self.identity),
            configuration={"hnsw": {"space": "cosine"}},
            embedding_function=None,
        )

    def _check_identity(self) -> None:
        stored = {k: v for k, v in (self._collection.metadata or {}).items() if k in _IDENTITY_KEYS}
        wanted = {k: v for k, v in self.identity.items() if k in _IDENTITY_KEYS}
        if stored == wanted:
            return
        if self._collection.count() == 0:
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
        metadata = {**(self._collection.metadata or {}), **values}
        self._collection.modify(metadata={k: v for k, v in metadata.items() if v is not None})

    @_guarded
    def info(self) -> dict[str, Any]:
        return dict(self._collection.metadata or {})

    @_guarded
    def mark_ingested(self, when: str) -> None:
        self._set_metadata(last_ingest=when)

    # --- writes ---------------------------------------------------------------------------------
    @_guarded
    def upsert(self, records: list[Record], vectors: np.ndarray) -> None:
        """Every record carries the write's stamp (metadata `written`), so a cache can read just what
        was written since it last looked (written_since) instead of listing every id."""
        stamp = self._bump_revision()
        for start in range(0, len(records), _WRITE_BATCH):
            batch = records[start : start + _WRITE_BATCH]
            self._collection.upsert(
                ids=[r.id for r in batch],
                documents=[r.text for r in batch],
                embeddings=vectors[start : start + _WRITE_BATCH],
                metadatas=[_clean_metadata({**r.metadata, "kind": r.kind, "source": r.source, WRITTEN: stamp})
                           for r in batch],
            )
        self._bump_revision()

    @_guarded
    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if not ids:
            return
        self._bump_revision()
        for start in range(0, len(ids), _WRITE_BATCH):
            self._collection.delete(ids=ids[start : start + _WRITE_BATCH])
        self._bump_revision()

    def _bump_revision(self) -> int:
        """Before and after each write, so a reader never pairs new content with an old revision. The
        revision is a nanosecond clock stamp, kept above the previous one (another replica's clock may lag)."""
        previous = str((self._fresh().metadata or {}).get("revision", ""))  # another replica's write included
        stamp = max(time.time_ns(), int(previous) + 1 if previous.isdigit() else 0)
        self._set_metadata(revision=str(stamp))
        return stamp

    def _fresh(self):  # noqa: ANN202 - a chromadb Collection
        """The collection as Chroma holds it now (this client's object keeps the metadata it was opened with)."""
        return self._client.get_collection(self.settings.collection, embedding_function=None)

    @_guarded
    def written_since(self, stamp: int) -> StoredRecords:
        """Records whose write began at or after `stamp` (a revision read before the caller last synced;
        records of older stores without stamps never match)."""
        return self._records({WRITTEN: {"$gte": stamp}})

    @_guarded
    def reset(self) -> None:
        """Drop every record (for --rebuild): the collection is recreated with the current encoder."""
        self._client.delete_collection(self.settings.collection)
        self._collection = self._open_collection()

    @_guarded
    def drop_collections(self, prefix: str) -> list[str]:
        """Delete the other collections whose name starts with prefix (stale evaluation copies); never this one."""
        dropped = []
        for collection in self._client.list_collections():
            name = getattr(collection, "name", collection)
            if name.startswith(prefix) and name != self.settings.collection:
                self._client.delete_collection(name)
                dropped.append(name)
        return dropped

    def close(self) -> None:
        """Release this client's share of Chroma's per-folder system (benchmarks between store sizes)."""
        close = getattr(self._client, "close", None)
        if close is not None:
            close()

    # --- reads ----------------------------------------------------------------------------------
    @_guarded
    def count(self) -> int:
        return self._collection.count()

    def iter_metadata(self, where: dict[str, Any] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """(id, metadata) of every stored record matching `where`, page by page."""
        for ids, metas, _ in self._pages(where, include=["metadatas"]):
            yield from zip(ids, (m or {} for m in metas))

    def hashes(self, where: dict[str, Any] | None = None) -> dict[str, str]:
        """id → content hash, for one source or all: enough to plan an idempotent sync."""
        return {i: str(m.get("content_hash", "")) for i, m in self.iter_metadata(where)}

    def sources(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, meta in self.iter_metadata():
            key = str(meta.get("source", "?"))
            counts[key] = counts.get(key, 0) + 1
        return counts

    def ids(self) -> list[str]:
        """Every stored id, nothing else (seconds at 1M records, where documents take a minute): what
        the BM25 cache diffs against to tokenise only new records."""
        return [i for page, _, _ in self._pages(None, include=[], page=50_000) for i in page]

    def all_records(self) -> StoredRecords:
        return self._records(None)

    def _records(self, where: dict[str, Any] | None) -> StoredRecords:
        ids: list[str] = []
        texts: list[str] = []
        metas: list[dict[str, Any]] = []
        for page_ids, page_metas, page_docs in self._pages(where, include=["metadatas", "documents"]):
            ids.extend(page_ids)
            metas.extend(m or {} for m in page_metas)
            texts.extend(d or "" for d in page_docs)
        return StoredRecords(ids, texts, metas)

    @_guarded
    def state(self) -> tuple[int, str]:
        """(record count, revision) as this process's client sees them now: what derived caches are keyed by.

        Every write goes through upsert()/delete(), which set a fresh revision in the collection's
        metadata before and after writing; with the record count that is two cheap reads, where
        hashing every id would cost seconds at 100k records.
        """
        fresh = self._fresh()
        return fresh.count(), str((fresh.metadata or {}).get("revision", ""))

    def fingerprint(self) -> str:
        """Changes whenever records are written or deleted, by this process or another replica."""
        count, revision = self.state()
        return f"{count}-{revision}"

    def _pages(self, where: dict[str, Any] | None, include: list[str], page: int = 5000) -> Iterator[tuple]:
        offset = 0
        while True:
            with _reachable(self.settings):
                got = self._collection.get(where=where, include=include, limit=page, offset=offset)
            ids = got["ids"]
            if not ids:
                return
            yield ids, got.get("metadatas") or [None] * len(ids), got.get("documents") or [None] * len(ids)
            offset += len(ids)

    @_guarded
    def query(self, vector: np.ndarray, k: int, where: dict[str, Any] | None = None) -> list[Hit]:
        # No count() first: Chroma returns fewer than k when it holds fewer, and the call costs a round trip.
        got = self._collection.query(
            query_embeddings=[vector], n_results=k, where=where, include=["documents", "metadatas", "distances"]
        )
        return [
            Hit.of(i, d, m, 1.0 - float(dist))
            for i, d, m, dist in zip(got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0])
        ]

    def nearest(self, vector: np.ndarray, k: int, where: dict[str, Any] | None = None) -> list[tuple[str, float]]:
        """Ids and cosines only: half the cost of query() when the caller has the texts already."""
        return self.nearest_many([vector], k, where)[0]

    @_guarded
    def nearest_many(self, vectors: Sequence[np.ndarray], k: int, where: dict[str, Any] | None = None
                     ) -> list[list[tuple[str, float]]]:
        """nearest() of several vectors in one Chroma call (its per-call cost is most of a small query)."""
        got = self._collection.query(query_embeddings=list(vectors), n_results=k, where=where, include=["distances"])
        return [[(i, 1.0 - float(d)) for i, d in zip(ids, dists)] for ids, dists in zip(got["ids"], got["distances"])]

    @_guarded
    def hits(self, ids: list[str]) -> dict[str, Hit]:
        """Stored records by id (score 0), for ids a derived cache does not know yet; unknown ids are left out."""
        got = self._get_known(ids, ["documents", "metadatas"])
        return {i: Hit.of(i, d, m, 0.0) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])}

    @_guarded
    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        """Stored vectors by id (float32 rows); ids this process's client cannot see are left out."""
        got = self._get_known(ids, ["embeddings"])
        embeddings = np.asarray(got["embeddings"], dtype=np.float32)
        return {record_id: embeddings[i] for i, record_id in enumerate(got["ids"])}

    def _get_known(self, ids: list[str], include: list[str]) -> dict[str, list]:
        """collection.get by ids, never failing on an id this process cannot see.

        An embedded client opened before another process wrote to the folder reads the new rows'
        documents but raises InternalError ("Error finding id") for their vectors; then each id is
        fetched alone and the unreadable ones are skipped and logged.
        """
        empty: dict[str, list] = {"ids": [], **{key: [] for key in include}}
        if not ids:
            return empty
        from chromadb.errors import ChromaError

        try:
            return self._collection.get(ids=ids, include=include)
        except ChromaError as exc:
            log.warning("Chroma could not read %d ids at once (%s); reading them one by one", len(ids), exc)
        out = empty
        for record_id in ids:
            try:
                got = self._collection.get(ids=[record_id], include=include)
            except ChromaError as exc:
                log.warning("Skipping id %s, unknown to this process's Chroma client: %s", record_id, exc)
                continue
            for key in out:
                out[key].extend(got[key] if key == "ids" else list(got[key]))
        return out


def _clean_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Chroma takes str/int/float/bool only; None is dropped rather than stored."""
    return {k: v for k, v in metadata.items() if v is not None}
