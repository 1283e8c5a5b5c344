"""Stores and sources on object storage: a real S3 server (moto) on loopback, no mocked client.

The server is moto's standalone HTTP server, started on 127.0.0.1 by this module; s3fs and
botocore talk to it over HTTP exactly as to AWS (endpoint from ``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from biosig_ingest import ingest, open_store
from biosig_ingest.errors import StoreError
from biosig_ingest.io.remote import SourceMirror, is_placeholder
from biosig_ingest.store.inspect import validate

pytest.importorskip("s3fs", reason="s3fs is in the test extra: pip install -e '.[test]'")
moto_server = pytest.importorskip("moto.server", reason="moto[server] is in the test extra")

PROFILE = "tcp16"  # 8 recordings per shard: the TUAB replica makes 2 shards
BUCKET = "biosig-test"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """An S3 endpoint on loopback; the environment points botocore (and Dask workers) at it."""
    import s3fs

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {**CREDENTIALS, "AWS_ENDPOINT_URL": f"http://{host}:{port}", "BIOSIG_CACHE": str(tmp_path_factory.mktemp("cache"))}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    s3fs.S3FileSystem.clear_instance_cache()  # an instance cached before would keep another endpoint
    fs = s3fs.S3FileSystem()
    fs.mkdir(BUCKET)
    try:
        yield fs, env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


@pytest.fixture(scope="module")
def local_store(tuab, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "tuab.zarr"
    ingest("tuab", tuab.root, out, PROFILE)
    return out


def _same(a, b):
    sa, sb = open_store(a), open_store(b)
    assert sa.shard_names == sb.shard_names and len(sa) == len(sb) > 0
    np.testing.assert_array_equal(sa.read(np.arange(len(sa))), sb.read(np.arange(len(sb))))
    assert sa.metadata.equals(sb.metadata)
    cols = ["recording_id", "status", "error_type", "n_windows", "window_offset", "sha256", "size_bytes"]
    assert sa.recordings[cols].equals(sb.recordings[cols])
    np.testing.assert_array_equal(sa.qc, sb.qc)
    assert sa.attrs["profile_hash"] == sb.attrs["profile_hash"]
    assert sa.channels == sb.channels


def test_ingest_to_s3_reads_back_equal_to_a_local_ingest_with_open_store_and_the_torch_dataset(s3, tuab, local_store):
    fs, _ = s3
    url = f"s3://{BUCKET}/tuab.zarr"
    report = ingest("tuab", tuab.root, url, PROFILE)
    assert report.store == url and report.shards_written == 2
    assert fs.exists(f"{BUCKET}/tuab.zarr/shards/s00000/signals/zarr.json")
    assert not any("staging" in k for k in fs.find(BUCKET))  # assembled on local disk, never in the bucket
    _same(local_store, url)
    assert validate(url) == []
    store = open_store(url)
    assert store.url == url and repr(store).startswith("<biosig Store tuab.zarr")

    torch = pytest.importorskip("torch", reason="the torch extra: pip install -e '.[torch]'")
    from biosig_ingest.torch import StoreDataset

    remote, local = StoreDataset(url, labels=["abnormal"]), StoreDataset(local_store, labels=["abnormal"])
    assert len(remote) == len(local) == len(store)
    for i in (0, len(local) // 2, len(local) - 1):
        a, b = remote[i], local[i]
        assert torch.equal(a["signals"], b["signals"]) and torch.equal(a["labels"]["abnormal"], b["labels"]["abnormal"])

    from biosig_ingest.torch import StoreIterableDataset

    # pickled as a DataLoader worker gets it: reopened from the URL
    remote_it = pickle.loads(pickle.dumps(StoreIterableDataset(url, batch_size=16, shuffle=False)))
    local_it = StoreIterableDataset(local_store, batch_size=16, shuffle=False)
    for a, b in zip(remote_it, local_it, strict=True):
        assert torch.equal(a["signals"], b["signals"]) and torch.equal(a["window"], b["window"])

    again = ingest("tuab", tuab.root, url, PROFILE)  # re-running skips committed shards
    assert again.shards_written == 0 and again.shards_skipped == 2


def test_two_dask_workers_write_the_same_s3_store_as_one_process(s3, tuab, local_store):
    url = f"s3://{BUCKET}/tuab-w2.zarr"
    ingest("tuab", tuab.root, url, PROFILE, workers=2)  # workers inherit the endpoint and credentials
    _same(local_store, url)


def test_a_remote_source_is_mirrored_lazily_and_ingests_like_the_local_tree(s3, tuab, local_store, tmp_path):
    fs, env = s3
    fs.put(str(tuab.root), f"{BUCKET}/src/tuab", recursive=True)
    url = f"s3://{BUCKET}/src/tuab"

    mirror = SourceMirror.for_url(url, cache=tmp_path / "cache")
    mirror.sync(eager_bytes=0)  # everything large: placeholders only
    edfs = sorted(mirror.root.rglob("*.edf"))
    originals = sorted(tuab.root.rglob("*.edf"))
    assert [p.relative_to(mirror.root) for p in edfs] == [p.relative_to(tuab.root) for p in originals]
    assert all(is_placeholder(p) for p in edfs)
    assert [p.stat().st_size for p in edfs] == [p.stat().st_size for p in originals]
    mirror.fetch(edfs[:1])
    assert not is_placeholder(edfs[0]) and edfs[0].read_bytes() == originals[0].read_bytes()
    assert is_placeholder(edfs[1])

    out = tmp_path / "from-s3.zarr"
    ingest("tuab", url, out, PROFILE)  # mirror under $BIOSIG_CACHE, fetched shard by shard
    _same(local_store, out)
    cached = sorted(SourceMirror.for_url(url).root.rglob("*.edf"))
    assert len(cached) == len(originals) and all(is_placeholder(p) for p in cached)  # evicted after each commit
    assert [p.stat().st_size for p in cached] == [p.stat().st_size for p in originals]
    assert str(env["BIOSIG_CACHE"]) not in json.dumps(open_store(out).recordings["relpath"].tolist())


def test_files_read_by_two_shards_are_shared_and_never_evicted(tmp_path):
    from biosig_ingest.ingest import ShardTask, _shared_files
    from biosig_ingest.recording import RecordingRef

    def ref(i, *names):
        files = tuple(tmp_path / n for n in names)
        return RecordingRef(f"r{i}", "s", "", "train", files[0], names[0], files=files)

    tasks = [ShardTask(0, (ref(0, "a.mat"), ref(1, "a.mat", "b.csv"))), ShardTask(1, (ref(2, "b.csv"), ref(3, "c.edf")))]
    assert _shared_files(tmp_path, tasks) == {"b.csv"}  # a.mat: two recordings of one shard
    mirror = SourceMirror("s3://x/y", tmp_path, shared=frozenset({"b.csv"}))
    for name in ("a.mat", "b.csv"):
        (tmp_path / name).write_bytes(b"data")
    mirror.evict([tmp_path / "a.mat", tmp_path / "b.csv", tmp_path / "missing.edf"])
    assert is_placeholder(tmp_path / "a.mat") and (tmp_path / "a.mat").stat().st_size == 4
    assert (tmp_path / "b.csv").read_bytes() == b"data"


def test_a_claim_from_another_recording_list_stops_the_writer_before_it_uploads(s3, tuab):
    fs, _ = s3
    url = f"s3://{BUCKET}/claimed.zarr"
    ingest("tuab", tuab.root, url, PROFILE, limit=1)  # creates the store: shard 0 of one recording
    fs.rm(f"{BUCKET}/claimed.zarr/shards/s00000/zarr.json")  # as if its commit had not happened yet
    with pytest.raises(StoreError, match="claimed by a writer of another recording list"):
        ingest("tuab", tuab.root, url, PROFILE)  # shard 0 now has 8 recordings: another digest
    assert not fs.exists(f"{BUCKET}/claimed.zarr/shards/s00000/zarr.json")


def _writer(store, digest: str):
    """A shard writer for shard 0 of ``store`` holding one recording of three windows."""
    from biosig_ingest.config import resolve_profile
    from biosig_ingest.corpora import get_adapter
    from biosig_ingest.ingest import root_attributes
    from biosig_ingest.manifest import load_profile
    from biosig_ingest.store.writer import ShardWriter, open_for_writing

    adapter = get_adapter("tuab")
    rp = resolve_profile(adapter.manifest, load_profile(adapter.manifest, PROFILE))
    open_for_writing(store, rp, root_attributes(adapter, rp), overwrite=False)
    writer = ShardWriter(store, 0, rp, list(adapter.manifest.labels), digest)
    n, c = 3, len(rp.channels)
    writer.begin_recording()
    signals = np.random.default_rng(len(digest)).standard_normal((n, c, rp.window_samples)).astype(np.float32)
    writer.add_windows(signals, np.arange(n, dtype=np.float64), np.zeros((n, c), np.uint8), {})
    row = {"recording_id": f"rec-{digest}", "subject": "s", "session": "", "split": "train", "relpath": "x.edf"}
    writer.end_recording({**row, "status": "ok", "error_type": None, "error": None})
    return writer


@pytest.mark.parametrize("where", ["local", "s3"])
def test_racing_writers_of_one_shard_commit_once_and_the_loser_adopts_or_stops(request, tmp_path, where):
    store = str(tmp_path / "race.zarr") if where == "local" else f"s3://{BUCKET}/race.zarr"
    if where == "s3":
        request.getfixturevalue("s3")
    first, same, other = _writer(store, "a" * 64), _writer(store, "a" * 64), _writer(store, "b" * 64)
    assert first.commit() == "s00000"
    same.recordings = []
    assert same.commit() == "s00000" and same.recordings == first.recordings  # adopted, not rewritten
    with pytest.raises(StoreError, match="another recording list"):
        other.commit()
    loaded = open_store(store)
    assert loaded.shard_names == ["s00000"] and len(loaded) == 3
    assert list(loaded.recordings["recording_id"]) == ["rec-" + "a" * 64]
    assert validate(store) == []


@pytest.mark.parametrize("where", ["local", "s3"])
def test_two_commands_racing_on_one_store_cooperate(request, tuab, local_store, tmp_path, where):
    env = request.getfixturevalue("s3")[1] if where == "s3" else {}
    url = f"s3://{BUCKET}/raced.zarr" if where == "s3" else str(tmp_path / "raced.zarr")
    cmd = [sys.executable, "-m", "biosig_ingest.cli", "ingest", "tuab", "--source", str(tuab.root), "--out", url, "--profile", PROFILE]
    runs = [subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-2000:]
    assert validate(url) == []
    _same(local_store, url)


@pytest.mark.parametrize("failpoint", ["commit-mid-upload:1", "commit-after-rename:1"])
def test_a_run_killed_mid_upload_leaves_nothing_visible_and_finishes_on_rerun(s3, tuab, local_store, failpoint):
    fs, env = s3
    url = f"s3://{BUCKET}/killed-{failpoint.split(':')[0]}.zarr"
    cmd = [sys.executable, "-m", "biosig_ingest.cli", "ingest", "tuab", "--source", str(tuab.root), "--out", url, "--profile", PROFILE]
    killed = subprocess.run(cmd, env={**os.environ, **env, "BIOSIG_FAILPOINT": failpoint}, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    store = open_store(url)
    if failpoint.startswith("commit-mid-upload"):  # shard 0's first half uploaded, not committed
        assert store.shard_names == [] and fs.exists(f"{BUCKET}/killed-commit-mid-upload.zarr/shards/s00000/claim.json")
    else:
        assert store.shard_names == ["s00000"]
    assert validate(url) == []
    done = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert validate(url) == []
    _same(local_store, url)
