"""The names of the ways a question can be scored, in one place (settings, retriever, API, CLI, evaluation)."""
from __future__ import annotations

from typing import Literal, get_args

Mode = Literal["lexical", "dense", "hybrid"]
MODES: tuple[str, ...] = get_args(Mode)  # what the Retriever serves
EVALUATION_MODES: tuple[str, ...] = ("lexical", "static", "dense", "hybrid", "adapted")  # + baselines and a 2nd encoder
DECISION_MODES: tuple[str, ...] = ("hybrid",)  # where the calibrated decision model decides

# Each scoring mode answers on its own scale, so each has its own threshold field in AnswerSettings.
THRESHOLD_FIELDS: dict[str, str] = {
    "hybrid": "threshold", "adapted": "threshold", "dense": "dense_threshold",
    "lexical": "lexical_threshold", "static": "static_threshold",
}
