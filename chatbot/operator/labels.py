"""What the operator decided about logged questions: labels (which FAQ was meant) and out-of-scope examples.

A labelled question has left the inbox. Labels double as evaluation data
(`python -m chatbot.report export-questions`), and the out-of-scope examples are kept for the
decision model to learn from (`list_out_of_scope`).
"""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Literal

from sqlalchemy import Engine, insert, select

from chatbot.questionlog.db import write_transaction
from chatbot.questionlog.entries import utcnow
from chatbot.questionlog.schema import out_of_scope, question_labels, questions

LabelKind = Literal["alternative", "new_faq", "answer", "out_of_scope"]


def question_texts(engine: Engine, question_ids: Sequence[str]) -> dict[str, str]:
    """id → the (masked) logged text, for the ids the log has; order follows question_ids."""
    wanted = list(dict.fromkeys(str(q) for q in question_ids))[:10_000]
    found: dict[str, str] = {}
    with engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            query = select(questions.c.id, questions.c.question).where(questions.c.id.in_(part))
            found.update((qid, text) for qid, text in conn.execute(query))
    return {qid: found[qid] for qid in wanted if qid in found}


def label_questions(
    engine: Engine, texts: dict[str, str], kind: LabelKind, faq_id: str | None, who: str
) -> int:
    """Labels the questions (id → text); ones already labelled keep their first label. Returns how many were new.

    Out-of-scope labels also store each distinct text as an out-of-scope example."""
    now = utcnow()
    with write_transaction(engine) as conn:
        done = set(conn.execute(select(question_labels.c.question_id).where(question_labels.c.question_id.in_(list(texts)))).scalars()) if texts else set()
        new = {qid: text for qid, text in texts.items() if qid not in done}
        if new:
            conn.execute(insert(question_labels), [
                {"question_id": qid, "time": now, "who": who, "kind": kind, "faq_id": faq_id, "question": text}
                for qid, text in new.items()
            ])
        if kind == "out_of_scope" and new:
            known = set(conn.execute(select(out_of_scope.c.question)).scalars())
            fresh = {text: qid for qid, text in new.items() if text not in known}
            if fresh:
                conn.execute(insert(out_of_scope), [
                    {"id": uuid.uuid4().hex, "time": now, "who": who, "question": text, "question_id": qid}
                    for text, qid in fresh.items()
                ])
    return len(new)


def list_out_of_scope(engine: Engine) -> list[str]:
    """Every question the operator marked "not for us", oldest first: negatives for the decision model."""
    with engine.connect() as conn:
        return list(conn.execute(select(out_of_scope.c.question).order_by(out_of_scope.c.time, out_of_scope.c.id)).scalars())


def labelled_examples(engine: Engine) -> list[tuple[str, str]]:
    """(question, expected FAQ id; "" = out of scope) for every labelled question, oldest first."""
    query = select(question_labels.c.question, question_labels.c.kind, question_labels.c.faq_id).order_by(
        question_labels.c.time, question_labels.c.question_id
    )
    with engine.connect() as conn:
        return [(q, "" if kind == "out_of_scope" else (faq_id or "")) for q, kind, faq_id in conn.execute(query)]
