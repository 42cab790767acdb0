"""Masks personal data in questions before they are stored, so the log never holds it.

Built-in patterns run in a fixed order, most specific first: a 주민등록번호 is also 13 digits (a card),
a phone number is also dash-separated digit groups (an account), and the first pattern to claim
the digits names them. Prices ("3,000원"), dates ("2024-03-15") and short order numbers are left alone.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

_NO_DIGIT_BEFORE = r"(?<![\d-])"
_NO_DIGIT_AFTER = r"(?![\d-])"


@dataclass(frozen=True)
class MaskRule:
    """One kind of personal data: a regex, the token that replaces it, an optional extra check."""

    name: str
    pattern: re.Pattern[str]
    token: str
    accept: Callable[[str], bool] | None = None

    def apply(self, text: str) -> str:
        if self.accept is None:
            return self.pattern.sub(self.token, text)
        return self.pattern.sub(lambda m: self.token if self.accept(m.group(0)) else m.group(0), text)


def _digit_count_between(low: int, high: int) -> Callable[[str], bool]:
    return lambda s: low <= sum(ch.isdigit() for ch in s) <= high


BUILTIN_RULES: tuple[MaskRule, ...] = (
    MaskRule("email", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"), "[이메일]"),
    # YYMMDD-GNNNNNN with a plausible month/day; the separator is optional.
    MaskRule(
        "rrn",
        re.compile(_NO_DIGIT_BEFORE + r"\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\s?-?\s?[1-8]\d{6}" + _NO_DIGIT_AFTER),
        "[주민등록번호]",
    ),
    # 13-16 digits in a run, or in groups of four (Visa/Master/domestic) or 4-6-4/5 (Amex, Diners).
    MaskRule(
        "card",
        re.compile(
            _NO_DIGIT_BEFORE
            + r"(?:\d{13,16}|\d{4}([- ])\d{4}\1\d{4}\1\d{1,4}|\d{4}([- ])\d{6}\2\d{4,5})"
            + _NO_DIGIT_AFTER
        ),
        "[카드번호]",
    ),
    # Mobile (010/011/016-019) and area-code numbers (02, 031-064, 070), optionally as +82.
    MaskRule(
        "phone",
        re.compile(
            r"(?<![\d+-])(?:\+82[-. ]?|82-)?0?(?:1[016789]|2|[3-6][1-5]|70)[-. ]?\d{3,4}[-. ]?\d{4}" + _NO_DIGIT_AFTER
        ),
        "[전화번호]",
        accept=lambda s: s.lstrip("+").startswith(("0", "82")),
    ),
    # Bank accounts: dash-separated digit groups with 10-14 digits in all (dates have 8, phones were taken above).
    MaskRule(
        "account",
        re.compile(_NO_DIGIT_BEFORE + r"\d{2,6}(?:-\d{2,8}){1,4}" + _NO_DIGIT_AFTER),
        "[계좌번호]",
        accept=_digit_count_between(10, 14),
    ),
)
BUILTIN_NAMES: tuple[str, ...] = tuple(rule.name for rule in BUILTIN_RULES)


class Masker:
    """Applies the enabled built-in rules (in their fixed order), then extra `label: regex` rules."""

    def __init__(self, enabled: Iterable[str] = BUILTIN_NAMES, extra: Mapping[str, str] | None = None) -> None:
        wanted = set(enabled)
        unknown = wanted - set(BUILTIN_NAMES)
        if unknown:
            raise ValueError(f"unknown mask patterns {sorted(unknown)}; known: {list(BUILTIN_NAMES)}")
        self.rules: tuple[MaskRule, ...] = tuple(r for r in BUILTIN_RULES if r.name in wanted) + tuple(
            MaskRule(label, re.compile(regex), f"[{label}]") for label, regex in (extra or {}).items()
        )

    def __call__(self, text: str | None) -> str | None:
        if not text:
            return text
        for rule in self.rules:
            text = rule.apply(text)
        return text


def masker_from_settings(mask: bool, patterns: Iterable[str], extra: Mapping[str, str] | None) -> Masker:
    """The Masker the settings ask for; mask=False gives one that changes nothing."""
    return Masker(patterns, extra) if mask else Masker((), None)
