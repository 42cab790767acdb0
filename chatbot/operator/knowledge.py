"""The knowledge base as the operator sees it: one item per FAQ, the files' FAQs merged with the operator's.

The store holds one record per question variant; here they are folded back into FAQs (main question,
alternatives in file order, answer, category). An operator FAQ with the id of a file's FAQ replaces
it (as search does, see chatbot.fusion.group_hits) and is marked as an override. The operator's rows
come from the database, not the store, so the view is current even while a sync is running.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from chatbot.operator.edits import OperatorFaq
from chatbot.records import OPERATOR_SOURCE


@dataclass(frozen=True)
class FaqItem:
    """One FAQ; `source` is its file, or OPERATOR_SOURCE for the operator's own and overridden ones."""

    faq_id: str
    source: str
    question: str
    answer: str
    category: str | None = None
    alternatives: tuple[str, ...] = ()
    override_of: str | None = None

    @property
    def edited(self) -> bool:
        return self.source == OPERATOR_SOURCE

    @property
    def variants(self) -> tuple[str, ...]:
        return (self.question, *self.alternatives)

    def as_dict(self) -> dict[str, Any]:
        return {
            "faq_id": self.faq_id, "source": self.source, "question": self.question, "answer": self.answer,
            "category": self.category, "alternatives": list(self.alternatives), "override_of": self.override_of,
            "edited": self.edited,
        }


def items_from_metadata(metadatas: Iterable[dict[str, Any]]) -> list[FaqItem]:
    """Stored FAQ records (metadata with source, faq_id, variant, …) → one FaqItem per (source, faq_id)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for meta in metadatas:
        if meta.get("kind", "faq") == "faq" and meta.get("faq_id") is not None:
            groups[(str(meta.get("source", "")), str(meta["faq_id"]))].append(meta)
    items = []
    for (source, faq_id), metas in groups.items():
        metas.sort(key=lambda m: int(m.get("variant") or 0))
        first = metas[0]
        main = str(first.get("main_question") or first.get("question") or "")
        alternatives = tuple(dict.fromkeys(str(m["question"]) for m in metas if int(m.get("variant") or 0) > 0))
        items.append(FaqItem(faq_id, source, main, str(first.get("answer") or ""), first.get("category") or None,
                             alternatives, None))
    return items


def item_of(faq: OperatorFaq) -> FaqItem:
    return FaqItem(faq.faq_id, OPERATOR_SOURCE, faq.question, faq.answer, faq.category, faq.alternatives, faq.override_of)


def merged(stored: Sequence[FaqItem], operator: Sequence[OperatorFaq]) -> list[FaqItem]:
    """Files' FAQs with the operator's FAQs over them (by id), sorted by source then id."""
    mine = {faq.faq_id: item_of(faq) for faq in operator}
    files = [item for item in stored if item.source != OPERATOR_SOURCE and item.faq_id not in mine]
    return sorted([*files, *mine.values()], key=lambda i: (i.source == OPERATOR_SOURCE, i.source, i.faq_id))


def search(items: Sequence[FaqItem], text: str, limit: int = 50) -> list[FaqItem]:
    """Items whose id, question, alternatives, answer or category contain every word of `text` (case-insensitive)."""
    words = text.casefold().split()
    if not words:
        return list(items[:limit])

    def haystack(item: FaqItem) -> str:
        return " ".join([item.faq_id, *item.variants, item.answer, item.category or ""]).casefold()

    return [item for item in items if all(w in haystack(item) for w in words)][:limit]
