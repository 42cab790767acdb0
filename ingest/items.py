"""What the readers produce: FAQ rows and document parts as read, and the rows they rejected."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FaqEntry:
    """One FAQ row as read from a file (before it becomes one record per question variant)."""

    question: str
    answer: str
    source: str
    line: int
    faq_id: str | None = None
    alternatives: tuple[str, ...] = ()
    category: str | None = None


@dataclass(frozen=True)
class DocumentPart:
    """A piece of a document as read (a page of a PDF, or the whole text of a .md file)."""

    text: str
    source: str
    page: int | None = None


@dataclass(frozen=True)
class Rejection:
    """A row or file that could not be read; reported with where it is and why."""

    source: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where}: {self.reason}"


@dataclass
class ReadResult:
    """What a reader produced: usable items plus the rows it rejected."""

    items: list[Any] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
