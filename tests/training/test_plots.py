"""Evaluation figures: each one renders to a real PNG and shows what it claims to show."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from flushcast.training.metrics import pr_auc, reliability_table
from flushcast.training.plots import (
    feature_importance,
    fold_timeline,
    pr_curves,
    reliability_plot,
    save_png,
    shap_beeswarm,
)

N = 2_000


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    truth = rng.beta(1.0, 12.0, N)
    y = (rng.random(N) < truth).astype(float)
    scores = {"model": truth, "noise": rng.random(N) * 0.2}
    return y, scores


def _saved(fig: Figure, tmp_path: Path, name: str) -> Path:
    path = save_png(fig, tmp_path / "artefacts" / name)
    assert path == tmp_path / "artefacts" / name
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert 5_000 < len(data) < 1_000_000
    assert [p.name for p in path.parent.iterdir()] == [name]  # no temporary file left behind
    return path


def _ticks_top_down(ax) -> list[str]:
    pairs = zip(ax.get_yticks(), ax.get_yticklabels(), strict=True)
    return [label.get_text() for _, label in sorted(pairs, key=lambda t: -t[0])]


def test_reliability_plot_draws_one_line_per_model_and_the_diagonal(sample, tmp_path):
    y, scores = sample
    curves = {name: reliability_table(y, p, 10) for name, p in scores.items()}
    gappy = curves["noise"].copy()
    gappy.loc[0, "observed"] = np.nan  # a NaN bin is skipped, not drawn as a broken line
    curves["noise"] = gappy
    fig = reliability_plot(curves, "reliability")
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert set(lines) == {"model", "noise", "perfect"}
    assert len(lines["noise"].get_xdata()) == len(gappy) - 1
    assert not np.isnan(np.asarray(lines["noise"].get_ydata(), dtype=float)).any()
    assert fig.axes[0].get_xlim()[1] < 1.0  # zoomed to the populated range
    _saved(fig, tmp_path, "reliability.png")


def test_reliability_plot_of_many_models_colours_the_champion_only(sample):
    y, scores = sample
    table = reliability_table(y, scores["model"], 10)
    names = ["champion", "climatology", *(f"model_{i}" for i in range(8))]
    fig = reliability_plot({name: table for name in names}, "reliability")
    lines = fig.axes[0].get_lines()
    labels = [line.get_label() for line in lines]
    assert labels.count("other models") == 1 and "champion" in labels
    faint = [line for line in lines if line.get_color() == "#c8c8c8"]
    assert len(faint) == 8  # the rest are a grey backdrop, not eight more colours
    assert len(fig.axes[1].get_lines()) == 2  # row counts of the highlighted curves only


def test_reliability_plot_names_the_model_with_a_bad_table():
    bad = pd.DataFrame({"mean_forecast": [0.1], "count": [3]})
    with pytest.raises(ValueError, match=r"curves\['lgbm'\].*observed"):
        reliability_plot({"lgbm": bad}, "t")


def test_pr_curves_legend_reports_each_pr_auc_and_the_base_rate(sample, tmp_path):
    y, scores = sample
    fig = pr_curves(y, scores, "precision-recall")
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    for name, p in scores.items():
        assert f"{name} (PR-AUC {pr_auc(y, p):.3f})" in texts
    assert f"base rate {y.mean():.2%}" in texts
    assert pr_auc(y, scores["model"]) > pr_auc(y, scores["noise"])  # the fixture is informative
    _saved(fig, tmp_path, "pr.png")


def test_pr_curves_rejects_mismatched_or_degenerate_input(sample):
    y, scores = sample
    with pytest.raises(ValueError, match=r"scores\['short'\]"):
        pr_curves(y, {"short": scores["model"][:-1]}, "t")
    with pytest.raises(ValueError, match="no positives"):
        pr_curves(np.zeros(10), {"m": np.linspace(0, 1, 10)}, "t")
    with pytest.raises(ValueError, match="0/1"):
        pr_curves(np.full(10, 2.0), {"m": np.linspace(0, 1, 10)}, "t")


def test_feature_importance_shows_the_top_features_largest_first(tmp_path):
    rng = np.random.default_rng(1)
    importance = pd.Series(rng.gamma(2.0, 10.0, 40), index=[f"f{i}" for i in range(40)])
    fig = feature_importance(importance, "gain", top=12)
    assert _ticks_top_down(fig.axes[0]) == list(importance.nlargest(12).index)
    widths = sorted(fig.axes[0].patches, key=lambda bar: -bar.get_y())
    assert [bar.get_width() for bar in widths] == list(importance.nlargest(12))
    _saved(fig, tmp_path, "importance.png")
    with pytest.raises(ValueError, match="top"):
        feature_importance(importance, "gain", top=0)


def test_shap_beeswarm_ranks_features_by_mean_absolute_contribution(tmp_path):
    rng = np.random.default_rng(2)
    n = 600
    X = pd.DataFrame({f"f{i}": rng.normal(size=n) for i in range(8)})
    X["symbol"] = rng.choice(["BTCUSDT", "ETHUSDT"], n)
    X.loc[::7, "f0"] = np.nan
    scale = rng.permutation(np.arange(1, X.shape[1] + 1, dtype=float))
    contributions = rng.normal(size=X.shape) * scale
    fig = shap_beeswarm(contributions, X, "shap", top=5, max_points=300)
    expected = np.abs(contributions).mean(axis=0).argsort()[::-1][:5]
    assert _ticks_top_down(fig.axes[0]) == [X.columns[j] for j in expected]
    drawn = sum(len(c.get_offsets()) for c in fig.axes[0].collections)
    assert drawn == 5 * 300  # subsampled rows, every one drawn (grey when not numeric)
    _saved(fig, tmp_path, "shap.png")


def test_shap_beeswarm_names_contributions_on_a_shape_mismatch():
    X = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    with pytest.raises(ValueError, match="contributions"):
        shap_beeswarm(np.zeros((2, 3)), X, "t")


def test_fold_timeline_plots_every_scored_fold_and_every_positive_count(tmp_path):
    start = pd.date_range("2024-01-01", periods=6, freq="14D", tz="UTC")
    folds = pd.DataFrame(
        {
            "test_start": start,
            "test_end": start + pd.Timedelta(days=14),
            "pr_auc": [0.2, 0.35, np.nan, 0.4, 0.1, 0.3],
            "positives": [12, 30, 0, 18, 5, 22],
        }
    )
    fig = fold_timeline(folds, "folds")
    points = fig.axes[0].get_lines()[0]
    assert np.isfinite(np.asarray(points.get_ydata(), dtype=float)).sum() == 5
    bars = next(ax for ax in fig.axes if ax.patches).patches
    assert [bar.get_height() for bar in bars] == folds["positives"].tolist()
    _saved(fig, tmp_path, "folds.png")


def test_fold_timeline_rejects_missing_columns_and_reversed_windows():
    stamp = pd.Timestamp("2024-01-01", tz="UTC")
    with pytest.raises(ValueError, match=r"folds lacks columns \['positives'\]"):
        fold_timeline(
            pd.DataFrame({"test_start": [stamp], "test_end": [stamp], "pr_auc": [0.1]}), "t"
        )
    reversed_window = pd.DataFrame(
        {"test_start": [stamp], "test_end": [stamp], "pr_auc": [0.1], "positives": [1]}
    )
    with pytest.raises(ValueError, match="test_end"):
        fold_timeline(reversed_window, "t")
