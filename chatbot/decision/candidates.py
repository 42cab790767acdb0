"""What the hybrid retriever ranked for a question, with each record's dense and lexical parts.

The retriever exposes them itself (Retriever.candidates → fusion.Candidates); this module only names
them for the decision code, so nothing here re-implements or back-computes the fusion.
"""
from __future__ import annotations

import numpy as np

from chatbot.retrieval import Candidate, Candidates, Retriever

Ranking = Candidates  # the decision code's older name

__all__ = ["Candidate", "Candidates", "Ranking", "rank"]


def rank(retriever: Retriever, question: str, k: int = 20, vector: np.ndarray | None = None) -> Candidates:
    """Ungrouped hybrid candidates of the whole store (doc offset applied), with their score parts."""
    return retriever.candidates(question, k, vector=vector)
