"""SEED and SEED-IV: replica trees of MAT files (v5 compressed and not, v7.3) ingest one recording per trial."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import h5py
import numpy as np
import pytest
import scipy.io
from typer.testing import CliRunner

from biosig_ingest import ingest, open_store
from biosig_ingest.cli import app
from biosig_ingest.corpora.seed import trial_variables
from biosig_ingest.errors import HeaderError, UsageError
from biosig_ingest.io.mat import list_variables, load_variables, mat_version
from biosig_ingest.manifest import load_manifest
from biosig_ingest.samples import write_seed_iv_replica, write_seed_replica
from biosig_ingest.samples.seed import (
    REPLICA_SEED_TRIAL_S,
    SEED_IV_LABELS,
    SEED_PREFIXES,
    UNLISTED_PREFIX,
)
from biosig_ingest.splits import subject_split
from biosig_ingest.store.inspect import validate


@pytest.fixture(scope="session")
def seed(tmp_path_factory):
    # the default 10-20 s trials halved to 5-10 s: still 15 different lengths, half the bytes
    trial_s = tuple(5 + (s - 10) // 2 for s in REPLICA_SEED_TRIAL_S)
    return write_seed_replica(tmp_path_factory.mktemp("seed-src"), trial_s=trial_s)


@pytest.fixture(scope="session")
def seed_iv(tmp_path_factory):
    return write_seed_iv_replica(tmp_path_factory.mktemp("seed-iv-src"), trial_s=(4, 5, 6) * 8)


@pytest.fixture(scope="session")
def seed_store(seed, tmp_path_factory):
    out = tmp_path_factory.mktemp("stores") / "seed.zarr"
    return out, ingest("seed", seed.root, out)


@pytest.fixture(scope="session")
def seed_iv_store(seed_iv, tmp_path_factory):
    out = tmp_path_factory.mktemp("stores") / "seed-iv.zarr"
    return out, ingest("seed-iv", seed_iv.root, out)


def _source_trial(f, trial: int) -> np.ndarray:
    """A trial array read without biosig_ingest.io.mat: scipy for v5, h5py (transposed back) for v7.3."""
    name = f"{f.prefix}_eeg{trial}"
    if f.mat_format == "v7.3":
        with h5py.File(f.path, "r") as h5:
            return np.asarray(h5[name][()]).T
    return scipy.io.loadmat(str(f.path), variable_names=[name])[name]


def test_replica_has_the_quirks_this_test_relies_on(seed):
    assert {f.mat_format for f in seed.files} == {"v5", "v5-compressed", "v7.3"}
    assert len(seed.subjects) >= 3 and {f.session for f in seed.files} == {1, 2, 3}
    manifest_prefixes = set(load_manifest("seed").extra["known_prefixes"].values())
    assert UNLISTED_PREFIX in {f.prefix for f in seed.files}
    assert UNLISTED_PREFIX not in manifest_prefixes | set(SEED_PREFIXES.values())
    assert len(set(seed.files[0].trial_samples)) > 3  # trials of different lengths
    for f in seed.files:
        head = f.path.read_bytes()[:136]
        if f.mat_format == "v7.3":
            assert head.startswith(b"MATLAB 7.3 MAT-file") and h5py.is_hdf5(f.path)
            with h5py.File(f.path, "r") as h5:  # HDF5 holds MATLAB's column-major matrix transposed
                assert h5[f"{f.prefix}_eeg1"].shape == (f.trial_samples[0], 62)
            with pytest.raises(NotImplementedError):
                scipy.io.loadmat(str(f.path))
        else:
            # data element 1: miCOMPRESSED (15) for -v7 files, miMATRIX (14) for -v6 files
            assert head.startswith(b"MATLAB 5.0 MAT-file")
            assert int.from_bytes(head[128:132], "little") == (15 if f.mat_format == "v5-compressed" else 14)


def test_mat_reader_gives_matlab_orientation_for_v5_and_v73(seed):
    for f in seed.files:
        assert mat_version(f.path) == ("7.3" if f.mat_format == "v7.3" else "5")
        shapes = list_variables(f.path)
        assert shapes[f"{f.prefix}_eeg3"] == (62, f.trial_samples[2])
        x = load_variables(f.path, [f"{f.prefix}_eeg3"])[f"{f.prefix}_eeg3"]
        np.testing.assert_array_equal(x, _source_trial(f, 3))


def test_seed_tree_with_several_subjects_and_sessions_every_trial_window_carries_its_label(seed, seed_store):
    path, report = seed_store
    store = open_store(path)
    assert report.recordings_failed == 0 and report.recordings_ok == 15 * len(seed.files)
    meta = store.metadata
    by_recording = meta.groupby("recording_id", observed=True)
    for f in seed.files:
        for trial, (n, emotion) in enumerate(zip(f.trial_samples, f.emotions, strict=True), start=1):
            rows = by_recording.get_group(f.recording_id(trial))
            assert len(rows) == (n - 1) // 200  # 200 * seconds + 1 samples -> one 1 s window per second
            assert set(rows["emotion"]) == {emotion}
            assert set(rows["session"]) == {str(f.session)} and set(rows["subject"]) == {f.subject}
    assert store.channels[:3] == ["Fp1", "Fpz", "Fp2"] and store.channels[-1] == "CB2"
    table = {c["name"]: c for c in store.attrs["channels"]}
    assert table["CB1"]["type"] == "eeg" and table["CB1"]["position_m"] is None
    assert table["POz"]["original"] == "POZ" and table["POz"]["position_m"] is not None
    assert validate(path) == []


def test_session_is_the_rank_of_the_files_date_among_the_subjects_files(seed, seed_store):
    recs = open_store(seed_store[0]).recordings
    for subject in seed.subjects:
        dates = sorted(f.date for f in seed.files if f.subject == subject)
        for f in (f for f in seed.files if f.subject == subject):
            rows = recs[recs.relpath == f.relpath]
            assert set(rows["session"]) == {str(dates.index(f.date) + 1)}


def test_store_windows_are_the_source_samples_for_v5_compressed_v5_and_v73_files(seed, seed_store):
    store = open_store(seed_store[0])
    meta = store.metadata
    for fmt in ("v5", "v5-compressed", "v7.3"):
        f = next(f for f in seed.files if f.mat_format == fmt)
        trial = 9  # the longest trial
        x = _source_trial(f, trial).astype(np.float32)
        idx = meta.index[meta.recording_id == f.recording_id(trial)]
        windows = store.read(idx.to_numpy())
        expected = x[:, : len(idx) * 200].reshape(62, len(idx), 200).transpose(1, 0, 2)
        np.testing.assert_array_equal(windows, expected)  # the profile keeps the published samples


def test_win4s_profile_gives_4_s_windows_with_the_same_labels(seed, seed_store, tmp_path):
    out = tmp_path / "seed4s.zarr"
    report = ingest("seed", seed.root, out, "win4s")
    assert report.recordings_failed == 0
    store = open_store(out)
    assert store.window_samples == 800
    counts = store.metadata.groupby("recording_id", observed=True).size()
    f = seed.files[0]
    for trial, n in enumerate(f.trial_samples, start=1):
        assert counts[f.recording_id(trial)] == (n - 1) // 800
    # the subject-wise split does not depend on the profile or the run
    first = open_store(seed_store[0]).recordings.set_index("recording_id")["split"]
    second = store.recordings.set_index("recording_id")["split"]
    assert second.sort_index().equals(first.sort_index())


def test_subject_wise_split_is_deterministic_and_keeps_each_subject_in_one_split(seed, seed_store):
    spec = load_manifest("seed").splits
    recs = open_store(seed_store[0]).recordings
    assert recs.groupby("subject")["split"].nunique().max() == 1
    for subject, split in recs.groupby("subject")["split"].first().items():
        assert split == subject_split(str(subject), spec)
    assert len(set(recs["split"])) >= 2  # the replica's three subjects are not all in one split


def test_seed_iv_trials_carry_the_documented_label_sequence_of_their_session_folder(seed_iv, seed_iv_store):
    path, report = seed_iv_store
    assert report.recordings_failed == 0 and report.recordings_ok == 24 * len(seed_iv.files)
    store = open_store(path)
    assert store.window_samples == 800  # default: 4 s windows
    classes = ["neutral", "sad", "fear", "happy"]
    first = store.metadata.groupby("recording_id", observed=True).first()
    for f in seed_iv.files:
        for trial, code in enumerate(SEED_IV_LABELS[f.session], start=1):
            row = first.loc[f.recording_id(trial)]
            assert row["emotion"] == classes[code] and row["session"] == str(f.session)


def test_inspect_json_shows_the_emotion_column_and_its_class_counts(seed, seed_store, seed_iv, seed_iv_store):
    runner = CliRunner()
    info = json.loads(runner.invoke(app, ["inspect", str(seed_store[0]), "--json"]).stdout)
    expected: Counter = Counter()
    for f in seed.files:
        for n, emotion in zip(f.trial_samples, f.emotions, strict=True):
            expected[emotion] += (n - 1) // 200
    assert info["labels"] == {"emotion": dict(expected)}
    assert info["recordings"] == {"ok": 15 * len(seed.files), "failed": 0, "errors": {}}
    assert len(info["channels"]) == 62 and info["fs_hz"] == 200
    info_iv = json.loads(runner.invoke(app, ["inspect", str(seed_iv_store[0]), "--json"]).stdout)
    assert set(info_iv["labels"]["emotion"]) == {"neutral", "sad", "fear", "happy"}
    assert sum(info_iv["labels"]["emotion"].values()) == info_iv["n_windows"]


def test_a_damaged_mat_file_fails_its_trials_and_the_other_files_ingest(seed, tmp_path):
    folder = tmp_path / "Preprocessed_EEG"
    folder.mkdir()
    good = next(f for f in seed.files if f.mat_format == "v5-compressed")
    shutil.copy(good.path, folder / good.path.name)
    shutil.copy(seed.root / "Preprocessed_EEG" / "label.mat", folder / "label.mat")
    data = good.path.read_bytes()
    (folder / "7_20131027.mat").write_bytes(data[: len(data) // 3])  # cut inside a compressed trial
    (folder / "8_20140511.mat").write_bytes(b"not a MAT file at all" * 20)
    report = ingest("seed", tmp_path, tmp_path / "out.zarr")
    assert report.recordings_ok + report.recordings_failed == 45
    recs = open_store(tmp_path / "out.zarr").recordings
    assert (recs[recs.subject == good.subject]["status"] == "ok").all()
    assert (recs[recs.subject == "8"]["error_type"] == "HeaderError").all()
    assert (recs[recs.subject == "7"]["status"] == "failed").sum() >= 10  # the later trials are gone
    assert (recs.loc[recs.status == "failed", "n_windows"] == 0).all()


def test_a_seed_tree_without_label_mat_stops_with_a_usage_error(seed, tmp_path):
    folder = tmp_path / "Preprocessed_EEG"
    folder.mkdir()
    shutil.copy(seed.files[0].path, folder / seed.files[0].path.name)
    with pytest.raises(UsageError, match="label.mat"):
        ingest("seed", tmp_path, tmp_path / "out.zarr")
    result = CliRunner().invoke(app, ["ingest", "seed", "--source", str(tmp_path), "--out", str(tmp_path / "o2.zarr")])
    assert result.exit_code == 2


def test_trial_variables_are_found_by_pattern_and_the_known_prefix_settles_ambiguity():
    assert trial_variables(["zz_eeg2", "zz_eeg1", "__header__"], None, "f.mat") == {1: "zz_eeg1", 2: "zz_eeg2"}
    both = ["ab_eeg1", "djc_eeg1"]
    assert trial_variables(both, "djc", "f.mat") == {1: "djc_eeg1"}
    with pytest.raises(HeaderError, match="several"):
        trial_variables(both, None, "f.mat")
    with pytest.raises(HeaderError, match="no <prefix>_eeg<N>"):
        trial_variables(["label"], None, "f.mat")


def test_seed_refuses_source_options_it_does_not_know(seed, tmp_path):
    profile = load_manifest("seed").profile("default").model_copy(update={"source_options": {"baseline": "drop"}})
    with pytest.raises(UsageError, match="source_options"):
        ingest("seed", seed.root, tmp_path / "x.zarr", profile)
    assert not (tmp_path / "x.zarr").exists()
