"""Prometheus metrics of live operation, appended to BentoML's own `/metrics`.

Every figure comes from the live folder's shared state (the cached risk, the monitoring figures,
the dead-letter log), so whichever worker answers a scrape reports the same values. Built on each
scrape with a private registry: BentoML's multiprocess metric files are not involved.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flushcast.live.alerts import DEAD_LETTERS

PREFIX = "flushcast_"


def _families(live: Any) -> Iterator:
    from prometheus_client.core import GaugeMetricFamily

    def gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
        return GaugeMetricFamily(PREFIX + name, doc, labels=labels)

    identity = live.service.predictor.identity
    info = gauge(
        "model_info", "The model this worker serves.", ["model_name", "model_version", "run_id"]
    )
    info.add_metric([identity.model_name, identity.model_version, identity.run_id], 1.0)
    yield info

    snapshot = live.book.snapshot
    if snapshot is not None:
        labels = ["symbol", "venue", "horizon_hours"]
        p = gauge("risk_p_flush", "Cached flush probability of the latest closed bar.", labels)
        rr = gauge("risk_relative_risk", "p_flush over the training base rate.", labels)
        age = gauge(
            "risk_bar_age_seconds", "Seconds since the latest bar closed.", ["symbol", "venue"]
        )
        now = live.clock.now()
        for entry in snapshot.entries:
            for h in entry.horizons:
                key = [entry.symbol, entry.venue, str(h.horizon_hours)]
                p.add_metric(key, h.p_flush)
                rr.add_metric(key, h.relative_risk)
            age.add_metric([entry.symbol, entry.venue], (now - entry.bar_close).total_seconds())
        yield from (p, rr, age)

    monitor = live.monitor
    if monitor is not None:
        matured = gauge(
            "live_matured_predictions", "Logged predictions with a known label.", ["horizon_hours"]
        )
        figures = {
            (kind, metric): gauge(
                f"{kind}_{metric}",
                f"{metric.replace('_', ' ')} of the {kind.replace('_', '-')} forecasts",
                ["horizon_hours"],
            )
            for kind in ("live", "walk_forward")
            for metric in ("brier", "brier_skill", "ece")
        }
        for check in monitor["horizons"]:
            h = [str(check["horizon_hours"])]
            matured.add_metric(h, check["matured"])
            for metric in ("brier", "brier_skill", "ece"):
                if check[metric] is not None:
                    figures[("live", metric)].add_metric(h, check[metric])
                if check["walk_forward"].get(metric) is not None:
                    figures[("walk_forward", metric)].add_metric(h, check["walk_forward"][metric])
        yield matured
        yield from figures.values()
        psi = gauge(
            "feature_psi", "Population stability index, training span vs recent bars.", ["feature"]
        )
        for drift in monitor["drift"]:
            if drift["psi"] is not None:
                psi.add_metric([drift["feature"]], drift["psi"])
        yield psi

    dead = live.folder / DEAD_LETTERS
    count = sum(1 for _ in dead.open()) if dead.is_file() else 0
    letters = gauge("alert_dead_letters", "Alerts that could not be delivered.", [])
    letters.add_metric([], count)
    yield letters


def metrics_text(live: Any) -> str:
    """The figures of a worker's live state, as text (its `metrics_text` calls this)."""
    from prometheus_client import CollectorRegistry, generate_latest

    class Collector:
        def collect(self) -> Iterator:
            return _families(live)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    return generate_latest(registry).decode()
