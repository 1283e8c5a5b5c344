"""Run shard tasks serially or on Dask (a local cluster of processes, or any scheduler).

Shard assignment is fixed by the recording list, never by the workers, so 1, 2 or 100
workers write the same shards. A task is `ingest.ingest_shard`, which is idempotent: a
shard already committed (by a retry's first attempt, or a racing command) is adopted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ShardRows = Callable[[list[dict[str, Any]]], None]


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
    """Run ``run_one(task, *args)`` for every task; ``on_rows`` gets each shard's rows."""
    if client is None and scheduler is None and (workers or 1) <= 1:
        for task in tasks:  # in-process: per-recording progress
            run_one(task, *args, on_recording)
        return
    from dask.distributed import Client, LocalCluster, as_completed

    owned: list[Any] = []
    if client is None:
        if scheduler is not None:
            client = Client(scheduler)
        else:
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            owned.append(cluster)
            client = Client(cluster)
        owned.insert(0, client)
    try:
        futures = [
            client.submit(run_one, task, *args, None, key=f"biosig-shard-{task.digest[:16]}-{task.index}", retries=3, pure=False)
            for task in tasks
        ]
        for future in as_completed(futures):
            on_rows(future.result())
    finally:
        for thing in owned:
            thing.close()


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
