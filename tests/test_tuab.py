"""TUH Abnormal: a replica tree with every documented quirk ingests into one canonical layout."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import xarray as xr
from typer.testing import CliRunner

from biosig_ingest import ingest, open_store
from biosig_ingest.cli import app
from biosig_ingest.store.inspect import validate
from biosig_ingest.store.layout import staging_root

TUH_19 = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "F7", "F8", "T7", "T8", "P7", "P8", "Fz", "Cz", "Pz"]


def test_replica_has_the_quirks_this_test_relies_on(tuab):
    good = [f for f in tuab.files if f.broken is None]
    assert {f.reference for f in good} == {"REF", "LE"}
    assert {f.fs_hz for f in good} >= {250, 256, 512}
    assert len({f.channel_labels for f in good}) == len(good)  # every file its own order
    assert any("IBI" in f.channel_labels or "PHOTIC-REF" in f.channel_labels for f in good)


def test_tuab_tree_with_le_and_ref_files_junk_channels_and_mixed_rates_ingests_in_canonical_order(tuab, tuab_store):
    path, report = tuab_store
    store = open_store(path)
    assert store.channels == TUH_19
    assert store.fs_hz == 200 and store.window_samples == 2000
    good = [f for f in tuab.files if f.broken is None]
    assert report.recordings_ok == len(good)
    recs = store.recordings.set_index("recording_id")
    for f in good:
        row = recs.loc[f"{f.subject}_{f.session}_{f.token}"]
        assert row["status"] == "ok"
        # the source labels behind each canonical channel, e.g. EEG T3-LE behind T7
        assert [lab.split(" ")[-1].split("-")[0] for lab in row["source_channels"]][12] == "T3"
        assert all(lab.endswith(f"-{f.reference}") for lab in row["source_channels"])
        assert "IBI" not in row["source_channels"] and "EEG ROC-REF" not in row["source_channels"]
        assert row["n_windows"] == int(f.duration_s // 10)
        assert row["nan_channels"] == [] and row["nan_samples"] == 0 and row["flat_channels"] == []
    table = {c["name"]: c for c in store.attrs["channels"]}
    assert table["T7"]["original"] == "T3" and table["P8"]["original"] == "T6"
    assert table["Cz"]["position_m"] is not None and len(table["Cz"]["position_m"]) == 3


def test_sinusoid_injected_on_cz_is_on_cz_at_that_time_in_the_store(tuab, tuab_store):
    store = open_store(tuab_store[0])
    meta = store.metadata
    sine = tuab.sine
    cz = store.channels.index("Cz")
    fs = store.fs_hz
    for f in [f for f in tuab.files if f.broken is None]:
        rid = f"{f.subject}_{f.session}_{f.token}"
        rows = meta[(meta.recording_id == rid) & (meta.start_s <= sine.start_s) & (meta.start_s + 10 > sine.start_s + sine.duration_s)]
        assert len(rows) == 1, rid
        w = store[int(rows.window.iloc[0])].signal
        t = rows.start_s.iloc[0] + np.arange(w.shape[1]) / fs
        inside = (t >= sine.start_s + 0.5) & (t < sine.start_s + sine.duration_s - 0.5)
        ref = np.sin(2 * np.pi * sine.freq_hz * (t[inside] - sine.start_s))
        # project each channel on the injected sinusoid (sine and cosine, any phase)
        basis = np.stack([ref, np.cos(2 * np.pi * sine.freq_hz * (t[inside] - sine.start_s))])
        amp = np.linalg.norm(w[:, inside] @ np.linalg.pinv(basis), axis=1)
        assert np.argmax(amp) == cz, rid
        assert abs(amp[cz] - sine.amplitude_uv) < 0.1 * sine.amplitude_uv, (rid, amp[cz])
        outside = ~((t >= sine.start_s - 1) & (t < sine.start_s + sine.duration_s + 1))
        amp_out = np.linalg.norm(w[cz, outside] @ np.linalg.pinv(np.stack([
            np.sin(2 * np.pi * sine.freq_hz * t[outside]), np.cos(2 * np.pi * sine.freq_hz * t[outside])])))
        assert amp_out < 0.2 * sine.amplitude_uv


def test_truncated_edf_is_recorded_failed_and_every_other_recording_ingested(tuab, tuab_store):
    path, report = tuab_store
    broken = [f for f in tuab.files if f.broken == "truncated"]
    assert broken
    recs = open_store(path).recordings.set_index("relpath")
    for f in broken:
        row = recs.loc[f.relpath]
        assert row["status"] == "failed" and row["error_type"] == "TruncatedFileError"
        assert "\n" not in row["error"] and row["n_windows"] == 0
    assert (recs["status"] == "ok").sum() == len(tuab.files) - len(broken)
    assert report.errors == {"TruncatedFileError": len(broken)}


def test_store_passes_validate_opens_with_xarray_and_leaves_nothing_partial(tuab_store):
    path, _ = tuab_store
    assert validate(path) == []
    assert not staging_root(path).exists()
    store = open_store(path)
    ds = xr.open_zarr(str(path), group=f"shards/{store.shard_names[0]}", consolidated=False)
    assert ds["signals"].dims == ("window", "channel", "time")
    assert ds["qc"].dims == ("window", "channel")
    np.testing.assert_array_equal(ds["signals"][0].values, store[0].signal)


def test_no_patient_name_or_birth_date_from_edf_headers_reaches_the_store(tuab, tuab_store):
    path, _ = tuab_store
    needles = [tuab.patient_name.encode(), tuab.birthdate.encode()]
    assert all(needle in tuab.files[0].path.read_bytes()[:256] for needle in needles)  # they are in the source
    for file in path.rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            assert not any(needle in data for needle in needles), file


def test_reingesting_the_same_source_and_profile_does_nothing(tuab, tuab_store):
    path, _ = tuab_store
    before = {p: p.stat().st_mtime_ns for p in path.rglob("*") if p.is_file()}
    report = ingest("tuh", tuab.root, path)
    assert report.shards_written == 0 and report.shards_skipped >= 1
    assert {p: p.stat().st_mtime_ns for p in path.rglob("*") if p.is_file()} == before


def test_cli_refuses_a_different_profile_without_overwrite_and_rebuilds_with_it(tuab, tmp_path):
    runner = CliRunner()
    out = tmp_path / "s.zarr"
    args = ["ingest", "tuh", "--source", str(tuab.root), "--out", str(out), "--limit", "3"]
    assert runner.invoke(app, args).exit_code == 0
    refused = runner.invoke(app, [*args, "--profile", "ref21"])
    assert refused.exit_code == 2 and "overwrite" in refused.output
    rebuilt = runner.invoke(app, [*args, "--profile", "ref21", "--overwrite"])
    assert rebuilt.exit_code == 0, rebuilt.output
    info = json.loads(runner.invoke(app, ["inspect", str(out), "--json"]).stdout)
    assert info["channels"][16:18] == ["A1", "A2"] and len(info["channels"]) == 21


def test_strict_exits_1_when_a_recording_failed_and_0_without_strict(tuab, tmp_path):
    runner = CliRunner()
    base = ["ingest", "tuh", "--source", str(tuab.root)]
    assert runner.invoke(app, [*base, "--out", str(tmp_path / "a.zarr")]).exit_code == 0
    strict = runner.invoke(app, [*base, "--out", str(tmp_path / "b.zarr"), "--strict"])
    assert strict.exit_code == 1
    assert "TruncatedFileError" in strict.output


def test_an_interrupted_shard_leaves_nothing_visible(tuab, tmp_path):
    out = tmp_path / "crash.zarr"
    seen = []

    def crash(row):
        seen.append(row)
        if len(seen) == 2:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-shard

    with contextlib.suppress(KeyboardInterrupt):
        ingest("tuh", tuab.root, out, on_recording=crash)
    assert open_store(out).shard_names == []
    assert not any(staging_root(out).glob("*"))
    report = ingest("tuh", tuab.root, out)  # re-running finishes the job
    assert report.recordings_ok + report.recordings_failed == len(tuab.files)
    assert validate(out) == []
