"""The model bundle: per horizon the chosen flush learner, its calibrator and the direction model.

One bundle is one deployable thing: MLflow logs it as one model version and the service loads
it whole. It is saved as plain files (LightGBM text models and one JSON document), never a
pickle, so loading it runs no code from the file. It records the feature names and lookbacks
and the bar size it was trained with; `check_features` refuses to serve if the feature code has
changed under it.

Everything scores on the numpy model matrix (`models.matrix`), so the walk-forward, `train`,
the service and the report share one scoring path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from flushcast.common.atomic import write_atomic
from flushcast.models import integrity
from flushcast.models.calibration import Calibrator
from flushcast.models.direction import DirectionCall, load_direction
from flushcast.models.learners import Explainer, GradientBoosting
from flushcast.models.matrix import (
    BAR_HOURS,
    BAR_HOURS_DESCRIPTION,
    SYMBOL,
    columns,
    from_values,
    model_matrix,
)
from flushcast.models.stacking import Stack, load_learner

FORMAT = 2
MANIFEST = "bundle.json"


class BundleMismatch(RuntimeError):
    """The bundle and the feature code disagree: serving it would feed the model wrong inputs."""


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


@dataclass
class HorizonModel:
    """One horizon: the flush learner and calibrator, and the direction model (or None)."""

    horizon: int
    learner: Explainer
    """A learner, or (the combined champion) a `models.stacking.Stack` of learners and rules."""
    calibrator: Calibrator
    direction: GradientBoosting | DirectionCall | None
    """The direction trees alone, or the call stacking them with the trivial rules."""
    base_rate: float
    """Flush rate in the training rows: the climatology a forecast is read against."""
    choice: dict[str, Any] = field(default_factory=dict)
    """What the champion is made of (each input's share) and the out-of-fold evidence."""

    def learners(self) -> list[Any]:
        """The fitted learners and rules inside the champion (itself, if not a stack)."""
        return list(self.learner.members) if isinstance(self.learner, Stack) else [self.learner]

    def log_odds(self, X: np.ndarray) -> np.ndarray:
        """The learner's raw score: what the contributions add up to."""
        return self.learner.score(X)

    def p_flush(self, X: np.ndarray) -> np.ndarray:
        return self.calibrator.predict(self.log_odds(X))

    def p_long(self, X: np.ndarray) -> np.ndarray:
        """P(long flush | flush); 0.5 without a direction model or call."""
        if self.direction is None:
            return np.full(len(X), 0.5)
        return _sigmoid(self.direction.score(X))

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Exact contributions to the log-odds per model column, then the base value."""
        return self.learner.contributions(X)


@dataclass
class Bundle:
    """All horizons plus what is needed to rebuild their inputs and to describe them."""

    horizons: dict[int, HorizonModel]
    features: list[str]
    lookbacks: dict[str, int]
    max_lookback: int
    symbols: list[str]
    label: dict[str, Any]
    fit: dict[str, Any]
    bar_hours: float = 1.0
    """The bar size the bundle was trained on; the service refuses bars of another size."""
    training: dict[str, Any] = field(default_factory=dict)
    """Data span and sources per series, row counts."""
    evaluation: dict[str, Any] = field(default_factory=dict)
    """Walk-forward summary of the configuration this bundle was trained with."""
    bar_input: bool = False
    """Whether the bar size is a model input (trained on stores of several bar sizes): its
    value is `bar_hours` for every row the bundle scores (`models.matrix`)."""

    def __post_init__(self) -> None:
        # A training table of several bar sizes lists the bar size among its features; the
        # bundle keeps the features the market is built into, and the bar size as its own.
        if BAR_HOURS in self.features:
            if self.features[-1] != BAR_HOURS:  # the learners read it just before the symbol
                raise BundleMismatch(f"{BAR_HOURS} must be the last feature of a bundle")
            self.features = [f for f in self.features if f != BAR_HOURS]
            self.lookbacks = {k: v for k, v in self.lookbacks.items() if k != BAR_HOURS}
            self.bar_input = True

    @property
    def columns(self) -> list[str]:
        """Model input columns, in order."""
        return columns(self.features, self.bar_input)

    def input_descriptions(self, registry: dict[str, Any]) -> list[str]:
        """What each model input is, in column order (`registry`: the features')."""
        symbol = f"The traded symbol; the model is pooled over {', '.join(self.symbols)}."
        other = {SYMBOL: symbol, BAR_HOURS: BAR_HOURS_DESCRIPTION}
        return [registry[c].description if c in registry else other[c] for c in self.columns]

    @property
    def bar(self) -> pd.Timedelta:
        return pd.Timedelta(hours=self.bar_hours)

    def matrix(self, table: pd.DataFrame) -> np.ndarray:
        """Model inputs from a feature table (see `models.matrix.model_matrix`)."""
        return model_matrix(table, self.features, self.symbols, self._bar_value())

    def matrix_from(self, values: np.ndarray, symbols: list[str]) -> np.ndarray:
        """Model inputs from feature values in the bundle's order and the rows' symbols."""
        return from_values(values, symbols, self.symbols, self._bar_value())

    def _bar_value(self) -> float | None:
        """The bar size input of every row scored (None: not an input of this model)."""
        return self.bar_hours if self.bar_input else None

    def knows(self, symbol: str) -> bool:
        return symbol in self.symbols

    def predict(self, table: pd.DataFrame) -> pd.DataFrame:
        """Per horizon H: `p_flush_{H}h`, `p_long_flush_{H}h`, `p_short_squeeze_{H}h`.

        Direction probabilities are conditional on a flush happening; 0.5/0.5 where the bundle
        has no direction model for that horizon.
        """
        X = self.matrix(table)
        out = {}
        for h, model in sorted(self.horizons.items()):
            out[f"p_flush_{h}h"] = model.p_flush(X)
            p_long = model.p_long(X)
            out[f"p_long_flush_{h}h"] = p_long
            out[f"p_short_squeeze_{h}h"] = 1.0 - p_long
        return pd.DataFrame(out, index=table.index)

    def contributions(self, table: pd.DataFrame, horizon: int) -> pd.DataFrame:
        """Exact contributions to the flush model's log-odds per input, plus `base_value`.

        Each row sums to the log-odds; the calibrator then maps it to the probability,
        monotonically.
        """
        values = self.horizons[horizon].contributions(self.matrix(table))
        return pd.DataFrame(values, columns=[*self.columns, "base_value"], index=table.index)

    def read_as_zero(self) -> set[str]:
        """Features some tree split on with no missing value in training: LightGBM reads a
        missing value there as 0, not as unknown (the training dropout makes this rare)."""
        found: set[str] = set()
        for model in self.horizons.values():
            for learner in model.learners():
                if isinstance(learner, GradientBoosting) and learner.booster is not None:
                    found |= _never_missing(learner.booster)
        return found & set(self.features)

    def check_features(self, registry: dict[str, Any], max_lookback: int) -> None:
        """Raise BundleMismatch if a trained feature is gone or its lookback has changed."""
        gone = [name for name in self.features if name not in registry]
        changed = {
            name: (self.lookbacks[name], registry[name].lookback)
            for name in self.features
            if name in registry and registry[name].lookback != self.lookbacks[name]
        }
        problems = []
        if gone:
            problems.append(f"features no longer built: {gone}")
        if changed:
            problems.append(
                "lookbacks changed (trained, now): "
                + ", ".join(f"{k} {a}->{b}" for k, (a, b) in changed.items())
            )
        if max_lookback < self.max_lookback:
            problems.append(f"max lookback shrank from {self.max_lookback} to {max_lookback} bars")
        if problems:
            raise BundleMismatch(
                "model bundle and feature code disagree: " + "; ".join(problems) + ". Retrain."
            )

    def save(self, folder: str | Path) -> Path:
        """Write the bundle into `folder` (created); each file lands atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        horizons = {}
        for h, model in self.horizons.items():
            entry: dict[str, Any] = {
                "base_rate": model.base_rate,
                "choice": model.choice,
                "learner": _externalise(model.learner.state(), folder, f"flush_{h}h.txt"),
                "calibrator": model.calibrator.to_dict(),
                "direction": None,
            }
            if model.direction is not None:
                entry["direction"] = _externalise(
                    model.direction.state(), folder, f"direction_{h}h.txt"
                )
            horizons[str(h)] = entry
        manifest = {
            "format": FORMAT,
            "features": self.features,
            "lookbacks": self.lookbacks,
            "max_lookback": self.max_lookback,
            "symbols": self.symbols,
            "bar_hours": self.bar_hours,
            "bar_input": self.bar_input,
            "label": self.label,
            "fit": self.fit,
            "training": self.training,
            "evaluation": self.evaluation,
            "horizons": horizons,
        }
        _write_text(folder / MANIFEST, json.dumps(manifest, indent=1, default=_json_default))
        integrity.record(folder)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Bundle:
        """Read a bundle written by `save`."""
        folder = Path(folder)
        path = folder / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"no model bundle at {folder} ({MANIFEST} missing)")
        integrity.verify(folder, MANIFEST)  # before LightGBM parses a byte: it aborts on bad files
        try:
            manifest = json.loads(path.read_text(), parse_constant=_refuse, parse_float=_finite)
        except ValueError as exc:
            raise BundleMismatch(f"bundle at {folder}: {MANIFEST}: {exc}") from None
        if manifest.get("format") != FORMAT:
            raise BundleMismatch(f"bundle format {manifest.get('format')}, expected {FORMAT}")
        bar_input = bool(manifest.get("bar_input", False))
        model_columns = columns(manifest["features"], bar_input)
        horizons = {}
        for key, entry in manifest["horizons"].items():
            try:
                learner = load_learner(_internalise(entry["learner"], folder), model_columns)
                direction = None
                if entry["direction"]:
                    direction = load_direction(
                        _internalise(entry["direction"], folder), model_columns
                    )
            except ValueError as exc:
                raise BundleMismatch(f"bundle at {folder}, {key} h: {exc}") from None
            try:
                calibrator = Calibrator.from_dict(entry["calibrator"])
            except ValueError as exc:
                raise BundleMismatch(f"bundle at {folder}, {key} h: {exc}") from None
            base_rate = float(entry["base_rate"])
            if not 0 < base_rate < 1:
                raise BundleMismatch(f"bundle at {folder}, {key} h: base rate {base_rate}")
            horizons[int(key)] = HorizonModel(
                int(key), learner, calibrator, direction, base_rate, entry.get("choice", {})
            )
        bar_hours = float(manifest.get("bar_hours", 1.0))
        if not 0 < bar_hours <= 24 * 7:
            raise BundleMismatch(f"bundle at {folder}: bar of {bar_hours} hours")
        return cls(
            horizons=dict(sorted(horizons.items())),
            features=manifest["features"],
            lookbacks={k: int(v) for k, v in manifest["lookbacks"].items()},
            max_lookback=int(manifest["max_lookback"]),
            symbols=manifest["symbols"],
            label=manifest["label"],
            fit=manifest["fit"],
            bar_hours=bar_hours,
            training=manifest["training"],
            evaluation=manifest["evaluation"],
            bar_input=bar_input,
        )


def _refuse(literal: str) -> float:
    raise ValueError(f"{literal} is not a number a bundle may carry: every number is finite")


def _finite(text: str) -> float:
    value = float(text)
    if not np.isfinite(value):
        raise ValueError(f"{text[:40]} is not a finite number")
    return value


def _externalise(state: dict[str, Any], folder: Path, name: str) -> dict[str, Any]:
    """A learner state with its LightGBM model text moved into file `name` (kept readable)."""
    state = dict(state)
    if state.get("model") is not None:
        _write_text(folder / name, state["model"])
        state["model"] = name
    if state.get("init") is not None:
        state["init"] = _externalise(state["init"], folder, f"init_{name}")
    if state.get("members") is not None:
        # The first member with a model file takes `name`; the others add their input's name.
        members, taken = [], False
        for member_name, member in zip(state["names"], state["members"], strict=True):
            own = name if not taken else name.replace(".txt", f"_{member_name}.txt")
            taken |= member.get("model") is not None
            members.append(_externalise(member, folder, own))
        state["members"] = members
    return state


def _internalise(state: dict[str, Any], folder: Path) -> dict[str, Any]:
    state = dict(state)
    if isinstance(state.get("model"), str):
        file = folder / Path(state["model"]).name  # never outside the bundle folder
        state["model"] = file.read_text()
    if state.get("init") is not None:
        state["init"] = _internalise(state["init"], folder)
    if state.get("members") is not None:
        state["members"] = [_internalise(m, folder) for m in state["members"]]
    return state


def _never_missing(booster: lgb.Booster) -> set[str]:
    """Columns split on with missing type "None": no NaN was seen there in training."""
    names = booster.feature_name()
    found: set[str] = set()
    stack = [tree["tree_structure"] for tree in booster.dump_model()["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_feature" in node:
            if node["missing_type"] == "None":
                found.add(names[node["split_feature"]])
            stack += [node["left_child"], node["right_child"]]
    return found - {SYMBOL}


def _write_text(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in a bundle manifest")
