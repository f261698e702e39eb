"""Where independent tasks run: in this process, or on a `dask.distributed` cluster.

The walk-forward's refits, the per-series feature builds and the per-horizon final fits are
independent tasks; this module is the one place that decides where they run, so the code that
builds a record has no pool in it. `engine(cluster)` resolves, in order, the `cluster`
argument (the CLI's `--cluster`), `$FLUSHCAST_CLUSTER`, then `local`:

- `local`: a `LocalCluster` of one single-threaded worker process per core, started on first
  use (nothing to start by hand) and closed when the process exits;
- `tcp://HOST:PORT` (any Dask scheduler address): a running scheduler and its workers, on this
  machine or others (`dask scheduler`, then `dask worker ADDRESS --nthreads 1`);
- `inprocess`: every task in this process, in order (tests, debugging, profiling).

Every task runs with one BLAS and OpenMP thread: the parallelism is processes, and two OpenMP
threads on one busy core spin rather than work. One thread is also what makes the numbers the
same everywhere: OpenBLAS splits a product's sums across its threads, so scikit-learn's
Newton-Cholesky logistic fit (its gradient and Hessian products) differs in the last bits with
two BLAS threads, and the record with it (LightGBM is told `num_threads=1` in every call, so its
numbers do not depend on OpenMP's default). BLAS's limit is process-wide, and threadpoolctl
lets one thread at a time set it: on a worker running tasks on several threads, a task that
restored the limit on its way out raised it under a sibling task still running (a record that
differed about one run in six), and a thread that did not hold the limit could not lower it.
So on a cluster every task sets the limit, takes it over when another thread holds it, and
never restores it (`_pin_one_thread`); in process, where tasks run one at a time, it is
restored when the run ends.

Large inputs are `share`d once (scattered straight to a worker, fetched once by each other
worker) rather than sent with each task, a result another task reads can stay where it was
made (`keep`), so no large graph travels, and large answers can be read one at a time (`each`)
rather than all gathered at once. Results come back in the order the tasks were given,
whatever order they finish in, so a computation gives the same numbers wherever it ran.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from threadpoolctl import OpenBLASController, ThreadpoolController

from flushcast.common.errors import DataError

CLUSTER_ENV = "FLUSHCAST_CLUSTER"
LOCAL = "local"
IN_PROCESS = "inprocess"
SCHEMES = ("tcp://", "tls://", "ws://", "wss://", "ucx://")
CONNECT_TIMEOUT_S = 15


_CONTROLLER: dict[str, Any] = {"modules": -1, "controller": None}
_CONTROLLER_LOCK = threading.Lock()


def _controller() -> ThreadpoolController:
    """The process's BLAS and OpenMP libraries, found once (a scan costs 12 ms, a limit 20 µs)
    and again only when an import may have loaded another."""
    with _CONTROLLER_LOCK:
        if _CONTROLLER["modules"] != len(sys.modules):
            _CONTROLLER["controller"] = ThreadpoolController()
            _CONTROLLER["modules"] = len(sys.modules)
        return _CONTROLLER["controller"]


def _pin_one_thread() -> None:
    """One BLAS thread in this process and one OpenMP thread in this thread, left in place.

    threadpoolctl lets a single thread at a time change OpenBLAS's process-wide limit (the
    first to set it, until its `with` block ends); another thread's call silently does nothing.
    Where that left more than one BLAS thread (the client's thread holds it, in a threaded
    cluster in its process), the limit is taken over: every task wants the same single thread.
    """
    controller = _controller()
    controller.limit(limits=1)
    blas = [lib for lib in controller.lib_controllers if lib.user_api == "blas"]
    if any(lib.get_num_threads() != 1 for lib in blas):
        OpenBLASController.clear_controlling_thread(force=True)
        controller.limit(limits=1)


def _pinned(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` on one thread, the limit left in place (see the module docstring)."""
    _pin_one_thread()
    return fn(*args)


class InProcess:
    """Runs every task here, one after the other."""

    name = IN_PROCESS
    workers = 1

    def share(self, value: Any) -> Any:
        return value

    def run(
        self,
        fn: Callable[..., Any],
        calls: Sequence[tuple[Any, ...]],
        on_done: Callable[[], None] | None = None,
    ) -> list[Any]:
        """`[fn(*args) for args in calls]`, calling `on_done` after each."""
        results = []
        with _controller().limit(limits=1):
            _pin_one_thread()  # another thread may hold BLAS's limit
            for args in calls:
                results.append(fn(*args))
                if on_done:
                    on_done()
        return results

    def keep(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> list[Any]:
        """`run` without progress: here the results themselves are the handles."""
        return self.run(fn, calls)

    def each(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> Iterator[Any]:
        """`fn(*args)` for each of `calls`, made as they are read: one answer at a time."""
        with _controller().limit(limits=1):
            _pin_one_thread()
            for args in calls:
                yield fn(*args)


class Distributed:
    """Runs tasks on a `dask.distributed` client's workers."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    @property
    def workers(self) -> int:
        return max(1, len(self.client.scheduler_info()["workers"]))

    def share(self, value: Any) -> Any:
        """A handle to `value` on the cluster: sent once, fetched once by each worker using it.

        Sent straight to a worker (`direct`): through the scheduler, the scheduler unpacked a
        whole copy of it on the way, and a LocalCluster's scheduler is in this process, so a
        large store's model matrix was held twice here while it was sent."""
        return self.client.scatter(value, hash=False, direct=True)

    def run(
        self,
        fn: Callable[..., Any],
        calls: Sequence[tuple[Any, ...]],
        on_done: Callable[[], None] | None = None,
    ) -> list[Any]:
        """`fn(*args)` for each of `calls` on the workers; results in the order of `calls`."""
        from distributed import as_completed

        futures = [self.client.submit(_pinned, fn, *args, pure=False) for args in calls]
        try:
            for future in as_completed(futures):
                if future.status == "error":
                    future.result()  # raises the task's own exception
                if on_done:
                    on_done()
            return self.client.gather(futures)
        finally:
            for future in futures:
                future.release()

    def keep(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> list[Any]:
        """`fn(*args)` for each of `calls`, left on the workers: handles (futures) that later
        tasks' arguments may hold, fetched worker to worker, never sent through the client or
        inside a graph. A task's error is raised by the first task or gather that reads it."""
        return [self.client.submit(_pinned, fn, *args, pure=False) for args in calls]

    def each(self, fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> Iterator[Any]:
        """`fn(*args)` for each of `calls` on the workers, read in the order of `calls` and let
        go once read: the caller holds one answer at a time where `run` gathers them all
        (the parts of a large store's feature table, as large as the table itself)."""
        futures: list[Any] = [self.client.submit(_pinned, fn, *args, pure=False) for args in calls]
        try:
            for i, future in enumerate(futures):
                yield future.result()  # raises the task's own exception
                future.release()
                futures[i] = None
        finally:
            for future in futures:
                if future is not None:
                    future.release()


Engine = InProcess | Distributed

_ENGINES: dict[str, Distributed] = {}


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


WORKER_MALLOC: dict[str, int] = {
    "MALLOC_MMAP_THRESHOLD_": 32 * 2**20,
    "MALLOC_TRIM_THRESHOLD_": 256 * 2**20,
}
"""glibc's allocator settings for a LocalCluster's workers. Dask's nanny sets a 64 kB trim
threshold, which also freezes the mmap threshold at 128 kB: every fold's arrays were then mapped
fresh and faulted in page by page (15 million minor faults and 37 s of system time in
`bench_training`). Arrays below 32 MB now reuse the heap and up to 256 MB of free heap is kept
(README, "Walk-forward speed"); the numbers computed are the same."""


def _local() -> Distributed:
    import dask
    from distributed import Client, LocalCluster

    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ"), **WORKER_MALLOC}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        cluster = LocalCluster(
            n_workers=_cores(),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            # No dashboard; the scheduler's HTTP routes (health) on a free port, not 8787
            # (taken by the first of two clusters on one machine, with a warning).
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        )
    return Distributed(Client(cluster), LOCAL)


def _remote(address: str) -> Distributed:
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise DataError(
            f"cannot reach the Dask scheduler at {address} within {CONNECT_TIMEOUT_S} s "
            f"({type(exc).__name__}): start one with `dask scheduler`, or use --cluster local"
        ) from None
    return Distributed(client, address)


def engine(cluster: str | None = None) -> Engine:
    """The engine for `cluster` (see the module docstring); a cluster is started or connected
    once per process and reused."""
    spec = (cluster or os.environ.get(CLUSTER_ENV) or LOCAL).strip()
    if spec == IN_PROCESS:
        return InProcess()
    if spec != LOCAL and not spec.startswith(SCHEMES):
        raise DataError(
            f"--cluster (or ${CLUSTER_ENV}) must be '{LOCAL}', '{IN_PROCESS}' or a Dask "
            f"scheduler address such as tcp://127.0.0.1:8786, not {spec!r}"
        )
    if spec not in _ENGINES or _ENGINES[spec].client.status != "running":
        _ENGINES[spec] = _local() if spec == LOCAL else _remote(spec)
    return _ENGINES[spec]


def close() -> None:
    """Close the clients (and the local cluster) this process opened."""
    while _ENGINES:
        _, found = _ENGINES.popitem()
        cluster = found.client.cluster
        found.client.close()
        if cluster is not None:
            cluster.close()
