"""Every question (page, API, terminal) and every piece of feedback, masked, in SQLite or PostgreSQL.

    log = open_log(settings)                       # once per process
    qid = log.record(QuestionEntry(question, outcome="answer", channel="web", ...))   # microseconds
    log.record_feedback(FeedbackEntry(kind="rating", question_id=qid, rating="up"))
    log.close()                                    # at shutdown (also registered with atexit)
"""
from chatbot.questionlog.adapt import entry_from_answer
from chatbot.questionlog.entries import FeedbackEntry, FeedbackRow, QuestionEntry, QuestionRow, Stats
from chatbot.questionlog.factory import open_log
from chatbot.questionlog.masking import Masker
from chatbot.questionlog.retention import PurgeResult, purge
from chatbot.questionlog.writer import QuestionLog

__all__ = [
    "FeedbackEntry",
    "FeedbackRow",
    "Masker",
    "PurgeResult",
    "QuestionEntry",
    "QuestionLog",
    "QuestionRow",
    "Stats",
    "entry_from_answer",
    "open_log",
    "purge",
]
