"""Is the top candidate the right answer? A calibrated model trained from the store itself.

negatives.py (the bundled out-of-scope questions) · candidates.py (what the retriever ranked, with
its dense and lexical parts) · features.py (numbers per candidate) · examples.py (training rows
from the store: leave-one-variant-out positives, leave-FAQ-out and bundled negatives) ·
model.py (logistic regression, calibration levels, JSON save/load) · artefact.py (fingerprinted
cache beside the store, built in the background) · policy.py (answer / clarify / fallback).
"""
from chatbot.decision.artefact import DecisionProvider
from chatbot.decision.model import DecisionModel
from chatbot.decision.policy import Outcome, choose

__all__ = ["DecisionModel", "DecisionProvider", "Outcome", "choose"]
