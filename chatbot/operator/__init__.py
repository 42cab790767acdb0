"""The operator loop: questions the bot could not answer → inbox clusters → fixes that last → export and report.

    desk = desk_of(service)                     # one per Service: shared by the page and /api/operator
    clusters = desk.inbox(since)                # fallback / clarify / low-confidence / 👎 questions, grouped
    desk.add_alternatives(cluster.question_ids, "ship-1", who="kim")   # answerable within seconds

Edits live in the question-log database (with an audit trail) and reach the search store as the
operator FAQ source `operator-edits.jsonl`, synced like any FAQ file, so they survive re-ingesting
the original spreadsheet and reach every replica through the shared store.
"""
from __future__ import annotations

from chatbot.operator.desk import OperatorActionError, OperatorDesk, desk_of
from chatbot.operator.labels import list_out_of_scope

__all__ = ["OperatorActionError", "OperatorDesk", "desk_of", "list_out_of_scope"]
