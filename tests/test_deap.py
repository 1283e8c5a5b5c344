"""DEAP: Python-2 pickles read by a restricted unpickler; a pickle that calls os.system never runs."""

from __future__ import annotations

import json
import os
import pickle
import pickletools

import numpy as np
import pytest
from typer.testing import CliRunner

from biosig_ingest import ingest, open_store
from biosig_ingest.cli import app
from biosig_ingest.errors import HeaderError, SecurityError, UsageError
from biosig_ingest.io.safe_pickle import safe_load
from biosig_ingest.manifest import load_manifest
from biosig_ingest.samples import write_deap_replica
from biosig_ingest.samples.deap import py2_pickle
from biosig_ingest.splits import subject_split
from biosig_ingest.store.inspect import validate

EEG32 = load_manifest("deap").channel_sets["eeg32"]


@pytest.fixture(scope="session")
def deap(tmp_path_factory):
    # five participants (s05 lands in val) plus the malicious s06; 3 s trials keep it fast
    replica = write_deap_replica(tmp_path_factory.mktemp("deap-src"), trial_s=3)
    assert not replica.marker.exists()
    return replica


@pytest.fixture(scope="session")
def deap_store(deap, tmp_path_factory):
    out = tmp_path_factory.mktemp("stores") / "deap.zarr"
    return out, ingest("deap", deap.root, out)


def _source(f) -> dict:
    with open(f.path, "rb") as fh:
        return pickle.load(fh, encoding="latin1")


def test_replica_dat_is_a_python2_protocol2_pickle_whose_arrays_load_only_with_latin1(deap):
    f = deap.good_files[0]
    data = f.path.read_bytes()
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(data)]
    assert ops[0] == ("PROTO", 2)
    assert ("GLOBAL", "numpy.core.multiarray _reconstruct") in ops
    assert any(name == "BINSTRING" for name, _ in ops)  # Python 2 str: bytes without an encoding
    with pytest.raises(UnicodeDecodeError):
        pickle.loads(data)  # Python 3's default encoding is ASCII
    obj = pickle.loads(data, encoding="latin1")
    assert obj["data"].shape == (f.n_trials, 40, f.trial_samples) and obj["data"].dtype == np.float64
    np.testing.assert_array_equal(obj["labels"], np.array(f.ratings))
    safe = safe_load(f.path)
    np.testing.assert_array_equal(safe["data"], obj["data"])


def test_malicious_dat_fails_with_security_error_creates_nothing_and_the_rest_completes(deap, deap_store):
    path, report = deap_store
    bad = [f for f in deap.files if f.malicious]
    assert len(bad) == 1
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(bad[0].path.read_bytes())]
    assert ("GLOBAL", "os system") in ops and ("REDUCE", None) in ops  # it would run if unpickled normally
    assert not deap.marker.exists()
    assert report.errors == {"SecurityError": 40}
    assert report.recordings_ok == 40 * len(deap.good_files)
    store = open_store(path)
    recs = store.recordings
    failed = recs[recs.status == "failed"]
    assert set(failed.relpath) == {bad[0].relpath} and len(failed) == 40
    assert (failed.error_type == "SecurityError").all() and (failed.n_windows == 0).all()
    assert "os.system" in failed.error.iloc[0] and "\n" not in failed.error.iloc[0]
    assert bad[0].subject not in set(store.metadata.subject)
    assert validate(path) == []
    assert not any(p.name == deap.marker.name for p in deap.root.rglob("*"))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_pickles_that_reach_any_other_global_raise_security_error_before_running(tmp_path, protocol):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    class Eval:
        def __reduce__(self):
            return (eval, (f"open({str(marker)!r}, 'w')",))

    for payload in (Exploit(), Eval(), {"data": np.zeros(2), "x": Exploit()}):
        with pytest.raises(SecurityError):
            safe_load(pickle.dumps(payload, protocol=protocol))
    assert not marker.exists()
    # bytes in a Python-3 protocol-2 pickle go through _codecs.encode: latin-1 only
    smuggled = pickle.dumps(b"\xff", protocol=2).replace(b"latin1", b"rot_13")
    with pytest.raises(SecurityError, match="codec"):
        safe_load(smuggled)
    arrays = {"data": np.arange(6.0).reshape(2, 3), "labels": np.ones((2, 4), np.float32)}
    for p in (0, 2, 4, 5):  # what numpy array reconstruction needs is allowed at every protocol
        back = safe_load(pickle.dumps(arrays, protocol=p))
        np.testing.assert_array_equal(back["data"], arrays["data"])
    with pytest.raises(HeaderError, match="not a readable pickle"):
        safe_load(py2_pickle({"data": np.zeros(3)})[:-20])


def test_each_trial_carries_its_ratings_binary_labels_at_5_and_familiarity(deap, deap_store):
    store = open_store(deap_store[0])
    first = store.metadata.groupby("recording_id", observed=True).first()
    for f in deap.good_files:
        for trial, (ratings, fam) in enumerate(zip(f.ratings, f.familiarity, strict=True), start=1):
            row = first.loc[f.recording_id(trial)]
            for name, value in zip(("valence", "arousal", "dominance", "liking"), ratings, strict=True):
                assert row[name] == pytest.approx(value, abs=1e-5)
                assert row[f"{name}_binary"] == ("high" if value >= 5.0 else "low")
            if fam is None:
                assert np.isnan(row["familiarity"])
            else:
                assert row["familiarity"] == fam
    # the replica pins the rule: trial 1 rates exactly 5.0 (high), trial 2 4.99 (low)
    assert first.loc["s01_t01", "valence_binary"] == "high" and first.loc["s01_t02", "valence_binary"] == "low"
    assert np.isnan(first.loc["s02_t01", "familiarity"])  # participant 2 has no familiarity ratings


def test_baseline_is_dropped_by_default_and_subtracted_by_the_baseline_corrected_profile(deap, deap_store, tmp_path):
    f = deap.good_files[1]
    source = _source(f)["data"].astype(np.float32)
    n_base = int(deap.baseline_s * deap.fs_hz)
    store = open_store(deap_store[0])
    meta = store.metadata
    trial = 7
    idx = meta.index[meta.recording_id == f.recording_id(trial)].to_numpy()
    assert len(idx) == (f.trial_samples - n_base) // 128
    assert meta.start_s[idx].tolist() == list(range(len(idx)))  # 0 s = start of the video, after the baseline
    x = source[trial - 1, :32]
    expected = x[:, n_base : n_base + 128 * len(idx)].reshape(32, len(idx), 128).transpose(1, 0, 2)
    np.testing.assert_array_equal(store.read(idx), expected)

    out = tmp_path / "bc.zarr"
    ingest("deap", deap.root, out, "baseline_corrected", limit=80)
    corrected = open_store(out)
    cmeta = corrected.metadata
    cidx = cmeta.index[cmeta.recording_id == f.recording_id(trial)].to_numpy()
    mean = x[:, :n_base].astype(np.float64).mean(axis=1, keepdims=True).astype(np.float32)
    np.testing.assert_allclose(corrected.read(cidx), expected - mean[None], atol=1e-4)
    assert abs(float(np.mean(expected))) > 1.0 > abs(float(np.mean(corrected.read(cidx))))


def test_all40_profile_stores_the_peripheral_channels_with_their_types(deap, tmp_path):
    out = tmp_path / "all40.zarr"
    report = ingest("deap", deap.root, out, "all40", limit=40)
    assert report.recordings_ok == 40
    store = open_store(out)
    table = {c["name"]: c for c in store.attrs["channels"]}
    assert store.channels[:32] == EEG32 and store.channels[32:] == ["hEOG", "vEOG", "zEMG", "tEMG", "GSR", "Resp", "PPG", "Temp"]
    assert [table[n]["type"] for n in store.channels[32:]] == ["eog", "eog", "emg", "emg", "gsr", "resp", "ppg", "temp"]
    assert table["Resp"]["original"] == "Respiration belt" and table["Resp"]["unit"] == "a.u."
    assert table["hEOG"]["unit"] == "uV" and table["hEOG"]["position_m"] is None
    source = _source(deap.good_files[0])["data"].astype(np.float32)
    np.testing.assert_array_equal(store.read([0])[0, 32:], source[0, 32:, 384 : 384 + 128])


def test_threshold_comes_from_the_profile_and_bad_source_options_are_refused(deap, tmp_path):
    base = load_manifest("deap").profile("default")
    strict = base.model_copy(update={"name": "t7", "source_options": {"baseline": "drop", "threshold": 7.0}})
    ingest("deap", deap.root, tmp_path / "t7.zarr", strict, limit=40)
    store = open_store(tmp_path / "t7.zarr")
    assert store.attrs["profile"]["profile"]["source_options"]["threshold"] == 7.0
    first = store.metadata.groupby("recording_id", observed=True).first()
    for trial, ratings in enumerate(deap.files[0].ratings, start=1):
        assert first.loc[f"s01_t{trial:02d}", "arousal_binary"] == ("high" if ratings[1] >= 7.0 else "low")
    wrong = base.model_copy(update={"name": "bad", "source_options": {"baseline": "keep"}})
    with pytest.raises(UsageError, match="baseline"):
        ingest("deap", deap.root, tmp_path / "bad.zarr", wrong)


def test_inspect_json_shows_rating_columns_and_binary_class_counts(deap, deap_store):
    info = json.loads(CliRunner().invoke(app, ["inspect", str(deap_store[0]), "--json"]).stdout)
    assert info["recordings"] == {"ok": 200, "failed": 40, "errors": {"SecurityError": 40}}
    assert info["channels"] == EEG32 and info["fs_hz"] == 128 and info["window_samples"] == 128
    per_trial = (deap.good_files[0].trial_samples - 384) // 128
    high = sum(r[0] >= 5.0 for f in deap.good_files for r in f.ratings) * per_trial
    assert info["labels"]["valence_binary"] == {"low": info["n_windows"] - high, "high": high}
    assert info["labels"]["valence"]["count"] == info["n_windows"] and info["labels"]["valence"]["min"] >= 1.0
    assert info["labels"]["familiarity"]["missing"] == 40 * per_trial  # participant 2


def test_subject_wise_split_is_identical_across_two_ingests(deap, deap_store, tmp_path):
    again = tmp_path / "again.zarr"
    ingest("deap", deap.root, again)
    a = open_store(deap_store[0]).metadata[["recording_id", "split"]]
    b = open_store(again).metadata[["recording_id", "split"]]
    assert a.equals(b)
    spec = load_manifest("deap").splits
    for subject, split in open_store(again).recordings.groupby("subject")["split"].first().items():
        assert split == subject_split(str(subject), spec)
    assert set(a.split) == {"train", "val"}  # s01-s04 train, s05 val with the manifest's seed


def test_a_dat_with_the_wrong_content_fails_its_trials_with_header_error(deap, tmp_path):
    folder = tmp_path / "data_preprocessed_python"
    folder.mkdir()
    good = deap.good_files[0]
    (folder / "s01.dat").write_bytes(good.path.read_bytes())
    objects = np.array([["a", "b", "c", "d"]] * 40, dtype=object)
    (folder / "s02.dat").write_bytes(pickle.dumps({"data": np.zeros((40, 40, 8), object), "labels": objects}, 2))
    (folder / "s03.dat").write_bytes(py2_pickle({"data": np.zeros((40, 32, 500)), "labels": np.ones((40, 4))}))
    (folder / "s04.dat").write_bytes(good.path.read_bytes()[:100_000])  # truncated
    report = ingest("deap", tmp_path, tmp_path / "out.zarr")
    assert report.recordings_ok == 40 and report.errors == {"HeaderError": 120}
    recs = open_store(tmp_path / "out.zarr").recordings.set_index("recording_id")
    assert "not numbers" in recs.loc["s02_t01", "error"]
    assert "expected (trials, 40, samples)" in recs.loc["s03_t01", "error"]
    assert "not a readable pickle" in recs.loc["s04_t40", "error"]
