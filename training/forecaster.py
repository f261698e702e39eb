"""`FlushForecaster`: the one object a data scientist fits, predicts, explains, saves and loads.

scikit-learn conventions: the parameters are stored as given in `__init__` and only read by
`fit`; fitted state ends in an underscore (`bundle_`). `fit` runs exactly what `flushcast train`
runs (features, labels, the walk-forward that chooses the candidate and fits its calibrator,
the final refit), so a notebook's forecaster and a registered model version are the same
recipe. Predictions and explanations come from the bundle's numpy scoring path, the one the
service uses.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from flushcast.features.build import build_features
from flushcast.marketdata.resample import infer_bar
from flushcast.marketdata.schema import BAR, KEY_COLUMNS
from flushcast.models.applicability import bar_problem, history_problem, unknown_symbol
from flushcast.models.bundle import Bundle
from flushcast.training.config import TrainingConfig, load
from flushcast.training.dataset import Dataset, make_dataset, select_features
from flushcast.training.labels import LabelSpec, label_named


def market_bar(market: pd.DataFrame) -> pd.Timedelta:
    """The bar size of a market frame: its first series' most common spacing."""
    if market.empty:
        return BAR
    first = market[(market["symbol"] == market["symbol"].iloc[0])]
    return infer_bar(first["timestamp"])


class FlushForecaster:
    """Flush probability and direction per horizon, with exact reasons.

    Parameters
    ----------
    horizons:
        Horizons in hours (default: the configuration's, 4/12/24).
    label:
        A label variant by name (`training.labels.LABELS`, default "v2") or a `LabelSpec`.
    config:
        A `TrainingConfig`, or the path of a YAML configuration (default `conf/default.yaml`).
    overrides:
        Dotted configuration keys to change, e.g. `{"fit.lightgbm.num_leaves": 7}`.
    """

    def __init__(
        self,
        horizons: Sequence[int] | None = None,
        label: str | LabelSpec | None = None,
        config: TrainingConfig | str | Path | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.horizons = horizons
        self.label = label
        self.config = config
        self.overrides = overrides

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {
            "horizons": self.horizons,
            "label": self.label,
            "config": self.config,
            "overrides": self.overrides,
        }

    def set_params(self, **params: Any) -> FlushForecaster:
        for key, value in params.items():
            if key not in self.get_params():
                raise ValueError(f"FlushForecaster has no parameter {key!r}")
            setattr(self, key, value)
        return self

    def resolved_config(self) -> TrainingConfig:
        """The configuration `fit` uses: file or object, then label, horizons, overrides."""
        base = self.config if isinstance(self.config, TrainingConfig) else load(self.config)
        changes: dict[str, Any] = {}
        if self.label is not None:
            spec = label_named(self.label) if isinstance(self.label, str) else self.label
            changes["label"] = spec.model_dump()
        if self.horizons is not None:
            changes["label.horizons"] = list(self.horizons)
        changes.update(self.overrides or {})
        return base.with_overrides(changes) if changes else base

    def dataset(self, market: pd.DataFrame, bar: pd.Timedelta | None = None) -> Dataset:
        """The training table (features and labels) this forecaster would learn from."""
        config = self.resolved_config()
        dataset = make_dataset(market, config.label, bar=bar or market_bar(market))
        return select_features(dataset, config)

    def fit(
        self, market: pd.DataFrame, y: Any = None, *, bar: pd.Timedelta | None = None
    ) -> FlushForecaster:
        """Learn from a canonical market frame (several symbols pooled) of `bar`-sized bars
        (default: the spacing of the frame's first series).

        There is no `y`: the labels are made from the market itself (the liquidations and moves
        of the hours after each bar, `fc.make_labels`), so `fit(X, y)` is refused with a
        message rather than fitting something else.
        """
        from flushcast.training.train import fit_bundle

        if y is not None:
            raise TypeError(
                "FlushForecaster.fit takes the market frame alone (fit(market)): the flush "
                "labels are made from its bars (fc.make_labels(market) shows them), not passed "
                "as y"
            )
        if not isinstance(market, pd.DataFrame) or "close" not in market:
            raise TypeError(
                "FlushForecaster.fit takes a canonical market frame (fc.simulate, "
                "fc.load_market), not a feature table"
            )

        self.bundle_ = fit_bundle(self.dataset(market, bar), self.resolved_config())
        return self

    @property
    def fitted(self) -> Bundle:
        bundle = getattr(self, "bundle_", None)
        if bundle is None:
            raise RuntimeError("FlushForecaster is not fitted: call fit() or load() first")
        return bundle

    def features(self, market: pd.DataFrame) -> pd.DataFrame:
        """The feature table of `market` at the bar size the forecaster was trained on."""
        return build_features(market, bar=self.fitted.bar)

    def scored_rows(self, market: pd.DataFrame) -> pd.DataFrame:
        """The feature rows the model may score: the service's rule (`models.applicability`).

        `market` must be of the model's bar size, and each series must hold the
        `bundle_.max_lookback` bars its features read: rows with less history before them are
        left out (the service refuses them too), and a series with none left is an error. A
        symbol the model never saw is scored as unknown, with a warning.
        """
        bundle = self.fitted
        if market.empty:
            raise ValueError("no bars to predict from: the market frame is empty")
        problem = bar_problem(market_bar(market), bundle.bar)
        if problem:
            raise ValueError(problem)
        needed = bundle.max_lookback
        ordered = market.sort_values("timestamp", kind="stable")
        keys = [ordered["symbol"].astype(str), ordered["venue"].astype(str)]
        history = ordered[list(KEY_COLUMNS)].assign(_bars=ordered.groupby(keys).cumcount() + 1)
        for (symbol, _venue), bars in history.groupby(keys)["_bars"].max().items():
            problem = history_problem(symbol, int(bars), needed, bundle.bar)
            if problem:
                raise ValueError(problem)
            if not bundle.knows(symbol):
                warnings.warn(unknown_symbol(symbol), UserWarning, stacklevel=3)
        table = self.features(market)
        full = history.loc[history["_bars"] >= needed, list(KEY_COLUMNS)]
        keys = list(KEY_COLUMNS)
        keep = table[keys].merge(full, on=keys, how="left", indicator=True)["_merge"] == "both"
        return table[keep.to_numpy()].reset_index(drop=True)

    def predict(self, market: pd.DataFrame) -> pd.DataFrame:
        """Per bar of `market`: `p_flush_<H>h`, `p_long_flush_<H>h`, `p_short_squeeze_<H>h`.

        Indexed by (timestamp, symbol, venue). A bar's features use its own history in
        `market` only: bars with fewer than `bundle_.max_lookback` bars before them (the
        service's `bars_needed`) are left out (`scored_rows`).
        """
        table = self.scored_rows(market)
        out = self.fitted.predict(table)
        out.index = pd.MultiIndex.from_frame(table[list(KEY_COLUMNS)].astype({"symbol": str}))
        return out

    def explain(self, market: pd.DataFrame, horizon: int) -> pd.DataFrame:
        """Exact contributions to the log-odds of every input, plus `base_value`, per bar."""
        if horizon not in self.fitted.horizons:
            raise ValueError(f"no {horizon} h model; horizons are {sorted(self.fitted.horizons)}")
        table = self.scored_rows(market)
        out = self.fitted.contributions(table, horizon)
        out.index = pd.MultiIndex.from_frame(table[list(KEY_COLUMNS)].astype({"symbol": str}))
        return out

    def save(self, folder: str | Path) -> Path:
        """Write the fitted bundle (plain files, SHA-256 recorded) into `folder`."""
        return self.fitted.save(folder)

    @classmethod
    def load(cls, folder: str | Path) -> FlushForecaster:
        """A fitted forecaster from a bundle folder (`save`, or a downloaded model version)."""
        bundle = Bundle.load(folder)
        spec = LabelSpec.from_params(bundle.label)
        forecaster = cls(horizons=sorted(bundle.horizons), label=spec)
        forecaster.bundle_ = bundle
        return forecaster

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if v is not None)
        return f"FlushForecaster({params})"
