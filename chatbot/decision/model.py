"""P(top candidate answers the question): standardised logistic regression, stored as plain JSON.

JSON rather than pickle: the artefact sits in a cache folder and must never be able to run code
when loaded. Levels (the P needed to answer) come from out-of-fold predictions on the training
rows, so they are chosen on data the model did not fit.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from chatbot.decision.features import NAMES

FORMAT = 1


@dataclass
class DecisionModel:
    """Scaler + logistic regression weights over features.NAMES, plus calibration facts."""

    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    fingerprint: str = ""
    names: tuple[str, ...] = NAMES
    calibration: dict[str, list[float]] = field(default_factory=dict)  # out-of-fold p and labels
    info: dict[str, float] = field(default_factory=dict)

    # --- fitting ------------------------------------------------------------------------------
    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, groups: np.ndarray, fingerprint: str = "", C: float = 1.0) -> "DecisionModel":
        """Fit on all rows; keep out-of-fold P (grouped by FAQ, so variants of one FAQ never straddle folds)."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GroupKFold
        from sklearn.preprocessing import StandardScaler

        def fit_one(rows: np.ndarray) -> tuple[StandardScaler, LogisticRegression]:
            scaler = StandardScaler().fit(X[rows])
            clf = LogisticRegression(C=C, max_iter=2000).fit(scaler.transform(X[rows]), y[rows])
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
        return cls(
            mean=scaler.mean_.tolist(), scale=scaler.scale_.tolist(), coef=clf.coef_[0].tolist(),
            intercept=float(clf.intercept_[0]), fingerprint=fingerprint,
            calibration={"p": oof[keep].round(5).tolist(), "y": y[keep].astype(int).tolist()},
            info={"rows": int(len(y)), "positives": int(y.sum())},
        )

    # --- using --------------------------------------------------------------------------------
    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        z = ((X - np.asarray(self.mean)) / np.asarray(self.scale)) @ np.asarray(self.coef) + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def level_for_precision(self, min_precision: float) -> float:
        """The lowest P at which the answers given (P ≥ level) on the calibration rows reach min_precision."""
        p, y = np.asarray(self.calibration.get("p", [])), np.asarray(self.calibration.get("y", []))
        return level_for_precision(p, y, min_precision)

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
        if payload.pop("format", None) != FORMAT or tuple(payload.get("names", ())) != NAMES:
            return None
        payload["names"] = tuple(payload["names"])
        try:
            return cls(**payload)
        except TypeError:
            return None


def level_for_precision(p: np.ndarray, y: np.ndarray, min_precision: float) -> float:
    """Smallest threshold t with precision(P ≥ t) ≥ min_precision (1.0 when none reaches it).

    Scans thresholds from high to low and keeps the lowest one whose precision still qualifies,
    so coverage is as large as the precision target allows.
    """
    if len(p) == 0:
        return 1.0
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    correct = np.cumsum(ys)
    answered = np.arange(1, len(ps) + 1)
    precision = correct / answered
    best = 1.0
    for i in range(len(ps)):
        if i + 1 < len(ps) and ps[i + 1] == ps[i]:
            continue  # a threshold admits every row with the same P
        if precision[i] >= min_precision:
            best = float(ps[i])
    return best
