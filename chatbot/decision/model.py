"""P(top candidate answers the question): standardised logistic regression, stored as plain JSON.

JSON rather than pickle: the artefact sits in a cache folder and must never be able to run code
when loaded. The rows are weighted to an assumed traffic mix (answer.in_scope_share of questions
the store can answer; the calibration rows are mostly out-of-scope ones), so P means "right" for
that mix and the answer level can be a cost rule (answer when P ≥ cost / (1 + cost)). Levels from a
precision target, and the comparison with the old score threshold, use out-of-fold predictions on
the training rows, so they are chosen on data the model did not fit.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from chatbot.decision.features import NAMES, candidate_features, candidate_tokens, variant_scores
from chatbot.decision.verifier import NAMES as VERIFIER_NAMES
from chatbot.decision.verifier import candidate_text, feature_rows
from chatbot.lexical import LexicalIndex

FORMAT = 2


@dataclass
class DecisionModel:
    """Scaler + logistic regression weights over features.NAMES, plus calibration facts."""

    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    fingerprint: str = ""
    names: tuple[str, ...] = NAMES
    calibration: dict[str, list[float]] = field(default_factory=dict)  # out-of-fold p, labels, weights, fused
    info: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.verifier = None  # the cross-encoder (chatbot.decision.verifier.Verifier) when names include it

    @property
    def uses_verifier(self) -> bool:
        return tuple(self.names[len(NAMES):]) == VERIFIER_NAMES

    def candidate_rows(self, question: str, ranking, ranked, n: int, index: LexicalIndex,  # noqa: ANN001
                       among=None) -> np.ndarray:  # noqa: ANN001
        """Feature rows of the first n grouped candidates (ranked) of a ranking, with the word statistics and
        candidate tokens of `index` (the BM25 cache); verifier columns included when this model has them (one
        batched forward pass over the FAQ candidates). among: a wider ranking holding ranking's candidates (the
        question asked without its category filter), whose candidates their margins are measured against, as
        in training: a filter that hides the better FAQs would otherwise make the nearest one look sure."""
        count = min(n, len(ranked))
        context, pool, at = ranked, ranking.hits, list(range(count))
        if among is not None:
            context, pool = among.grouped(len(among.hits)), among.hits
            position = {c.hit.answer_key: j for j, c in enumerate(context)}
            at = [position[c.hit.answer_key] for c in ranked[:count]]
        tokens_of = candidate_tokens([context[j] for j in at], index)
        doc_freq, n_records = index.doc_freq, len(index.records.ids)
        variants = variant_scores(pool)
        rows = np.vstack([candidate_features(question, ranking.tokens, context, j, doc_freq, n_records, variants, tokens_of)
                          for j in at])
        if not self.uses_verifier:
            return rows
        is_faq = [c.hit.kind != "doc" for c in ranked[:count]]
        asked = [(question, candidate_text(c.hit.text, c.hit.kind)) for c, faq in zip(ranked[:count], is_faq) if faq]
        logits = iter(self.verifier.logits(asked).tolist() if asked and self.verifier is not None else [])
        z = np.array([next(logits, 0.0) if faq else 0.0 for faq in is_faq])
        return np.hstack([rows, feature_rows(z, is_faq)])

    # --- fitting ------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls, X: np.ndarray, y: np.ndarray, groups: np.ndarray, fingerprint: str = "", C: float = 1.0,
        weights: np.ndarray | None = None, fused: np.ndarray | None = None, names: tuple[str, ...] = NAMES,
        judged: np.ndarray | None = None,
    ) -> "DecisionModel":
        """Fit on all rows; keep out-of-fold P (grouped by FAQ, so variants of one FAQ never straddle folds).

        weights: per-row sample weights (the traffic mix P should be calibrated for, see mix_weights);
        fused: each row's top fused score, kept so the old threshold rule can be compared on the same rows;
        judged: the rows that comparison uses (all when None)."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GroupKFold
        from sklearn.preprocessing import StandardScaler

        def fit_one(rows: np.ndarray) -> tuple[StandardScaler, LogisticRegression]:
            scaler = StandardScaler().fit(X[rows])
            w = None if weights is None else weights[rows] * (len(rows) / weights[rows].sum())
            clf = LogisticRegression(C=C, max_iter=2000).fit(scaler.transform(X[rows]), y[rows], sample_weight=w)
            return scaler, clf

        oof = np.full(len(y), np.nan)
        folds = min(5, len(set(groups.tolist())))
        if folds >= 2 and len(set(y.tolist())) == 2:
            for train, test in GroupKFold(n_splits=folds).split(X, y, groups):
                if len(set(y[train].tolist())) < 2:
                    continue
                scaler, clf = fit_one(train)
                oof[test] = clf.predict_proba(scaler.transform(X[test]))[:, 1]
        scaler, clf = fit_one(np.arange(len(y)))
        keep = ~np.isnan(oof)
        calibration = {"p": oof[keep].round(5).tolist(), "y": y[keep].astype(int).tolist()}
        if weights is not None:
            calibration["w"] = (weights[keep] / weights[keep].sum()).round(8).tolist()
        if fused is not None:
            calibration["fused"] = np.asarray(fused)[keep].round(5).tolist()
        if judged is not None:
            calibration["judged"] = np.asarray(judged, dtype=int)[keep].tolist()
        return cls(
            mean=scaler.mean_.tolist(), scale=scaler.scale_.tolist(), coef=clf.coef_[0].tolist(),
            intercept=float(clf.intercept_[0]), fingerprint=fingerprint, names=tuple(names), calibration=calibration,
            info={"rows": int(len(y)), "positives": int(y.sum())},
        )

    # --- using --------------------------------------------------------------------------------
    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if X.shape[1] < len(self.mean):  # a caller without the verifier columns: their training mean (neutral)
            X = np.hstack([X, np.tile(np.asarray(self.mean[X.shape[1]:]), (len(X), 1))])
        z = ((X - np.asarray(self.mean)) / np.asarray(self.scale)) @ np.asarray(self.coef) + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def _calibration(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p, y = np.asarray(self.calibration.get("p", [])), np.asarray(self.calibration.get("y", []))
        w = np.asarray(self.calibration.get("w") or np.ones(len(p)))
        return p, y, w

    def level_for_precision(self, min_precision: float) -> float:
        """The lowest P at which the answers given (P ≥ level) on the (weighted) calibration rows reach min_precision."""
        p, y, w = self._calibration()
        return level_for_precision(p, y, min_precision, w)

    def utility(self, level: float, cost: float) -> float:
        """Weighted utility of answering at P ≥ level on the judged calibration rows: right − cost · wrong answers."""
        p, y, w = self._calibration()
        judged = self._judged(len(p))
        return utility((p >= level)[judged], y[judged], w[judged], cost)

    def threshold_utility(self, threshold: float, cost: float) -> float | None:
        """The same for the old rule (answer when the top fused score ≥ threshold); None without fused scores."""
        _, y, w = self._calibration()
        fused = self.calibration.get("fused")
        if not fused:
            return None
        judged = self._judged(len(y))
        return utility((np.asarray(fused) >= threshold)[judged], y[judged], w[judged], cost)

    def _judged(self, n: int) -> np.ndarray:
        judged = self.calibration.get("judged")
        return np.ones(n, dtype=bool) if not judged else np.asarray(judged, dtype=bool)

    # --- persistence: an explicit save/load pair ----------------------------------------------
    def save(self, path: Path) -> None:
        """Atomic: a temp file renamed over the old one, so readers never see half a model."""
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"format": FORMAT, **asdict(self), "names": list(self.names)}
        fd, tmp = tempfile.mkstemp(prefix=".decision-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "DecisionModel | None":
        """None when missing, another format, or built for other features."""
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if payload.pop("format", None) != FORMAT or tuple(payload.get("names", ())) not in (NAMES, NAMES + VERIFIER_NAMES):
            return None
        payload["names"] = tuple(payload["names"])
        try:
            return cls(**payload)
        except TypeError:
            return None


def mix_weights(in_scope: np.ndarray, in_scope_share: float) -> np.ndarray:
    """Row weights giving the in-scope rows (variants, passages) in_scope_share of the total and the
    out-of-scope rows (FAQ removed, bundled) the rest: the calibration rows are mostly out of scope,
    real traffic mostly not, and precision at a level depends on that share."""
    in_scope = np.asarray(in_scope, dtype=bool)
    n_in, n_out = int(in_scope.sum()), int((~in_scope).sum())
    if not n_in or not n_out:
        return np.ones(len(in_scope))
    return np.where(in_scope, in_scope_share / n_in, (1.0 - in_scope_share) / n_out) * len(in_scope)


def utility(answered: np.ndarray, y: np.ndarray, w: np.ndarray, cost: float) -> float:
    """Σ w over right answers − cost · Σ w over wrong ones (a fallback scores 0)."""
    answered = np.asarray(answered, dtype=bool)
    return float((w * answered * y).sum() - cost * (w * answered * (1 - y)).sum())


def level_for_precision(p: np.ndarray, y: np.ndarray, min_precision: float, w: np.ndarray | None = None) -> float:
    """Smallest threshold t with (weighted) precision(P ≥ t) ≥ min_precision (1.0 when none reaches it).

    Scans thresholds from high to low and keeps the lowest one whose precision still qualifies,
    so coverage is as large as the precision target allows.
    """
    if len(p) == 0:
        return 1.0
    w = np.ones(len(p)) if w is None else np.asarray(w, dtype=np.float64)
    order = np.argsort(-p, kind="stable")
    ps, ys, ws = p[order], y[order], w[order]
    correct = np.cumsum(ws * ys)
    answered = np.cumsum(ws)
    precision = correct / answered
    best = 1.0
    for i in range(len(ps)):
        if i + 1 < len(ps) and ps[i + 1] == ps[i]:
            continue  # a threshold admits every row with the same P
        if precision[i] >= min_precision - 1e-9:
            best = float(ps[i])
    return best
