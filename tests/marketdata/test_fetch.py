"""The Binance Vision downloader against a local HTTP server (127.0.0.1) serving fixture zips."""

from __future__ import annotations

import datetime as dt
import http.server
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from flushcast.cli import app
from flushcast.common.errors import DataError
from flushcast.marketdata.fetch import Archive, FetchError, fetch_binance, plan
from flushcast.marketdata.store import MarketStore
from tests.marketdata.fixtures_binance import (
    checksum_line,
    funding_rows,
    funding_zip,
    kline_rows,
    kline_zip,
    metrics_rows,
    metrics_zip,
)


@dataclass
class ArchiveServer:
    """Serves files under `root` with `Range: bytes=N-` support; can cut a response short."""

    root: Path
    url: str = ""
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    cut_after: dict[str, int] = field(default_factory=dict)  # path -> bytes sent, once
    honour_range: bool = True


def _handler(server: ArchiveServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            server.requests.append((path, self.headers.get("Range")))
            file = server.root / path.lstrip("/")
            if not file.is_file():
                self.send_error(404)
                return
            body = file.read_bytes()
            start = 0
            wanted = self.headers.get("Range")
            if wanted and server.honour_range:
                start = int(wanted.removeprefix("bytes=").split("-")[0])
                if start >= len(body):
                    self.send_error(416)
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            cut = server.cut_after.pop(path, None)
            if cut is not None:
                self.wfile.write(body[start : start + cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body[start:])

    return Handler


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ArchiveServer]:
    state = ArchiveServer(root=tmp_path / "published")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/data/futures/um/"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def publish(server: ArchiveServer, archive: Archive, zip_path: Path, checksum: str = "") -> None:
    target = server.root / "data/futures/um" / archive.path
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(zip_path, target)
    checksum = checksum or checksum_line(target)
    target.with_name(target.name + ".CHECKSUM").write_text(checksum)


def publish_two_days(server: ArchiveServer, tmp_path: Path, *, second_day: bool = True) -> None:
    """BTCUSDT 2024-01-01 and -02: daily klines and metrics, January's funding."""
    work = tmp_path / "fixtures"
    days = ["2024-01-01", "2024-01-02"] if second_day else ["2024-01-01"]
    for i, day in enumerate(days):
        kl = kline_zip(work, "BTCUSDT", day, kline_rows(day, 24, seed=i, price=42_000 + 100 * i))
        publish(server, Archive("BTCUSDT", "klines", "daily", day), kl)
        mt = metrics_zip(work, "BTCUSDT", day, metrics_rows(day, seed=i))
        publish(server, Archive("BTCUSDT", "metrics", "daily", day), mt)
    fr = funding_zip(work, "BTCUSDT", "2024-01", funding_rows("2024-01"))
    publish(server, Archive("BTCUSDT", "fundingRate", "monthly", "2024-01"), fr)


def run(server: ArchiveServer, tmp_path: Path, end: str = "2024-01-02"):
    return fetch_binance(
        ["BTCUSDT"],
        dt.date(2024, 1, 1),
        dt.date.fromisoformat(end),
        MarketStore(tmp_path / "store"),
        tmp_path / "cache",
        base_url=server.url,
    )


def zip_requests(server: ArchiveServer) -> list[tuple[str, str | None]]:
    return [r for r in server.requests if r[0].endswith(".zip")]


def test_plan_uses_monthly_klines_only_for_whole_months():
    archives = plan("BTCUSDT", dt.date(2024, 1, 30), dt.date(2024, 3, 1))
    klines = [(a.period, a.label) for a in archives if a.kind == "klines"]
    assert klines == [
        ("daily", "2024-01-30"),
        ("daily", "2024-01-31"),
        ("monthly", "2024-02"),
        ("daily", "2024-03-01"),
    ]
    assert [a.label for a in archives if a.kind == "fundingRate"] == [
        "2024-01",
        "2024-02",
        "2024-03",
    ]
    assert sum(a.kind == "metrics" for a in archives) == 32  # daily only; 2024 is a leap year
    assert archives[2].path == "monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-02.zip"


def test_good_run_downloads_verifies_ingests_and_a_rerun_uses_the_cache(server, tmp_path):
    publish_two_days(server, tmp_path)

    fetched, ingested = run(server, tmp_path)

    assert (len(fetched.downloaded), len(fetched.cached), fetched.missing) == (5, 0, [])
    frame = MarketStore(tmp_path / "store").read(["BTCUSDT"], "binance")
    assert len(frame) == 48 and ingested.datasets[0].rows == 48
    assert frame["oi_usd"].iloc[:-1].notna().all()  # the last hour closes in an unfetched day
    assert frame["funding_rate"].iloc[8:].notna().all()
    assert not list((tmp_path / "cache").rglob("*.part"))

    before = len(zip_requests(server))
    fetched, _ = run(server, tmp_path)
    assert (len(fetched.downloaded), len(fetched.cached)) == (0, 5)
    assert len(zip_requests(server)) == before  # verified zips are not fetched again
    again = MarketStore(tmp_path / "store").read(["BTCUSDT"], "binance")
    pd.testing.assert_frame_equal(again, frame)


def test_unpublished_day_is_reported_not_fatal(server, tmp_path):
    publish_two_days(server, tmp_path, second_day=False)

    fetched, _ = run(server, tmp_path)

    assert sorted(a.filename for a in fetched.missing) == [
        "BTCUSDT-1h-2024-01-02.zip",
        "BTCUSDT-metrics-2024-01-02.zip",
    ]
    assert len(MarketStore(tmp_path / "store").read()) == 24


def test_checksum_mismatch_is_rejected_and_nothing_is_ingested(server, tmp_path):
    publish_two_days(server, tmp_path)
    archive = Archive("BTCUSDT", "metrics", "daily", "2024-01-02")
    published = server.root / "data/futures/um" / archive.path
    published.with_name(published.name + ".CHECKSUM").write_text(
        f"{'0' * 64}  {archive.filename}\n"
    )

    with pytest.raises(DataError, match="checksum mismatch") as err:
        run(server, tmp_path)

    assert err.value.file.endswith(archive.path)
    assert MarketStore(tmp_path / "store").datasets() == []
    cached = tmp_path / "cache" / archive.path
    assert not cached.exists() and not cached.with_name(cached.name + ".part").exists()


def test_interrupted_download_is_resumed_with_a_range_request(server, tmp_path):
    publish_two_days(server, tmp_path)
    archive = Archive("BTCUSDT", "klines", "daily", "2024-01-01")
    path = "/data/futures/um/" + archive.path
    server.cut_after[path] = 1000

    fetched, _ = run(server, tmp_path)

    assert [r for r in zip_requests(server) if r[0] == path] == [
        (path, None),
        (path, "bytes=1000-"),
    ]
    assert len(fetched.downloaded) == 5
    published = (server.root / "data/futures/um" / archive.path).read_bytes()
    assert (tmp_path / "cache" / archive.path).read_bytes() == published


@pytest.mark.parametrize("honour_range", [True, False])
def test_part_left_by_a_killed_run_is_resumed_or_restarted(server, tmp_path, honour_range):
    publish_two_days(server, tmp_path)
    server.honour_range = honour_range
    archive = Archive("BTCUSDT", "fundingRate", "monthly", "2024-01")
    published = (server.root / "data/futures/um" / archive.path).read_bytes()
    part = tmp_path / "cache" / (archive.path + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(published[:200])

    run(server, tmp_path)

    path = "/data/futures/um/" + archive.path
    assert [r for r in zip_requests(server) if r[0] == path] == [(path, "bytes=200-")]
    assert (tmp_path / "cache" / archive.path).read_bytes() == published
    assert not part.exists()


def test_cli_fetch_binance(server, tmp_path):
    publish_two_days(server, tmp_path, second_day=False)
    store = tmp_path / "store"

    result = CliRunner().invoke(
        app,
        [
            "fetch",
            "binance",
            "--symbol",
            "BTCUSDT",
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-02",
            "--store",
            str(store),
            "--base-url",
            server.url,
        ],
    )

    assert result.exit_code == 0, result.output
    assert "3 archives downloaded" in result.output and "2 not published" in result.output
    assert (
        store / ".downloads/binance/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-01.zip"
    ).is_file()
    frame = MarketStore(store).read()
    assert len(frame) == 24 and np.isfinite(frame["close"]).all()


def test_cli_reports_bad_dates_and_bad_checksums(server, tmp_path):
    publish_two_days(server, tmp_path, second_day=False)
    archive = Archive("BTCUSDT", "klines", "daily", "2024-01-01")
    published = server.root / "data/futures/um" / archive.path
    published.with_name(published.name + ".CHECKSUM").write_text(
        f"{'1' * 64}  {archive.filename}\n"
    )
    args = ["fetch", "binance", "--symbol", "BTCUSDT", "--store", str(tmp_path / "s")]

    bad_date = CliRunner().invoke(app, [*args, "--start", "2024-13-01", "--end", "2024-01-02"])
    assert bad_date.exit_code == 2 and "not a date" in bad_date.output

    mismatch = CliRunner().invoke(
        app, [*args, "--start", "2024-01-01", "--end", "2024-01-01", "--base-url", server.url]
    )
    assert mismatch.exit_code == 2 and "checksum mismatch" in mismatch.output


def test_unreachable_server_is_a_fetch_error_and_leaves_no_store(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchError, match="cannot reach"):
        fetch_binance(
            ["BTCUSDT"],
            dt.date(2024, 1, 1),
            dt.date(2024, 1, 1),
            MarketStore(tmp_path / "store"),
            tmp_path / "cache",
            base_url=f"http://127.0.0.1:{port}/",
        )
    assert MarketStore(tmp_path / "store").datasets() == []
