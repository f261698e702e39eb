"""Figures for the MLflow artefacts of a walk-forward evaluation and for trader reports.

Every function builds a bare `matplotlib.figure.Figure` and never touches pyplot, so figures carry
no global state, are safe to draw from worker threads, and are freed by the garbage collector;
the caller saves them with `save_png`. Probabilities are shown in percent.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from sklearn.metrics import precision_recall_curve

from flushcast.common.atomic import write_atomic
from flushcast.training.metrics import pr_auc

FIGSIZE = (6.0, 4.5)
DPI = 110
RELIABILITY_COLUMNS = ("mean_forecast", "observed", "count")
FOLD_COLUMNS = ("test_start", "test_end", "pr_auc", "positives")


def _figure() -> Figure:
    return Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")


def _grid(ax: Axes) -> None:
    ax.grid(True, alpha=0.3)


def _require(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}; has {list(frame.columns)}")


def save_png(fig: Figure, path: Path | str) -> Path:
    """Write `fig` as PNG atomically, so a tracker never uploads half a file."""
    path = Path(path)
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", bbox_inches="tight"))
    return path


HIGHLIGHTED = ("champion", "climatology")
"""The curves a reliability plot draws in colour (with their row counts below); others faint."""


def reliability_plot(curves: dict[str, pd.DataFrame], title: str) -> Figure:
    """Mean forecast against observed frequency per model (from `reliability_table`), rows below.

    The axes zoom to the populated range: flush probabilities are rare, so a full 0-100 % square
    would squeeze every point into a corner. With many models, the champion and climatology are
    drawn in colour and the rest as a faint grey backdrop.
    """
    fig = _figure()
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    upper = 0.0
    others = 0
    for name, table in curves.items():
        _require(table, RELIABILITY_COLUMNS, f"curves[{name!r}]")
        table = table.dropna(subset=list(RELIABILITY_COLUMNS))
        table = table[table["count"] > 0]
        if name in HIGHLIGHTED or len(curves) <= len(HIGHLIGHTED):
            style = {"marker": "o", "label": name, "linewidth": 2.0, "zorder": 3}
        else:  # ten overlapping curves are unreadable: the rest stay as a faint backdrop
            label = "other models" if not others else None
            style = {"color": "#c8c8c8", "linewidth": 0.8, "label": label, "zorder": 1}
            others += 1
        (line,) = top.plot(table["mean_forecast"], table["observed"], **style)
        if name in HIGHLIGHTED or len(curves) <= len(HIGHLIGHTED):
            bottom.plot(table["mean_forecast"], table["count"], marker=".", color=line.get_color())
        upper = max(upper, table["mean_forecast"].max(), table["observed"].max(), 0.0)
    upper = min(1.0, 1.05 * upper) if upper > 0 else 1.0
    top.plot([0, upper], [0, upper], color="grey", linestyle="--", label="perfect")
    top.set(xlim=(0, upper), ylim=(0, upper), ylabel="observed frequency", title=title)
    bottom.set(xlabel="mean forecast", ylabel="rows")
    if any(len(line.get_xdata()) for line in bottom.get_lines()):
        bottom.set_yscale("log")
    top.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    bottom.xaxis.set_major_formatter(PercentFormatter(xmax=1))
    top.legend(loc="upper left")
    _grid(top)
    _grid(bottom)
    return fig


def pr_curves(y: np.ndarray, scores: dict[str, np.ndarray], title: str) -> Figure:
    """Precision-recall curve per model, PR-AUC in the legend, the base rate as the floor."""
    y = np.asarray(y, dtype="float64")
    if y.ndim != 1 or not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y must be a 1-d array of 0/1 labels")
    if y.sum() == 0:
        raise ValueError("y has no positives: precision-recall is undefined")
    fig = _figure()
    ax = fig.subplots()
    for name, p in scores.items():
        p = np.asarray(p, dtype="float64")
        if p.shape != y.shape:
            raise ValueError(f"scores[{name!r}] has shape {p.shape}, y has {y.shape}")
        precision, recall, _ = precision_recall_curve(y, p)
        ax.plot(
            recall, precision, label=f"{name} (PR-AUC {pr_auc(y, p):.3f})", drawstyle="steps-post"
        )
    base = y.mean()
    ax.axhline(base, color="grey", linestyle="--", label=f"base rate {base:.2%}")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision", title=title)
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.legend(loc="upper right")
    _grid(ax)
    return fig


def feature_importance(importance: pd.Series, title: str, top: int = 20) -> Figure:
    """Horizontal bars of the `top` features by importance (gain), the largest at the top."""
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    values = pd.to_numeric(importance, errors="coerce").dropna()
    if values.empty:
        raise ValueError("importance has no numeric values")
    values = values.sort_values(ascending=False, kind="stable").head(top)
    fig = _figure()
    ax = fig.subplots()
    positions = np.arange(len(values))[::-1]
    ax.barh(positions, values.to_numpy(), color="tab:blue")
    ax.set_yticks(positions, [str(label) for label in values.index])
    ax.set(xlabel="importance (gain)", title=title)
    _grid(ax)
    return fig


def _percentiles(column: pd.Series) -> np.ndarray:
    """Within-feature rank in [0, 1]; NaN for missing or non-numeric values (e.g. `symbol`)."""
    if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
        return np.full(len(column), np.nan)
    numeric = pd.to_numeric(column, errors="coerce").astype("float64")
    return numeric.rank(pct=True).to_numpy()


def shap_beeswarm(
    contributions: np.ndarray, X: pd.DataFrame, title: str, top: int = 15, max_points: int = 5000
) -> Figure:
    """SHAP beeswarm: one jittered row of contributions per feature, coloured by feature value.

    Features are ranked by mean |SHAP| over all rows; at most `max_points` rows (a fixed random
    subset) are drawn so a big test fold stays a small PNG. Grey points have no numeric value.
    """
    values = np.asarray(contributions, dtype="float64")
    if values.shape != X.shape:
        raise ValueError(f"contributions has shape {values.shape}, X has {X.shape}")
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    rng = np.random.default_rng(0)
    order = np.argsort(-np.nanmean(np.abs(values), axis=0), kind="stable")[:top]
    rows = np.arange(len(X))
    if len(rows) > max_points:
        rows = np.sort(rng.choice(rows, size=max_points, replace=False))
    cmap = mpl.colormaps["coolwarm"]
    fig = _figure()
    ax = fig.subplots()
    positions = np.arange(len(order))[::-1]
    for y, j in zip(positions, order, strict=True):
        shap_row = values[rows, j]
        colour = _percentiles(X.iloc[:, j])[rows]
        jitter = y + rng.uniform(-0.35, 0.35, len(rows))
        known = ~np.isnan(colour)
        ax.scatter(shap_row[~known], jitter[~known], s=6, color="lightgrey", linewidths=0)
        ax.scatter(
            shap_row[known],
            jitter[known],
            s=6,
            c=colour[known],
            cmap=cmap,
            vmin=0,
            vmax=1,
            linewidths=0,
        )
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(positions, [str(X.columns[j]) for j in order])
    ax.set(xlabel="SHAP value (contribution to log-odds)", title=title)
    _grid(ax)
    bar = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap), ax=ax, ticks=[0, 1], aspect=40)
    bar.ax.set_yticklabels(["low", "high"])
    bar.set_label("feature value (low→high)")
    return fig


def fold_timeline(folds: pd.DataFrame, title: str) -> Figure:
    """PR-AUC per walk-forward test window as steps over time, positives as bars behind them.

    A fold without positives has no PR-AUC (NaN) and leaves a gap rather than a fake zero.
    """
    _require(folds, FOLD_COLUMNS, "folds")
    start = pd.to_datetime(folds["test_start"], utc=True)
    end = pd.to_datetime(folds["test_end"], utc=True)
    if (end <= start).any():
        raise ValueError("folds has a test_end at or before its test_start")
    x0 = mdates.date2num(start.dt.tz_localize(None).to_numpy())
    x1 = mdates.date2num(end.dt.tz_localize(None).to_numpy())
    score = pd.to_numeric(folds["pr_auc"], errors="coerce").to_numpy(dtype="float64")
    fig = _figure()
    ax = fig.subplots()
    counts = ax.twinx()
    counts.bar(
        x0,
        folds["positives"].to_numpy(),
        width=x1 - x0,
        align="edge",
        color="tab:orange",
        alpha=0.25,
        label="positives",
    )
    counts.set_ylabel("positives in test window")
    ax.set_zorder(counts.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.hlines(score, x0, x1, color="tab:blue", linewidth=2, label="PR-AUC")
    ax.plot((x0 + x1) / 2, score, "o", color="tab:blue")
    ax.set(ylim=(0, 1), ylabel="PR-AUC", title=title)
    ax.xaxis_date(tz="UTC")
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    _grid(ax)
    return fig
