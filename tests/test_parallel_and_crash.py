"""Shards on Dask give the same store as in-process; killed runs finish cleanly on re-run."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from biosig_ingest import ingest, open_store
from biosig_ingest.store.inspect import validate
from biosig_ingest.store.layout import staging_root

PROFILE = "tcp16"  # 8 recordings per shard: the TUAB replica makes 2 shards


def _same_store(a, b):
    sa, sb = open_store(a), open_store(b)
    assert sa.shard_names == sb.shard_names and len(sa) == len(sb) > 0
    np.testing.assert_array_equal(sa.read(np.arange(len(sa))), sb.read(np.arange(len(sb))))
    ma, mb = sa.metadata, sb.metadata
    assert ma.drop(columns=[]).equals(mb)
    cols = ["recording_id", "status", "error_type", "n_windows", "window_offset", "sha256"]
    assert sa.recordings[cols].equals(sb.recordings[cols])
    np.testing.assert_array_equal(sa.qc, sb.qc)


@pytest.fixture(scope="module")
def serial_store(tuab, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "s.zarr"
    ingest("tuab", tuab.root, out, PROFILE)
    return out


def test_two_local_workers_and_an_existing_scheduler_write_the_same_store_as_one_process(tuab, serial_store, tmp_path):
    from dask.distributed import LocalCluster

    ingest("tuab", tuab.root, tmp_path / "w2.zarr", PROFILE, workers=2)
    _same_store(serial_store, tmp_path / "w2.zarr")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        ingest("tuab", tuab.root, tmp_path / "sched.zarr", PROFILE, scheduler=cluster.scheduler_address)
    _same_store(serial_store, tmp_path / "sched.zarr")


def _run_cli(source, out, env):
    cmd = [sys.executable, "-m", "biosig_ingest.cli", "ingest", "tuab", "--source", str(source), "--out", str(out), "--profile", PROFILE]
    return subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "failpoint",
    [
        "after-recording:1",  # before the first commit
        "commit-before-rename:2",  # mid-run: shard 0 committed, shard 1 assembled, not committed
        "commit-after-rename:1",  # during a commit: renamed, not yet synced or reported
    ],
)
def test_a_run_killed_with_sigkill_finishes_on_rerun_equal_to_an_uninterrupted_run(tuab, serial_store, tmp_path, failpoint):
    out = tmp_path / "k.zarr"
    killed = _run_cli(tuab.root, out, {"BIOSIG_FAILPOINT": failpoint})
    assert killed.returncode == -9, killed.stderr[-2000:]
    if out.exists():  # whatever is visible is committed and valid
        assert validate(out) == []
    again = _run_cli(tuab.root, out, {})
    assert again.returncode == 0, again.stderr[-2000:]
    assert validate(out) == []
    assert not staging_root(out).exists()  # the dead run's staging folder was removed
    _same_store(serial_store, out)
    ids = open_store(out).recordings.recording_id
    assert not ids.duplicated().any() and len(ids) == len(tuab.files)


def test_a_dask_worker_killed_mid_task_is_retried_and_the_store_is_correct(tuab, serial_store, tmp_path, monkeypatch):
    monkeypatch.setenv("BIOSIG_FAILPOINT", "after-recording:2")
    monkeypatch.setenv("BIOSIG_FAILPOINT_ONCE", str(tmp_path / "killed-once"))
    ingest("tuab", tuab.root, tmp_path / "d.zarr", PROFILE, workers=2)
    assert (tmp_path / "killed-once").exists()  # a worker really died
    assert validate(tmp_path / "d.zarr") == []
    _same_store(serial_store, tmp_path / "d.zarr")
