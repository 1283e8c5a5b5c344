"""The biosig command and the open_store API, as a user meets them."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from biosig_ingest import open_store
from biosig_ingest.cli import app
from biosig_ingest.store.layout import ATTRS_KEY

runner = CliRunner()


def test_inspect_json_has_the_stable_fields_scripts_rely_on(tuab_store):
    result = runner.invoke(app, ["inspect", str(tuab_store[0]), "--json"])
    assert result.exit_code == 0
    info = json.loads(result.stdout)
    for key in ("n_windows", "recordings", "channels", "fs_hz", "window_samples", "labels", "splits", "profile_hash", "schema_version"):
        assert key in info, key
    assert info["recordings"]["failed"] == 1 and info["recordings"]["errors"] == {"TruncatedFileError": 1}
    assert set(info["splits"]) == {"train", "test"}
    assert sum(info["labels"]["abnormal"].values()) == info["n_windows"]


def test_validate_exits_0_on_a_good_store_and_1_on_a_damaged_one(tuab_store, tmp_path):
    assert runner.invoke(app, ["validate", str(tuab_store[0])]).exit_code == 0
    import shutil

    damaged = tmp_path / "damaged.zarr"
    shutil.copytree(tuab_store[0], damaged)
    root = json.loads((damaged / "zarr.json").read_text())
    root["attributes"][ATTRS_KEY]["profile"]["profile"]["target_fs_hz"] = 256.0
    (damaged / "zarr.json").write_text(json.dumps(root))
    result = runner.invoke(app, ["validate", str(damaged)])
    assert result.exit_code == 1 and "profile_hash" in result.output


def test_usage_errors_exit_2_with_one_line(tuab, tmp_path):
    result = runner.invoke(app, ["ingest", "nosuchcorpus", "--source", str(tuab.root), "--out", str(tmp_path / "x.zarr")])
    assert result.exit_code == 2 and "unknown corpus" in result.output
    result = runner.invoke(app, ["ingest", "ptbxl", "--source", str(tmp_path), "--out", str(tmp_path / "y.zarr")])
    assert result.exit_code == 2 and "ptbxl_database.csv" in result.output
    assert runner.invoke(app, ["ingest", "tuh"]).exit_code == 2  # missing options: click's usage error
    assert runner.invoke(app, ["inspect", str(tmp_path)]).exit_code == 2


def test_list_shows_corpora_and_profiles():
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    for word in ("ptbxl", "tuh", "raw500", "ref21"):
        assert word in result.output


def test_open_store_random_access_batch_reads_and_metadata_agree(tuab_store):
    store = open_store(tuab_store[0])
    n = len(store)
    assert n > 40 and store.metadata.shape[0] == n
    rng = np.random.default_rng(0)
    idx = rng.permutation(n)[:17]
    batch = store.read(idx)
    for k, i in enumerate(idx):
        np.testing.assert_array_equal(batch[k], store[int(i)].signal)
    item = store[int(idx[0])]
    assert item.signal.shape == (19, 2000) and item.signal.dtype == np.float32
    for col in ("recording_id", "subject", "split", "start_s", "abnormal", "qc_flat"):
        assert col in item.metadata
    np.testing.assert_array_equal(store[-1].signal, store[n - 1].signal)


def test_demo_builds_valid_stores_and_prints_what_it_built(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert "invalid" not in result.output
    for name, corpus in (("tuab.zarr", "tuab"), ("ptbxl.zarr", "ptbxl")):
        store = open_store(tmp_path / "demo" / name)
        assert len(store) > 0 and store.attrs["corpus"] == corpus
    assert "windows" in result.output and "TruncatedFileError" in result.output


def test_a_schema_1_store_with_inline_recordings_tables_reads_the_same_and_validates(tuab_store, tmp_path):
    """Schema 1 kept each shard's recordings table in its attributes; schema 2 beside its arrays."""
    import gzip
    import shutil

    from biosig_ingest.store.inspect import validate
    from biosig_ingest.store.writer import RECORDINGS

    old = tmp_path / "schema1.zarr"
    shutil.copytree(tuab_store[0], old)
    root = json.loads((old / "zarr.json").read_text())
    root["attributes"][ATTRS_KEY]["schema_version"] = 1
    (old / "zarr.json").write_text(json.dumps(root))
    for shard in sorted((old / "shards").glob("s*")):
        meta = json.loads((shard / "zarr.json").read_text())
        meta["attributes"][ATTRS_KEY]["recordings"] = json.loads(gzip.decompress((shard / RECORDINGS).read_bytes()))
        (shard / "zarr.json").write_text(json.dumps(meta))
        (shard / RECORDINGS).unlink()
    new, schema1 = open_store(tuab_store[0]), open_store(old)
    assert schema1.recordings.equals(new.recordings) and schema1.metadata.equals(new.metadata)
    assert validate(old) == []
    (tuab_store[0] / "shards" / "s00000" / RECORDINGS).rename(tmp_path / "away")  # a schema-2 shard without its table
    try:
        assert any("lacks its recordings table" in p for p in validate(tuab_store[0]))
    finally:
        (tmp_path / "away").rename(tuab_store[0] / "shards" / "s00000" / RECORDINGS)
