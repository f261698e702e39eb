"""The model bundle: every horizon's flush model, the direction models, calibrators, feature spec.

One bundle is one deployable thing: MLflow logs it as one model version and the service loads
it whole. It is saved as plain files (LightGBM text models and one JSON document), never a
pickle, so loading it runs no code from the file. It records the feature names and lookbacks it
was trained with; `check_features` refuses to serve if the feature code has changed under it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from marketdata.atomic import write_atomic
from models import integrity
from models.lgbm import Fitted
from training.calibration import Calibrator

FORMAT = 1
MANIFEST = "bundle.json"
SYMBOL = "symbol"
"""The one non-registry model input: symbols are pooled with the symbol as a categorical."""


class BundleMismatch(RuntimeError):
    """The bundle and the feature code disagree: serving it would feed the model wrong inputs."""


def model_matrix(table: pd.DataFrame, features: list[str], symbols: list[str]) -> pd.DataFrame:
    """Model inputs from a feature table: the features as float, then the symbol.

    Extra columns are ignored, missing ones are an error. The symbol gets the training
    categories, so codes mean the same at serving time; a symbol never trained on becomes
    missing (LightGBM's "other" branch).
    """
    missing = [c for c in [*features, SYMBOL] if c not in table.columns]
    if missing:
        raise KeyError(f"feature table lacks model input column(s) {missing}")
    X = table[features].astype("float64").reset_index(drop=True)
    names = table[SYMBOL].astype(str).to_numpy()
    known = np.isin(names, symbols)
    X[SYMBOL] = pd.Categorical(np.where(known, names, None), categories=symbols)
    return X


@dataclass
class HorizonModels:
    """The models for one horizon: flush probability, and direction given a flush (or None)."""

    horizon: int
    flush: Fitted
    direction: Fitted | None
    base_rate: float
    """Flush rate in the training rows: the climatology a forecast is read against."""


@dataclass
class Bundle:
    """All horizons plus what is needed to rebuild their inputs and to describe them."""

    horizons: dict[int, HorizonModels]
    features: list[str]
    lookbacks: dict[str, int]
    max_lookback: int
    symbols: list[str]
    label: dict[str, Any]
    fit: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)
    """Data span and sources per series, row counts."""
    evaluation: dict[str, Any] = field(default_factory=dict)
    """Walk-forward summary of the configuration this bundle was trained with."""

    @property
    def columns(self) -> list[str]:
        """Model input columns, in order."""
        return [*self.features, SYMBOL]

    def matrix(self, table: pd.DataFrame) -> pd.DataFrame:
        """Model inputs from a feature table (see `model_matrix`)."""
        return model_matrix(table, self.features, self.symbols)

    def predict(self, table: pd.DataFrame) -> pd.DataFrame:
        """Per horizon H: `p_flush_{H}h`, `p_long_flush_{H}h`, `p_short_squeeze_{H}h`.

        Direction probabilities are conditional on a flush happening; 0.5/0.5 where the bundle
        has no direction model for that horizon.
        """
        X = self.matrix(table)
        out = {}
        for h, models in sorted(self.horizons.items()):
            out[f"p_flush_{h}h"] = models.flush.predict(X)
            p_long = models.direction.predict(X) if models.direction else np.full(len(X), 0.5)
            out[f"p_long_flush_{h}h"] = p_long
            out[f"p_short_squeeze_{h}h"] = 1.0 - p_long
        return pd.DataFrame(out)

    def contributions(self, table: pd.DataFrame, horizon: int) -> pd.DataFrame:
        """Exact TreeSHAP contributions to the flush model's raw score (log-odds) per input.

        Columns are `columns` plus `base_value`; each row sums to the raw score. The calibrator
        then maps that score to the probability, monotonically.
        """
        X = self.matrix(table)
        values = self.horizons[horizon].flush.booster.predict(X, pred_contrib=True)
        return pd.DataFrame(values, columns=[*self.columns, "base_value"])

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
        for h, models in self.horizons.items():
            entry: dict[str, Any] = {
                "base_rate": models.base_rate,
                "flush_model": f"flush_{h}h.txt",
                "flush_calibrator": models.flush.calibrator.to_dict(),
                "direction_model": None,
            }
            _write_text(folder / entry["flush_model"], models.flush.booster.model_to_string())
            if models.direction is not None:
                entry["direction_model"] = f"direction_{h}h.txt"
                entry["direction_calibrator"] = models.direction.calibrator.to_dict()
                _write_text(
                    folder / entry["direction_model"], models.direction.booster.model_to_string()
                )
            horizons[str(h)] = entry
        manifest = {
            "format": FORMAT,
            "features": self.features,
            "lookbacks": self.lookbacks,
            "max_lookback": self.max_lookback,
            "symbols": self.symbols,
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
        manifest = json.loads(path.read_text())
        if manifest.get("format") != FORMAT:
            raise BundleMismatch(f"bundle format {manifest.get('format')}, expected {FORMAT}")
        horizons = {}
        for key, entry in manifest["horizons"].items():
            flush = Fitted(
                lgb.Booster(model_file=str(folder / entry["flush_model"])),
                Calibrator.from_dict(entry["flush_calibrator"]),
            )
            direction = None
            if entry["direction_model"]:
                direction = Fitted(
                    lgb.Booster(model_file=str(folder / entry["direction_model"])),
                    Calibrator.from_dict(entry["direction_calibrator"]),
                )
            horizons[int(key)] = HorizonModels(int(key), flush, direction, entry["base_rate"])
        return cls(
            horizons=dict(sorted(horizons.items())),
            features=manifest["features"],
            lookbacks={k: int(v) for k, v in manifest["lookbacks"].items()},
            max_lookback=int(manifest["max_lookback"]),
            symbols=manifest["symbols"],
            label=manifest["label"],
            fit=manifest["fit"],
            training=manifest["training"],
            evaluation=manifest["evaluation"],
        )


def _write_text(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in a bundle manifest")
