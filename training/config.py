"""One training configuration: label, walk-forward, fit, calibration, selection, combination and
evaluation.

A strict, frozen pydantic model: unknown keys and wrongly typed values are errors naming the
key. `conf/default.yaml` holds the defaults; `flushcast train|evaluate --config FILE --set
fit.lightgbm.num_leaves=7` overrides them; every run logs the resolved configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from flushcast.common.errors import DataError
from flushcast.features.registry import family_names
from flushcast.models.config import CANDIDATES, OPTIONAL_CANDIDATES, FitConfig
from flushcast.training.baselines import BASELINES
from flushcast.training.labels import LabelSpec
from flushcast.training.splits import WalkForward

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "conf" / "default.yaml"


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class CalibrationConfig(Strict):
    """How out-of-fold scores become probabilities (see `models.calibration`)."""

    min_episodes: int = Field(5, ge=1)
    """Out-of-fold flush episodes needed before a fold can be calibrated; fewer: the fold is
    left out of every model's scores, with the reason recorded."""
    shrinkage_episodes: float = Field(10.0, ge=0)
    """Flush episodes at which the calibrated map and the training base rate weigh the same."""
    shrinkage_folds: float = Field(4.0, ge=0)
    """Folds of out-of-fold rows at which they weigh the same by time alone (flushes cluster:
    one busy week is one draw of the regime)."""
    isotonic_min_class: int = Field(200, ge=1)
    level: Literal["fitted", "prior"] = "prior"
    """Where the map's mean level comes from: the training base rate (prior: the map keeps its
    shape, shifted in log-odds) or the out-of-fold rows' own rate (fitted). Flush rates do not
    persist from one span to the next (the label's threshold follows the trailing median, so
    quiet weeks make the next busy), and the recent rows' rate forecast the next fold's rate
    worse than the training rate on every shared set and the simulator."""
    window_hours: int | None = Field(4380, ge=1)
    """Only out-of-fold rows this recent calibrate (half a year): regimes drift, and old rows
    would make every refit slower."""


class SelectionConfig(Strict):
    """How each fold's champion is chosen among the candidates (inner walk-forward)."""

    metric: Literal["roc_auc", "pr_auc", "lift"] = "roc_auc"
    """Within-block ranking metric of the candidates' out-of-fold scores."""
    min_episodes: int = Field(10, ge=1)
    """Fewer out-of-fold flush episodes than this: too little evidence, keep the first
    candidate."""


STACKABLE_BASELINES = ("liquidation_surprise", "volatility", "compact_logistic")
"""Baselines a combined champion may use as inputs: each can be shipped in a bundle."""


class CombinationConfig(Strict):
    """How the champion is made from its parts (`training.combine`), on earlier out-of-fold
    rows only: the fold's calibration rows in the walk-forward, the recent ones in `train`."""

    method: Literal["stack", "best"] = "stack"
    """stack: a non-negative logistic stack of the inputs' standardised scores, shrunk toward
    equal shares; best: the one candidate ranking best within blocks (`selection`)."""
    inputs: tuple[str, ...] = (*CANDIDATES, "liquidation_surprise")
    """Candidates and baselines the stack combines (baselines from `STACKABLE_BASELINES`); those
    not run are skipped."""
    shrinkage_episodes: float = Field(30.0, ge=0)
    """Out-of-fold flush episodes at which the fitted shares and equal shares weigh the same."""
    ridge: float = Field(1.0, ge=0)
    """L2 penalty on the stack's weights (per flush of evidence)."""
    within_blocks: bool = True
    """Fit the stack with one intercept per test block: weights that rank flushes against the
    same block's quiet bars. False: one pooled intercept (weights also reward inputs that
    track which block is busy, a level the calibrator already sets)."""
    toward: Literal["equal", "plausible"] = "equal"
    """What the fitted shares are shrunk toward when episodes are few: equal shares, or each
    input's plausibility of ranking within blocks as well as the best input on the same rows
    (`models.stacking.plausibility`), as shares: the best input alone with ample evidence that
    it dominates, equal shares with none."""
    weigh_by_plausibility: bool = False
    """Multiply each input's share by that plausibility and renormalise: an input that ranked
    worse than the best within blocks, block after block of the earlier evidence, is left out;
    inputs that tie keep their shares."""
    level_inputs: tuple[str, ...] = ()
    """A two-part champion (method `stack`; `training.combine.two_part`): the stack of `inputs`
    for the order within blocks, the stack of these inputs (the ones that carry the level,
    which blocks are busy) fitted the same way, and a pooled non-negative logistic of the two
    scores (one intercept, shrunk toward equal weights) that restores the level a level-free
    input such as `lightgbm_rank` dilutes. Empty, or the same inputs as `inputs` once those not
    run are skipped: the champion is the stack of `inputs` alone."""
    level_within_blocks: bool = True
    """Fit the level part with one intercept per block (as the order part); False: pooled."""
    direction: Literal["model", "stack", "plausible"] = "model"
    """The direction call: the direction trees alone; (`stack`) the trees stacked with the
    trivial rules (majority side, funding sign, 24 h return sign) on the same earlier
    out-of-fold one-sided flushes; or (`plausible`) the trees shrunk toward the rule calling
    best there by how plausibly the trees call as well as it (`models.direction`)."""
    direction_shrinkage: float = Field(30.0, ge=0)
    """One-sided flush episodes of evidence at which the direction stack's fitted weights and
    the trees alone weigh the same."""

    @model_validator(mode="after")
    def _inputs_known(self) -> CombinationConfig:
        known = (*CANDIDATES, *OPTIONAL_CANDIDATES, *STACKABLE_BASELINES)
        for key, names, required in (
            ("inputs", self.inputs, True),
            ("level_inputs", self.level_inputs, False),
        ):
            unknown = [name for name in names if name not in known]
            if unknown or (required and not names):
                raise ValueError(
                    f"combination.{key} must be among {', '.join(known)} (got {unknown or 'none'})"
                )
        return self


class EvaluationConfig(Strict):
    """What the evaluation reports and how its intervals are made."""

    baselines: tuple[str, ...] = tuple(BASELINES)
    n_boot: int = Field(200, ge=0)
    block_hours: int = Field(72, ge=1)
    """Bootstrap block length: a cascade hits every symbol at once and lasts hours."""


class FeaturesConfig(Strict):
    """Which feature families the models learn from (`flushcast features list` names them)."""

    exclude_families: tuple[str, ...] = (
        "events",
        "breadth",
        "relative",
        "reach",
        "vol_regime",
        "demean",
    )
    """Families left out of every candidate (their columns are still computed). The defaults
    did not help in the ablations of docs/features.md: the scheduled-events calendar nowhere,
    market breadth only on the 4 h set while it hurt the daily set's within-block ranking,
    relative (each symbol against the others) nowhere beyond noise, reach (distance to the
    30-day extremes) a little on the daily set while it hurt the simulator at 12 h, vol_regime
    (the label's σ against the month before) hurt the daily set's within-block ranking, demean
    (each feature against its own 30-day mean) moved it nowhere beyond noise and cost the fixed
    LightGBM on three sets."""

    @field_validator("exclude_families")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        known = family_names()
        unknown = [name for name in value if name not in known]
        if unknown:
            raise ValueError(f"unknown feature families {unknown}; known: {known}")
        return value


class AugmentConfig(Strict):
    """Simulated history for a short store (`training.augment`): the built-in simulator's market,
    placed before the store's first bar, trains beside it and is never tested. Synthetic bars
    carry no information about the real future, so history placed earlier leaks nothing; what
    it could add is flushes to learn the shape of a build-up where months of one symbol hold a
    handful. Off by default: on the shared 4 h set and Coinalyze's hourly set it helped no
    horizon beyond noise, and it hurt the daily set's pooled lift (README, "Learning from
    other bar sizes")."""

    simulated_days: int = Field(0, ge=0)
    """Days of simulated bars added (at the tested store's bar size), ending before its first
    bar; 0: none."""
    when_shorter_than_days: int = Field(540, ge=0)
    """Added only when the tested stores span fewer days than this (first to last bar)."""
    seed: int = 7
    """The simulator's seed: the same store gets the same history."""
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    """Symbols simulated (BTCUSDT leads, the others follow it with their own beta)."""
    preset: Literal["calm", "default", "overleveraged"] = "default"
    """The simulator's scenario (`flushcast simulate --preset`)."""

    @field_validator("symbols")
    @classmethod
    def _some(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one symbol to simulate")
        return value


class TrainingConfig(Strict):
    """Everything about a training or evaluation run that is not the data."""

    label: LabelSpec = LabelSpec()
    walk_forward: WalkForward = WalkForward()
    fit: FitConfig = FitConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    selection: SelectionConfig = SelectionConfig()
    combination: CombinationConfig = CombinationConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    features: FeaturesConfig = FeaturesConfig()
    augment: AugmentConfig = AugmentConfig()

    def with_overrides(self, overrides: dict[str, Any]) -> TrainingConfig:
        """A copy with dotted-key overrides (`{"fit.lightgbm.num_leaves": 7}`) applied."""
        data = self.model_dump()
        for dotted, value in overrides.items():
            _set(data, dotted, value)
        return validated(data, "--set")

    def flat(self) -> dict[str, Any]:
        """Dotted keys → values (for MLflow parameters)."""
        out: dict[str, Any] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for key, inner in value.items():
                    walk(f"{prefix}.{key}" if prefix else key, inner)
            else:
                out[prefix] = (
                    ",".join(map(str, value)) if isinstance(value, tuple | list) else value
                )

        walk("", self.model_dump())
        return out


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise DataError(f"unknown configuration key {dotted!r}", column=dotted)
        node = node[part]
    if last not in node:
        raise DataError(f"unknown configuration key {dotted!r}", column=dotted)
    node[last] = value


def validated(data: dict[str, Any], source: str) -> TrainingConfig:
    """A configuration from plain data (YAML types), errors naming the key and the source."""
    try:
        # YAML gives lists for tuples and ints for floats: lax mode converts only those.
        return TrainingConfig.model_validate(data, strict=False)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise DataError(f"{first['msg']} (key {key!r})", file=source, column=key) from None


def load(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainingConfig:
    """The configuration in `path` (default `conf/default.yaml`), with `overrides` applied."""
    path = Path(path) if path is not None else DEFAULT_FILE
    try:
        data = yaml.safe_load(path.read_text()) if path.is_file() else None
    except yaml.YAMLError as exc:
        raise DataError(f"not valid YAML: {exc}", file=path) from None
    if path != DEFAULT_FILE and data is None:
        raise DataError("empty or missing configuration file", file=path)
    config = validated(data or {}, str(path))
    return config.with_overrides(overrides) if overrides else config


def parse_override(text: str) -> tuple[str, Any]:
    """`key=value` with the value read as YAML (`7`, `0.03`, `[4, 12]`, `lightgbm`)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise DataError(f"--set takes key=value, got {text!r}", column="--set")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise DataError(f"--set {key}: value is not valid YAML ({exc})", column=key) from None


def config_yaml(config: TrainingConfig, comment: str | None = None) -> str:
    """A configuration as the YAML `--config` reads, under a comment."""
    body = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    lines = [f"# {line}" if line else "#" for line in (comment or "").splitlines()]
    return "".join(f"{line}\n" for line in lines) + body


def default_yaml() -> str:
    """The text of `conf/default.yaml`: the code's defaults, which a test holds it equal to."""
    return config_yaml(
        TrainingConfig(),
        "flushcast training configuration: the defaults (label, walk-forward, fit, calibration,\n"
        "selection, combination, evaluation, features, augment). Copy and edit, then `flushcast\n"
        "train --config FILE`, or override one key with `--set fit.lightgbm.num_leaves=7`;\n"
        "`--schema` documents every key. Regenerate after changing a default:\n"
        "  python -m flushcast.training.config > conf/default.yaml",
    )


if __name__ == "__main__":
    print(default_yaml(), end="")
