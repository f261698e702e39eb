"""One training configuration: strict, frozen, defaults committed as conf/default.yaml."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flushcast.common.errors import DataError
from flushcast.models.config import LightGBMConfig
from flushcast.training.config import (
    DEFAULT_FILE,
    TrainingConfig,
    default_yaml,
    load,
    parse_override,
)


def test_the_committed_defaults_are_the_code_defaults():
    assert DEFAULT_FILE.read_text() == default_yaml()
    assert load() == TrainingConfig()


def test_overrides_are_typed_and_unknown_keys_refused():
    config = load(overrides=dict([parse_override("fit.lightgbm.num_leaves=7")]))
    assert config.fit.lightgbm.num_leaves == 7
    assert config.flat()["fit.lightgbm.num_leaves"] == 7
    assert load(overrides={"label.horizons": [4, 12]}).label.horizons == (4, 12)
    with pytest.raises(DataError, match=r"unknown configuration key 'fit\.nope'"):
        load(overrides={"fit.nope": 1})
    with pytest.raises(DataError, match=r"fit\.candidates"):
        load(overrides={"fit.candidates": ["xgboost"]})
    with pytest.raises(ValidationError):  # strict: text is not a number
        LightGBMConfig(rounds="9")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):  # frozen
        TrainingConfig().fit.seed = 3  # type: ignore[misc]


def test_a_bad_file_is_named(tmp_path):
    path = tmp_path / "conf.yaml"
    path.write_text("label: [unclosed\n")
    with pytest.raises(DataError, match="not valid YAML") as caught:
        load(path)
    assert str(path) in str(caught.value)
    path.write_text("selection:\n  metric: accuracy\n")
    with pytest.raises(DataError, match=r"selection\.metric"):
        load(path)


def test_feature_families_are_checked_by_name():
    config = TrainingConfig().with_overrides({"features.exclude_families": ["events"]})
    assert config.features.exclude_families == ("events",)
    with pytest.raises(DataError, match="unknown feature families \\['calendar'\\]"):
        TrainingConfig().with_overrides({"features.exclude_families": ["calendar"]})
