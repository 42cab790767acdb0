"""ONNX Runtime inference for a sentence-transformers folder: export once, then encode without torch.

Why not sentence-transformers' own ``backend="onnx"``: it needs optimum-onnx, which pins
transformers < 4.58. So the whole SentenceTransformer forward (transformer + pooling + normalise, whatever
modules the folder has) is exported here with ``torch.onnx.export`` (export_onnx) and run by
onnxruntime with the very tokenizer the torch model uses. Vectors match torch at cosine ≥ 0.9999, so
a store built with one backend is queried with the other (the encoder identity has no backend in it).

The file is cached per model *content*: inside the model folder (``onnx/<key>/``) when it is writable,
else under ``$FAQBOT_CACHE_DIR/onnx/<key>/`` (default ``~/.cache/faqbot``). A retrained folder has other
weights, so it gets its own export on first use.

Graph optimisation: ORT's session-level ``ORT_ENABLE_ALL`` on every graph. For calls of one text, a
second graph made with ``onnxruntime.transformers.optimizer`` (each attention block one operator) runs
instead (fused_graph, made in the background on first use): on e5-small it is ~10 % faster for one
question and ~12 % slower for batches on the one-thread lanes than the plain graph with ORT's own fusions.
On a ``torch.export`` graph the optimiser fused no attention at all, which is one reason the export traces
the model.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from chatbot.onnx_cache import EXPORT_MARK, mark_used, prune_unused

log = logging.getLogger(__name__)
_FUSING = threading.Lock()  # one fused graph made at a time (fuse_in_background): a second encoder finds it made

EXPORT_FORMAT = 2  # bump when the exported graph changes: older files are then exported again
MODEL_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
FUSED_FILE = "model.fused.onnx"  # the same graph with onnxruntime's transformer fusions: for one-text calls
NOT_FUSED_FILE = FUSED_FILE + ".none"  # says the fusions found nothing to fuse here, so they are not tried again
TOKENIZER_FILE = "tokenizer.json"  # the tokenizer exactly as the loaded model used it (transformers may adjust the folder's)
OWN_LIMIT_ATTRIBUTE = "faqbot_own_max_seq_length"  # set by chatbot.encoder on a loaded model before it caps the length
SERVING_FILE = "serving.json"  # what encoding needs besides the graph: pad id, the model's length limit, dimension
INPUTS = ("input_ids", "attention_mask")
OUTPUT = "sentence_embedding"
MIN_LANE_TEXTS = 4  # fewer texts than lanes × this run as one batch on the main session
# A run padded to more token ids than this hands its working memory back to the system when it ends. Without
# it ONNX Runtime's arena keeps the largest run's memory for the process's life: +0.9-1.1 GB RSS after a
# batch of long passages, for ~3 % more time on such batches (128 passages of 256 tokens: 10.0-10.4 s vs
# 9.7-9.9 s; RSS after 1.10-1.15 GB vs 2.03-2.25 GB). Micro-batches of questions stay below it.
SHRINK_AFTER_IDS = 2048
# The weights of a served graph live beside it in one raw file (ONNX external data) that every session reads
# through a read-only memory map: loading takes ~0.2 s instead of ~4.7 s (the 470 MB protobuf parsed once by
# onnx and once per session), and the weights are page cache shared by all processes on the machine instead
# of ~950 MB of private memory per process (e5-small, measured: RSS 0.70 GB vs 1.26 GB; same vectors, same speed).
WEIGHTS_SUFFIX = ".weights"
MAP_MIN_BYTES = 1024  # smaller tensors stay in the graph: the loader's shape inference reads some of them


class OnnxUnavailableError(RuntimeError):
    """onnxruntime/onnxscript is missing, or this model's forward could not be exported."""


def onnx_runtime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------------------------------ cache location
def folder_fingerprint(folder: Path) -> str:
    """sha256 over every file's relative path and content (our own ``onnx/`` folder excluded); ~0.4 s for e5."""
    digest = hashlib.sha256(f"export-format {EXPORT_FORMAT}\n".encode())
    for path in sorted(model_files(folder)):
        digest.update(str(path.relative_to(folder)).encode("utf-8") + b"\0")
        with open(path, "rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()[:16]


def model_files(folder: Path) -> list[Path]:
    """The folder's files as the fingerprint reads them, without walking into our ``onnx/`` folder: a fused graph
    being made there in the background puts a temporary folder in it and removes it, which failed a walk that met
    it half-way (FileNotFoundError from a second load of the same model at that moment)."""
    out = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        if Path(root) == folder:
            dirs[:] = [d for d in dirs if d != "onnx"]
        out += [path for path in (Path(root) / name for name in files)
                if not _is_ours(path.relative_to(folder)) and path.is_file()]
    return out


def _is_ours(relative: Path) -> bool:
    return relative.parts[0] == "onnx" or relative.name.startswith(".")


def onnx_dir(folder: Path) -> Path:
    """Where this folder's ONNX files live: in the folder when writable, else the user cache."""
    key = folder_fingerprint(folder)
    if os.access(folder, os.W_OK):
        return folder / "onnx" / key
    root = os.environ.get("FAQBOT_CACHE_DIR")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "faqbot"
    return base / "onnx" / key


# ------------------------------------------------------------------------------------------ export
def export_onnx(model, target: Path, traced: bool = True) -> Path:
    """Export ``model`` (a SentenceTransformer) to ``target``; inputs ids + mask, output the pooled vector.

    torch's tracing exporter first, with the transformer's plain ("eager") attention: ONNX Runtime fuses
    that graph better than the one ``torch.export`` gives (e5-small, the same vectors to cosine 0.9999998:
    batches of 64 questions ~12 % faster, of passages ~25 %, one question ~8 %; bench/encoder_backends.py). ``torch.export``
    (dynamo) is the fallback for a model the tracer cannot follow (traced=False: the only way, for comparisons),
    and for a torch that no longer has the tracer (2.13 marks it deprecated)."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a dependency
        raise OnnxUnavailableError("torch is needed to export") from exc

    class _Forward(torch.nn.Module):
        """Positional (input_ids, attention_mask) → sentence_embedding, the signature ORT is given."""

        def __init__(self, st) -> None:
            super().__init__()
            self.st = st

        def forward(self, input_ids, attention_mask):
            return self.st({"input_ids": input_ids, "attention_mask": attention_mask, "modality": "text"})[OUTPUT]

    sample = model.preprocess(["query: 배송은 얼마나 걸리나요? 주문 후 확인", "query: 네"])
    args = tuple(sample[name].to("cpu") for name in INPUTS)
    started = time.monotonic()
    device = model.device
    model.to("cpu").eval()
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as tmp:
            staged = Path(tmp) / target.name
            with torch.no_grad(), _quiet("onnx_ir", "onnxscript", "torch.onnx"), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the tracer warns about every Python-level branch it fixes
                how = "traced"
                try:
                    if not traced:
                        raise OnnxUnavailableError("the torch.export graph was asked for")
                    with _eager_attention(model):
                        _traced_export(torch, _Forward(model).eval(), args, staged)
                except Exception as exc:  # noqa: BLE001 - any tracer failure: the other exporter may still work
                    log.info("not the tracing ONNX exporter (%s: %s); using torch.export", type(exc).__name__, exc)
                    _dynamo_export(torch, _Forward(model).eval(), args, staged)
                    how = "torch.export"
            os.replace(staged, target)  # atomic: a reader never sees half a file
    finally:
        model.to(device)
    log.info("exported %s to ONNX (%s) in %.1f s", target.parent, how, time.monotonic() - started)
    return target


def _traced_export(torch, forward, args: tuple, path: Path) -> None:  # noqa: ANN001 - the torch module, a Module
    torch.onnx.export(
        forward, args, str(path), dynamo=False, input_names=list(INPUTS), output_names=[OUTPUT], opset_version=17,
        dynamic_axes={**{name: {0: "batch", 1: "seq"} for name in INPUTS}, OUTPUT: {0: "batch"}},
    )


def _dynamo_export(torch, forward, args: tuple, path: Path) -> None:  # noqa: ANN001 - the torch module, a Module
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    try:
        program = torch.onnx.export(
            forward, args, dynamo=True, input_names=list(INPUTS), output_names=[OUTPUT],
            dynamic_shapes={name: {0: batch, 1: seq} for name in INPUTS}, optimize=True, verbose=False,
        )
    except ImportError as exc:
        raise OnnxUnavailableError(f"exporting needs onnxscript ({exc})") from exc
    except Exception as exc:
        raise OnnxUnavailableError(f"torch.onnx.export failed for this model: {type(exc).__name__}: {exc}") from exc
    program.save(str(path), external_data=False)


@contextlib.contextmanager
def _eager_attention(model) -> Iterator[None]:  # noqa: ANN001 - a SentenceTransformer
    """The model's transformers modules switched to plain attention for the export, then switched back (the
    torch backend keeps the faster kernels it chose)."""
    switched = []
    for module in model.modules():
        config = getattr(module, "config", None)
        before = getattr(config, "_attn_implementation", None)
        if before not in (None, "eager") and hasattr(module, "set_attn_implementation"):
            module.set_attn_implementation("eager")
            switched.append((module, before))
    try:
        yield
    finally:
        for module, before in switched:
            module.set_attn_implementation(before)


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """The exporter logs hundreds of INFO lines per export; keep the app's log readable."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _save_serving_info(directory: Path, tokenizer, pad_id: int, max_seq_length: int, dimension: int,
                       shape: dict[str, int]) -> None:
    """Written beside the export once (atomically: replicas may share the folder) so later loads need no torch."""
    if (directory / SERVING_FILE).exists():
        return
    info = {"pad_id": pad_id, "max_seq_length": max_seq_length, "dimension": dimension, **shape}
    try:
        for name, text in ((TOKENIZER_FILE, tokenizer.to_str()), (SERVING_FILE, json.dumps(info) + "\n")):
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=directory, prefix=".serving-", delete=False) as tmp:
                tmp.write(text)
            os.replace(tmp.name, directory / name)  # the tokenizer first: the info file says both are there
    except OSError as exc:  # a read-only cache: every start loads torch, as before
        log.warning("could not save ONNX serving info in %s: %s", directory, exc)


def quantize_int8(source: Path, target: Path) -> Path:
    """Dynamic int8 weights (faster on CPU; measured quality cost in bench/encoder_backends.py)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".quant-") as tmp:
        quantize_dynamic(str(source), str(Path(tmp) / target.name), weight_type=QuantType.QInt8)
        os.replace(Path(tmp) / target.name, target)
    return target


def ensure_onnx_file(model, folder: Path, int8: bool = False, unused_days: float = 0) -> Path:
    """The cached ONNX file for this model folder, exported (and quantised) on first use; a new export
    deletes the exports beside it not loaded for ``unused_days`` (0 = keeps them, see chatbot/onnx_cache.py)."""
    if not onnx_runtime_available():
        raise OnnxUnavailableError("onnxruntime is not installed")
    directory = onnx_dir(folder)
    fp32 = directory / MODEL_FILE
    if not fp32.exists():
        log.info("No ONNX export of %s yet; exporting into %s (once, ~10 s for e5-small; its fused graph follows in "
                 "the background)", folder, directory)
        export_onnx(model, fp32)
        (directory / EXPORT_MARK).write_text(json.dumps({"source": str(folder), "format": EXPORT_FORMAT}) + "\n")
        prune_unused(directory, unused_days)
    if not int8:
        return fp32
    quantised = directory / INT8_FILE
    return quantised if quantised.exists() else quantize_int8(fp32, quantised)


def fused_graph(path: Path, heads: int | None, hidden: int | None) -> Path | None:
    """The graph of ``path`` with onnxruntime's transformer fusions (attention, skip layer norms, bias GELU),
    made beside it once (~12 s for e5-small, no torch). Why only for one-text calls: on e5-small it runs one
    question ~10 % faster than the plain graph, but batches on the one-thread lanes ~12 % slower
    (bench/encoder_backends.py). None where it cannot be made: an unknown attention shape, a model whose
    attention the fusions do not recognise (remembered beside it), a read-only cache, an optimiser error."""
    target = path.with_name(FUSED_FILE)
    if target.exists():
        return target
    if not heads or not hidden or path.with_name(NOT_FUSED_FILE).exists():
        return None
    started = time.monotonic()
    try:
        from onnxruntime.transformers import optimizer

        chatty = [name for name in logging.root.manager.loggerDict if name.startswith(("fusion", "onnx_model", "onnxruntime"))]
        with _quiet(*chatty), tempfile.TemporaryDirectory(dir=path.parent, prefix=".fuse-") as tmp:
            model = optimizer.optimize_model(str(path), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1)
            if not model.get_fused_operator_statistics().get("Attention"):
                path.with_name(NOT_FUSED_FILE).write_text("onnxruntime's transformer fusions found no attention\n")
                return None
            staged = Path(tmp) / FUSED_FILE
            model.save_model_to_file(str(staged))
            staged.chmod(path.stat().st_mode & 0o777)
            os.replace(staged, target)  # atomic: replicas starting together may both make it
    except Exception as exc:  # noqa: BLE001 - an optimiser or disk failure: the plain graph serves everything
        log.warning("could not make the fused ONNX graph beside %s (%s: %s)", path, type(exc).__name__, exc)
        return None
    log.info("made the fused ONNX graph %s in %.1f s (once)", target, time.monotonic() - started)
    return target


def model_tokenizer(model) -> tuple:  # noqa: ANN001 - a SentenceTransformer; (tokenizers.Tokenizer, pad id)
    """A copy of the model's tokenizer for this encoder's own use, and its pad id: transformers re-configures
    its backend tokenizer on every call, which is not thread-safe."""
    from tokenizers import Tokenizer

    return Tokenizer.from_str(model.tokenizer.backend_tokenizer.to_str()), int(model.tokenizer.pad_token_id or 0)


def _attention_shape(model) -> dict[str, int]:  # noqa: ANN001 - a SentenceTransformer
    """Attention heads and hidden size of the model's transformer (what the fusions need); {} if it names none."""
    for module in model.modules():
        config = getattr(module, "config", None)
        heads, hidden = getattr(config, "num_attention_heads", None), getattr(config, "hidden_size", None)
        if isinstance(heads, int) and isinstance(hidden, int):
            return {"attention_heads": heads, "hidden_size": hidden}
    return {}


def map_weights_out(path: Path) -> list | None:
    """Move the graph's weights into ``<file>.weights`` beside it, once (a few seconds, no torch), and
    return the graph's initializers as the graph file now names them (read once, for the sessions); None
    where that cannot be done (a read-only cache: the graph is then served as it is).

    Safe while other processes read the same folder: the weights file is put in place before the graph
    that names it, and a graph that still holds its weights ignores a weights file beside it."""
    import onnx

    weights = path.with_name(path.name + WEIGHTS_SUFFIX)
    if weights.exists():
        tensors = _graph_initializers(path)
        if any(tensor.data_location == onnx.TensorProto.EXTERNAL for tensor in tensors):
            return tensors

    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".map-") as tmp:
            staged = Path(tmp) / path.name
            onnx.save_model(onnx.load(str(path)), str(staged), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=weights.name, size_threshold=MAP_MIN_BYTES)
            mode = path.stat().st_mode & 0o777  # other users' processes may serve from the same cache
            for staged_file in (Path(tmp) / weights.name, staged):
                staged_file.chmod(mode)
            os.replace(Path(tmp) / weights.name, weights)
            os.replace(staged, path)
    except OSError as exc:
        log.warning("could not move the weights of %s into a mapped file (%s); serving it as it is", path, exc)
        return None
    log.info("moved the weights of %s into %s in %.1f s (once)", path.name, weights.name, time.monotonic() - started)
    return _graph_initializers(path)


# ------------------------------------------------------------------------------------------ inference
class OnnxEncoder:
    """An ORT session + a private copy of the model's tokenizer; same truncation, pooling and normalisation."""

    def __init__(self, path: Path, tokenizer, pad_id: int, max_seq_length: int, threads: int | None = None,
                 lanes: int = 1, fused: Path | None = None) -> None:
        """tokenizer: a ``tokenizers.Tokenizer`` of this process's own (it is reconfigured here); lanes > 1:
        calls of several texts are split over that many single-threaded runs at once (below); fused: the
        graph with transformer fusions (fused_graph), for calls of one text."""
        import onnxruntime as ort

        self.path = Path(path)
        shared = _served_weights(self.path, lanes > 1)
        self._weights = [shared]  # the sessions read these arrays in place: they must live as long as the sessions
        self.session = ort.InferenceSession(str(path), _options(threads or _cores(), shared), providers=["CPUExecutionProvider"])
        # Lanes: one single-threaded session run from `lanes` threads at once, its weights shared with the
        # main session (+~90 MB instead of +~470 MB when the weights could not be mapped). Two one-thread runs
        # side by side encode batches 4-25 % faster than one two-thread run (64 to 2,048 texts a call), and lose less when other threads (Chroma
        # writes, the rest of a question) take a core: a two-thread run waits at every step for its slower
        # half (bench/encoder_backends.py, bench/api_load.py). A lone text runs on all cores (the fused
        # graph's session when there is one, else the main one): on one thread it takes ~2.5 ms longer.
        self.lanes = lanes
        self._lane_session = (ort.InferenceSession(str(path), _options(1, shared), providers=["CPUExecutionProvider"])
                              if lanes > 1 else None)
        self._lane_pool: ThreadPoolExecutor | None = None  # started by the first split call, stopped by close()
        self._pool_lock = threading.Lock()
        self._shrink = ort.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self.tokenizer = tokenizer
        self.tokenizer.enable_truncation(max_seq_length)
        self.tokenizer.no_padding()  # each length-sorted batch is padded to its own longest text below
        self.pad_id = pad_id
        self._threads = threads
        self.fused_session = self._fused_session(Path(fused), threads) if fused else None
        self._fusing: threading.Thread | None = None

    def fuse_in_background(self, heads: int | None, hidden: int | None) -> None:
        """Make the fused graph (fused_graph, ~14 s for e5-small) on a thread of its own and serve one-text calls
        from it once it passes the probe; until then the plain graph serves them. A first start is ready that
        much sooner. The thread is not a daemon: a process that ends meanwhile finishes the file instead of
        leaving a half-written one in the cache."""

        def fuse() -> None:
            with _FUSING:
                fused = fused_graph(self.path, heads, hidden)
            if fused is not None:
                self.fused_session = self._fused_session(fused, self._threads)

        self._fusing = threading.Thread(target=fuse, name="onnx-fuse")
        self._fusing.start()

    def wait_fused(self, timeout: float | None = None) -> bool:
        """Waits for a background fuse_in_background; True when one-text calls now run on the fused graph."""
        if self._fusing is not None:
            self._fusing.join(timeout)
        return self.fused_session is not None

    def _fused_session(self, fused: Path, threads: int | None):  # noqa: ANN202 - an ORT InferenceSession or None
        """A session of the fused graph, kept only if it gives the plain graph's vectors (cosine ≥ 0.9999) for
        a probe text: the fusions match patterns, and a model they misread must not serve wrong vectors."""
        import onnxruntime as ort

        try:
            weights = _served_weights(fused, False)
            session = ort.InferenceSession(str(fused), _options(threads or _cores(), weights), providers=["CPUExecutionProvider"])
            probe = [self.tokenizer.encode("query: 배송은 얼마나 걸리나요? 주문 취소는 어디서 하나요").ids]
            plain, mine = self._run(probe), self._run(probe, session)
            cosine = float((plain @ mine.T).item() / (np.linalg.norm(plain) * np.linalg.norm(mine)))
        except Exception as exc:  # noqa: BLE001 - any failure: the plain graph serves every call, as it can
            log.warning("the fused ONNX graph %s could not be served (%s); one-text calls use the plain graph", fused, exc)
            return None
        if cosine < 0.9999:
            log.warning("the fused ONNX graph %s gives other vectors (cosine %.6f); one-text calls use the plain graph",
                        fused, cosine)
            return None
        self._weights.append(weights)
        return session

    @classmethod
    def for_model(cls, model, folder: Path, int8: bool = False, lanes: int = 0, unused_days: float = 0
                  ) -> "OnnxEncoder":
        """Export-if-needed and load, for a loaded SentenceTransformer ``model`` read from ``folder``
        (lanes 0 = one per core; unused_days: see ensure_onnx_file)."""
        path = ensure_onnx_file(model, folder, int8, unused_days)
        tokenizer, pad_id = model_tokenizer(model)
        own_limit = int(getattr(model, OWN_LIMIT_ATTRIBUTE, model.max_seq_length))  # before the configured cap
        shape = _attention_shape(model)
        _save_serving_info(path.parent, tokenizer, pad_id, own_limit, int(model.get_embedding_dimension()), shape)
        return cls._load(path, tokenizer, pad_id, int(model.max_seq_length), lanes, {} if int8 else shape)

    @classmethod
    def from_cache(cls, folder: Path, max_seq_length: int, int8: bool = False, lanes: int = 0
                   ) -> tuple["OnnxEncoder", int] | None:
        """(encoder, dimension) from an earlier export of this model folder, without loading torch (a
        serving process starts ~5 s sooner and never imports it); None when there is no complete export
        yet (for_model makes one). max_seq_length: the configured cap (the model's own limit also applies)."""
        if not onnx_runtime_available():
            return None
        from tokenizers import Tokenizer

        directory = onnx_dir(folder)
        path = directory / (INT8_FILE if int8 else MODEL_FILE)
        if not path.exists():
            return None
        try:
            info = json.loads((directory / SERVING_FILE).read_text(encoding="utf-8"))
            tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
            pad_id, own_limit, dimension = int(info["pad_id"]), int(info["max_seq_length"]), int(info["dimension"])
        except Exception as exc:  # a missing or partial file: OSError, JSON/key errors, tokenizers' own plain Exception
            log.debug("no complete ONNX export of %s to serve from (%s)", folder, exc)
            return None
        return cls._load(path, tokenizer, pad_id, min(max_seq_length, own_limit), lanes, {} if int8 else info), dimension

    @classmethod
    def _load(cls, path: Path, tokenizer, pad_id: int, max_seq_length: int, lanes: int, info: dict[str, int]
              ) -> "OnnxEncoder":
        """info: the model's attention shape (as the serving file holds it), which the fused graph needs. A fused
        graph made before is served at once; one not made yet is made in the background."""
        mark_used(path.parent)
        made = path.with_name(FUSED_FILE)
        fused = path.name == MODEL_FILE  # the int8 graph has none: the fp32 one beside it gives other vectors
        ready = fused and made.exists()
        try:
            encoder = cls(path, tokenizer, pad_id, max_seq_length, lanes=lanes or _cores(), fused=made if ready else None)
        except Exception as exc:  # onnxruntime raises its own exception types for graphs it cannot load
            raise OnnxUnavailableError(f"onnxruntime could not load {path}: {type(exc).__name__}: {exc}") from exc
        if fused and not ready:  # fused_graph decides whether one can be made at all
            encoder.fuse_in_background(info.get("attention_heads"), info.get("hidden_size"))
        return encoder

    def encode(self, texts: list[str], batch_size: int = 32, show_progress: bool = False) -> np.ndarray:
        """Unit vectors in input order; batches are formed in length order so little padding is run.

        With lanes, a call of up to `lanes` × batch_size texts (and at least `lanes` × MIN_LANE_TEXTS)
        is cut into one batch per lane of about equal padded size (a micro-batch of 20 concurrent
        questions runs as two side by side: the 8 longest and the 12 shortest, say); a larger call into
        batches of batch_size that the lanes take in turn."""
        encodings = self.tokenizer.encode_batch(texts) if len(texts) > 1 else [self.tokenizer.encode(texts[0])]
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        lanes = self.lanes if len(texts) >= self.lanes * MIN_LANE_TEXTS else 1
        if 1 < lanes and len(texts) <= lanes * batch_size:  # one batch per lane, of equal cost
            cuts = balanced_cuts([len(encodings[i].ids) for i in order], lanes)
        else:  # many batches: the lanes take the next one as they finish
            cuts = list(range(0, len(texts), batch_size)) + [len(texts)]
        batches = [[encodings[i].ids for i in order[a:b]] for a, b in zip(cuts, cuts[1:])]
        if lanes > 1:
            runs = self._on_lanes(batches)
        else:  # one text: the fused graph's session where there is one; _run falls back to the main session
            session = self.fused_session if len(texts) == 1 else None
            runs = (self._run(batch, session) for batch in batches)
        if show_progress:
            from tqdm.auto import tqdm

            runs = tqdm(runs, total=len(batches), desc="encoding (onnx)", unit="batch")
        parts = list(runs)
        out = np.empty_like(parts[0], shape=(len(texts), parts[0].shape[1]))
        out[order] = np.concatenate(parts)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def close(self) -> None:
        """Stop the lane threads; a later split call starts them again."""
        with self._pool_lock:
            pool, self._lane_pool = self._lane_pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _on_lanes(self, batches: list[list[list[int]]]) -> Iterator[np.ndarray]:
        """The batches' runs on the lane threads; submitted under the lock, so a close() meanwhile
        waits for them instead of refusing them."""
        with self._pool_lock:
            if self._lane_pool is None:
                self._lane_pool = ThreadPoolExecutor(self.lanes, thread_name_prefix="onnx-lane")
            return self._lane_pool.map(self._run_lane, batches)

    def _run_lane(self, rows: list[list[int]]) -> np.ndarray:
        return self._run(rows, self._lane_session)

    def _run(self, rows: list[list[int]], session=None) -> np.ndarray:  # noqa: ANN001 - an ORT InferenceSession
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = row
            mask[i, :len(row)] = 1
        session = session or self.session
        options = self._shrink if ids.size > SHRINK_AFTER_IDS else None
        return np.asarray(session.run([OUTPUT], {"input_ids": ids, "attention_mask": mask}, options)[0], dtype=np.float32)


def balanced_cuts(lengths: list[int], parts: int) -> list[int]:
    """Cut points [0, …, n] splitting texts sorted longest first into at most `parts` runs of contiguous
    texts whose padded size (count × first length) is as even as possible; contiguous runs keep padding low.

    Binary search on the largest padded size allowed; the greedy fill shows whether `parts` runs suffice."""
    def fill(limit: int) -> list[int] | None:
        cuts, start = [0], 0
        for i in range(1, len(lengths) + 1):
            if i == len(lengths) or (i + 1 - start) * lengths[start] > limit:
                cuts.append(i)
                start = i
        return cuts if len(cuts) - 1 <= parts else None

    low, high = max(lengths), len(lengths) * lengths[0]
    while low < high:
        middle = (low + high) // 2
        if fill(middle) is None:
            low = middle + 1
        else:
            high = middle
    cuts = fill(low)  # `high` always fits (one run), so the search ends on a fitting limit
    assert cuts is not None
    return cuts


def _options(threads: int, shared: dict):  # noqa: ANN202 - onnxruntime.SessionOptions
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle pool threads sleep instead of spinning: on a shared 2-core machine (load ~15) spinning cost
    # 1.5-2.5x wall time per question and ~1.3x CPU per question (measured, same run).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    for name, value in shared.items():
        options.add_initializer(name, value)
    return options


def _served_weights(path: Path, share: bool) -> dict:
    """The initializers a session of ``path`` is given: its weights over a memory map (moved out of the graph
    once), or where that cannot be done, read into memory when several sessions share them, else none."""
    tensors = map_weights_out(path)
    if tensors is not None:
        return _mapped_initializers(path, tensors)
    return _shared_initializers(path) if share else {}


def _graph_initializers(path: Path) -> list:
    """The graph's initializers as stored in the graph file alone (external ones name their weights file)."""
    import onnx

    return list(onnx.load(str(path), load_external_data=False).graph.initializer)


def _mapped_initializers(path: Path, tensors: list) -> dict:
    """Every initializer of the graph (``tensors``, as map_weights_out read them) as an ORT value: the external
    weights over a read-only memory map of their file, the few small ones kept in the graph as arrays (given
    to the session too, so it optimises the graph exactly as it does when the weights are read into memory:
    the same vectors to the last bit)."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper
    from onnx.helper import tensor_dtype_to_np_dtype

    values = {}
    for tensor in tensors:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            values[tensor.name] = ort.OrtValue.ortvalue_from_numpy(numpy_helper.to_array(tensor))
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        array = np.memmap(path.parent / info["location"], dtype=tensor_dtype_to_np_dtype(tensor.data_type), mode="r",
                          offset=int(info.get("offset", 0)), shape=tuple(tensor.dims))
        values[tensor.name] = ort.OrtValue.ortvalue_from_numpy(np.asarray(array))
    return values


def _shared_initializers(path: Path) -> dict:
    """The graph's weights as ORT values that several sessions can use without a copy each."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    return {tensor.name: ort.OrtValue.ortvalue_from_numpy(numpy_helper.to_array(tensor))
            for tensor in onnx.load(str(path)).graph.initializer}


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
