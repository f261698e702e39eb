"""Alerts: rules on the cached risk of each closed bar, delivered as signed webhooks or log lines.

A rule names a symbol (and optionally a venue), a horizon, a threshold (`p_at_least`, a
calibrated probability, or `band_at_least`, a risk band) and a cooldown. Rules come from a YAML
file (`flushcast serve --alerts rules.yaml`) or `POST /alerts` (kept in the live folder).

When it fires: each rule is evaluated once per closed bar; it fires when its condition holds and
it has not fired within the cooldown, counted in market time (bar open times), so a replay at any
speed alerts as the live market would. A risk that stays above the threshold is re-sent once per
cooldown; a risk flapping around the threshold fires at most once per cooldown as well: the
cooldown, not the crossing, is what limits alerts. The state (last bar evaluated, last firing)
survives restarts, so a bar never alerts twice.

Delivery: a webhook POST with the alert as JSON, `X-Flushcast-Signature: sha256=<hex>` (HMAC-SHA256
of the exact body with the secret from the environment variable the config names) and
`X-Flushcast-Alert-Id` (for the receiver to drop repeats), retried with exponential backoff on
connection errors, timeouts, 429 and 5xx; an alert that cannot be delivered is appended to
`dead_letters.jsonl` in the live folder. Deliveries run in their own thread, so a slow receiver
never delays the next bar. The log sink writes one JSON line per alert to stdout.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import math
import os
import queue
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from flushcast.common import yamlfile
from flushcast.common.atomic import write_atomic
from flushcast.common.errors import shorten
from flushcast.forecast.bands import EDGES, Band
from flushcast.live.risk import RiskEntry, Snapshot
from flushcast.marketdata.schema import NAME_MAX, NAME_PATTERN
from flushcast.serving.responses import RegisteredModel

log = logging.getLogger("flushcast.alerts")

SIGNATURE_HEADER = "X-Flushcast-Signature"
ID_HEADER = "X-Flushcast-Alert-Id"
DEFAULT_SECRET_ENV = "FLUSHCAST_WEBHOOK_SECRET"
RULES_FILE = "alerts.json"
STATE_FILE = "alerts_state.json"
DEAD_LETTERS = "dead_letters.jsonl"
OUTBOX = "outbox"
MAX_COOLDOWN_S = 30 * 86400.0
"""The longest cooldown a rule may have: 30 days (a longer one is a rule that fires once)."""
MAX_API_RULES = 1000
"""Rules `POST /alerts` keeps; each post rewrites the file, so the file stays small."""
_DURATION = re.compile(r"^\s*(\d{1,12}(?:\.\d{1,12})?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RANK = {name: i for i, name in enumerate(["low", *(name for _, name in reversed(EDGES))])}


class AlertConfigError(ValueError):
    """A rules file or rule that cannot be used; the message names the file and the key."""


def seconds(value: str | float) -> float:
    """A duration: seconds, or text like `90s`, `30m`, `6h`, `1d`; finite, from 0 to 30 days.

    The bound is checked here, where every cooldown is read, because the evaluation adds it to
    dates: an unbounded one (1e300, Infinity, NaN) would fail every later evaluation.
    """
    if isinstance(value, bool):
        raise ValueError(f"{shorten(value)} is not a duration like 30m, 6h or 1d")
    if isinstance(value, int | float):
        total = float(value)
    else:
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"{shorten(value)} is not a duration like 30m, 6h or 1d")
        total = float(match[1]) * _UNITS[match[2]]
    if not (math.isfinite(total) and 0 <= total <= MAX_COOLDOWN_S):
        raise ValueError(
            f"{shorten(value)} is not a duration from 0 to {MAX_COOLDOWN_S / 86400:g} days"
        )
    return total


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class AlertRule(Strict):
    id: str | None = Field(
        None,
        max_length=NAME_MAX,
        pattern=NAME_PATTERN,
        description="Set by the service when omitted.",
    )
    symbol: str = Field(max_length=NAME_MAX, pattern=NAME_PATTERN, examples=["BTCUSDT"])
    venue: str | None = Field(
        None,
        max_length=NAME_MAX,
        pattern=NAME_PATTERN,
        description="Only this venue (default: every venue).",
    )
    horizon: int = Field(ge=1, le=24 * 366, description="Hours; one of the model's horizons.")
    p_at_least: float | None = Field(None, gt=0, lt=1, description="Fire at p_flush >= this.")
    band_at_least: Literal["elevated", "high", "extreme"] | None = Field(
        None, description="Fire at this risk band or above."
    )
    cooldown: (
        Annotated[str, Field(max_length=32)]
        | Annotated[float, Field(strict=True, ge=0, le=MAX_COOLDOWN_S)]
    ) = Field(
        "6h",
        description="Market time between two firings: seconds or 30m, 6h, 1d; at most 30 days.",
    )
    webhook: bool = Field(True, description="Deliver to the configured webhook.")
    log: bool = Field(True, description="Write the alert as a JSON line to stdout.")

    @model_validator(mode="after")
    def _check(self) -> AlertRule:
        if (self.p_at_least is None) == (self.band_at_least is None):
            raise ValueError("give exactly one of `p_at_least` or `band_at_least`")
        return self

    @field_validator("cooldown")
    @classmethod
    def _bounded(cls, value: str | float) -> str | float:
        seconds(value)
        return value

    @property
    def cooldown_s(self) -> float:
        return seconds(self.cooldown)

    def holds(self, p_flush: float, band: Band) -> bool:
        if self.p_at_least is not None:
            return p_flush >= self.p_at_least
        return _RANK[band] >= _RANK[self.band_at_least]  # type: ignore[index]

    def condition(self) -> str:
        if self.p_at_least is not None:
            return f"p_flush >= {self.p_at_least:g} within {self.horizon} h"
        return f"risk band {self.band_at_least} or above within {self.horizon} h"


class WebhookConfig(Strict):
    url: str = Field(pattern=r"^https?://")
    secret_env: str = Field(DEFAULT_SECRET_ENV, description="Environment variable of the secret.")
    attempts: int = Field(5, ge=1, le=20)
    timeout_s: float = Field(5.0, gt=0, le=60)
    backoff_s: float = Field(0.5, ge=0, le=60, description="First retry delay; doubles.")


class AlertsConfig(Strict):
    webhook: WebhookConfig | None = None
    rules: list[AlertRule] = Field(default_factory=list)


class Alert(BaseModel):
    alert_id: str
    rule_id: str
    symbol: str
    venue: str
    horizon_hours: int
    as_of: datetime
    p_flush: float
    risk_band: Band
    relative_risk: float
    p_long_flush: float
    condition: str
    model: RegisteredModel
    fired_at: datetime


def _problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def load_config(path: str | Path) -> AlertsConfig:
    """Rules and webhook from YAML; AlertConfigError naming the file and the key otherwise."""
    path = Path(path)
    try:
        document = yamlfile.load(path.read_text(encoding="utf-8")) or {}
        config = AlertsConfig.model_validate(document)
    except OSError as exc:
        raise AlertConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except (yamlfile.YamlError, UnicodeDecodeError) as exc:
        raise AlertConfigError(f"{path}: not YAML: {exc}") from None
    except ValidationError as exc:
        raise AlertConfigError(f"{path}: {_problem(exc)}") from None
    for i, rule in enumerate(config.rules):
        if rule.id is None:
            config.rules[i] = rule.model_copy(update={"id": f"file-{i + 1}"})
    if config.webhook is not None and not os.environ.get(config.webhook.secret_env):
        raise AlertConfigError(
            f"{path}: webhook.secret_env: set the environment variable "
            f"{config.webhook.secret_env} to the webhook's signing secret"
        )
    return config


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path`, for a read-change-write of files the workers share."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_json(path: Path, default: object) -> object:
    """A JSON file of the live folder, or `default` if absent. One that cannot be read (edited
    by hand, say) is moved aside to `<name>.unreadable` and logged, so it stops nothing (the
    rules and state are written atomically: only a hand edit can break them) and is not lost."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default
    except (ValueError, OSError) as exc:
        aside = path.with_name(path.name + ".unreadable")
        with contextlib.suppress(OSError):
            os.replace(path, aside)
        log.error("%s unreadable (%s): moved to %s, starting without it", path, exc, aside.name)
        return default


def write_json(path: Path, document: object) -> None:
    """A JSON file written atomically (readers see the old or the new one)."""
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(document, indent=1, default=str)))


class AlertState:
    """`alerts_state.json`: per rule and venue the last bar evaluated and the last firing, and the
    outbox, the alerts fired but not yet delivered or dead-lettered.

    The outbox is written in the same atomic write as the firing it records, so a worker killed
    at any instant leaves either no firing or a firing still to deliver: the next leader sends
    what the outbox holds (at least once; receivers drop repeats by `X-Flushcast-Alert-Id`).
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / STATE_FILE
        self.lock = folder / "alerts_state.lock"

    def read(self) -> tuple[dict[str, dict[str, str]], dict[str, dict]]:
        document = read_json(self.path, {})
        if not isinstance(document, dict):
            return {}, {}
        if "format" not in document:  # written before the outbox existed: firings only
            return document, {}
        return document.get("rules", {}), document.get(OUTBOX, {})

    @contextlib.contextmanager
    def update(self) -> Iterator[tuple[dict[str, dict[str, str]], dict[str, dict]]]:
        """The state to change in place, written back (atomically, under a lock) on exit."""
        with locked(self.lock):
            rules, outbox = self.read()
            yield rules, outbox
            write_json(self.path, {"format": 2, "rules": rules, OUTBOX: outbox})

    def pending(self) -> list[dict]:
        return list(self.read()[1].values())

    def done(self, alert_id: str) -> None:
        with self.update() as (_, outbox):
            outbox.pop(alert_id, None)


class AlertEngine:
    """File rules plus API rules, and the firing state, in the live folder."""

    def __init__(self, folder: Path, config: AlertsConfig) -> None:
        self.folder = folder
        self.config = config
        self.state = AlertState(folder)

    # -- rules -------------------------------------------------------------------------------

    def _stored(self) -> list[dict]:
        """The API rules as stored, valid or not (an invalid one stays until deleted)."""
        stored = read_json(self.folder / RULES_FILE, [])
        return stored if isinstance(stored, list) else []

    def api_rules(self) -> list[AlertRule]:
        """The valid API rules; one stored before a check existed and failing it now is logged
        and skipped, never allowed to stop the others."""
        rules = []
        for raw in self._stored():
            try:
                rules.append(AlertRule.model_validate(raw))
            except ValidationError as exc:
                rule_id = raw.get("id") if isinstance(raw, dict) else None
                log.error("alert rule %s skipped: %s", shorten(rule_id), _problem(exc))
        return rules

    def rules(self) -> list[AlertRule]:
        return [*self.config.rules, *self.api_rules()]

    def add(self, rule: AlertRule, horizons: list[int]) -> AlertRule:
        if rule.horizon not in horizons:
            raise AlertConfigError(
                f"horizon: the model has no {rule.horizon} h horizon ({horizons})"
            )
        with locked(self.folder / "alerts.lock"):
            stored = self._stored()
            if len(stored) >= MAX_API_RULES:
                raise AlertConfigError(
                    f"id: {MAX_API_RULES} rules exist already, the most the service keeps; "
                    "delete some first"
                )
            if rule.id is None:
                rule = rule.model_copy(update={"id": uuid.uuid4().hex[:12]})
            taken = {r.id for r in self.config.rules} | {
                r.get("id") for r in stored if isinstance(r, dict)
            }
            if rule.id in taken:
                raise AlertConfigError(f"id: a rule {shorten(rule.id)} exists already")
            write_json(self.folder / RULES_FILE, [*stored, rule.model_dump()])
        return rule

    def remove(self, rule_id: str) -> bool:
        with locked(self.folder / "alerts.lock"):
            stored = self._stored()
            kept = [r for r in stored if not (isinstance(r, dict) and r.get("id") == rule_id)]
            if len(kept) == len(stored):
                return False
            write_json(self.folder / RULES_FILE, kept)
        return True

    # -- evaluation --------------------------------------------------------------------------

    def evaluate(self, snapshot: Snapshot, now: datetime) -> list[tuple[Alert, AlertRule]]:
        """The alerts this snapshot fires (each rule at most once per bar and per cooldown),
        recorded in the outbox with the firing state.

        Each rule is evaluated on its own: one that fails is logged with its id and skipped,
        so it cannot stop the other rules, or the live loop that calls this.
        """
        fired = []
        with self.state.update() as (state, outbox):
            for rule in self.rules():
                try:
                    mine = [
                        (alert, rule)
                        for entry in snapshot.entries
                        if entry.symbol == rule.symbol
                        and (not rule.venue or entry.venue == rule.venue)
                        if (alert := self._check(rule, entry, snapshot.model, state, now))
                        is not None
                    ]
                except Exception:  # one bad rule must never switch alerting off: say which
                    log.exception("alert rule %s not evaluated; the other rules were", rule.id)
                    continue
                fired += mine
            for alert, rule in fired:
                outbox[alert.alert_id] = {
                    "alert": alert.model_dump(mode="json"),
                    "log": rule.log,
                    "webhook": rule.webhook,
                }
        return fired

    @staticmethod
    def _check(
        rule: AlertRule,
        entry: RiskEntry,
        model: RegisteredModel,
        state: dict[str, dict[str, str]],
        now: datetime,
    ) -> Alert | None:
        key = f"{rule.id}@{entry.venue}"
        seen = state.setdefault(key, {})
        as_of = entry.as_of
        assert as_of is not None
        if "last_bar" in seen and datetime.fromisoformat(seen["last_bar"]) >= as_of:
            return None  # this bar was evaluated already
        seen["last_bar"] = as_of.isoformat()
        horizon = next((h for h in entry.horizons if h.horizon_hours == rule.horizon), None)
        if horizon is None or not rule.holds(horizon.p_flush, horizon.risk_band):
            return None
        last = seen.get("last_fired")
        if last is not None and as_of - datetime.fromisoformat(last) < timedelta(
            seconds=rule.cooldown_s
        ):
            return None
        seen["last_fired"] = as_of.isoformat()
        return Alert(
            alert_id=hashlib.sha256(f"{key}|{as_of.isoformat()}".encode()).hexdigest()[:16],
            rule_id=str(rule.id),
            symbol=entry.symbol,
            venue=entry.venue,
            horizon_hours=rule.horizon,
            as_of=as_of,
            p_flush=horizon.p_flush,
            risk_band=horizon.risk_band,
            relative_risk=horizon.relative_risk,
            p_long_flush=horizon.p_long_flush,
            condition=rule.condition(),
            model=model,
            fired_at=now,
        )


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx stays an HTTPError: following it would resend the alert, or turn the POST into a GET
    without its body, to wherever the receiver points, and count that delivered."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _retry(status: int) -> bool:
    """A redirect, 429 or 5xx may pass on a later attempt; any other refusal will not."""
    return 300 <= status < 400 or status == 429 or status >= 500


class Dispatcher:
    """Delivers alerts in a background thread: log line, then webhook with retries.

    It starts by sending what the outbox holds (fired by a worker that died before delivering),
    and clears each alert from the outbox once delivered or dead-lettered.
    """

    def __init__(self, folder: Path, webhook: WebhookConfig | None) -> None:
        self.folder = folder
        self.webhook = webhook
        self.state = AlertState(folder)
        self.delivered = 0
        self.dead = 0
        self._queue: queue.Queue[dict | None] = queue.Queue()
        self._queued: set[str] = set()
        for pending in self.state.pending():
            log.warning(
                "alert %s was fired but not delivered: sending it", pending["alert"]["alert_id"]
            )
            self._put(pending)
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        self._thread.start()

    def send(self, alert: Alert, rule: AlertRule) -> None:
        item = {"alert": alert.model_dump(mode="json"), "log": rule.log, "webhook": rule.webhook}
        self._put(item)

    def _put(self, item: dict) -> None:
        """Queue an alert unless it is queued already (the outbox and `send` may both hold it)."""
        alert_id = item["alert"]["alert_id"]
        if alert_id not in self._queued:
            self._queued.add(alert_id)
            self._queue.put(item)

    def close(self, timeout: float = 30.0) -> None:
        """Deliver what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._deliver(item)
            except Exception:  # the thread must outlive one alert; it stays in the outbox
                log.exception("alert %s not delivered", item["alert"].get("alert_id"))

    def _deliver(self, item: dict) -> None:
        alert = Alert.model_validate(item["alert"])
        body = alert.model_dump_json().encode()
        if item["log"]:
            print(body.decode(), flush=True)
        if item["webhook"] and self.webhook is not None:
            self._post(alert, body, self.webhook)
        self.state.done(alert.alert_id)

    def _post(self, alert: Alert, body: bytes, hook: WebhookConfig) -> None:
        secret = os.environ.get(hook.secret_env, "")
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign(secret, body),
            ID_HEADER: alert.alert_id,
            "user-agent": "flushcast-alerts",
        }
        problem = ""
        for attempt in range(hook.attempts):
            if attempt:
                time.sleep(min(hook.backoff_s * 2 ** (attempt - 1), 30.0))
            request = urllib.request.Request(hook.url, data=body, headers=headers, method="POST")
            try:
                with _OPENER.open(request, timeout=hook.timeout_s) as response:
                    response.read()
                self.delivered += 1
                return
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code}"
                if 300 <= exc.code < 400:
                    problem += " (a redirect: webhooks are not redirected)"
                if not _retry(exc.code):
                    break  # the receiver refused this alert: retrying will not help
            except (urllib.error.URLError, OSError) as exc:
                problem = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        self.dead += 1
        log.error(
            "alert %s not delivered to %s (%s): dead-lettered", alert.alert_id, hook.url, problem
        )
        line = json.dumps(
            {"alert": json.loads(body), "url": hook.url, "problem": problem,
             "attempts": attempt + 1, "at": datetime.now(alert.fired_at.tzinfo).isoformat()}
        )  # fmt: skip
        with (self.folder / DEAD_LETTERS).open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
