"""Size limits for reading files, so one hostile or accidental upload cannot take the server's memory or hours.

A 500 KB zip can expand to gigabytes, a tiny workbook can claim a million rows, a small .docx can
hold hundreds of millions of characters. Readers therefore check, before and while they read:

    max_file_mb              bytes on disk (any format)
    max_unzipped_mb          .docx/.hwpx/.xlsx: declared uncompressed size of all zip members
    max_zip_member_mb        ... of one member; members we parse are also read through a bounded
                             stream that raises past the limit, so a header that lies cannot get by
    max_chars_per_document   extracted text of one document (and XML elements parsed for it);
                             also the longest CSV field
    max_rows                 rows of one FAQ file
    max_pdf_pages            pages of one PDF

Each is a field of IngestSettings (`ingest:` in configs/default.yaml, env FAQBOT_INGEST__<FIELD>).
A file over a limit raises FileTooLargeError, whose message names the limit and the setting to raise;
`ingest_paths` turns it into a rejection of that file and leaves its stored records untouched.
"""
from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO
from xml.etree import ElementTree

from chatbot.settings import IngestSettings

_MB = 1024 * 1024


class FileTooLargeError(ValueError):
    """A file exceeds one of the ingest limits; the message names the setting that would admit it."""


@dataclass(frozen=True)
class ReadLimits:
    """The reading limits of IngestSettings, as a small immutable value the readers take."""

    max_file_mb: float
    max_unzipped_mb: float
    max_zip_member_mb: float
    max_chars_per_document: int
    max_rows: int
    max_pdf_pages: int

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> "ReadLimits":
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})

    def error(self, source: str, name: str, what_ko: str, what_en: str) -> FileTooLargeError:
        """'source: 무엇 — 한도(N) 초과 (what exceeds the limit of N; …) raise ingest.name or FAQBOT_INGEST__NAME'."""
        value = getattr(self, name)
        shown = f"{value:,g} MB" if name.endswith("_mb") else f"{value:,}"
        env = f"FAQBOT_INGEST__{name.upper()}"
        return FileTooLargeError(
            f"{source}: {what_ko} — 한도({shown}) 초과, 읽지 않았습니다 ({what_en} exceeds the limit of {shown}; "
            f"not read). 정상 파일이면 설정 ingest.{name} 또는 환경 변수 {env}를 올려 주세요 "
            f"(if the file is genuine, raise ingest.{name} or {env})"
        )

    def check_file(self, path: Path, source: str) -> None:
        size = path.stat().st_size
        if size > self.max_file_mb * _MB:
            raise self.error(source, "max_file_mb", f"파일 크기 {size / _MB:,.1f} MB", f"file size {size / _MB:,.1f} MB")

    def check_rows(self, rows: int, source: str) -> None:
        if rows > self.max_rows:
            raise self.error(source, "max_rows", "행 수", "the number of rows")


def default_limits() -> ReadLimits:
    """The limits of a default IngestSettings, for readers called without settings (tests, training)."""
    return ReadLimits.from_settings(IngestSettings())


class TextBudget:
    """Characters (and XML elements) read for one document so far, against max_chars_per_document.

    Charged as reading goes, so a bomb stops at the limit instead of after it has been expanded.
    """

    def __init__(self, limits: ReadLimits, source: str) -> None:
        self.limits, self.source = limits, source
        self.chars = 0
        self.elements = 0

    def text(self, text: str) -> str:
        self.chars += len(text)
        if self.chars > self.limits.max_chars_per_document:
            raise self.limits.error(self.source, "max_chars_per_document", "글자 수", "the number of characters")
        return text

    def element(self) -> None:
        """One parsed XML element: a document of millions of empty elements is as costly as one of text."""
        self.elements += 1
        if self.elements > self.limits.max_chars_per_document:
            raise self.limits.error(self.source, "max_chars_per_document", "XML 요소 수", "the number of XML elements")


def iter_xml(stream: IO[bytes], budget: TextBudget, events: tuple[str, ...] = ("end",)) -> Iterator[tuple[str, ElementTree.Element]]:
    """ElementTree.iterparse with every finished element charged to the budget (text is the caller's to charge)."""
    for event, element in ElementTree.iterparse(stream, events=events):
        if event == "end":
            budget.element()
        yield event, element


def scan_xml(stream: IO[bytes], budget: TextBudget) -> None:
    """Stream an XML part once, charging its elements and text, before a library parses it whole."""
    for _, element in iter_xml(stream, budget):
        budget.text(element.text or "")
        element.clear()


class _MemberStream:
    """A zip member read through a byte budget: past it, raise (never silently truncate)."""

    def __init__(self, guard: "ZipGuard", name: str, raw: IO[bytes]) -> None:
        self._guard, self._name, self._raw = guard, name, raw
        self._left = int(guard.limits.max_zip_member_mb * _MB)

    def read(self, size: int | None = -1) -> bytes:
        allowed = min(self._left, self._guard.left) + 1  # one byte more than allowed tells "too big" from "exactly"
        data = self._raw.read(allowed if size is None or size < 0 else min(size, allowed))
        self._left -= len(data)
        self._guard.left -= len(data)
        if self._left < 0:
            raise self._guard.member_error(self._name)
        if self._guard.left < 0:
            raise self._guard.total_error()
        return data

    def close(self) -> None:
        self._raw.close()


class ZipGuard:
    """A .docx/.hwpx/.xlsx archive whose declared member sizes are within the limits, opened for bounded reading.

    Python's zipfile already stops a member at its declared size (and fails its CRC), and the
    libraries that read docx/xlsx go through it, so checking the declared sizes bounds them too;
    members this project parses itself are read through `open`, bounded again on the bytes actually read.
    """

    def __init__(self, path: Path, source: str, limits: ReadLimits) -> None:
        self.source, self.limits = source, limits
        self.archive = zipfile.ZipFile(path)  # BadZipFile is the caller's to word
        self.left = int(limits.max_unzipped_mb * _MB)
        total = 0
        for info in self.archive.infolist():
            if info.file_size > limits.max_zip_member_mb * _MB:
                self.archive.close()
                raise self.member_error(info.filename)
            total += info.file_size
        if total > self.left:
            self.archive.close()
            raise self.total_error()

    def member_error(self, name: str) -> FileTooLargeError:
        return self.limits.error(self.source, "max_zip_member_mb", f"압축을 푼 내부 파일 {name}의 크기",
                                 f"the uncompressed size of the archive member {name}")

    def total_error(self) -> FileTooLargeError:
        return self.limits.error(self.source, "max_unzipped_mb", "압축을 푼 전체 크기", "the total uncompressed size")

    def names(self, *suffixes: str) -> list[str]:
        return [n for n in self.archive.namelist() if n.lower().endswith(suffixes)]

    def open(self, name: str) -> _MemberStream:
        return _MemberStream(self, name, self.archive.open(name))

    def close(self) -> None:
        self.archive.close()

    def __enter__(self) -> "ZipGuard":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
