"""Evaluation of what was ingested, through the product's own objects.

    metrics.py  pure metric functions (ranking, decisions, calibration) and the threshold recommendation
    cases.py    the questions file → Cases
    run.py      one mode at a time through Answerer.ask; per-mode reports; temporary pipelines for benches
    report.py   table, failures CSV, plots

The command is `python -m chatbot.evaluate` (chatbot/evaluate.py).
"""
from chatbot.evaluation.cases import Case, hit_label, read_cases, source_label
from chatbot.evaluation.metrics import (
    RECALL_AT, DecisionCounts, counts_at_threshold, decision_counts, expected_calibration_error, first_relevant_rank,
    hit_at, ndcg_at, percentile, recommend_threshold, reciprocal_rank, reliability_bins,
)
from chatbot.evaluation.report import format_table, plot_reliability, plot_scores, write_failures
from chatbot.evaluation.run import (
    ALL_MODES, DEFAULT_MODES, FaqItem, ModeReport, ModeRunner, Outcome, adapted_pipeline, build_runners, evaluate,
    faq_records, outcome_rates, records_from_store, run_mode, summarise, temporary_pipeline, upsert_encoded,
)

__all__ = [
    "ALL_MODES", "Case", "DEFAULT_MODES", "DecisionCounts", "FaqItem", "ModeReport", "ModeRunner", "Outcome", "RECALL_AT",
    "adapted_pipeline", "build_runners", "counts_at_threshold", "decision_counts", "evaluate", "expected_calibration_error",
    "faq_records", "first_relevant_rank", "format_table", "hit_at", "hit_label", "ndcg_at", "outcome_rates", "percentile",
    "plot_reliability", "plot_scores", "read_cases", "recommend_threshold", "reciprocal_rank", "records_from_store",
    "reliability_bins", "run_mode", "source_label", "summarise", "temporary_pipeline", "upsert_encoded", "write_failures",
]
