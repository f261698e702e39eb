"""The execution engine: the walk-forward gives the same record wherever its tasks run.

In process, on a Dask cluster of threads (fast tier), on a LocalCluster of worker processes and
on a scheduler with two `dask worker` processes over loopback, driven through the CLI (slow
tier): every metric, every fold's champion, every prediction equal.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from flushcast.common import engine as engine_module
from flushcast.common.engine import CLUSTER_ENV, IN_PROCESS, Distributed, InProcess, engine
from flushcast.common.errors import DataError

BIN = Path(sys.executable).parent


def _threads_and_square(x: int) -> tuple[int, int]:
    limits = [lib["num_threads"] for lib in threadpool_info()]
    return max(limits, default=1), x * x


def test_in_process_runs_in_order_with_one_thread_per_task():
    done = []
    results = InProcess().run(_threads_and_square, [(3,), (1,), (2,)], lambda: done.append(1))
    assert results == [(1, 9), (1, 1), (1, 4)]
    assert len(done) == 3


def _square_or_fail(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative {x}")
    return x * x


def test_each_gives_the_answers_in_order_one_at_a_time_here_and_on_a_cluster():
    from distributed import Client

    calls = [(3,), (1,), (2,)]
    made = InProcess().each(_threads_and_square, calls)
    assert next(made) == (1, 9)  # made as read: the others are not made yet
    assert list(made) == [(1, 1), (1, 4)]
    with Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None) as c:
        runner = Distributed(c, "threads")
        answers = runner.each(_square_or_fail, [(i,) for i in range(6)])
        assert [next(answers), next(answers)] == [0, 1]
        assert len(c.futures) == 5  # the first let go once the second was asked for
        assert list(answers) == [4, 9, 16, 25]
        with pytest.raises(ValueError, match="negative -1"):
            list(runner.each(_square_or_fail, [(2,), (-1,)]))


def test_cluster_is_chosen_by_option_then_environment(monkeypatch):
    monkeypatch.setenv(CLUSTER_ENV, IN_PROCESS)
    assert isinstance(engine(), InProcess)
    monkeypatch.setenv(CLUSTER_ENV, "somewhere")
    with pytest.raises(DataError, match="'somewhere'"):
        engine()
    assert isinstance(engine(IN_PROCESS), InProcess)  # the option wins
    with pytest.raises(DataError, match=r"tcp://127\.0\.0\.1:8786"):
        engine("127.0.0.1:8786")  # an address needs its scheme


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(engine_module, "CONNECT_TIMEOUT_S", 1)
    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(DataError, match=f"cannot reach the Dask scheduler at {address}"):
        engine(address)


def _same_evaluation(a, b) -> None:
    assert a.record.to_document() == b.record.to_document()
    pd.testing.assert_frame_equal(a.folds, b.folds)
    for h in a.horizons:
        pd.testing.assert_frame_equal(a.predictions[h], b.predictions[h])
        pd.testing.assert_series_equal(a.importance[h], b.importance[h])


LARGE_GRAPH = "Sending large graph"


@pytest.fixture(scope="module")
def here_and_there(small_dataset, small_config):
    """The small evaluation in process, and on a threaded cluster of two workers of two threads
    each (tasks share a process's BLAS limit, as on a `dask worker --nthreads 2`), with the
    warnings the cluster run raised. The large-graph threshold is lowered from 10 MB to 64 kB,
    below the size of pass 2's answers here (16 MB per horizon at the benchmark's size), so
    they would be flagged if they travelled inside a graph. (A lighter recipe keeps this fast;
    the slow tier compares the default one through the CLI.)"""
    import warnings

    import dask
    from distributed import Client

    from flushcast.training.evaluate import evaluate

    config = small_config.with_overrides(
        {
            "fit.lightgbm.rounds": 30,
            "fit.direction.rounds": 20,
            "evaluation.baselines": ["climatology", "placebo", "heuristic"],
        }
    )
    here = evaluate(small_dataset, config, runner=InProcess())
    threshold = {"distributed.admin.large-graph-warning-threshold": "64kB"}
    with (
        threadpool_limits(limits=2),  # the default a restored limit would bring back
        dask.config.set(threshold),
        warnings.catch_warnings(record=True) as caught,
        Client(processes=False, n_workers=2, threads_per_worker=2, dashboard_address=None) as c,
    ):
        warnings.simplefilter("always")
        there = evaluate(small_dataset, config, runner=Distributed(c, "threads"))
    return here, there, [str(w.message) for w in caught]


def test_record_is_identical_on_a_cluster_and_in_process(here_and_there):
    """Tasks finish in any order on two workers and share a process with another task; the
    record must not notice."""
    here, there, _ = here_and_there
    _same_evaluation(here, there)
    assert here.record.horizons[4].champion_choices  # there was a choice to compare


def test_no_large_graph_is_sent(here_and_there):
    """Pass 2's answers stay on the workers: no task's graph carries them."""
    _, _, caught = here_and_there
    assert not [m for m in caught if LARGE_GRAPH in m]


_entered = threading.Event()
_left = threading.Event()


def _enter_then_leave() -> int:
    _entered.set()
    assert _left.wait(30)
    return 0


def _outlive_a_sibling() -> int:
    assert _entered.wait(30)  # the sibling task runs on the other thread
    _left.set()
    time.sleep(0.5)  # it returns meanwhile
    blas = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    return max(blas)


def test_a_task_keeps_one_blas_thread_while_a_sibling_thread_finishes():
    """BLAS's thread limit is process-wide: a task leaving must not raise it under a task still
    running on another thread of the same worker (two BLAS threads change the logistic fit's
    last bits)."""
    from distributed import Client

    _entered.clear()
    _left.clear()
    with (
        threadpool_limits(limits=2),
        Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as c,
    ):
        runner = Distributed(c, "threads")
        first = c.submit(engine_module._pinned, _enter_then_leave, pure=False)
        assert runner.run(_outlive_a_sibling, [()]) == [1]
        assert first.result() == 0


def test_features_are_identical_built_on_a_cluster(sim_store):
    from distributed import Client

    from flushcast.features.build import build_features
    from flushcast.marketdata.store import MarketStore

    market = MarketStore(sim_store).read()
    here = build_features(market)
    with Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None) as c:
        there = build_features(market, runner=Distributed(c, "threads"))
    pd.testing.assert_frame_equal(here, there)


# --- slow: worker processes, through the CLI ------------------------------------------------


@contextmanager
def _loopback_cluster(tmp_path: Path):
    """A `dask scheduler` and two single-threaded `dask worker` processes on 127.0.0.1."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    logs = [open(tmp_path / f"dask-{i}.log", "w") for i in range(3)]  # noqa: SIM115
    scheduler = [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port)]
    worker = [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-dashboard"]
    procs = [subprocess.Popen([*scheduler, "--no-dashboard"], stdout=logs[0], stderr=logs[0])]
    procs += [
        subprocess.Popen(worker, stdout=log, stderr=log, env=env, cwd=tmp_path) for log in logs[1:]
    ]
    try:
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            log.close()


def _cli_evaluate(store: Path, out: Path, cluster: str, uri: str) -> dict:
    command = [str(BIN / "flushcast"), "evaluate", "--store", str(store), "--json", str(out)]
    command += ["--horizons", "4,12", "--n-boot", "20", "--tracking-uri", uri]
    command += ["--cluster", cluster]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"{cluster}: {time.perf_counter() - started:.1f} s")
    return json.loads(out.read_text())


@pytest.mark.slow
def test_cli_record_is_identical_in_process_local_cluster_and_loopback_workers(
    sim_store, tmp_path, tracking_uri
):
    records = {
        "inprocess": _cli_evaluate(sim_store, tmp_path / "a.json", "inprocess", tracking_uri),
        "local": _cli_evaluate(sim_store, tmp_path / "b.json", "local", tracking_uri),
    }
    with _loopback_cluster(tmp_path) as address:
        records["loopback"] = _cli_evaluate(sim_store, tmp_path / "c.json", address, tracking_uri)
    assert records["inprocess"]["4"]["champion_choices"]
    assert records["local"] == records["inprocess"]
    assert records["loopback"] == records["inprocess"]
    assert np.isfinite(records["loopback"]["12"]["models"]["champion"]["pr_auc"])


def _malloc_environ() -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in engine_module.WORKER_MALLOC}


@pytest.mark.slow
def test_local_workers_keep_their_freed_arrays_instead_of_faulting_them_in_again():
    """A LocalCluster's workers start with flushcast's allocator settings, not the nanny's
    64 kB trim threshold (which made every fold's arrays fresh mappings: README, "Walk-forward
    speed"); Dask's other pre-spawn settings (one BLAS thread) stay."""
    local = engine_module._local()
    try:
        seen = local.client.run(_malloc_environ)
        threads = local.client.run(os.environ.get, "OMP_NUM_THREADS")
    finally:
        local.client.close()
        local.client.cluster.close()
    expected = {name: str(value) for name, value in engine_module.WORKER_MALLOC.items()}
    assert seen and all(environ == expected for environ in seen.values())
    assert set(threads.values()) == {"1"}
