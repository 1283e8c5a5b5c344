"""Run shard tasks serially or on Dask (a local cluster of processes, or any scheduler).

Shard assignment is fixed by the data (the recording list, the committed shards), never by
the workers, so 1, 2 or 100 workers write the same shards. Every task (`ingest.ingest_shard`,
`features.store.compute_shard`) is idempotent: a shard already committed (by a retry's first
attempt, or a racing command) is adopted or skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ShardRows = Callable[[list[dict[str, Any]]], None]
RETRIES = 3  # a task lost with its worker (killed, out of memory) is run again, up to 3 times


def wants_dask(workers: int | None, scheduler: str | None, client: Any) -> bool:
    """True when the caller asked for a cluster: more than one worker, an address or a client."""
    return client is not None or scheduler is not None or (workers or 1) > 1


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None, client: Any = None) -> Iterator[Any]:
    """The caller's ``client``; else one attached to ``scheduler``; else a local cluster of
    ``workers`` single-threaded processes (default: one per core). Closes only what it opened."""
    if client is not None:
        yield client
        return
    from dask.distributed import Client

    if scheduler is not None:
        with Client(scheduler) as attached:
            yield attached
        return
    with local_cluster(workers or os.cpu_count() or 1) as cluster, Client(cluster) as local:
        yield local


def local_cluster(n_workers: int) -> Any:
    """A ``LocalCluster`` of ``n_workers`` single-threaded processes, without Dask's
    ``MALLOC_TRIM_THRESHOLD_=65536``: set before a worker starts, it turns off glibc's adaptive
    mmap threshold, so every large temporary array is mapped and page-faulted afresh (83,000
    faults and +0.2 s of system time for a shard of two 20-minute EEGs, about +60 %)."""
    import dask
    from dask.distributed import LocalCluster

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    # read once, when each nanny is made: restarted workers get the same environment
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)


def cores_per_slot(client: Any) -> dict[str, int]:
    """Worker address -> cores for each of its task slots: the cores of its host shared among
    all task threads on that host, so numba kernels in N processes do not start N x cores threads."""
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"]  # newer versions list 5 by default
    except TypeError:
        workers = client.scheduler_info()["workers"]
    cores = client.run(_usable_cores)  # address -> cores that worker's process may run on
    slots_by_host: dict[str, int] = {}
    for info in workers.values():
        slots_by_host[info["host"]] = slots_by_host.get(info["host"], 0) + int(info["nthreads"])
    return {
        addr: max(1, int(cores.get(addr, 1)) // max(1, slots_by_host[info["host"]]))
        for addr, info in workers.items()
    }


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _set_numba_threads(n: int) -> None:
    import numba

    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]


def _in_slot(fn: Callable[..., Any], cores: dict[str, int], *args: Any) -> Any:
    """Run ``fn(*args)`` on a Dask worker with numba limited to this slot's share of the cores
    (``set_num_threads`` is per thread: it holds for this task's thread only)."""
    from distributed import get_worker

    n = cores.get(get_worker().address)
    if n is not None:
        _set_numba_threads(n)
    return fn(*args)


def task_key(kind: str, *parts: object) -> str:
    """A deterministic Dask key: the same task of the same run always has the same key, and
    tasks of two runs on one scheduler (another store, another profile) never share one."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:20]
    return f"biosig-{kind}-{digest}"


def run_tasks(
    fn: Callable[..., Any],
    calls: Sequence[tuple[str, tuple]],
    on_result: Callable[[Any], None],
    workers: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
) -> None:
    """Run ``fn(*args)`` for each ``(key, args)`` of ``calls``; ``on_result`` gets each result.

    In this process, in order, unless ``wants_dask``; on Dask, one task per call under its key
    with ``RETRIES`` retries, results in completion order.
    """
    if not wants_dask(workers, scheduler, client):
        for _, args in calls:
            on_result(fn(*args))
        return
    from dask.distributed import as_completed

    with dask_client(workers, scheduler, client) as dc:
        cores = cores_per_slot(dc)
        futures = [dc.submit(_in_slot, fn, cores, *args, key=key, retries=RETRIES, pure=False) for key, args in calls]
        for future in as_completed(futures):
            on_result(future.result())


def run_shards(
    tasks: Sequence[Any],
    run_one: Callable[..., list[dict[str, Any]]],
    args: tuple,
    on_rows: ShardRows,
    on_recording: Callable[[dict[str, Any]], None] | None,
    workers: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
) -> None:
    """Run ``run_one(task, *args)`` for every ingest task; ``on_rows`` gets each shard's rows."""
    if not wants_dask(workers, scheduler, client):
        for task in tasks:  # in-process: per-recording progress
            run_one(task, *args, on_recording)
        return
    # the store (a path, or a location with a URL): the same shard of two stores has two keys
    scope = [str(getattr(a, "url", a)) for a in args if isinstance(a, str | Path) or hasattr(a, "url")]
    calls = [(task_key("shard", *scope, task.digest, task.index), (task, *args, None)) for task in tasks]
    run_tasks(run_one, calls, on_rows, workers=workers, scheduler=scheduler, client=client)


def cleanup_staging(staging: Path) -> None:
    """Remove staging folders of processes on this machine that no longer run (crashed runs)."""
    if not staging.is_dir():
        return
    for entry in staging.iterdir():
        parts = entry.name.split("-")
        if len(parts) >= 3 and parts[-2].isdigit() and not _alive(int(parts[-2])):
            shutil.rmtree(entry, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.rmdir(staging)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
