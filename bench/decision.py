"""Answer / clarify / fallback: the decision model against the old score threshold.

    python bench/decision.py                         # the sample: data/faq.csv + data/docs, asked
                                                     # data/questions.csv + questions_oos.csv + doc_questions.csv
    python bench/decision.py --public --limit 600    # also chatbot_data_dev.csv (../shared/datasets)
    python bench/decision.py --plot var/bench/decision.png --out var/bench/decision.md
    python bench/decision.py --verifier both         # with and without the cross-encoder verifier feature
    python bench/decision.py --chat-style            # also the sample questions with emoticons / courtesy formulas
    python bench/decision.py --typos                 # also the sample questions with one typing slip, typo repair on / off
    python bench/decision.py --labels                # also what labelled questions (operators' labels) add, cross-fitted
    python bench/decision.py --categories            # also the questions asked with a category chosen
    python bench/decision.py --plain                 # also the sample FAQ without its alternatives (a plain list)

Each task gets a fresh embedded store, the product's Retriever/Answerer and a decision model built from
that store exactly as the app builds it (DecisionProvider.build: store-derived rows + the bundled
out-of-scope questions; the evaluation questions are never seen by it). Reported:

- the build time of the decision model and the p50 time the decision adds to a question (features +
  prediction + policy, after retrieval);
- the configured operating point (answer precision, coverage = in-scope questions answered right,
  clarify share of in-scope, out-of-scope answered) for the model and for answer.threshold;
- the precision–coverage curve: the best answer precision each score (P of the model, fused score of
  the threshold rule) reaches at a given coverage, and the P levels / thresholds that get there;
- a reliability table of P (bins: mean P, share right, count) with its expected calibration error.

Public task (--public): chatbot_data_dev.csv grouped by identical answer (bench/common.chatbot_task):
one held-out question per group is asked; a seeded fifth of the groups is left out of the store
entirely (leave-one-answer-group-out), so their questions are out of scope.
"""
from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DATASETS, chatbot_task, e5_settings, emit, markdown_table  # noqa: E402
from chatbot.message import question_of  # noqa: E402
from chatbot.evaluation import Case, FaqItem, faq_records, hit_label, read_cases, temporary_pipeline  # noqa: E402
from chatbot.decision.model import DecisionModel  # noqa: E402
from chatbot.pipeline import Pipeline, open_pipeline  # noqa: E402
from chatbot.settings import PROJECT_ROOT, Settings  # noqa: E402

DATA = PROJECT_ROOT / "data"
COVERAGES = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85)


@dataclass(frozen=True)
class Row:
    """One question: the model's P of its top candidate, the fused score, and what each rule decided."""

    answerable: bool
    right_top: bool  # in scope and the retrieval's top candidate is an expected one (the threshold rule's answer)
    right_first: bool  # in scope and the decision's first candidate (P reranks the top few) is an expected one
    p: float  # P of that first candidate
    right_shown: bool  # in scope and an expected one is among the first three candidates (clarify buttons / suggestions)
    fused: float
    outcome: str  # the configured model decision: faq | doc | clarify | fallback
    decide_ms: float


def sample_pipeline(settings: Settings, folder: Path, faq: Path = DATA / "faq.csv") -> Pipeline:
    from ingest.sync import ingest_paths

    settings = settings.with_overrides(store={"host": None, "path": str(folder / "chroma"), "collection": "faq",
                                              "cache_dir": str(folder / "cache")})
    ingest_paths(settings, "faq", [faq])
    ingest_paths(settings, "doc", [DATA / "docs"])
    return open_pipeline(settings)


def plain_sample_pipeline(settings: Settings, folder: Path) -> Pipeline:
    """The sample with data/faq.csv as a plain question/answer list (its alternatives column dropped): the
    shape of many FAQ lists a company brings, where no FAQ has a second wording to learn from."""
    folder.mkdir(parents=True, exist_ok=True)
    plain = folder / "faq.csv"
    with (DATA / "faq.csv").open(encoding="utf-8") as source, plain.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, ["id", "category", "question", "answer"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(csv.DictReader(source))
    return sample_pipeline(settings, folder, plain)


def public_pipeline(settings: Settings, folder: Path, limit: int | None, seed: int = 13, plain: bool = False
                    ) -> tuple[Pipeline, list[Case]]:
    """plain: each answer group stored with one question only (its first), as a plain list would hold it."""
    task = chatbot_task(DATASETS, seed=seed, limit=limit)
    groups = sorted({item.group for item in task.items})
    left_out = set(random.Random(seed).sample(groups, len(groups) // 5))
    items: list[FaqItem] = [i for i in task.items if i.group not in left_out]
    if plain:
        items = list({i.group: i for i in reversed(items)}.values())
    cases = [Case(c.question) if c.expected_label in left_out else c for c in task.cases]
    return temporary_pipeline(settings, faq_records(items), folder), cases


def sample_cases(pipeline: Pipeline) -> list[Case]:
    """The sample's evaluation questions, their expected answers read against this pipeline's store."""
    stored = pipeline.store.all_records()
    return [c for name in ("questions.csv", "questions_oos.csv", "doc_questions.csv") for c in read_cases(DATA / name, stored)]


def task_report(title: str, pipeline: Pipeline, cases: list[Case], threshold: float) -> tuple[str, list[Row], float]:
    """(report text, rows, answer level) of one task: a fresh decision model, the questions, the report."""
    rows, build_s = measure(pipeline, cases)
    level = pipeline.answerer.answer_level(pipeline.answerer.decision.current())
    text, _ = report(title, rows, build_s, threshold, level)
    return text, rows, level


def measure(pipeline: Pipeline, cases: list[Case], k: int = 10, strip: bool = True, answer_p: float | None = None,
            model: DecisionModel | None = None) -> tuple[list[Row], float]:
    """strip=False: the questions as typed, emoticons and courtesy formulas included (before chatbot/message.py);
    answer_p: decide at this answer level instead of the configured one; model: this one instead of a fresh build."""
    answerer = pipeline.answerer
    assert answerer.decision is not None, "answer.decision_model is off"
    if answer_p is not None:
        answerer = replace(answerer, settings=answerer.settings.model_copy(update={"answer_p": answer_p}),
                           decision=answerer.decision)
    started = time.perf_counter()
    model = model or answerer.decision.build()
    build_s = time.perf_counter() - started
    rows: list[Row] = []
    for case in cases:
        text = answerer.validate(case.question)
        text = question_of(text) if strip else text  # as Answerer.ask reads it
        ranking = pipeline.retriever.candidates(text, k)
        if not ranking.hits:
            rows.append(Row(case.answerable, False, False, 0.0, False, 0.0, "fallback", 0.0))
            continue
        started = time.perf_counter()
        answer = answerer.decide_with_model(text, ranking, model, k)
        decide_ms = (time.perf_counter() - started) * 1000
        top = ranking.grouped(k)[0]
        right = case.answerable and hit_label(top.hit) in case.expected
        first = case.answerable and hit_label(answer.hits[0]) in case.expected  # what an answer would give
        shown = case.answerable and any(hit_label(h) in case.expected for h in answer.hits[:3])
        rows.append(Row(case.answerable, right, first, float(answer.p or 0.0), shown, top.fused, answer.type, decide_ms))
    return rows, build_s


def rates(rows: list[Row], answered: np.ndarray, first: bool = True) -> tuple[float, float, float]:
    """(answer precision, coverage, out-of-scope answered) when `answered` says which questions got an answer:
    the decision's first candidate (first=True) or the retrieval's top (the threshold rule)."""
    right = np.array([r.right_first if first else r.right_top for r in rows])
    in_scope = np.array([r.answerable for r in rows])
    n_answered = answered.sum()
    precision = (answered & right).sum() / n_answered if n_answered else float("nan")
    coverage = (answered & right).sum() / max(in_scope.sum(), 1)
    oos = (answered & ~in_scope).sum() / max((~in_scope).sum(), 1) if (~in_scope).any() else float("nan")
    return float(precision), float(coverage), float(oos)


def curve(rows: list[Row], scores: np.ndarray, first: bool = True) -> list[tuple[float, float, float, float]]:
    """For each target coverage: (coverage reached, precision, OOS answered, level) at the highest level reaching it."""
    out = []
    for target in COVERAGES:
        best = None
        for level in sorted(set(scores.tolist()), reverse=True):
            precision, coverage, oos = rates(rows, scores >= level, first)
            if coverage >= target:
                best = (coverage, precision, oos, level)
                break
        out.append(best or (float("nan"),) * 4)
    return out


def reliability(rows: list[Row], bins: int = 10) -> tuple[list[list[object]], float]:
    p = np.array([r.p for r in rows])
    right = np.array([r.right_first for r in rows], dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    table, ece = [], 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (p >= lo) & ((p < hi) if hi < 1 else (p <= hi))
        if not inside.any():
            continue
        conf, acc = float(p[inside].mean()), float(right[inside].mean())
        ece += inside.sum() / len(p) * abs(acc - conf)
        table.append([f"{lo:.1f}–{hi:.1f}", int(inside.sum()), conf, acc])
    return table, ece


def report(name: str, rows: list[Row], build_s: float, threshold: float, level: float) -> tuple[str, list]:
    p = np.array([r.p for r in rows])
    fused = np.array([r.fused for r in rows])
    in_scope = np.array([r.answerable for r in rows])
    outcome = np.array([r.outcome for r in rows])
    model_answered = np.isin(outcome, ("faq", "doc"))
    clarify = (outcome == "clarify") & in_scope
    lines = [f"## {name}", "",
             f"{in_scope.sum()} in-scope and {(~in_scope).sum()} out-of-scope questions; top-1 right "
             f"{np.mean([r.right_top for r in rows if r.answerable]):.3f} by retrieval, "
             f"{np.mean([r.right_first for r in rows if r.answerable]):.3f} after P reranks the top few. "
             f"Decision model built in {build_s:.1f} s; "
             f"the decision adds p50 {np.median([r.decide_ms for r in rows]):.2f} ms per question.", ""]
    old = rates(rows, fused >= threshold, first=False)
    new = rates(rows, model_answered)
    lines.append(markdown_table(
        ["rule", "answer precision", "coverage", "clarify (in-scope)", "OOS answered"],
        [[f"old threshold {threshold:.3f}", old[0], old[1], 0.0, old[2]],
         [f"model, configured (answer at P ≥ {level:.2f})", new[0], new[1], clarify.sum() / max(in_scope.sum(), 1), new[2]]]))
    shown = np.array([r.right_shown for r in rows])
    fell = (outcome == "fallback") & in_scope

    def right_shown(among: np.ndarray) -> float:
        return float(shown[among].mean()) if among.any() else float("nan")

    lines += ["", f"In-scope questions not answered: {clarify.sum()} clarified (the right one among the candidates shown: "
              f"{right_shown(clarify):.2f}), {fell.sum()} fell back (among the suggestions: {right_shown(fell):.2f})."]
    lines += ["", "Precision–coverage (highest level reaching each coverage; answer / fallback only, no clarify):", ""]
    table = []
    for target, m, t in zip(COVERAGES, curve(rows, p), curve(rows, fused, first=False)):
        table.append([target, m[1], m[2], m[3], t[1], t[2], t[3]])
    lines.append(markdown_table(["coverage ≥", "model precision", "model OOS answered", "P level",
                                 "threshold precision", "threshold OOS answered", "fused threshold"], table))
    rel, ece = reliability(rows)
    lines += ["", f"Reliability of P (right = in scope and top candidate expected); ECE {ece:.3f}:", "",
              markdown_table(["P bin", "questions", "mean P", "share right"], rel), ""]
    return "\n".join(lines), rel


def plot(path: Path, panels: list[tuple[str, list[Row]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 2, figsize=(10, 4 * len(panels)), squeeze=False)
    for (name, rows), (left, right) in zip(panels, axes):
        for label, scores, first in (("model P", np.array([r.p for r in rows]), True),
                                     ("fused score", np.array([r.fused for r in rows]), False)):
            points = [rates(rows, scores >= level, first)[:2] for level in sorted(set(scores.tolist()), reverse=True)]
            left.plot([c for _, c in points], [p for p, _ in points], label=label)
        left.set_xlabel("coverage"), left.set_ylabel("answer precision"), left.set_title(f"{name}: precision–coverage")
        left.legend()
        rel, ece = reliability(rows)
        right.plot([0, 1], [0, 1], color="grey", linestyle="--")
        right.plot([r[2] for r in rel], [r[3] for r in rel], marker="o")
        right.set_xlabel("mean P"), right.set_ylabel("share right"), right.set_title(f"{name}: reliability (ECE {ece:.3f})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--public", action="store_true", help="also chatbot_data_dev.csv (leave-one-answer-group-out)")
    parser.add_argument("--limit", type=int, default=600, help="answer groups of the public set (0 = all)")
    parser.add_argument("--plot", type=Path, default=None, help="PNG with the curves and reliability diagrams")
    parser.add_argument("--out", type=Path, default=None, help="also write the report as markdown")
    parser.add_argument("--chat-style", action="store_true",
                        help="also ask the sample questions with emoticons, wrapped in courtesy formulas or with an "
                             "order number, phone number or e-mail, with and without taking them off")
    parser.add_argument("--typos", action="store_true",
                        help="also ask the sample questions with one typing slip each (bench/typos.py), with text.typo_repair "
                             "on and off")
    parser.add_argument("--labels", action="store_true",
                        help="also the sample's answerable questions as operator labels (cross-fitted), at several answer "
                             "levels, and the check questions of data/checks with all of them")
    parser.add_argument("--categories", action="store_true",
                        help="also the sample questions asked with a category chosen: out-of-scope ones under every "
                             "category, FAQ questions under their own, none and another")
    parser.add_argument("--plain", action="store_true",
                        help="also the sample FAQ as a plain question/answer list (no alternative questions), and with "
                             "--public the public groups with one stored question each")
    parser.add_argument("--verifier", choices=("config", "off", "on", "both"), default="config",
                        help="answer.verifier: as configured, off, on, or both one after the other")
    args = parser.parse_args(argv)
    if args.verifier == "both":
        texts = []
        for choice in ("off", "on"):
            texts.append(run(args, choice))
        emit("\n\n".join(texts), args.out)
        return 0
    emit(run(args, args.verifier), args.out)
    return 0


def run(args: argparse.Namespace, verifier: str) -> str:
    answer = {"decision_model": True} if verifier == "config" else {"decision_model": True, "verifier": verifier == "on"}
    # No recent-question cache: every build and question encode afresh (a kept vector can differ from a fresh
    # one in the last bits, as vectors of different micro-batches do, which can flip a borderline P).
    settings = e5_settings(answer=answer, encoder={"question_cache": 0})
    answerer_settings = settings.answer
    level_text = ("answer_p" if answerer_settings.answer_p is not None else
                  "min_precision" if answerer_settings.min_precision is not None else "cost rule")
    sections = [f"# Decision model vs score threshold ({level_text}; in_scope_share {answerer_settings.in_scope_share}; "
                f"verifier {'on' if answerer_settings.verifier else 'off'})", ""]
    panels = []
    with tempfile.TemporaryDirectory(prefix="faqbot-decision-") as tmp:
        pipeline = sample_pipeline(settings, Path(tmp) / "sample")
        cases = sample_cases(pipeline)
        text, rows, level = task_report("Sample: data/faq.csv + data/docs", pipeline, cases, settings.answer.threshold)
        sections.append(text)
        info = pipeline.answerer.decision.current().info
        if "verifier_s" in info:
            sections.append(f"Verifier: {info['verifier_pairs']} pairs; {info['verifier_s']} s of the build "
                            f"(pairs {info['verifier_pairs_s']} s, fold models {info['verifier_folds_s']} s).\n")
        panels.append(("sample", rows))
        if args.chat_style:
            sections.append(chat_style_report(pipeline, cases, level))
        if args.labels:
            stored = pipeline.store.all_records()
            checks = [c for name in CHECKS if (DATA / name).exists() for c in read_cases(DATA / name, stored)]
            sections.append(labels_report(pipeline, cases, checks))
        if args.categories:
            sections.append(category_report(pipeline, cases))
        if args.typos:
            off = sample_pipeline(settings.with_overrides(text={"typo_repair": False}), Path(tmp) / "sample-no-repair")
            sections.append(typo_report({"on": pipeline, "off": off}, cases))
        if args.plain:
            plain = plain_sample_pipeline(settings, Path(tmp) / "plain")
            text, rows, _ = task_report("Sample as a plain list: data/faq.csv without its alternatives + data/docs",
                                        plain, sample_cases(plain), settings.answer.threshold)
            sections.append(text)
            panels.append(("sample, plain list", rows))
        if args.public:
            if not (DATASETS / "chatbot_data_dev.csv").exists():
                sections.append(f"(public set skipped: {DATASETS} is absent)")
            else:
                for plain in ((False, True) if args.plain else (False,)):
                    public, public_cases = public_pipeline(settings, Path(tmp) / f"public-{plain}", args.limit or None,
                                                           plain=plain)
                    name = "one stored question per group" if plain else "answer groups"
                    text, rows, _ = task_report(f"Public: chatbot_data_dev.csv ({name}, a fifth left out)", public,
                                                public_cases, settings.answer.threshold)
                    sections.append(text)
                    panels.append((f"public, {name}", rows))
    if args.plot:
        plot(args.plot, panels)
        sections.append(f"wrote {args.plot}")
    return "\n".join(sections)


# Wrappers for --chat-style: emoticons and marks after the question; formulas of chatbot/message.py; and
# wordings outside its list (a question about the place itself, "고객센터죠?", is no formula: it stays);
# identifiers (taken off; their label words, 주문번호 / 연락처 / 답변은 … 으로 주세요, stay).
EMOTICONS = (("", " ㅠㅠ"), ("", " ㅎㅎ"), ("", "~~"), ("", " ㅋㅋㅋ"), ("", "!!"), ("", " ^^"), ("", "??"), ("", "ㅜㅜ"))
LISTED = (("안녕하세요. ", ""), ("수고하십니다. ", ""), ("문의드립니다. ", " 감사합니다"), ("저기요, ", ""))
UNLISTED = (("안녕하세요~ ", ""), ("수고 많으세요! ", " 감사해요 :)"), ("궁금한 게 있는데요, ", ""), ("혹시요, ", " 답변 기다릴게요"),
            ("여쭤볼게 있는데요 ", " 고맙습니다!!"), ("", ""), ("안녕하세요 고객센터죠? ", " 빠른 답변 부탁드립니다"), ("하이요 ", ""))
IDENTIFIERS = (("주문번호 2024112500123 ", ""), ("", " 연락처 010-2345-6789"), ("(주문번호: ORD-20241125-0042) ", ""),
               ("", " 답변은 hong.gildong@example.com 으로 주세요"))


def operating_point(rows: list[Row]) -> tuple[float, float, float, float, float]:
    """(answer precision, coverage, clarify share of in-scope, out-of-scope answered, top-1) of the configured decision."""
    outcome = np.array([r.outcome for r in rows])
    in_scope = np.array([r.answerable for r in rows])
    precision, coverage, oos = rates(rows, np.isin(outcome, ("faq", "doc")))
    clarify = ((outcome == "clarify") & in_scope).sum() / max(in_scope.sum(), 1)
    return precision, coverage, float(clarify), oos, float(np.mean([r.right_first for r in rows if r.answerable]))


def chat_style_report(pipeline: Pipeline, cases: list[Case], level: float) -> str:
    """The configured operating point and top-1 with the questions wrapped (in turn), taken off or not."""
    table = []
    for name, wrappers in (("none", (("", ""),)), ("emoticons and marks after", EMOTICONS), ("formulas in the list", LISTED),
                           ("formulas partly outside the list", UNLISTED), ("an order number, phone or e-mail", IDENTIFIERS)):
        wrapped = [replace(c, question=f"{wrappers[i % len(wrappers)][0]}{c.question}{wrappers[i % len(wrappers)][1]}")
                   for i, c in enumerate(cases)]
        for strip in ((True,) if name == "none" else (False, True)):
            rows, _ = measure(pipeline, wrapped, strip=strip)
            table.append([name, "taken off" if strip else "kept", *operating_point(rows)])
    return "\n".join(["", f"Chat-style messages: the sample questions wrapped (answer at P ≥ {level:.2f}):", "", markdown_table(
        ["around the questions", "before matching", "answer precision", "coverage", "clarify (in-scope)", "OOS answered",
         "top-1"], table), ""])


LABEL_FOLDS = 5
LABEL_LEVELS = (0.5, 0.55, 0.6, 0.65, 0.7)
CHECKS = ("checks/questions_2026-11-27.csv", "checks/doc_questions_2026-11-27.csv")


def labels_report(pipeline: Pipeline, cases: list[Case], checks: list[Case], seed: int = 0) -> str:
    """What operators' labels add: the sample's answerable questions given to the model as labels (what the question
    log's labels or answer.calibration_files give it), against none, at several answer levels. Cross-fitted: the
    questions are split into LABEL_FOLDS folds and each fold is decided by a model labelled with the other folds'
    questions; the out-of-scope questions are never labels. The check questions are decided by a model given all of
    the sample's labels (they were written later and are never labels)."""
    provider = pipeline.answerer.decision
    assert provider is not None, "answer.decision_model is off"
    shuffled = random.Random(seed).sample(cases, len(cases))
    folds = [shuffled[i::LABEL_FOLDS] for i in range(LABEL_FOLDS)]

    def labelled(part: list[Case]) -> list[tuple[str, str]]:
        return [(c.question, next(iter(c.expected))) for c in part if c.answerable and len(c.expected) == 1]

    def model_with(labels: list[tuple[str, str]]) -> DecisionModel:
        provider.use_labels(lambda: labels)
        provider.labels(fresh=True)
        return provider.build()

    plain = model_with([])
    models = [model_with(labelled([c for j, fold in enumerate(folds) if j != i for c in fold])) for i in range(LABEL_FOLDS)]
    everything = model_with(labelled(cases))
    provider.use_labels(lambda: [])
    table = []
    for level in LABEL_LEVELS:
        for name, fold_models, check_model in (("none", [plain] * LABEL_FOLDS, plain),
                                               ("the sample's answerable questions", models, everything)):
            rows = [row for fold, model in zip(folds, fold_models)
                    for row in measure(pipeline, fold, answer_p=level, model=model)[0]]
            checked = measure(pipeline, checks, answer_p=level, model=check_model)[0] if checks else []
            table.append([level, name, *operating_point(rows)[:4], *(operating_point(checked)[:4] if checked else ["–"] * 4)])
    return "\n".join(["", f"Labels (sample cross-fitted in {LABEL_FOLDS} folds; check questions with all sample labels):", "",
                      markdown_table(["answer level", "labels", "sample precision", "coverage", "clarify", "OOS answered",
                                      "checks precision", "coverage", "clarify", "OOS answered"], table), ""])


def typo_report(pipelines: dict[str, Pipeline], cases: list[Case], seed: int = 7) -> str:
    """The configured operating point and top-1 with typo repair on and off, questions as written and with a slip."""
    from bench.typos import with_typo

    rng = random.Random(seed)
    slipped = [replace(c, question=with_typo(c.question, rng)) for c in cases]
    changed = sum(a.question != b.question for a, b in zip(cases, slipped))
    table, repaired = [], {}
    for repair, pipeline in pipelines.items():
        retriever = pipeline.retriever
        for name, asked in (("as written", cases), ("one slip", slipped)):
            rows, _ = measure(pipeline, asked)
            table.append([name, repair, *operating_point(rows)])
            if repair == "on":
                repaired[name] = sum(retriever.repaired(question_of(c.question)) != question_of(c.question) for c in asked)
    return "\n".join(["", f"Typing slips: {changed} of the {len(cases)} sample questions given one (bench/typos.py); the "
                            f"repair changed {repaired.get('one slip', 0)} of those asked with a slip and "
                            f"{repaired.get('as written', 0)} of those as written:", "", markdown_table(
        ["questions", "typo repair", "answer precision", "coverage", "clarify (in-scope)", "OOS answered", "top-1"], table), ""])


def category_report(pipeline: Pipeline, cases: list[Case]) -> str:
    """The questions asked with a category chosen (the page's filter): each out-of-scope one under every category
    of the sample FAQ, each FAQ question under its own category, none, and another one (an answer there is wrong)."""
    with (DATA / "faq.csv").open(encoding="utf-8") as handle:
        category_of = {row["id"]: row["category"] for row in csv.DictReader(handle)}
    categories = sorted(set(category_of.values()))
    answerer = pipeline.answerer
    outside = [c for c in cases if not c.answerable]
    faq_cases = [c for c in cases if c.answerable and c.expected_label in category_of]
    answered = sum(answerer.ask(c.question, category=name).type in ("faq", "doc") for name in categories for c in outside)
    table = [[f"out of scope × {len(categories)} categories", f"answered {answered} / {len(outside) * len(categories)}",
              answered / max(len(outside) * len(categories), 1), "", ""]]
    for label, pick in (("FAQ questions, own category", lambda c, i: category_of[c.expected_label]),
                        ("FAQ questions, no category", lambda c, i: None),
                        ("FAQ questions, another category", lambda c, i: [n for n in categories
                                                                          if n != category_of[c.expected_label]][i % (len(categories) - 1)])):
        given = right = clarified = 0
        for i, case in enumerate(faq_cases):
            answer = answerer.ask(case.question, category=pick(case, i))
            given += answer.type == "faq"
            right += answer.type == "faq" and answer.faq_id in case.expected
            clarified += answer.type == "clarify"
        table.append([label, f"answered {given} / {len(faq_cases)}", right / max(given, 1), right / max(len(faq_cases), 1),
                      clarified / max(len(faq_cases), 1)])
    return "\n".join(["", "A category chosen (the page's filter, the API's `category`): the decision weighs every FAQ, the "
                           "category narrows what may be answered:", "", markdown_table(
        ["questions", "answers", "answer precision (out of scope: share answered)", "coverage", "clarify"], table), ""])


if __name__ == "__main__":
    sys.exit(main())
