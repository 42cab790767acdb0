"""The operator's synonym and user dictionary as plain data, and the token rewrite it implies.

A dictionary maps a canonical term to the variants customers write for it (환불 ← 돈 돌려받기, 리턴)
and may tag a term as a noun kiwi must keep whole (한빛마켓/NNP). Nothing here touches Kiwi or files:
chatbot.text compiles an Expander with its own tokeniser, chatbot.synonym_files reads and writes
tables, chatbot.dictionary holds the process's active dictionary.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

# Tags an operator may give a user word: nouns and the foreign-word/number tags kiwi uses for names.
USER_TAGS = frozenset({"NNP", "NNG", "NNB", "NR", "NP", "SL", "SN", "SH", "XR", "MAG", "VV", "VA"})
VARIANT_SEPARATOR = "|"
_SPLIT = re.compile(r"[|\n\r]+")
_SPACES = re.compile(r"\s+")


class DictionaryError(ValueError):
    """Entries an operator handed over that cannot form a dictionary (the message says which row)."""


@dataclass(frozen=True)
class DictionaryEntry:
    """One canonical term, the variants rewritten to it, and an optional kiwi tag for all of them."""

    canonical: str
    variants: tuple[str, ...] = ()
    tag: str | None = None

    def terms(self) -> tuple[str, ...]:
        return (self.canonical, *self.variants)

    def as_row(self) -> dict[str, Any]:
        """The YAML/CSV shape: variants as a list (YAML) — files join them with `|`."""
        row: dict[str, Any] = {"canonical": self.canonical, "variants": list(self.variants)}
        if self.tag:
            row["tag"] = self.tag
        return row


@dataclass(frozen=True)
class Dictionary:
    """Ordered entries (the first entry claiming a variant wins); hashable, so caches can key on it."""

    entries: tuple[DictionaryEntry, ...] = ()

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any] | DictionaryEntry]) -> "Dictionary":
        """Validated entries from dicts {canonical, variants (list or `a | b`), tag?}; raises DictionaryError."""
        entries: list[DictionaryEntry] = []
        claimed: dict[str, str] = {}
        for number, row in enumerate(rows, start=1):
            entry = row if isinstance(row, DictionaryEntry) else _entry(row, number)
            entry = _clean(entry, number)
            for variant in entry.variants:
                owner = claimed.get(variant)
                if owner is not None and owner != entry.canonical:
                    raise DictionaryError(
                        f"{number}번째 항목: '{variant}'는 이미 '{owner}'의 동의어입니다 "
                        f"(row {number}: variant {variant!r} already belongs to {owner!r})"
                    )
                claimed[variant] = entry.canonical
            entries.append(entry)
        return cls(tuple(entries))

    def rows(self) -> list[dict[str, Any]]:
        return [e.as_row() for e in self.entries]

    def __hash__(self) -> int:
        return self._hash

    @cached_property
    def _hash(self) -> int:
        """Hashed once: the Kiwi analysis cache keys on the dictionary in force, several times per question,
        and a frozen dataclass would hash every entry each time."""
        return hash(self.entries)

    @cached_property
    def fingerprint(self) -> str:
        """Changes whenever any entry does: derived caches built from dictionary tokens key on it (computed
        once: the answer decision compares it on every question)."""
        if not self.entries:
            return "none"
        payload = json.dumps(self.rows(), ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]

    def user_words(self) -> list[tuple[str, str]]:
        """(word, tag) for kiwi's add_user_word: every term of every tagged entry."""
        return [(term, e.tag) for e in self.entries if e.tag for term in e.terms()]

    def merged(self, other: "Dictionary") -> "Dictionary":
        """This dictionary with `other`'s entries added (variants of a shared canonical united)."""
        by_canonical = {e.canonical: e for e in self.entries}
        for entry in other.entries:
            old = by_canonical.get(entry.canonical)
            if old is None:
                by_canonical[entry.canonical] = entry
            else:
                variants = tuple(dict.fromkeys((*old.variants, *entry.variants)))
                by_canonical[entry.canonical] = DictionaryEntry(old.canonical, variants, entry.tag or old.tag)
        return Dictionary.from_rows(by_canonical.values())


def split_variants(value: Any) -> tuple[str, ...]:
    """`돈 돌려받기 | 리턴` (a CSV/Excel cell) or a list → stripped, non-empty variants."""
    if value is None:
        return ()
    parts = value if isinstance(value, (list, tuple)) else _SPLIT.split(str(value))
    return tuple(str(p).strip() for p in parts if str(p or "").strip())


def _entry(row: Mapping[str, Any], number: int) -> DictionaryEntry:
    if not isinstance(row, Mapping):
        raise DictionaryError(f"{number}번째 항목이 표의 행이 아닙니다 (row {number} is not a mapping: {row!r})")
    tag = str(row.get("tag") or "").strip().upper() or None
    return DictionaryEntry(str(row.get("canonical") or "").strip(), split_variants(row.get("variants")), tag)


def _clean(entry: DictionaryEntry, number: int) -> DictionaryEntry:
    canonical = _SPACES.sub(" ", entry.canonical).strip()
    if not canonical:
        raise DictionaryError(f"{number}번째 항목에 대표어가 없습니다 (row {number}: empty canonical)")
    if entry.tag is not None and entry.tag not in USER_TAGS:
        raise DictionaryError(
            f"{number}번째 항목의 품사 '{entry.tag}'를 쓸 수 없습니다 "
            f"(row {number}: tag must be one of {', '.join(sorted(USER_TAGS))})"
        )
    variants = (_SPACES.sub(" ", v).strip() for v in entry.variants)
    unique = tuple(dict.fromkeys(v for v in variants if v and v != canonical))
    return DictionaryEntry(canonical, unique, entry.tag)


# --- the rewrite on token lists -------------------------------------------------------------------
Tokenizer = Callable[[str], Sequence[str]]


class Expander:
    """Rewrites every variant's morpheme sequence in a token list to its canonical's morphemes.

    Compiled with the same tokeniser that makes index tokens, so `돈 돌려받기` is matched as
    [돈, 돌려받] whatever the endings (돈을 돌려받을 수 있나요). Longest sequence first; one pass,
    so a canonical is never rewritten again. Applied to documents and questions alike.
    """

    def __init__(self, dictionary: Dictionary, tokenize: Tokenizer) -> None:
        rules: dict[tuple[str, ...], tuple[str, ...]] = {}
        for entry in dictionary.entries:
            canonical = tuple(tokenize(entry.canonical))
            if not canonical:
                continue
            for variant in entry.variants:
                sequence = tuple(tokenize(variant))
                if sequence and sequence != canonical:
                    rules.setdefault(sequence, canonical)
        self._by_first: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {}
        for sequence, canonical in sorted(rules.items(), key=lambda rule: -len(rule[0])):
            self._by_first.setdefault(sequence[0], []).append((sequence, canonical))

    def expand(self, tokens: Sequence[str]) -> list[str]:
        if not self._by_first:
            return list(tokens)
        out: list[str] = []
        i = 0
        while i < len(tokens):
            for sequence, canonical in self._by_first.get(tokens[i], ()):
                if tuple(tokens[i:i + len(sequence)]) == sequence:
                    out.extend(canonical)
                    i += len(sequence)
                    break
            else:
                out.append(tokens[i])
                i += 1
        return out
