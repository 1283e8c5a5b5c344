"""The TUH family from replica trees: subsets detected, windows counted, labels by the rules."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from biosig_ingest import ingest, open_store
from biosig_ingest.cli import app
from biosig_ingest.corpora.tuh import detect_subset
from biosig_ingest.dsp.quality import MISSING
from biosig_ingest.labels import overlap_s
from biosig_ingest.manifest import load_manifest
from biosig_ingest.samples.tuh_family import (
    write_tuar_replica,
    write_tueg_replica,
    write_tuev_replica,
    write_tusz_replica,
)
from biosig_ingest.store.inspect import validate

WRITERS = {
    "tueg_v1": lambda root: write_tueg_replica(root, version="v1"),
    "tueg_v2": lambda root: write_tueg_replica(root, version="v2"),
    "tuev": write_tuev_replica,
    "tusz": write_tusz_replica,
    "tuar": write_tuar_replica,
}


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    """Each replica ingested once through `tuh` (subset detected) with its default profile."""
    out = {}
    for name, write in WRITERS.items():
        root = tmp_path_factory.mktemp(name)
        replica = write(root / "src")
        report = ingest("tuh", replica.root, root / "store.zarr")
        out[name] = (replica, report, open_store(root / "store.zarr"))
    return out


def _rid(f):
    return f.path.stem


@pytest.mark.parametrize("name,subset", [("tueg_v1", "tueg"), ("tueg_v2", "tueg"), ("tuev", "tuev"), ("tusz", "tusz"), ("tuar", "tuar")])
def test_each_tree_is_detected_as_its_subset_and_ingests_completely(family, name, subset):
    replica, report, store = family[name]
    assert detect_subset(replica.root) == subset and store.attrs["corpus"] == subset
    assert report.recordings_failed == 0 and report.recordings_ok == len(replica.files)
    assert validate(store.path) == []


@pytest.mark.parametrize("name", ["tueg_v1", "tueg_v2", "tusz", "tuar"])
def test_fixed_windows_count_whole_windows_and_subjects_come_from_the_names(family, name):
    replica, _, store = family[name]
    window_s = store.window_samples / store.fs_hz
    recs = store.recordings.set_index("recording_id")
    for f in replica.files:
        row = recs.loc[_rid(f)] if _rid(f) in recs.index else recs[recs.relpath == f.relpath].iloc[0]
        assert row["n_windows"] == int(f.duration_s // window_s), f.relpath
        assert row["subject"] == f.subject and row["session"] == (f.session or "")


def test_both_subject_naming_generations_and_all_four_montage_folders_are_read(family):
    v1, v2 = family["tueg_v1"][0], family["tueg_v2"][0]
    assert all(f.subject.isdigit() and len(f.subject) == 8 for f in v1.files)
    assert all(f.subject.isalpha() and len(f.subject) == 8 for f in v2.files)
    assert {f.montage_dir for f in v2.files} == {"01_tcp_ar", "02_tcp_le", "03_tcp_ar_a", "04_tcp_le_a"}


def test_a_files_without_a1_a2_are_masked_in_the_tcp_montage(family, tmp_path):
    replica = family["tueg_v2"][0]
    ingest("tueg", replica.root, tmp_path / "tcp.zarr", "tcp22")
    store = open_store(tmp_path / "tcp.zarr")
    recs = store.recordings.set_index("relpath")
    meta = store.metadata
    for f in replica.files:
        row = recs.loc[f.relpath]
        rows = meta.index[meta.recording_id == row["recording_id"]].to_numpy()
        signals = store.read(rows)
        masked = [store.channels.index(c) for c in ("A1-T7", "T8-A2")]
        if f.montage_dir.endswith("_a"):
            assert row["missing_channels"] == ["A1-T7", "T8-A2"]
            assert (signals[:, masked] == 0).all() and (store.qc[rows][:, masked] & MISSING).all()
        else:
            assert row["missing_channels"] == [] and np.abs(signals[:, masked]).max() > 0


def test_tuev_windows_are_centred_on_each_event_and_carry_its_code_and_channel(family):
    replica, report, store = family["tuev"]
    classes = load_manifest("tuev").label("event").classes
    channels = load_manifest("tuev").label("event_channel").classes
    meta = store.metadata
    half = store.window_samples / store.fs_hz / 2
    skipped = 0
    for f in replica.files:
        got = meta[meta.recording_id == _rid(f)]
        expected = [e for e in f.events if (e.start_s + e.stop_s) / 2 - half >= 0 and (e.start_s + e.stop_s) / 2 + half <= f.duration_s]
        skipped += len(f.events) - len(expected)
        assert len(got) == len(expected), f.relpath
        want = sorted(((e.start_s + e.stop_s) / 2 - half, e.label, e.channel) for e in expected)
        have = sorted(zip(got.start_s.round(3), got.event.astype(str), got.event_channel.astype(str), strict=True))
        assert [(round(s, 3), lab, ch) for s, lab, ch in want] == have
        assert all(e.code == classes.index(e.label) + 1 for e in f.events)
        assert {e.channel for e in f.events} <= set(channels)
    assert skipped > 0 and len(report.warnings) > 0  # events near the edges: warned, not fatal


def test_a_tusz_seizure_labels_exactly_the_windows_that_overlap_it_by_the_rule(family):
    replica, _, store = family["tusz"]
    rule = store.attrs["profile"]["profile"]["source_options"]["min_overlap_s"]
    d = store.window_samples / store.fs_hz
    meta = store.metadata
    recs = store.recordings.set_index("relpath")
    some_seizure = False
    for f in replica.files:
        got = meta[meta.recording_id == recs.loc[f.relpath, "recording_id"]].sort_values("start_s")
        starts = got.start_s.to_numpy()
        seiz = [e for e in f.events if e.channel == "TERM" and e.label == "seiz"]
        ov = overlap_s(starts, d, np.array([e.start_s for e in seiz]), np.array([min(e.stop_s, f.duration_s) for e in seiz]))
        expected = (ov.sum(axis=1) >= rule) if seiz else np.zeros(len(starts), bool)
        assert (got.seizure.astype(str).to_numpy() == np.where(expected, "seiz", "bckg")).all(), f.relpath
        per_channel = [e for e in f.events if e.channel != "TERM" and e.label != "bckg"]
        for k, start in enumerate(starts):
            want = {e.channel for e in per_channel if min(e.stop_s, start + d) - max(e.start_s, start) >= rule}
            assert set(got.seizure_channels.iloc[k]) == want
        some_seizure |= bool(expected.any())
    assert some_seizure


def test_tuar_windows_get_every_artifact_of_combined_labels_and_seizures_only_with_seiz_csv(family):
    replica, _, store = family["tuar"]
    rule = store.attrs["profile"]["profile"]["source_options"]["min_overlap_s"]
    d = store.window_samples / store.fs_hz
    meta = store.metadata
    recs = store.recordings.set_index("relpath")
    kinds = set(load_manifest("tuar").label("artifact").classes)
    for f in replica.files:
        got = meta[meta.recording_id == recs.loc[f.relpath, "recording_id"]]
        artifacts = [e for e in f.events if set(e.label.split("_")) <= kinds]  # not the _seiz.csv ones
        for _, row in got.iterrows():
            s = row.start_s
            want = {k for e in artifacts if min(e.stop_s, s + d) - max(e.start_s, s) >= rule for k in e.label.split("_")}
            assert set(row.artifact) == want
        has_seiz = any(a.endswith("_seiz.csv") for a in f.annotation_files)
        assert got.seizure.notna().all() if has_seiz else got.seizure.isna().all()
    assert any(len(a) == 2 for a in meta.artifact)  # a combined label set two classes


def test_subset_can_be_forced_and_inspect_json_shows_label_counts(family, tmp_path):
    replica = family["tusz"][0]
    runner = CliRunner()
    out = tmp_path / "forced.zarr"
    result = runner.invoke(app, ["ingest", "tuh", "--source", str(replica.root), "--out", str(out), "--subset", "tueg"])
    assert result.exit_code == 0, result.output
    assert open_store(out).attrs["corpus"] == "tueg" and open_store(out).label_specs == []
    info = json.loads(runner.invoke(app, ["inspect", str(family["tusz"][2].path), "--json"]).stdout)
    assert set(info["labels"]) == {"seizure", "seizure_type", "seizure_channels"}
    assert info["labels"]["seizure"]["seiz"] > 0 and sum(info["labels"]["seizure"].values()) == info["n_windows"]
    bad = runner.invoke(app, ["ingest", "tuh", "--source", str(replica.root), "--out", str(tmp_path / "x.zarr"), "--subset", "nope"])
    assert bad.exit_code == 2 and "unknown TUH subset" in bad.output
