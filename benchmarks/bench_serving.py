"""The prediction service under load: a real `flushcast serve` driven over loopback.

A small champion is trained on simulated data (`tests/serving/sandbox.py`), served by
`bentoml serve` with its default two workers, and driven from this process by threads that
each keep one HTTP/1.1 connection and send a fixed number of requests (bounded loops, no
open-ended load). Each workload runs at concurrency 1, 8 and 32; beside it, the same work
in-process without HTTP (parse the JSON body as the service does, predict, serialise the answer)
on one thread: the floor the server is measured against, and the server's figures as multiples
of it. `GET /healthz` (a route without access log, metrics or trace) is the HTTP stack alone.
Client and server share the machine's cores, so the client is a plain keep-alive socket
(`Connection`: `http.client` cost as much CPU per request as the server's whole HTTP stack). The
CPU time per request of the server (all its processes) and of the client (this process) is
printed too: it moves less than latency and throughput when other work loads the machine
(though cache contention still inflates it), so it compares runs on a shared one.

Where one /predict of a feature row went (issue 23, the ASGI app driven in process, cProfile):
BentoML's route machinery around the handler (its parse of the body, the context, the
routing, serialisation) and the OpenTelemetry middleware, whose unsampled spans record nothing
under BentoML's default sample rate of 0, cost more than the prediction itself;
`serving.service.PredictAnswer` answers /predict ahead of routing, from the body guard's one
parse, untraced unless tracing samples. Then the model: six `Booster.predict` calls for two
horizons (score, direction, TreeSHAP), each ~40 µs of Python around 2 µs of scoring (25 of
TreeSHAP); one row now takes LightGBM's prepared single-row call (`models.single_row`, the same
numbers). Then BentoML's middleware stack around the service's own middlewares (round 6; CPU
per request through the ASGI app in process, best of 20 blocks, the machine loaded): 570-710
µs with it, 470-540 µs without it; its request metrics alone (four Prometheus label look-ups,
an in-progress gauge, a timestamp) about 100-190 µs, then its spans, access log and timeout
task. `serving.front.Front` sends POST /predict through the service's own middlewares ahead of
that stack, keeping BentoML's request metrics (label sets looked up once), its access log and
its traffic timeout. What remains is TreeSHAP, the small numpy steps of the stack and
calibration, the JSON parse and validation, the response, uvicorn's HTTP handling and the
access log line each request writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CONCURRENCY = (1, 8, 32)


@dataclass(frozen=True)
class Workload:
    name: str
    path: str
    body: bytes
    requests: int
    """Requests per thread at concurrency 1; more threads share 4x as many (bounded)."""
    target: str
    method: str = "POST"


@dataclass(frozen=True)
class Figures:
    p50_ms: float
    p99_ms: float
    per_s: float
    count: int = 0

    def __str__(self) -> str:
        return f"{self.p50_ms:8.2f} {self.p99_ms:8.2f} {self.per_s:8.0f}"


def _figures(latencies: list[float], elapsed: float) -> Figures:
    ms = np.array(latencies) * 1000
    return Figures(
        float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), len(ms) / elapsed, len(ms)
    )


def workloads(market: pd.DataFrame, lookback: int, names: list[str]) -> list[Workload]:
    """The requests, cut from `market`: feature rows and tables name the model's features
    (`names`), as a client of the model sends them."""
    from flushcast.features.build import build_features
    from flushcast.marketdata.schema import VALUE_COLUMNS

    table = build_features(market)
    last = table.iloc[-1]
    row = {n: None if np.isnan(last[n]) else float(last[n]) for n in names}
    btc = market[market["symbol"] == "BTCUSDT"].tail(lookback)
    bars = json.loads(
        btc[["timestamp", *VALUE_COLUMNS]].to_json(orient="records", date_format="iso")
    )
    tail = table.tail(1000)
    rows = [
        {"symbol": str(s), "venue": "sim", "values": [None if np.isnan(v) else v for v in values]}
        for s, values in zip(tail["symbol"], tail[names].to_numpy().tolist(), strict=True)
    ]
    batch = {"table": {"columns": names, "rows": rows}}

    def body(value: dict) -> bytes:
        return json.dumps(value).encode()

    return [
        Workload("HTTP stack (GET /healthz)", "/healthz", b"", 300, "-", "GET"),
        Workload(
            "feature row + SHAP",
            "/predict",
            body({"symbol": str(last["symbol"]), "venue": "sim", "features": row}),
            300,
            "c=8: p50 <= 4 ms, >= 2000/s",
        ),
        Workload(
            f"raw bars ({lookback})",
            "/predict",
            body({"symbol": "BTCUSDT", "venue": "sim", "bars": bars}),
            40,
            "p50 <= 30 ms",
        ),
        Workload("batch 1000 rows", "/predict_batch", body(batch), 40, "<= 50 ms"),
        Workload(
            "batch 1000 rows + SHAP",
            "/predict_batch",
            body({**batch, "explain": True}),
            12,
            "<= 1 s",
        ),
    ]


def floor(workload: Workload, predictor) -> tuple[Figures, bytes] | None:
    """The same request handled in-process as the service does: the guard's parse (which finds
    repeated keys), validation, predict, serialise; one thread. With its answer (JSON bytes),
    which the server's must equal. None for the bare stack."""
    from flushcast.serving.guard import PARSED, parse, validated
    from flushcast.serving.requests import PredictBatchRequest, PredictRequest

    if workload.path == "/predict":
        request_type, handle = PredictRequest, predictor.predict
    elif workload.path == "/predict_batch":
        request_type, handle = PredictBatchRequest, predictor.predict_batch
    else:
        return None

    def once() -> str:
        parsed = parse(workload.body)  # validated from the guard's parse (PredictAnswer)
        request = validated(request_type, {PARSED: parsed}, workload.body)
        return handle(request).model_dump_json()

    answer = once().encode()
    latencies = []
    start = time.perf_counter()
    for _ in range(workload.requests):
        t = time.perf_counter()
        once()
        latencies.append(time.perf_counter() - t)
    return _figures(latencies, time.perf_counter() - start), answer


def beside(figures: Figures, base: Figures | None) -> str:
    """The in-process floor and the server's p50 and throughput as multiples of it."""
    if base is None:
        return f"{'-':>8} {'-':>8} {'-':>8} {'-':>6} {'-':>6}"
    p50 = figures.p50_ms / base.p50_ms
    return f"{base} {p50:5.1f}x {figures.per_s / base.per_s:5.2f}x"


class Connection:
    """One keep-alive HTTP/1.1 connection that sends one request again and again.

    The client shares the server's two cores, so its own CPU is taken from the server:
    `http.client` spends about 0.1 ms a request building header objects and running an e-mail
    parser over the answer's headers, as much as the whole HTTP stack of the server. This one
    sends the request's bytes as they go on the wire (the headers `http.client` sends, less its
    `Accept-Encoding: identity`) and reads each answer whole: the status line, the headers and
    exactly Content-Length bytes of body (an answer without one is an error), as any client must.
    """

    def __init__(self, port: int, workload: Workload) -> None:
        head = [f"{workload.method} {workload.path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        if workload.method == "POST":
            head += [f"Content-Length: {len(workload.body)}", "Content-Type: application/json"]
        self.request = ("\r\n".join(head) + "\r\n\r\n").encode() + workload.body
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = b""
        """Bytes received beyond the last answer (none, unless the server pipelines)."""

    def exchange(self) -> tuple[int, bytes]:
        """Send the request, read its answer: (status, body)."""
        self.socket.sendall(self.request)
        data = self.pending
        while (end := data.find(b"\r\n\r\n")) < 0:
            data += self._receive()
        status_line, *headers = data[:end].decode("latin-1").split("\r\n")
        length = None
        for header in headers:
            name, _, value = header.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"an answer without Content-Length: {data[:end]!r}")
        stop = end + 4 + length
        while len(data) < stop:
            data += self._receive()
        self.pending = data[stop:]
        return int(status_line.split(" ", 2)[1]), data[end + 4 : stop]

    def _receive(self) -> bytes:
        chunk = self.socket.recv(262144)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-answer")
        return chunk

    def close(self) -> None:
        self.socket.close()


def drive(port: int, workload: Workload, concurrency: int) -> Figures:
    """`concurrency` threads, each one keep-alive connection and a fixed number of requests."""
    per_thread = max(workload.requests * (1 if concurrency == 1 else 4) // concurrency, 4)
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    failures: list[str] = []
    start_line = threading.Barrier(concurrency + 1)

    def worker(mine: list[float]) -> None:
        connection = Connection(port, workload)  # outside the timed loop
        start_line.wait()
        for _ in range(per_thread):
            t = time.perf_counter()
            status, answer = connection.exchange()
            mine.append(time.perf_counter() - t)
            if status != 200:
                failures.append(f"{status}: {answer[:200]!r}")
        connection.close()

    threads = [threading.Thread(target=worker, args=(mine,)) for mine in latencies]
    for thread in threads:
        thread.start()
    start_line.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{len(failures)} failed requests, first: {failures[0]}")
    return _figures([x for mine in latencies for x in mine], elapsed)


def same(port: int, workload: Workload, expected: bytes) -> str:
    """How the server's answer to `workload` compares with the in-process one: the same bytes,
    or the same JSON (BentoML's routes serialise on their own); otherwise stop."""
    connection = Connection(port, workload)
    try:
        status, answer = connection.exchange()
    finally:
        connection.close()
    if (status, answer) == (200, expected):
        return "same bytes"
    if status == 200 and json.loads(answer) == json.loads(expected):
        return "same JSON"
    raise RuntimeError(f"{workload.name}: the server answered {status} {answer[:300]!r}")


def server_cpu_s() -> float:
    """CPU seconds used so far by this process's children: the server and its workers."""
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = child.cpu_times()
            total += times.user + times.system
    return total


def _timed(label: str, fn: Callable[[], object]) -> object:
    start = time.perf_counter()
    result = fn()
    print(f"{label}: {time.perf_counter() - start:.1f} s", flush=True)
    return result


def main() -> None:
    from tests.serving.sandbox import build, running_server

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        box = _timed(
            "sandbox champion (simulate, train, register, import)", lambda: build(Path(tmp))
        )
        os.environ.update(box.env())
        from flushcast.serving.service import Flushcast

        predictor = Flushcast().predictor
        bundle = predictor.bundle
        print(f"model inputs (the default recipe's families): {len(bundle.features)}")
        loads = workloads(pd.read_parquet(box.market), bundle.max_lookback, bundle.features)
        gc.collect()
        gc.freeze()  # as the service does after start-up, or full collections dominate the floor
        measured = {w.name: floor(w, predictor) for w in loads}
        floors = {name: None if m is None else m[0] for name, m in measured.items()}
        command = [sys.executable, "-m", "flushcast.serve_cli", "serve", "--model", box.tag]
        with running_server(command, box.env(), Path(tmp) / "serve.log") as (port, ready_s):
            print(f"process start to ready (2 workers, warm-up included): {ready_s:.1f} s")
            print(
                f"load average before driving: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
            )
            for workload in loads:
                if (found := measured[workload.name]) is not None:
                    print(f"{workload.name}: {same(port, workload, found[1])} as in process")
            header = f"{'workload':26} {'conc':>4} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}"
            floor_header = f"{'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'p50':>6} {'req/s':>6}"
            print(
                f"{'':45} | CPU ms/req: server client | in-process floor (1 thread), server / floor"
            )
            print(f"{header} | {'':>11} | {floor_header} | target")
            for workload in loads:
                drive(port, dataclasses.replace(workload, requests=4), 2)  # both workers warm
                for concurrency in CONCURRENCY:
                    cpu, client = server_cpu_s(), time.process_time()
                    figures = drive(port, workload, concurrency)
                    cpu_ms = (server_cpu_s() - cpu) / figures.count * 1000
                    client_ms = (time.process_time() - client) / figures.count * 1000
                    print(
                        f"{workload.name:26} {concurrency:4d} {figures} | {cpu_ms:5.3f} "
                        f"{client_ms:5.3f} | {beside(figures, floors[workload.name])} | "
                        f"{workload.target}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
