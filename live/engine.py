"""Live operation of the service: its own market state, risk by symbol, alerts, monitoring, reloads.

`flushcast serve --live DIR` writes the options to `DIR/config.json` and points every worker at
DIR (`FLUSHCAST_LIVE`). Each worker runs one background thread (`Live.tick` every `poll_s`):

- one worker is the leader: the one holding the exclusive lock on `DIR/leader.lock` (a dead
  leader's lock is released by the kernel and another worker takes it at its next tick). When
  the store changes (a collector wrote a closed bar) or the model does, the leader computes the
  risk of every series once (`live.risk.compute`), writes it to `DIR/risk.json` atomically,
  logs those predictions once, evaluates the alert rules, and refreshes the monitoring figures
  (`DIR/monitor.json`); with `--watch-champion` it also polls the registry's champion alias;
- every worker answers /risk from the latest `risk.json` (re-read when it changes) and follows
  the model pointer `DIR/champion.json`: when a reload (`POST /reload`, or the leader seeing a
  new champion) moves it, each worker loads that model, warms it up and swaps it in with one
  assignment, so requests in flight finish on the old model and none is dropped.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from flushcast.common.atomic import write_atomic
from flushcast.common.errors import DataError
from flushcast.forecast.identity import ModelIdentity
from flushcast.forecast.rows import Rows
from flushcast.live.alerts import (
    AlertEngine,
    AlertsConfig,
    Dispatcher,
    load_config,
    locked,
    write_json,
)
from flushcast.live.clock import ServiceClock
from flushcast.live.predictions_log import PredictionLog, compact, log_rows, read_recent
from flushcast.live.risk import Limits, RiskBook, Snapshot, compute, utc_now
from flushcast.marketdata.store import MarketStore
from flushcast.serving.endpoints import ServedPredictor
from flushcast.serving.responses import Prediction, ServedModel

LIVE_ENV = "FLUSHCAST_LIVE"
"""The live folder; unset: live operation is off (/risk answers 503)."""
CONFIG = "config.json"
RISK = "risk.json"
POINTER = "champion.json"
MONITOR = "monitor.json"
PREDICTIONS = "predictions"

log = logging.getLogger("flushcast.live")


@dataclass
class LiveConfig:
    store: str
    alerts: str | None = None
    tracking_uri: str | None = None
    watch_champion_s: float | None = None
    clock: str | None = None
    stale_after_s: float = 2 * 3600.0
    stale_limit_s: float = 6 * 3600.0
    poll_s: float = 1.0

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / CONFIG, lambda tmp: tmp.write_text(json.dumps(asdict(self))))

    @classmethod
    def load(cls, folder: Path) -> LiveConfig:
        return cls(**json.loads((folder / CONFIG).read_text()))


class LoggingPredictor(ServedPredictor):
    """The service's predictor, logging every prediction it answers (cached predictions are
    logged once per bar by the live loop instead)."""

    log: PredictionLog | None = None
    clock = staticmethod(utc_now)

    def predictions(self, rows: Rows, explain: bool, top_k: int) -> list[Prediction]:
        answered = super().predictions(rows, explain, top_k)
        if self.log is not None:
            self.log.record(log_rows(rows, answered, self.identity, "request", self.clock()))
        return answered


def monitor_report(
    folder: Path,
    market: Any,
    predictor: Any,
    walk_forward: Any,
    *,
    drift_days: int | None = None,
    now: Any = None,
) -> Any:
    """`live.monitor` on a live folder's prediction log, for `predictor`'s model version."""
    from flushcast.live.monitor import CALIBRATION_DAYS, DRIFT_DAYS, monitor

    return monitor(
        read_recent(folder / PREDICTIONS, CALIBRATION_DAYS),
        market,
        predictor.bundle,
        predictor.identity.model_version,
        walk_forward=walk_forward.record if walk_forward else None,
        now=now,
        drift_days=drift_days or DRIFT_DAYS,
    )


CURRENT: Live | None = None
"""This worker's live state (one service instance per worker process), for the routes."""


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


class Live:
    """The live state of one worker; `service` is the BentoML service instance it serves."""

    def __init__(self, service: Any, folder: Path) -> None:
        self.service = service
        self.folder = folder
        self.config = LiveConfig.load(folder)
        self.clock = ServiceClock(self.config.clock)
        self.clock.sync()
        limits = Limits(
            timedelta(seconds=self.config.stale_after_s),
            timedelta(seconds=self.config.stale_limit_s),
        )
        self.book = RiskBook(limits, self.clock.now)
        self.log = PredictionLog(folder / PREDICTIONS).start()
        alerts = load_config(self.config.alerts) if self.config.alerts else AlertsConfig()
        self.alerts = AlertEngine(folder, alerts)
        self.dispatcher: Dispatcher | None = None
        self.monitor: dict[str, Any] | None = None
        self._lock_file = None
        self._computed_for: tuple | None = None
        self._risk_seen: int | None = None
        self._monitor_seen: int | None = None
        self._pointer_seen = _mtime(folder / POINTER)
        self._watched_at = 0.0
        self._reloading = threading.Lock()
        self._stop = threading.Event()
        self.service.predictor = self._logging(self.service.predictor)
        self.tick()
        self._await_first_snapshot()
        self._thread = threading.Thread(target=self._run, name="live", daemon=True)
        self._thread.start()

    def _await_first_snapshot(self, timeout_s: float = 60.0) -> None:
        """A follower starting beside a leader waits for its first risk (bounded), so no worker
        reports ready and then answers /risk with 503."""
        deadline = time.monotonic() + timeout_s
        while self.book.snapshot is None and time.monotonic() < deadline:
            if not MarketStore(self.config.store).datasets():
                return  # nothing to compute from yet
            time.sleep(0.1)
            if self._lead():
                self._refresh()
            self._load_snapshot()

    @classmethod
    def start(cls, service: Any) -> Live | None:
        """Live operation for `service` if `FLUSHCAST_LIVE` names a folder, else None."""
        global CURRENT
        folder = os.environ.get(LIVE_ENV)
        CURRENT = cls(service, Path(folder)) if folder else None
        return CURRENT

    @property
    def leader(self) -> bool:
        return self._lock_file is not None

    def metrics_text(self) -> str:
        """Live operation's Prometheus metrics, appended to BentoML's (`live.metrics`)."""
        from flushcast.live.metrics import metrics_text

        return metrics_text(self)

    def _logging(self, predictor: Any) -> LoggingPredictor:
        """The same model as a LoggingPredictor writing to this worker's log."""
        identity = ModelIdentity.of(predictor.identity.model_dump())
        logging_predictor = LoggingPredictor(
            predictor.bundle, identity, predictor.identity.promoted
        )
        logging_predictor.log = self.log
        logging_predictor.clock = self.clock.now
        return logging_predictor

    # -- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self.config.poll_s):
            try:
                self.tick()
            except Exception:  # the loop must outlive any one bad tick; it says why
                log.exception("live tick failed; retrying at the next one")

    def tick(self) -> None:
        self.clock.sync()
        self._follow_pointer()
        if self._lead():
            self._watch_registry()
            self._refresh()
        self._load_snapshot()

    def close(self) -> None:
        self._stop.set()
        self.log.close()
        if self.dispatcher is not None:
            self.dispatcher.close()

    def _lead(self) -> bool:
        if self._lock_file is None:
            handle = (self.folder / "leader.lock").open("a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            self._lock_file = handle
            self.dispatcher = Dispatcher(self.folder, self.alerts.config.webhook)
            log.info("worker %d leads live operation", os.getpid())
        return True

    def _store_signature(self) -> tuple:
        datasets = MarketStore(self.config.store).datasets()
        return tuple((str(d.path), _mtime(d.path)) for d in datasets)

    def _refresh(self) -> None:
        predictor = self.service.predictor
        signature = (self._store_signature(), predictor.identity.model_version)
        if signature == self._computed_for:
            return
        self._computed_for = signature  # a failure below is retried at the next change, not at
        market = MarketStore(self.config.store).read()  # every tick
        if market.empty:
            return
        now = self.clock.now()
        try:
            snapshot, rows = compute(predictor, market, now)
        except DataError as exc:
            log.error("risk not computed from %s: %s", self.config.store, exc)
            return
        write_json(self.folder / RISK, json.loads(snapshot.to_json()))
        self.book.load(snapshot)
        self._risk_seen = _mtime(self.folder / RISK)
        entries = "|".join(f"{e.symbol}@{e.venue}@{e.as_of}" for e in snapshot.entries)
        digest = hashlib.sha256(entries.encode()).hexdigest()[:16]
        name = f"risk-v{snapshot.model.model_version}-{digest}"  # the same in every worker
        self.log.write_once(name, log_rows(rows, snapshot.entries, snapshot.model, "risk", now))
        assert self.dispatcher is not None
        for alert, rule in self.alerts.evaluate(snapshot, now):
            self.dispatcher.send(alert, rule)
        compact(self.folder / PREDICTIONS, before=now)
        self._monitor(market, predictor)

    def _monitor(self, market: Any, predictor: Any) -> None:
        try:
            report = monitor_report(
                self.folder, market, predictor, self.service.walk_forward, now=self.clock.now()
            )
        except DataError as exc:
            log.error("monitoring figures not refreshed: %s", exc)
            return
        self.monitor = report.to_dict()
        write_json(self.folder / MONITOR, self.monitor)
        self._monitor_seen = _mtime(self.folder / MONITOR)

    def _load_snapshot(self) -> None:
        seen = _mtime(self.folder / RISK)
        if seen is not None and seen != self._risk_seen:
            self.book.load(Snapshot.from_json((self.folder / RISK).read_text()))
            self._risk_seen = seen
        seen = _mtime(self.folder / MONITOR)
        if seen is not None and seen != self._monitor_seen:
            self.monitor = json.loads((self.folder / MONITOR).read_text())
            self._monitor_seen = seen

    # -- model updates -----------------------------------------------------------------------

    def _follow_pointer(self) -> None:
        seen = _mtime(self.folder / POINTER)
        if seen is None or seen == self._pointer_seen:
            return
        self._pointer_seen = seen
        tag = json.loads((self.folder / POINTER).read_text())["tag"]
        self.switch(tag)

    def switch(self, tag: str) -> ServedModel:
        """Load BentoML model `tag`, warm it up, swap it in (no-op if it is already served).

        A switch follows the registry's champion (`reload`), so the new model is promoted."""
        import bentoml

        from flushcast.serving.loading import load_served

        with self._reloading:
            stored = bentoml.models.get(tag)
            wanted = ServedModel.model_validate({**stored.info.metadata, "promoted": True})
            if wanted == self.service.predictor.identity:
                return wanted
            served = load_served(stored, promoted=True, predictor=LoggingPredictor)
            predictor = served.predictor
            predictor.log = self.log
            predictor.clock = self.clock.now
            self.service.walk_forward = served.walk_forward
            self.service.predictor = predictor  # one assignment: in-flight requests keep the old
            log.info("worker %d now serves %s", os.getpid(), tag)
            return predictor.identity

    def reload(self) -> dict[str, Any]:
        """Import the registry's champion and make every worker serve it (POST /reload)."""
        from flushcast.serving.importer import import_champion

        previous = self.service.predictor.identity
        with locked(self.folder / "import.lock"):
            tag = str(import_champion(self.config.tracking_uri))
            current = self.switch(tag)
            if current != previous:
                write_json(self.folder / POINTER, {"tag": tag, **current.model_dump()})
                self._pointer_seen = _mtime(self.folder / POINTER)
        return {"previous": previous, "current": current, "changed": current != previous}

    def _watch_registry(self) -> None:
        every = self.config.watch_champion_s
        if not every or time.monotonic() - self._watched_at < every:
            return
        self._watched_at = time.monotonic()
        from flushcast.training.registry import CHAMPION, MODEL_NAME, client

        champion = client(self.config.tracking_uri).get_model_version_by_alias(MODEL_NAME, CHAMPION)
        if str(champion.version) != self.service.predictor.identity.model_version:
            log.info("the registry's champion is version %s: reloading", champion.version)
            self.reload()
