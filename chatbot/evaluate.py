"""Measure what was ingested: `python -m chatbot.evaluate QUESTIONS.csv` (console script `faqbot-evaluate`).

    python -m chatbot.evaluate data/questions.csv
    python -m chatbot.evaluate data/questions.csv --modes lexical,static,dense,hybrid,adapted \\
        --adapted-model models/chat-e5 --failures var/failures.csv --plot var/scores.png

The questions file has a `question` column and either `expected_id` (the FAQ id that should answer)
or `expected_answer` (the answer text that should be given; every FAQ with that answer counts) or
`expected_source` (a document file name: any passage of that file answers it).
An empty expectation marks an out-of-scope question: the fallback is the correct outcome.
`--calibrate FILE…` lets the hybrid decision model also learn from labelled questions in the same
format (what `answer.calibration_files` does in the app); evaluated questions found there are left out.

Every mode asks the product's own objects (Answerer.ask → Retriever.search → Answerer.decide), so
the numbers are what a user of the page or API gets:

    lexical, dense, hybrid  the configured Retriever in that mode
    static                  chatbot.static.StaticRetriever over the same stored records
    adapted                 hybrid with another encoder folder (--adapted-model DIR). A collection
                            refuses vectors from another encoder, so the stored records are re-encoded
                            with the adapted encoder into their own embedded collection
                            `<collection>-adapted-<hash>` under `<store.cache_dir>/evaluate-adapted/`
                            (hash of the model folder + the main store's fingerprint). It is reused
                            while both are unchanged; older adapted collections are dropped.

Metrics (pure functions below, over the ranked list of FAQ ids, best first):
    top-1       share of answerable questions whose best hit is an expected FAQ
    MRR@10      mean of 1/rank of the first expected FAQ within the first 10 (0 when absent)
    R@k         share of answerable questions with an expected FAQ within the first k (success@k:
                with one relevant FAQ this is recall; FAQs with the same answer are alternatives)
    nDCG@10     1/log2(rank + 1) of the first expected FAQ (binary gain, one relevant item)
    fallback P/R at the configured threshold: precision = out-of-scope questions among those that
                fell back; recall = share of out-of-scope questions that fell back
    answer F1   answer-vs-fallback decisions: a question is answered when its best score reaches
                the threshold; an answer is correct only when top-1 is right; precision = correct
                answers / answers given, recall = correct answers / answerable questions
    answer P, coverage, clarify, OOS answered
                at the configured levels (hybrid: the decision model's answer / clarify / fallback):
                right answers / answers given; in-scope questions answered right; in-scope questions
                asked back ("혹시 이 질문을 찾으셨나요?"); out-of-scope questions answered
    ECE of P    expected calibration error of the decision model's P (10 bins; right = in scope and
                top-1 right); --plot adds its reliability diagram
    p50/p95     wall time of one Answerer.ask in milliseconds

The recommended threshold per mode maximises answer F1 over the observed best scores (it is placed
halfway between the lowest accepted and the highest rejected score); --plot draws the score
distributions of right, wrong and out-of-scope best hits with that threshold, so a user sees where
to set `answer.threshold` (or `answer.<mode>_threshold` for lexical, static and dense modes).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from chatbot.answer import threshold_setting
from chatbot.evaluation import (
    ALL_MODES, DEFAULT_MODES, Case, build_runners, evaluate, format_table, plot_scores, read_cases, write_failures,
)
from chatbot.pipeline import open_pipeline
from chatbot.settings import load_settings
from chatbot.text import normalise

def parse_modes(text: str) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in modes if m not in ALL_MODES]
    if unknown or not modes:
        raise argparse.ArgumentTypeError(f"unknown mode(s) {', '.join(unknown) or '(none)'}; use some of {', '.join(ALL_MODES)}")
    return list(dict.fromkeys(modes))


def without_calibration_questions(cases: list[Case], labelled: list[Case]) -> tuple[list[Case], int]:
    """Questions the decision model was calibrated on would measure memory, not generalisation."""
    seen = {normalise(c.question) for c in labelled}
    kept = [c for c in cases if normalise(c.question) not in seen]
    return kept, len(cases) - len(kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="faqbot-evaluate",
        description="Evaluate retrieval and answer/fallback decisions over the ingested store.",
    )
    parser.add_argument("questions", type=Path, nargs="+",
                        help="CSV(s) with question and expected_id (or expected_answer); empty = fallback expected "
                             "(e.g. data/questions.csv data/questions_oos.csv data/doc_questions.csv)")
    parser.add_argument("--modes", type=parse_modes, default=list(DEFAULT_MODES),
                        help=f"comma-separated, some of {','.join(ALL_MODES)} (default {','.join(DEFAULT_MODES)})")
    parser.add_argument("--adapted-model", default=None, help="encoder folder for the `adapted` mode (hybrid with that encoder)")
    parser.add_argument("--k", type=int, default=10, help="ranked hits per question (MRR/nDCG cut-off)")
    parser.add_argument("--failures", type=Path, default=None, help="write wrong decisions to this CSV")
    parser.add_argument("--plot", type=Path, default=None,
                        help="write score distributions and thresholds (and the reliability diagram of P) to this PNG")
    parser.add_argument("--category-col", default=None, help="column with a category to filter each question by")
    parser.add_argument("--calibrate", type=Path, nargs="+", default=None, metavar="FILE",
                        help="labelled question CSV(s) (same format) the hybrid decision model also learns from "
                             "(answer.calibration_files); evaluated questions found in them are left out")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.adapted_model and "adapted" not in args.modes:
        args.modes.append("adapted")
    missing = [p for p in [*args.questions, *(args.calibrate or [])] if not p.exists()]
    if missing:
        print(f"{missing[0]}: no such file", file=sys.stderr)
        return 2

    settings = load_settings()
    if args.calibrate:
        settings = settings.with_overrides(answer={"calibration_files": [str(p) for p in args.calibrate]})
    pipeline = open_pipeline(settings, claim=False)  # a reader beside a running app, not its owner
    if pipeline.store.count() == 0:
        print("The store is empty: ingest first, e.g. `python -m ingest faq data/faq.csv`.", file=sys.stderr)
        return 2
    try:
        stored = pipeline.store.all_records()
        cases = [c for path in args.questions for c in read_cases(path, stored, args.category_col)]
        labelled = [c for path in args.calibrate or () for c in read_cases(path, stored)]
        runners = build_runners(pipeline, args.modes, args.adapted_model)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    left_out = 0
    if args.calibrate:
        cases, left_out = without_calibration_questions(cases, labelled)
    if not cases:
        print(f"{', '.join(map(str, args.questions))}: no questions", file=sys.stderr)
        return 2
    reports = evaluate(runners, cases, args.k)

    n_answerable = sum(c.answerable for c in cases)
    print(f"{len(cases)} questions ({n_answerable} answerable, {len(cases) - n_answerable} out of scope) over "
          f"{pipeline.store.count()} stored records; encoder {pipeline.encoder.model_id}")
    if args.calibrate:
        files = ", ".join(map(str, args.calibrate))
        print(f"hybrid decision calibrated with the labelled questions of {files} ({left_out} evaluated questions "
              f"found there left out); to serve with them set answer.calibration_files: [{files}]")
    for runner in runners:
        if runner.describe:
            print(f"{runner.mode}: {runner.describe}")
    print(format_table(reports, args.k))
    for report in reports:
        setting = threshold_setting(report.mode)
        print(f"{report.mode}: recommended {setting} = {report.recommended:.3f} (answer F1 {report.recommended_f1:.3f}; "
              f"configured {report.threshold:.3f} gives {report.metrics['f1']:.3f})")
    if args.failures:
        rows = write_failures(reports, args.failures)
        print(f"wrote {rows} failures to {args.failures}")
    if args.plot:
        plot_scores(reports, args.plot)
        print(f"wrote the score distributions (and reliability of P) to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
