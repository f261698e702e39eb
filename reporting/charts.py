"""The report's figures: the "why" waterfall, the liquidation heatmap, the probability timeline.

Like `training.plots`, every function returns a bare matplotlib `Figure` (no pyplot, no global
state, safe in a server thread); `data_uri` turns one into an embeddable PNG so the page needs
no other file and no network.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from flushcast.features.heatmap import Heatmap
from flushcast.reporting.sentences import effect

DPI = 100
RAISES = "#c0392b"
LOWERS = "#2e86c1"
EVENT_COLOURS = {"long_flush": "#c0392b", "short_squeeze": "#1e8449", "mixed": "#7d3c98"}
HORIZON_COLOURS = ("#d35400", "#8e44ad", "#2471a3", "#117a65")


def data_uri(fig: Figure) -> str:
    """The figure as a base64 PNG `data:` URI for an <img> tag."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return png_uri(buffer.getvalue())


def png_uri(png: bytes) -> str:
    """PNG bytes (e.g. an MLflow artefact) as a `data:` URI."""
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("not a PNG image (bad signature)")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _time_axis(ax: Axes) -> None:
    ax.xaxis_date(tz="UTC")
    locator = mdates.AutoDateLocator(tz="UTC")
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz="UTC"))


def _naive(times: pd.DatetimeIndex | pd.Series) -> np.ndarray:
    """Matplotlib date numbers of UTC timestamps."""
    stamps = pd.DatetimeIndex(times)
    if stamps.tz is not None:
        stamps = stamps.tz_convert("UTC").tz_localize(None)
    return mdates.date2num(stamps.to_numpy())


def waterfall(
    base_value: float,
    steps: Sequence[tuple[str, float]],
    other: float,
    title: str,
) -> Figure:
    """Log-odds from the model's average (`base_value`) to this bar's score, one bar per reason.

    `steps` are (label, contribution) in the order to draw them (largest first); `other` is the
    sum of every remaining input, drawn as one bar so the chain ends exactly at the score. The
    average and the score are vertical lines: the axis then spans the chain, not zero.
    """
    labels = [*(label for label, _ in steps), "all other inputs"]
    deltas = [value for _, value in steps] + [other]
    score = base_value + sum(deltas)
    fig = Figure(figsize=(6.4, 0.36 * len(labels) + 1.3), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(labels))[::-1]
    start = base_value
    for row, delta in zip(y, deltas, strict=True):
        ax.barh(row, delta, left=start, height=0.6, color=RAISES if delta > 0 else LOWERS)
        ax.annotate(
            effect(delta),
            (max(start, start + delta), row),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
        start += delta
    chain = base_value + np.concatenate([[0.0], np.cumsum(deltas)])
    pad = max(0.15 * float(np.ptp(chain)), 0.02)
    ax.set_xlim(chain.min() - pad, chain.max() + pad)
    ax.axvline(base_value, color="grey", linestyle=":", linewidth=1.5)
    ax.axvline(score, color="#34495e", linewidth=1.5)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel(
        f"flush model score (log-odds): dotted = the average bar ({base_value:.2f}), "
        f"solid = this bar ({score:.2f})",
        fontsize=8,
    )
    ax.set_title(f"{title}; red raises the risk, blue lowers it", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def liquidation_heatmap(
    heatmap: Heatmap,
    bars: pd.DataFrame,
    title: str,
    band: float = 0.12,
) -> Figure:
    """Estimated liquidation levels (price × time, warm = dense) under the close, now marked.

    `bars` holds `timestamp` and `close` of the shown window; the heatmap is cut to that window
    and to `band` (fraction) around its price range, where the levels a trader acts on sit.
    """
    shown = pd.DatetimeIndex(bars["timestamp"])
    keep = (heatmap.timestamps >= shown.min()) & (heatmap.timestamps <= shown.max())
    if not keep.any():
        raise ValueError("the heatmap does not cover the bars to show")
    close = bars["close"].to_numpy(dtype="float64")
    low, high = np.nanmin(close) * (1 - band), np.nanmax(close) * (1 + band)
    levels = heatmap.price_levels
    rows = (levels >= low) & (levels <= high)
    density = (heatmap.long_density + heatmap.short_density)[np.ix_(keep, rows)]
    edges_t = _naive(heatmap.timestamps[keep])
    width = float(np.median(np.diff(edges_t))) if len(edges_t) > 1 else 1 / 24  # one bar, in days
    edges_t = np.append(edges_t, edges_t[-1] + width)
    step = np.log(levels[1] / levels[0]) if len(levels) > 1 else 0.0025
    edges_p = np.exp(
        np.append(np.log(levels[rows]) - step / 2, np.log(levels[rows][-1]) + step / 2)
    )

    fig = Figure(figsize=(9.5, 4.6), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    ax.set_facecolor("black")
    density = density / 1e6
    top = float(np.nanpercentile(density, 99.5)) if density.size and np.nanmax(density) > 0 else 1
    mesh = ax.pcolormesh(
        edges_t,
        edges_p,
        density.T,
        cmap=mpl.colormaps["inferno"],
        norm=PowerNorm(gamma=0.5, vmin=0, vmax=max(top, 1e-9)),
        shading="flat",
    )
    times = _naive(bars["timestamp"])
    ax.plot(times + width / 2, close, color="#7fdbff", linewidth=1.2, label="close")
    now = close[-1]
    ax.axhline(now, color="white", linestyle="--", linewidth=0.9)
    ax.annotate(
        f"now {now:,.2f}",
        (times[-1], now),
        xytext=(-6, 6),
        textcoords="offset points",
        ha="right",
        color="white",
        fontsize=9,
    )
    ax.set(ylim=(edges_p[0], edges_p[-1]), ylabel="price", title=title)
    _time_axis(ax)
    bar = fig.colorbar(mesh, ax=ax, aspect=30)
    bar.set_label("estimated liquidations at the level (USD million)")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def timeline(
    stamps: pd.Series,
    probabilities: dict[int, np.ndarray],
    base_rates: dict[int, float],
    close: np.ndarray,
    events: pd.Series,
    event_horizon: int,
    title: str,
) -> Figure:
    """Flush probability per horizon over recent weeks above the price, past flushes shaded.

    `events` is the direction label of the shortest horizon per bar (NaN where none): a shaded
    bar was followed by a flush within `event_horizon` hours, which is what a high probability
    there should have announced. Dashed lines are each horizon's training base rate.
    """
    times = _naive(stamps)
    fig = Figure(figsize=(9.5, 5.2), dpi=DPI, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    for i, (h, p) in enumerate(sorted(probabilities.items())):
        colour = HORIZON_COLOURS[i % len(HORIZON_COLOURS)]
        top.plot(times, p, color=colour, linewidth=1.1, label=f"{h} h")
        top.axhline(base_rates[h], color=colour, linestyle="--", linewidth=0.8, alpha=0.8)
    top.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    top.set(ylabel="flush probability", title=title)
    top.set_ylim(bottom=0)
    bottom.plot(times, close, color="#2c3e50", linewidth=1.0)
    bottom.set_ylabel("close")
    labels = events.astype("object").to_numpy()
    for name, colour in EVENT_COLOURS.items():
        mask = labels == name
        if not mask.any():
            continue
        for ax in (top, bottom):
            ax.fill_between(
                times,
                0,
                1,
                where=mask,
                step="post",
                color=colour,
                alpha=0.18,
                linewidth=0,
                transform=ax.get_xaxis_transform(),
                label=f"{name.replace('_', ' ')} within {event_horizon} h" if ax is top else None,
            )
    top.legend(loc="upper left", fontsize=8, ncols=3)
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    _time_axis(bottom)
    return fig
