"""Map a model's scores to probabilities that verify, without ever touching its ranking.

A calibrator is fitted on out-of-fold scores (scores of rows the model did not learn from: the
earlier blocks of the walk-forward), never on the model's own training rows. Three properties
hold by construction, and tests hold them:

- **Strictly increasing.** Platt scaling with its slope bounded away from zero (a free-sign
  slope once flipped a fold's ROC from 0.90 to 0.10), optionally blended with an isotonic fit
  when events are plentiful (isotonic alone leaves flat steps that tie, and so erase, ranks).
- **Never a constant** while the calibration rows hold both classes: a model with no held-out
  skill gets a near-flat but still increasing map, so its ranking stays measurable.
- **Shrunk towards the base rate when evidence is thin**: the probability is
  `w · f(score) + (1 - w) · prior` with
  `w = episodes / (episodes + shrinkage_episodes) · folds / (folds + shrinkage_folds)`.
  Episodes, not flush bars: one 24 h cascade labels a day of consecutive bars, which are one
  piece of evidence, not 24. Folds (the refits whose test blocks the rows come from) as well:
  flushes cluster, so five episodes of one busy week say what that week's rate was, not the
  next week's (on two months of real hourly data, a map fitted on the week of a cascade
  forecast 19 % on average for weeks with 2-3 % flushes).

- **Its level is the base rate, not the recent rows' rate** (`level="prior"`): the fitted map
  is shifted in log-odds so that its mean over the calibration rows is the prior. Flush rates
  do not persist: the label's threshold follows the trailing median, so quiet weeks make the
  next ones busy, and a map that reproduces the last weeks' rate forecast the next week's
  worse than the training base rate (on two months of hourly Coinalyze data every model's
  pooled Brier skill was -0.07 for that reason alone).

Out-of-fold scores come from many refits, each trained on more data than the last, so their
scale drifts (a model fitted on a month spreads its scores less than one fitted on a year, and
a map fitted on the former over-reacts to the latter: 27 % forecasts for a 2 % event). Scores
are therefore standardised by each model's own training-score mean and spread before the map
is fitted, and a calibrator carries the `loc` and `scale` of the model it serves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

import numpy as np
from scipy import optimize
from sklearn.isotonic import IsotonicRegression

Kind = Literal["platt", "blend", "identity"]

ISOTONIC_MIN_CLASS = 200
"""Rows of the rarer class before an isotonic fit is trusted enough to be averaged in."""
SHRINKAGE_EPISODES = 10.0
"""Flush episodes at which the fitted map and the prior weigh the same."""
SHRINKAGE_FOLDS = 4.0
"""Folds of out-of-fold rows at which, by time alone, the fitted map and the prior weigh the
same (one busy week is one draw of the regime)."""
ISOTONIC_SHARE = 0.9
"""Weight of the isotonic fit in a blend; the Platt rest keeps the map strictly increasing."""
MIN_SLOPE = 1e-3
"""Smallest Platt slope, per standard deviation of the scores: keeps the map increasing."""


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow warnings for large |z|


def _fit_intercept(x: np.ndarray, y: np.ndarray, a: float, b: float) -> float:
    """Maximum-likelihood intercept for a fixed slope (1-d Newton)."""
    for _ in range(50):
        p = _sigmoid(a * x + b)
        step = np.sum(p - y) / max(np.sum(p * (1 - p)), 1e-12)
        b -= step
        if abs(step) < 1e-10:
            break
    return float(b)


def platt(x: np.ndarray, y: np.ndarray, min_slope: float) -> tuple[float, float]:
    """Penalised maximum-likelihood (a, b) of P(y=1) = sigmoid(a·x + b) with a >= min_slope.

    Newton's method on the standardised score, with a unit ridge on its slope (one
    pseudo-observation's worth): a handful of perfectly separated events then gives a steep but
    finite map instead of a step. When the slope falls below `min_slope`, it is pinned there and
    the intercept refitted: a model whose held-out scores anti-rank is reported as near-useless,
    not flipped into its opposite.
    """
    centre, spread = float(np.mean(x)), float(np.std(x)) or 1.0
    z = (x - centre) / spread
    Z = np.column_stack([z, np.ones_like(z)])
    rate = np.clip(y.mean(), 1e-6, 1 - 1e-6)
    w = np.array([0.0, np.log(rate / (1 - rate))])
    ridge = np.diag([1.0, 1e-9])
    for _ in range(100):
        p = _sigmoid(Z @ w)
        gradient = Z.T @ (p - y) + ridge @ w
        hessian = (Z * (p * (1 - p))[:, None]).T @ Z + ridge
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    a, b = float(w[0]) / spread, float(w[1]) - float(w[0]) * centre / spread
    if not np.isfinite(a) or a < min_slope:
        a = min_slope
        b = _fit_intercept(x, y, a, float(np.log(rate / (1 - rate))))
    return a, b


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-300, 1 - np.finfo(float).eps)  # never ties two distinct tiny values
    return np.log(p) - np.log1p(-p)


def _level_shift(f: np.ndarray, prior: float) -> float:
    """The log-odds shift d with mean(sigmoid(logit(f) + d)) = prior (1-d Newton)."""
    z = _logit(f)
    d = float(np.log(prior / (1 - prior)) - np.log(np.mean(f) / (1 - np.mean(f))))
    for _ in range(50):
        p = _sigmoid(z + d)
        step = (np.mean(p) - prior) / max(float(np.mean(p * (1 - p))), 1e-12)
        d -= step
        if abs(step) < 1e-12:
            break
    return d


def isotonic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The thresholds (`X_thresholds_`, `y_thresholds_`) of scikit-learn's
    `IsotonicRegression(y_min=0, y_max=1).fit(x, y)` for 0/1 outcomes, the same numbers.

    scikit-learn sorts the rows by score then outcome, sorts them again to count the distinct
    scores, validates its arguments and builds an interpolator this map never calls: nine of
    these per fold were a fifth of pass 2. With 0/1 outcomes (unit weights) the order of rows
    with equal scores changes no sum, so one sort by score does; the pooling of scores
    within numpy's resolution of each other, the pool-adjacent-violators fit (scipy's, which
    scikit-learn calls), the clip to [0, 1] and the thinning of flat runs are scikit-learn's.
    When two distinct scores lie closer than that resolution, where its pooling depends on the
    order, scikit-learn itself fits.
    """
    order = np.argsort(x)
    xs, ys = x[order], y[order]
    gap = np.diff(xs)
    eps = np.finfo(np.float64).resolution
    if ((gap > 0) & (gap < eps)).any() or not ((ys == 0.0) | (ys == 1.0)).all():
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
        return iso.X_thresholds_, iso.y_thresholds_
    starts = np.flatnonzero(np.r_[True, gap >= eps])
    counts = np.diff(np.r_[starts, len(xs)]).astype(np.float64)
    fitted = optimize.isotonic_regression(np.add.reduceat(ys, starts) / counts, weights=counts).x
    fitted = np.clip(np.asarray(fitted, dtype=np.float64), 0.0, 1.0)
    keep = np.ones(len(fitted), dtype=bool)
    keep[1:-1] = (fitted[1:-1] != fitted[:-2]) | (fitted[1:-1] != fitted[2:])
    return xs[starts][keep], fitted[keep]


@dataclass(frozen=True)
class Calibrator:
    """A fitted, strictly increasing score → probability map; plain numbers (JSON, no pickle)."""

    kind: Kind
    a: float = 1.0
    b: float = 0.0
    weight: float = 1.0
    """w in `w · f(score) + (1 - w) · prior`."""
    prior: float = 0.0
    iso_x: tuple[float, ...] = field(default=(), repr=False)
    iso_y: tuple[float, ...] = field(default=(), repr=False)
    loc: float = 0.0
    scale: float = 1.0
    """Raw scores are read as (score - loc) / scale: the served model's training-score spread."""
    shift: float = 0.0
    """Log-odds added to the fitted map so that its mean over the calibration rows is the prior
    (`level="prior"`): the rows' own rate is a level the next weeks need not share."""

    @classmethod
    def identity(cls) -> Calibrator:
        """For scores that are already probabilities (climatology)."""
        return cls("identity")

    @classmethod
    def fit(
        cls,
        scores: np.ndarray,
        y: np.ndarray,
        *,
        prior: float | None = None,
        episodes: float | None = None,
        shrinkage_episodes: float = SHRINKAGE_EPISODES,
        folds: int | None = None,
        shrinkage_folds: float = SHRINKAGE_FOLDS,
        isotonic_min_class: int = ISOTONIC_MIN_CLASS,
        level: Literal["fitted", "prior"] = "fitted",
    ) -> Calibrator:
        """Fit on out-of-fold scores and their 0/1 outcomes; `prior` defaults to their rate.

        `episodes` is the number of independent flushes behind the positive rows (default:
        every positive row counts as one) and `folds` the number of refits whose test blocks
        the rows come from (default: not counted); they set the shrinkage towards the prior.

        Needs both classes: with one class there is no evidence of how scores map to outcomes,
        and the caller must say what to forecast instead (the fold is excluded from scoring).
        """
        x = np.asarray(scores, dtype="float64")
        y = np.asarray(y, dtype="float64")
        if x.shape != y.shape or x.ndim != 1 or len(y) == 0:
            raise ValueError("scores and labels must be non-empty 1-d arrays of the same length")
        if not np.isfinite(x).all():
            raise ValueError("scores must be finite")
        events = int(y.sum())
        rarer = min(events, len(y) - events)
        if rarer == 0:
            raise ValueError("calibration needs both flushes and quiet bars among its rows")
        prior = float(y.mean()) if prior is None else float(prior)
        if not 0.0 < prior < 1.0:
            raise ValueError(f"prior must be a probability strictly inside (0, 1), got {prior}")
        spread = float(np.std(x))
        a, b = platt(x, y, MIN_SLOPE / spread if spread > 0 else MIN_SLOPE)
        evidence = events if episodes is None else max(float(episodes), 1.0)
        weight = evidence / (evidence + shrinkage_episodes) if shrinkage_episodes > 0 else 1.0
        if folds is not None and shrinkage_folds > 0:
            weight *= max(folds, 1) / (max(folds, 1) + shrinkage_folds)
        if rarer < isotonic_min_class:
            fitted = cls("platt", a, b, weight, prior)
        else:
            iso_x, iso_y = isotonic(x, y)
            fitted = cls("blend", a, b, weight, prior, tuple(iso_x.tolist()), tuple(iso_y.tolist()))
        if level == "prior":
            fitted = replace(fitted, shift=_level_shift(fitted._map(x), prior))
        return fitted

    def for_scores(self, loc: float, scale: float) -> Calibrator:
        """This map, for a model whose raw scores have training mean `loc` and spread `scale`."""
        if not (np.isfinite(loc) and np.isfinite(scale) and scale > 0):
            raise ValueError(
                f"score standardisation needs a finite loc and scale > 0: {loc}, {scale}"
            )
        return replace(self, loc=float(loc), scale=float(scale))

    @cached_property
    def _isotonic(self) -> tuple[np.ndarray, np.ndarray]:
        """The isotonic thresholds as arrays, made once: `np.interp` converts tuples at every
        call, 17 µs for 150 thresholds, more than the rest of a served row's calibration."""
        return np.asarray(self.iso_x, dtype="float64"), np.asarray(self.iso_y, dtype="float64")

    def _map(self, x: np.ndarray) -> np.ndarray:
        """The fitted map f of standardised scores (before the shift and the shrinkage)."""
        f = _sigmoid(self.a * x + self.b)
        if self.kind == "blend":
            iso_x, iso_y = self._isotonic
            f = (1 - ISOTONIC_SHARE) * f + ISOTONIC_SHARE * np.interp(x, iso_x, iso_y)
        return f

    def predict(self, scores: np.ndarray) -> np.ndarray:
        """Probabilities for new scores (same order; strictly increasing in the score)."""
        x = np.asarray(scores, dtype="float64")
        if self.kind == "identity":
            return x.copy()
        f = self._map((x - self.loc) / self.scale)
        if self.shift:
            f = _sigmoid(_logit(f) + self.shift)
        return self.weight * f + (1.0 - self.weight) * self.prior

    def to_dict(self) -> dict[str, object]:
        """The fitted state as JSON-ready values."""
        return {
            "kind": self.kind,
            "a": self.a,
            "b": self.b,
            "weight": self.weight,
            "prior": self.prior,
            "iso_x": list(self.iso_x),
            "iso_y": list(self.iso_y),
            "loc": self.loc,
            "scale": self.scale,
            "shift": self.shift,
        }

    @classmethod
    def from_dict(cls, state: dict[str, object]) -> Calibrator:
        """Rebuild a calibrator from `to_dict` output; ValueError if it is not one `fit` makes."""
        kind = state["kind"]
        if kind not in ("platt", "blend", "identity"):
            raise ValueError(f"unknown calibrator kind {kind!r}")
        return cls.checked(
            kind,  # type: ignore[arg-type]
            float(state["a"]),  # type: ignore[arg-type]
            float(state["b"]),  # type: ignore[arg-type]
            float(state["weight"]),  # type: ignore[arg-type]
            float(state["prior"]),  # type: ignore[arg-type]
            tuple(float(v) for v in state["iso_x"]),  # type: ignore[union-attr]
            tuple(float(v) for v in state["iso_y"]),  # type: ignore[union-attr]
            float(state.get("loc", 0.0)),  # type: ignore[arg-type]
            float(state.get("scale", 1.0)),  # type: ignore[arg-type]
            float(state.get("shift", 0.0)),  # type: ignore[arg-type]
        )

    @classmethod
    def checked(cls, *args: Any) -> Calibrator:
        """A calibrator whose numbers are all finite and in the ranges `fit` keeps them in, so a
        damaged or edited state is refused at load instead of predicting NaN (or p > 1)."""
        made = cls(*args)
        problems = []
        numbers = (made.a, made.b, made.weight, made.prior, made.loc, made.scale)
        if not all(math.isfinite(v) for v in (*numbers, *made.iso_x, *made.iso_y)):
            problems.append("a parameter is not a finite number")
        elif made.kind != "identity":
            if made.a <= 0:
                problems.append(f"slope a = {made.a} (the map must increase)")
            if not 0 <= made.weight <= 1:
                problems.append(f"weight {made.weight} outside [0, 1]")
            if not 0 < made.prior < 1:
                problems.append(f"prior {made.prior} outside (0, 1)")
            if made.scale <= 0:
                problems.append(f"scale {made.scale} <= 0")
        if made.kind == "blend" and (
            len(made.iso_x) != len(made.iso_y)
            or not made.iso_x
            or any(y < 0 or y > 1 for y in made.iso_y)
            or any(b < a for a, b in zip(made.iso_x, made.iso_x[1:], strict=False))
            or any(b < a for a, b in zip(made.iso_y, made.iso_y[1:], strict=False))
        ):
            problems.append("the isotonic table is not an increasing map into [0, 1]")
        if problems:
            raise ValueError("calibrator: " + "; ".join(problems))
        return made
