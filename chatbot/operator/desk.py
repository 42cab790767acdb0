"""OperatorDesk: every operator action as one method, shared by the page (operator_ui) and the API (operator_api).

Actions write the database first (edit + audit, labels), then sync the operator source into the store
and refresh the retriever, so an edit is answerable within seconds. The database is the source of
truth: a failed sync loses nothing, and `resync()` (or the next edit) repairs the store.
"""
from __future__ import annotations

import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np

from chatbot.answer import threshold_setting
from chatbot.operator.edits import EditLog, OperatorFaq, who_of
from chatbot.operator.inbox import Cluster, build_clusters, inbox_questions
from chatbot.operator.knowledge import FaqItem, item_of, items_from_metadata, merged, search
from chatbot.operator.labels import LabelKind, label_questions, list_out_of_scope, question_texts
from chatbot.operator.source import sync_operator_source
from chatbot.records import OPERATOR_SOURCE
from chatbot.text import normalise

MAX_ANSWER_CHARS = 20_000
MAX_ALTERNATIVES = 200
MAX_CATEGORY_CHARS = 200
VECTOR_CACHE = 50_000


class OperatorActionError(ValueError):
    """An operator request that cannot be done; the message (Korean, then English) is shown as it is."""

    status = 400


class FaqNotFoundError(OperatorActionError):
    status = 404


class OperatorUnavailableError(OperatorActionError):
    status = 503


class OperatorDesk:
    """The operator's actions over one Service (its pipeline, its question-log database)."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self._lock = threading.Lock()  # one edit + sync at a time, so syncs land in order
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._vectors_lock = threading.Lock()

    # --- plumbing ---------------------------------------------------------------------------------
    @property
    def engine(self) -> Any:
        log = self.service.questions
        if log is None:
            raise OperatorUnavailableError("질문 기록이 꺼져 있어 운영 기능을 쓸 수 없습니다 (the question log is disabled: log.enabled).")
        return log.engine

    @property
    def edits(self) -> EditLog:
        return EditLog(self.engine)

    def _pipeline(self) -> Any:
        try:
            return self.service.require()
        except Exception as exc:
            raise OperatorUnavailableError(str(exc)) from exc

    def encode(self, texts: list[str]) -> np.ndarray:
        """Question vectors, each text encoded once per process (the inbox is reloaded often)."""
        with self._vectors_lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            vectors = self._pipeline().encoder.encode_questions(missing)
            with self._vectors_lock:
                self._vectors.update(zip(missing, np.asarray(vectors)))
                while len(self._vectors) > VECTOR_CACHE:
                    self._vectors.popitem(last=False)
        with self._vectors_lock:
            return np.stack([self._vectors[t] for t in texts])

    # --- the inbox --------------------------------------------------------------------------------
    def inbox(self, since: datetime, limit: int = 50) -> list[Cluster]:
        """The biggest clusters of unhandled questions since `since`, each with its nearest FAQ."""
        cfg = self.service.settings.operator
        answer = self.service.settings.answer
        threshold = float(getattr(answer, threshold_setting(self.service.mode).removeprefix("answer.")))
        items = inbox_questions(self.engine, since, cfg, threshold)
        self._pipeline()
        clusters = build_clusters(items, self.encode, cfg.cluster_distance, cfg.cluster_sample)[:limit]
        for cluster in clusters:
            cluster.nearest = self.nearest(cluster.examples[0])
        return clusters

    def nearest(self, text: str) -> tuple[str, str, float] | None:
        """The FAQ search puts first for `text`: (faq_id, its main question, score)."""
        for hit in self._pipeline().retriever.search(text, k=5):
            if hit.kind == "faq":
                main = str(hit.metadata.get("main_question") or hit.text)
                return hit.answer_id, main, round(float(hit.score), 4)
        return None

    def add_alternatives(
        self, question_ids: Sequence[str], faq_id: str, who: str | None = None, texts: Sequence[str] | None = None,
    ) -> FaqItem:
        """The questions (or `texts`) become alternative questions of FAQ `faq_id`; the questions leave the inbox."""
        found = question_texts(self.engine, question_ids)
        wanted = [normalise(t) for t in (texts if texts is not None else found.values())]
        wanted = [t for t in dict.fromkeys(wanted) if t]
        if not wanted:
            raise OperatorActionError("추가할 질문이 없습니다 (no question to add).")
        self._check_question(*wanted)

        def add(faq: OperatorFaq) -> OperatorFaq:
            return replace(faq, alternatives=_alternatives([*faq.alternatives, *wanted], faq.question))

        return self._change(faq_id, who, "add_alternatives", add, labels=(found, "alternative"))

    def new_faq(
        self, question: str, answer: str, category: str | None = None, alternatives: Sequence[str] = (),
        question_ids: Sequence[str] = (), who: str | None = None,
    ) -> FaqItem:
        """A new operator FAQ; the given inbox questions are labelled with it."""
        found = question_texts(self.engine, question_ids) if question_ids else {}
        faq = OperatorFaq(
            faq_id=f"op-{uuid.uuid4().hex[:10]}", question=self._question(question), answer=_answer(answer),
            category=_category(category),
        )
        faq = replace(faq, alternatives=_alternatives([*alternatives, *found.values()], faq.question))
        return self._commit(faq, who, "create", labels=(found, "new_faq"))

    def not_for_us(self, question_ids: Sequence[str], who: str | None = None) -> int:
        """Marks the questions out of scope (kept as examples for the decision model); returns how many were new."""
        return label_questions(self.engine, self._texts(question_ids), "out_of_scope", None, who_of(who))

    def right_answer(self, question_ids: Sequence[str], faq_id: str, who: str | None = None) -> int:
        """Labels the questions with the FAQ that should have answered them, without changing the FAQ."""
        self.find(faq_id)
        return label_questions(self.engine, self._texts(question_ids), "answer", faq_id, who_of(who))

    def out_of_scope(self) -> list[str]:
        return list_out_of_scope(self.engine)

    # --- the knowledge base -----------------------------------------------------------------------
    def items(self) -> list[FaqItem]:
        """Every FAQ, files' and operator's merged (an override replaces the file's FAQ of its id)."""
        stored = items_from_metadata(meta for _, meta in self._pipeline().store.iter_metadata({"kind": "faq"}))
        return merged(stored, self.edits.all())

    def search(self, text: str, limit: int = 50) -> list[FaqItem]:
        return search(self.items(), text, limit)

    def find(self, faq_id: str) -> FaqItem:
        own = self.edits.get(faq_id)
        if own is not None:
            return item_of(own)
        where = {"$and": [{"kind": "faq"}, {"faq_id": faq_id}]}
        stored = [i for i in items_from_metadata(m for _, m in self._pipeline().store.iter_metadata(where)) if i.source != OPERATOR_SOURCE]
        if not stored:
            raise FaqNotFoundError(f"FAQ를 찾지 못했습니다: {faq_id} (no such FAQ).")
        return sorted(stored, key=lambda i: i.source)[0]

    def edit_faq(
        self, faq_id: str, who: str | None = None, *, question: str | None = None, answer: str | None = None,
        alternatives: Sequence[str] | None = None, category: str | None = None,
    ) -> FaqItem:
        """Changes the given fields; a file's FAQ becomes an override the operator source carries."""

        def edit(faq: OperatorFaq) -> OperatorFaq:
            main = self._question(question) if question is not None else faq.question
            return replace(
                faq, question=main,
                answer=_answer(answer) if answer is not None else faq.answer,
                category=_category(category) if category is not None else faq.category,
                alternatives=_alternatives(alternatives if alternatives is not None else faq.alternatives, main),
            )

        return self._change(faq_id, who, "edit", edit)

    def delete_faq(self, faq_id: str, who: str | None = None) -> str:
        """Deletes an operator FAQ, or drops an override (the file's version answers again)."""
        with self._lock:
            removed = self.edits.delete(faq_id, who_of(who))
            if removed is None:
                self.find(faq_id)
                raise OperatorActionError(
                    f"파일에서 온 FAQ({faq_id})는 원본 파일에서 지운 뒤 다시 색인해 주세요 "
                    "(an FAQ from a file is deleted by removing it from the file and re-ingesting)."
                )
            self._sync()
        if removed.override_of:
            return f"{faq_id}: 운영자 수정을 지우고 원본({removed.override_of}) 내용으로 되돌렸습니다."
        return f"{faq_id}: 삭제했습니다."

    def audit(self, faq_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return self.edits.audit(faq_id, limit)

    def resync(self) -> str:
        """Writes every operator FAQ to the store again (after a store rebuild, or a failed sync)."""
        with self._lock:
            return self._sync()

    # --- internals --------------------------------------------------------------------------------
    def _change(
        self, faq_id: str, who: str | None, action: str, change: Callable[[OperatorFaq], OperatorFaq],
        labels: tuple[dict[str, str], LabelKind] | None = None,
    ) -> FaqItem:
        with self._lock:
            base = self.edits.get(faq_id)
            file_copy = None
            if base is None:
                item = self.find(faq_id)
                base = file_copy = OperatorFaq(item.faq_id, item.question, item.answer, item.category, item.alternatives, item.source)
            return self._commit_locked(change(base), who, action, labels, before=file_copy)

    def _commit(self, faq: OperatorFaq, who: str | None, action: str, labels: tuple[dict[str, str], LabelKind] | None) -> FaqItem:
        with self._lock:
            return self._commit_locked(faq, who, action, labels)

    def _commit_locked(
        self, faq: OperatorFaq, who: str | None, action: str, labels: tuple[dict[str, str], LabelKind] | None,
        before: OperatorFaq | None = None,
    ) -> FaqItem:
        saved = self.edits.save(faq, who_of(who), action, before)
        if labels and labels[0]:
            label_questions(self.engine, labels[0], labels[1], saved.faq_id, who_of(who))
        self._sync()
        return item_of(saved)

    def _sync(self) -> str:
        try:
            return sync_operator_source(self.service, self.edits.all())
        except OperatorActionError:
            raise
        except Exception as exc:
            raise OperatorUnavailableError(
                f"저장했지만 검색에 아직 반영하지 못했습니다: {exc} (saved, but not yet in the search store; retry the sync)"
            ) from exc

    def _texts(self, question_ids: Sequence[str]) -> dict[str, str]:
        found = question_texts(self.engine, question_ids)
        if not found:
            raise OperatorActionError("해당하는 질문 기록이 없습니다 (no such logged questions).")
        return found

    def _question(self, text: str | None) -> str:
        question = normalise(text or "")
        if not question:
            raise OperatorActionError("질문을 입력해 주세요 (the question is empty).")
        self._check_question(question)
        return question

    def _check_question(self, *texts: str) -> None:
        limit = self.service.settings.answer.max_question_chars
        if any(len(t) > limit for t in texts):
            raise OperatorActionError(f"질문은 {limit}자까지입니다 (a question is longer than {limit} characters).")


def _answer(text: str | None) -> str:
    answer = "\n".join(normalise(line) for line in (text or "").replace("\r\n", "\n").split("\n")).strip()
    if not answer:
        raise OperatorActionError("답변을 입력해 주세요 (the answer is empty).")
    if len(answer) > MAX_ANSWER_CHARS:
        raise OperatorActionError(f"답변은 {MAX_ANSWER_CHARS}자까지입니다 (the answer is too long).")
    return answer


def _category(text: str | None) -> str | None:
    return normalise(text or "")[:MAX_CATEGORY_CHARS] or None


def _alternatives(texts: Sequence[str], question: str) -> tuple[str, ...]:
    """Normalised, without blanks, duplicates (case-insensitive) or the main question; "|" would split them on export."""
    seen = {question.casefold()}
    out = []
    for text in texts:
        for part in str(text).split("|"):
            part = normalise(part)
            if part and part.casefold() not in seen:
                seen.add(part.casefold())
                out.append(part)
    if len(out) > MAX_ALTERNATIVES:
        raise OperatorActionError(f"유사 질문은 {MAX_ALTERNATIVES}개까지입니다 (too many alternatives).")
    return tuple(out)


_desks: "weakref.WeakKeyDictionary[Any, OperatorDesk]" = weakref.WeakKeyDictionary()
_desks_lock = threading.Lock()


def desk_of(service: Any) -> OperatorDesk:
    """The one desk of a Service (page and API share its lock and vector cache)."""
    with _desks_lock:
        desk = _desks.get(service)
        if desk is None:
            desk = _desks[service] = OperatorDesk(service)
        return desk


def restore_operator_source(service: Any) -> bool:
    """After a store rebuild (or a fresh server) the operator's edits, kept in the database, are written
    to the store again; True when it did. Cheap when they are there: one filtered look-up."""
    desk = desk_of(service)
    store = service.require().store
    if not desk.edits.all() or next(iter(store.iter_metadata({"source": OPERATOR_SOURCE})), None) is not None:
        return False
    desk.resync()
    return True
