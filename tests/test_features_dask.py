"""Feature sets on Dask: one task per shard, the same arrays in-process, on a local cluster and
through a scheduler address; shards that already hold the set are skipped."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from biosig_ingest import open_store
from biosig_ingest.cli import app
from biosig_ingest.features import FeatureSpec, compute_features, read_features
from biosig_ingest.features.store import compute_shard
from biosig_ingest.parallel import cores_per_slot, local_cluster, task_key
from biosig_ingest.store.inspect import validate

MEASURES = ("de", "log_power", "power", "relative_power")
SPEC = FeatureSpec(smoothing="lds")  # smoothing runs along each recording: a shard is the unit


@pytest.fixture(scope="module")
def cluster():
    """One local cluster of two single-threaded processes for the whole module (a start costs seconds)."""
    with local_cluster(2) as c:
        yield c


@pytest.fixture(scope="module")
def in_process(tuab_store, tmp_path_factory):
    """The reference: the feature set computed in this process, one shard after the other."""
    path, _ = tuab_store
    dst = tmp_path_factory.mktemp("features-serial") / "tuab.zarr"
    shutil.copytree(path, dst)
    report = compute_features(dst, SPEC, workers=1)
    return dst, report, {m: read_features(dst, report.name, m) for m in MEASURES}


def _copy(tuab_store, tmp_path, name):
    path, _ = tuab_store
    dst = tmp_path / name
    shutil.copytree(path, dst)
    return dst


def _same_arrays(store, name, expected):
    for m, arr in expected.items():
        np.testing.assert_array_equal(read_features(store, name, m), arr)
    assert validate(store) == []


def test_two_local_dask_workers_give_the_arrays_of_one_process(tuab_store, in_process, tmp_path):
    _, one, expected = in_process
    assert one.shards_written == len(open_store(in_process[0]).shard_names) >= 2
    store = _copy(tuab_store, tmp_path, "w2.zarr")
    two = compute_features(store, SPEC, workers=2)  # its own LocalCluster, closed afterwards
    assert (two.name, two.shards_written, two.windows_written) == (one.name, one.shards_written, one.windows_written)
    _same_arrays(store, two.name, expected)


def test_a_scheduler_address_and_a_client_give_the_same_arrays(tuab_store, in_process, cluster, tmp_path):
    from dask.distributed import Client

    _, one, expected = in_process
    by_address = _copy(tuab_store, tmp_path, "sched.zarr")
    rep = compute_features(by_address, SPEC, scheduler=cluster.scheduler_address)
    assert rep.shards_written == one.shards_written
    _same_arrays(by_address, rep.name, expected)
    by_client = _copy(tuab_store, tmp_path, "client.zarr")
    with Client(cluster) as client:
        rep = compute_features(by_client, SPEC, client=client)
        assert client.status == "running"  # the caller's client is left open
    _same_arrays(by_client, rep.name, expected)


def test_on_dask_a_shard_that_holds_the_set_is_skipped_and_a_rerun_writes_nothing(tuab_store, in_process, cluster, tmp_path):
    _, one, expected = in_process
    store = _copy(tuab_store, tmp_path, "partial.zarr")
    first = open_store(store).shard_names[0]
    assert compute_shard(str(store), first, SPEC.to_dict(), one.name)["status"] == "written"
    stamp = (store / "shards" / first / f"features_{one.name}" / "de" / "zarr.json").stat().st_mtime_ns
    rep = compute_features(store, SPEC, scheduler=cluster.scheduler_address)
    assert (rep.shards_written, rep.shards_skipped) == (one.shards_written - 1, 1)
    assert (store / "shards" / first / f"features_{one.name}" / "de" / "zarr.json").stat().st_mtime_ns == stamp
    _same_arrays(store, rep.name, expected)
    again = compute_features(store, SPEC, scheduler=cluster.scheduler_address)
    assert (again.shards_written, again.shards_skipped) == (0, one.shards_written)


def test_biosig_features_with_a_scheduler_address(tuab_store, in_process, cluster, tmp_path):
    _, one, expected = in_process
    store = _copy(tuab_store, tmp_path, "cli.zarr")
    r = CliRunner().invoke(app, ["features", str(store), "--smoothing", "lds", "--scheduler", cluster.scheduler_address])
    assert r.exit_code == 0, r.output
    assert f"shards written {one.shards_written}" in r.output
    _same_arrays(store, one.name, expected)


def test_each_worker_process_gets_its_share_of_the_cores_for_numba(cluster):
    from dask.distributed import Client

    with Client(cluster) as client:
        shares = cores_per_slot(client)
    assert set(shares) == set(cluster.scheduler_info["workers"])
    cores = len(os.sched_getaffinity(0))
    assert all(n == max(1, cores // 2) for n in shares.values())  # two processes on one host


def test_the_local_cluster_leaves_glibc_s_adaptive_mmap_threshold_on(cluster):
    from dask.distributed import Client

    with Client(cluster) as client:
        env = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
    assert set(env.values()) == {None}


def test_task_keys_are_deterministic_and_differ_between_stores():
    a = task_key("features", "/data/a.zarr", "s00000", "spectral-1234", "d" * 64)
    assert a == task_key("features", "/data/a.zarr", "s00000", "spectral-1234", "d" * 64)
    assert a != task_key("features", "/data/b.zarr", "s00000", "spectral-1234", "d" * 64)
    assert a != task_key("features", "/data/a.zarr", "s00001", "spectral-1234", "d" * 64)


def test_feature_sets_on_an_object_store_are_refused_with_a_clear_message(tuab):
    from biosig_ingest import ingest
    from biosig_ingest.errors import UsageError

    ingest("tuab", tuab.root, "memory://features-refused.zarr", "tcp16", limit=2)
    with pytest.raises(UsageError, match="not implemented yet"):
        compute_features("memory://features-refused.zarr", SPEC)


def test_ingest_tasks_of_two_stores_never_share_a_dask_key(monkeypatch):
    """A long-lived scheduler holds finished keys: the same shard of another store must not reuse one."""
    from types import SimpleNamespace

    import biosig_ingest.parallel as parallel
    from biosig_ingest.store.location import StoreLocation

    keys: dict[str, list[str]] = {}

    def capture(fn, calls, on_result, **kw):
        keys.setdefault(str(calls[0][1][-2]), []).extend(k for k, _ in calls)

    monkeypatch.setattr(parallel, "run_tasks", capture)
    tasks = [SimpleNamespace(index=k, digest=f"{k:064d}") for k in range(3)]
    for out in ("/data/a.zarr", "/data/b.zarr", "memory://bucket/a.zarr"):
        parallel.run_shards(tasks, len, ("adapter", StoreLocation(out)), print, None, workers=2)
    assert len({k for ks in keys.values() for k in ks}) == 9
