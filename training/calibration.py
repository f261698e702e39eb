"""Map model scores to probabilities that verify: a 20 % forecast should come true 20 % of the time.

Fit only on scores the model did not learn from (the fold's validation tail), never on its own
training rows, or the calibrator learns the model's overconfidence as if it were skill.
Isotonic regression needs many events to be stable; with few it overfits into steps, so Platt
scaling (two parameters) is used until both classes have `isotonic_min_class` rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

Method = Literal["auto", "platt", "isotonic"]

ISOTONIC_MIN_CLASS = 200
"""Rows of the rarer class needed before isotonic regression is preferred to Platt scaling."""

PROBABILITY_CLIP = 1e-4
"""Isotonic steps can reach exactly 0 or 1; no flush forecast is that certain."""


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


@dataclass
class Calibrator:
    """Score → probability, Platt or isotonic; `method="auto"` chooses by the amount of data.

    Scores inside [0, 1] (probabilities, rank scores) are scaled on the logit scale, which is
    where a model's over- or under-confidence is linear; other scores are used as they are.
    """

    method: Method = "auto"
    isotonic_min_class: int = ISOTONIC_MIN_CLASS
    chosen: Literal["platt", "isotonic", "constant"] | None = field(default=None, init=False)
    _logit_scale: bool = field(default=True, init=False, repr=False)
    _model: object = field(default=None, init=False, repr=False)
    _constant: float = field(default=float("nan"), init=False, repr=False)

    def _inputs(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype="float64")
        if not np.isfinite(scores).all():
            raise ValueError("scores must be finite")
        return _logit(scores) if self._logit_scale else scores

    def fit(self, scores: np.ndarray, y: np.ndarray) -> Calibrator:
        """Fit on out-of-sample scores and their 0/1 outcomes."""
        scores = np.asarray(scores, dtype="float64")
        y = np.asarray(y, dtype="float64")
        if scores.shape != y.shape or len(y) == 0:
            raise ValueError("scores and labels must be non-empty and the same length")
        self._logit_scale = bool(scores.min() >= 0.0 and scores.max() <= 1.0)
        x = self._inputs(scores)
        positives = int(y.sum())
        rarer = min(positives, len(y) - positives)
        if rarer == 0:
            # One class only: nothing to scale, the observed frequency is all there is.
            self.chosen, self._constant = "constant", float(y.mean())
            return self
        use_isotonic = self.method == "isotonic" or (
            self.method == "auto" and rarer >= self.isotonic_min_class
        )
        if use_isotonic:
            self._model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
            self.chosen = "isotonic"
        else:
            self._model = LogisticRegression(C=np.inf).fit(x[:, None], y.astype(int))
            self.chosen = "platt"
        return self

    def predict(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for new scores."""
        if self.chosen is None:
            raise RuntimeError("Calibrator.fit must be called first")
        x = self._inputs(scores)
        if self.chosen == "constant":
            p = np.full(len(x), self._constant)
        elif self.chosen == "isotonic":
            p = self._model.predict(x)
        else:
            p = self._model.predict_proba(x[:, None])[:, 1]
        return np.clip(p, PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
