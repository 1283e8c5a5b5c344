"""Manifests validate, profiles resolve, channel labels become canonical names."""

from __future__ import annotations

import pandas as pd
import pytest

from biosig_ingest.config import resolve_profile
from biosig_ingest.dsp.channels import channel_table, electrode_key, match_channels, select_channels
from biosig_ingest.errors import ChannelError, ManifestError
from biosig_ingest.manifest import available_manifests, load_manifest, load_profile


def test_every_manifest_and_profile_validates_and_hashes_stably():
    assert {"ptbxl", "tuh"} <= set(available_manifests())
    for corpus in available_manifests():
        m = load_manifest(corpus)
        if corpus == "edf":  # its channel set 'auto' comes from the first file: see test_edf_corpus
            continue
        for name in m.profiles:
            rp = resolve_profile(m, m.profile(name))
            assert rp.digest() == resolve_profile(m, m.profile(name)).digest()
    tuh = load_manifest("tuh")
    assert tuh.mains_hz == 60 and resolve_profile(tuh, tuh.profile()).notch_hz == 60
    assert load_manifest("ptbxl").mains_hz == 50


def test_ptbxl_label_classes_agree_with_the_statement_table():
    m = load_manifest("ptbxl")
    st = pd.DataFrame(m.extra["statements"]).set_index("code")
    assert len(st) == 71 and m.label("scp").classes == list(st.index)
    diag = st[st.diagnostic]
    assert set(m.label("superclass").classes) == set(diag.diagnostic_class)
    assert set(m.label("subclass").classes) == set(diag.diagnostic_subclass)
    assert m.label("form").classes == list(st.index[st.form])
    assert m.label("rhythm").classes == list(st.index[st.rhythm])
    assert (len(diag), st.form.sum(), st.rhythm.sum()) == (44, 19, 12)


@pytest.mark.real
def test_ptbxl_statement_table_equals_the_real_scp_statements_csv(real_dir):
    real = pd.read_csv(real_dir / "ptb-xl" / "scp_statements.csv", index_col=0)
    st = pd.DataFrame(load_manifest("ptbxl").extra["statements"]).set_index("code")
    assert list(real.index) == list(st.index)
    for flag in ("diagnostic", "form", "rhythm"):
        assert ((real[flag] == 1.0) == st[flag]).all()
    assert (real["diagnostic_class"].fillna("") == st["diagnostic_class"].fillna("")).all()


def test_profile_from_a_yaml_file_and_clear_errors_for_bad_ones(tmp_path):
    m = load_manifest("tuh")
    good = tmp_path / "mine.yaml"
    good.write_text(
        "channel_set: ref21\ntarget_fs_hz: 250\nfilters: {highpass_hz: 1.0, lowpass_hz: 40.0, notch: mains}\n"
        "window: {duration_s: 4.0, stride_s: 2.0}\n"
    )
    rp = resolve_profile(m, load_profile(m, good))
    assert rp.window_samples == 1000 and rp.stride_samples == 500 and len(rp.channels) == 21
    bad = tmp_path / "bad.yaml"
    bad.write_text("channel_set: ref19\ntarget_fs_hz: 100\nfilters: {lowpass_hz: 75}\nwindow: {duration_s: 10}\n")
    with pytest.raises(ManifestError, match="Nyquist"):
        load_profile(m, bad)
    with pytest.raises(ManifestError, match="no profile"):
        load_profile(m, "nope")


@pytest.mark.parametrize(
    "label,key",
    [("EEG FP1-REF", "FP1"), ("EEG T3-LE", "T3"), ("Fc5.", "FC5"), ("EEG CZ-REF", "CZ"), ("IBI", "IBI")],
)
def test_electrode_key_strips_prefix_reference_and_dots(label, key):
    assert electrode_key(label) == key


def test_tuh_labels_map_to_canonical_names_with_old_names_kept_and_junk_excluded():
    m = load_manifest("tuh")
    labels = ["EEG T3-LE", "EEG FP1-LE", "EMG-REF", "EEG EKG1-REF", "PHOTIC-REF", "EEG 26-REF", "EEG T6-LE", "IBI"]
    matches = match_channels(labels, m)
    assert [x.canonical for x in matches] == ["T7", "Fp1", None, None, None, None, "P8", None]
    assert matches[0].original == "T3"
    with pytest.raises(ChannelError, match="missing channels"):
        select_channels(matches, ["Fp1", "Cz"])
    dup = match_channels(["EEG T3-REF", "EEG T7-REF"], m)
    with pytest.raises(ChannelError, match="several"):
        select_channels(dup, ["T7"])


def test_ecg_leads_match_by_name_whatever_the_order_or_capitalization():
    m = load_manifest("ptbxl")
    labels = ["v6", "avf", "I", "aVL", "II", "AVR", "III", "V1", "V2", "V3", "V4", "V5"]
    chosen = select_channels(match_channels(labels, m), m.channel_sets["ecg12"])
    assert [labels[c.index] for c in chosen] == ["I", "II", "III", "AVR", "aVL", "avf", "V1", "V2", "V3", "V4", "V5", "v6"]


def test_channel_table_has_positions_for_10_20_electrodes():
    m = load_manifest("tuh")
    rows = {r["name"]: r for r in channel_table(m.channel_sets["ref21"], "eeg", "uV", m)}
    assert rows["Cz"]["position_m"][2] > 0.05  # the vertex is up
    assert rows["A1"]["position_m"] is not None and rows["T7"]["original"] == "T3"


def test_subject_wise_split_is_deterministic_and_follows_the_fractions():
    from biosig_ingest.config import SplitSpec
    from biosig_ingest.splits import subject_split

    spec = SplitSpec(rule="80/10/10 by subject", column="subject", fractions={"train": 0.8, "val": 0.1, "test": 0.1}, seed=7)
    subjects = [f"s{i:04d}" for i in range(2000)]
    splits = [subject_split(s, spec) for s in subjects]
    assert splits == [subject_split(s, spec) for s in subjects]  # same answer every time
    assert subject_split("s0001", spec) == subject_split("s0001", spec.model_copy(update={"rule": "x"}))
    shares = {k: splits.count(k) / len(splits) for k in ("train", "val", "test")}
    assert abs(shares["train"] - 0.8) < 0.03 and abs(shares["val"] - 0.1) < 0.02
    other_seed = [subject_split(s, spec.model_copy(update={"seed": 8})) for s in subjects]
    assert other_seed != splits
