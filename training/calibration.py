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

Method = Literal["auto", "platt", "isotonic"]

ISOTONIC_MIN_CLASS = 200
"""Rows of the rarer class needed before isotonic regression is preferred to Platt scaling."""

PROBABILITY_CLIP = 1e-4
"""Isotonic steps can reach exactly 0 or 1; no flush forecast is that certain."""


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def _platt(x: np.ndarray, y: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """Maximum-likelihood (a, b) of P(y=1) = sigmoid(a·x + b), by Newton's method.

    Two parameters need no general-purpose optimiser; a tiny ridge keeps a perfectly separated
    sample from running off to infinity.
    """
    X = np.column_stack([x, np.ones_like(x)])
    rate = np.clip(y.mean(), 1e-6, 1 - 1e-6)
    w = np.array([0.0, np.log(rate / (1 - rate))])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(X @ w)))
        gradient = X.T @ (p - y) + 1e-6 * w
        hessian = (X * (p * (1 - p))[:, None]).T @ X + 1e-6 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(w[0]), float(w[1])


@dataclass
class Calibrator:
    """Score → probability, Platt or isotonic; `method="auto"` chooses by the amount of data.

    Scores inside [0, 1] (probabilities, rank scores) are scaled on the logit scale, which is
    where a model's over- or under-confidence is linear; other scores are used as they are.
    The fitted state is a few plain numbers (`to_dict`/`from_dict`), so a model bundle stores
    it as JSON rather than as a pickle.
    """

    method: Method = "auto"
    isotonic_min_class: int = ISOTONIC_MIN_CLASS
    chosen: Literal["platt", "isotonic", "constant"] | None = field(default=None, init=False)
    logit_scale: bool = field(default=True, init=False, repr=False)
    params: dict[str, list[float]] = field(default_factory=dict, init=False, repr=False)

    def _inputs(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype="float64")
        if not np.isfinite(scores).all():
            raise ValueError("scores must be finite")
        return _logit(scores) if self.logit_scale else scores

    def fit(self, scores: np.ndarray, y: np.ndarray) -> Calibrator:
        """Fit on out-of-sample scores and their 0/1 outcomes."""
        scores = np.asarray(scores, dtype="float64")
        y = np.asarray(y, dtype="float64")
        if scores.shape != y.shape or len(y) == 0:
            raise ValueError("scores and labels must be non-empty and the same length")
        self.logit_scale = bool(scores.min() >= 0.0 and scores.max() <= 1.0)
        x = self._inputs(scores)
        positives = int(y.sum())
        rarer = min(positives, len(y) - positives)
        if rarer == 0:
            # One class only: nothing to scale, the observed frequency is all there is.
            return self._become(Calibrator.constant(float(y.mean())))
        use_isotonic = self.method == "isotonic" or (
            self.method == "auto" and rarer >= self.isotonic_min_class
        )
        if use_isotonic:
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
            # With clipping, isotonic prediction is linear interpolation between its thresholds.
            self.chosen = "isotonic"
            self.params = {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
        else:
            a, b = _platt(x, y)
            self.chosen, self.params = "platt", {"a": [a], "b": [b]}
        return self

    def predict(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for new scores."""
        if self.chosen is None:
            raise RuntimeError("Calibrator.fit must be called first")
        x = self._inputs(scores)
        if self.chosen == "constant":
            p = np.full(len(x), self.params["p"][0])
        elif self.chosen == "isotonic":
            p = np.interp(x, self.params["x"], self.params["y"])
        else:
            p = 1.0 / (1.0 + np.exp(-(self.params["a"][0] * x + self.params["b"][0])))
        return np.clip(p, PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)

    def _become(self, other: Calibrator) -> Calibrator:
        self.chosen, self.logit_scale, self.params = other.chosen, other.logit_scale, other.params
        return self

    @classmethod
    def constant(cls, rate: float) -> Calibrator:
        """A calibrator that ignores the score: what is left when there is no held-out evidence."""
        calibrator = cls()
        calibrator.chosen, calibrator.params = "constant", {"p": [float(rate)]}
        return calibrator

    def to_dict(self) -> dict[str, object]:
        """The fitted state as JSON-ready values."""
        if self.chosen is None:
            raise RuntimeError("Calibrator.fit must be called first")
        return {"chosen": self.chosen, "logit_scale": self.logit_scale, "params": self.params}

    @classmethod
    def from_dict(cls, state: dict[str, object]) -> Calibrator:
        """Rebuild a fitted calibrator from `to_dict` output."""
        calibrator = cls()
        calibrator.chosen = state["chosen"]  # type: ignore[assignment]
        calibrator.logit_scale = bool(state["logit_scale"])
        calibrator.params = {k: [float(v) for v in vs] for k, vs in state["params"].items()}  # type: ignore[union-attr]
        return calibrator
