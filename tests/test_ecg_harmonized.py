"""One ECG format across PTB-XL and MIMIC-IV-ECG: the same heartbeat gives the same windows, and
the derived-lead check holds real and replica files to Einthoven's and Goldberger's identities."""

from __future__ import annotations

import csv
from datetime import datetime

import numpy as np
import pytest
import wfdb

from biosig_ingest import ingest, open_store
from biosig_ingest.config import resolve_profile
from biosig_ingest.corpora import get_adapter
from biosig_ingest.dsp.ecg import LIMB_LEADS, adc_step, check_derived_leads, tolerances
from biosig_ingest.samples._signals import ECG_LEADS, ecg_12lead
from biosig_ingest.samples.mimic import digitize, write_record
from biosig_ingest.samples.ptbxl import DATABASE_COLUMNS, record_filename, write_scp_statements

ECG12 = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
HARMONIZED = ("ecg500", "ecg250", "ecg100")


@pytest.fixture(scope="module")
def heartbeat() -> np.ndarray:
    """10 s of one synthetic 12-lead ECG at 500 Hz, mV, (samples, 12) in ECG_LEADS order."""
    return ecg_12lead(np.random.default_rng(7), 5000, 500, heart_rate_bpm=72, qrs_axis_deg=50)


def _ptbxl_tree(root, signal_mv):
    """A PTB-XL tree with one record (ecg_id 1): gain 1000, AVR/AVL/AVF, PTB-XL's lead order."""
    rel = record_filename(1, "hr")
    folder = root / rel.rsplit("/", 1)[0]
    folder.mkdir(parents=True)
    wfdb.wrsamp(
        rel.rsplit("/", 1)[1], fs=500, units=["mV"] * 12, sig_name=list(ECG_LEADS),
        d_signal=np.rint(signal_mv * 1000).astype(np.int64), fmt=["16"] * 12, adc_gain=[1000.0] * 12,
        baseline=[0] * 12, write_dir=str(folder),
    )  # fmt: skip
    row = dict.fromkeys(DATABASE_COLUMNS, "")
    row.update(ecg_id="1", patient_id="15709.0", age="56.0", sex="1", scp_codes="{'NORM': 100.0, 'SR': 0.0}",
               strat_fold="3", filename_lr=record_filename(1, "lr"), filename_hr=rel)  # fmt: skip
    with open(root / "ptbxl_database.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=DATABASE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerow(row)
    write_scp_statements(root / "scp_statements.csv")
    return root


def _mimic_tree(root, signal_mv):
    """A MIMIC-IV-ECG tree with one study: gain 200, aVR/aVF/aVL, MIMIC's lead order."""
    rel = write_record(root, 10000032, 40689238, digitize(signal_mv), datetime(2180, 7, 23, 8, 44))
    (root / "record_list.csv").write_text(
        f"subject_id,study_id,file_name,ecg_time,path\n10000032,40689238,40689238,2180-07-23 08:44:00,{rel}\n"
    )
    return root


@pytest.fixture(scope="module")
def stores(heartbeat, tmp_path_factory):
    src = tmp_path_factory.mktemp("same-heartbeat")
    ptb = _ptbxl_tree(src / "ptbxl", heartbeat)
    mimic = _mimic_tree(src / "mimic", heartbeat)
    out = {}
    for profile in HARMONIZED:
        for corpus, root in (("ptbxl", ptb), ("mimic-iv-ecg", mimic)):
            report = ingest(corpus, root, src / f"{corpus}-{profile}.zarr", profile)
            assert report.recordings_ok == 1, report.failures
            out[corpus, profile] = open_store(src / f"{corpus}-{profile}.zarr")
    return out


@pytest.mark.parametrize("profile,fs", [("ecg500", 500), ("ecg250", 250), ("ecg100", 100)])
def test_a_ptbxl_and_a_mimic_record_of_the_same_heartbeat_give_the_same_windows(stores, profile, fs):
    ptb, mimic = stores["ptbxl", profile], stores["mimic-iv-ecg", profile]
    for key in ("unit", "fs_hz", "window_samples", "stride_samples", "window_mode", "modality"):
        assert ptb.attrs[key] == mimic.attrs[key], key
    assert ptb.channels == mimic.channels == ECG12
    assert [c["unit"] for c in ptb.attrs["channels"]] == [c["unit"] for c in mimic.attrs["channels"]] == ["mV"] * 12
    assert ptb.fs_hz == fs and ptb.window_samples == 10 * fs
    a, b = ptb[0].signal, mimic[0].signal
    assert a.shape == b.shape == (12, 10 * fs)
    # Same leads in the same rows: every MIMIC lead is closest to the PTB-XL lead of its name
    # (aVL and aVF swapped would fail here); only quantization (5 vs 1 uV) and the 60 vs 50 Hz
    # notch differ, a few microvolts.
    corr = np.corrcoef(a, b)[:12, 12:]
    assert list(corr.argmax(axis=0)) == list(range(12))
    assert corr.diagonal().min() > 0.99
    assert np.abs(a - b).max() < 0.02  # mV, four MIMIC ADC steps


def test_the_harmonized_profiles_differ_only_in_the_notch_at_each_corpus_mains():
    ptb, mimic = get_adapter("ptbxl").manifest, get_adapter("mimic-iv-ecg").manifest
    for name in HARMONIZED:
        a, b = resolve_profile(ptb, ptb.profile(name)), resolve_profile(mimic, mimic.profile(name))
        skip = {"description"}
        assert a.profile.model_dump(exclude=skip) == b.profile.model_dump(exclude=skip), name
        assert (a.channels, a.unit, a.qc, a.derivations) == (b.channels, b.unit, b.qc, b.derivations)
        expected = {"ecg500": (50, 60), "ecg250": (50, 60), "ecg100": (None, None)}[name]
        assert (a.notch_hz, b.notch_hz) == expected  # at 100 Hz both mains sit at or above Nyquist


def test_both_stores_record_a_clean_derived_lead_check(stores):
    for (corpus, _profile), store in stores.items():
        row = store.recordings.iloc[0]
        assert row["derived_checked_channels"] == ["III", "aVR", "aVL", "aVF"], corpus
        assert row["derived_mismatch_channels"] == [], corpus
        step = 1 / 200 if corpus == "mimic-iv-ecg" else 1 / 1000
        assert row["derived_max_residual"] <= 3 * step * (1 + 1e-4)


# -- the derived-lead check ---------------------------------------------------------------------


def _limb(signal_mv: np.ndarray, gain: float) -> dict[str, np.ndarray]:
    digital = np.rint(signal_mv * gain)
    return {name: (digital[:, ECG_LEADS.index(name.upper())] / gain).astype(np.float32) for name in LIMB_LEADS}


def test_the_tolerance_is_one_adc_step_per_lead_of_each_identity():
    tol = tolerances(dict.fromkeys(LIMB_LEADS, 1 / 200))
    assert tol == pytest.approx({"III": 0.015, "aVR": 0.010, "aVL": 0.0125, "aVF": 0.0125})


def test_rounded_leads_agree_and_a_corrupted_or_swapped_lead_does_not(heartbeat):
    leads = _limb(heartbeat, 200.0)
    assert adc_step(leads["II"]) == pytest.approx(1 / 200, rel=1e-4)
    clean = check_derived_leads(leads)
    assert clean.checked == ("III", "aVR", "aVL", "aVF") and clean.mismatched == ()
    assert clean.max_residual is not None and clean.max_residual <= 0.0075 * (1 + 1e-4)

    off = dict(leads)
    off["III"] = leads["III"].copy()
    off["III"][1000:1010] += 4 / 200  # four ADC steps: more than quantization can explain
    bad = check_derived_leads(off)
    assert bad.mismatched == ("III",) and bad.mismatch_samples == 10

    swapped = {**leads, "aVL": leads["aVF"], "aVF": leads["aVL"]}
    assert check_derived_leads(swapped).mismatched == ("aVL", "aVF")


def test_invalid_and_clipped_samples_are_left_out_and_a_missing_lead_means_unchecked(heartbeat):
    leads = _limb(heartbeat, 200.0)
    leads["I"] = leads["I"].copy()
    leads["I"][:100] = np.nan
    leads["aVR"] = leads["aVR"].copy()
    leads["aVR"][200:210] = 9.0  # garbage at the ADC limit: the clipped flag's business, not ours
    result = check_derived_leads(leads, clip={"aVR": (-9.0, 9.0)})
    assert result.mismatched == () and result.checked == ("III", "aVR", "aVL", "aVF")
    leads["I"][:] = np.nan
    assert check_derived_leads(leads).checked == ()
    assert check_derived_leads({k: v for k, v in leads.items() if k != "aVF"}).checked == ()


@pytest.mark.real
def test_real_ptbxl_records_agree_with_their_derived_leads_within_one_step_per_lead(real_dir):
    heas = sorted((real_dir / "ptb-xl").glob("records*/00000/*.hea"))
    assert len(heas) == 12
    for hea in heas:
        record = wfdb.rdrecord(str(hea.with_suffix("")), return_res=32)
        names = [n.upper() for n in record.sig_name]
        leads = {name: record.p_signal[:, names.index(name.upper())] for name in LIMB_LEADS}
        assert all(adc_step(x) == pytest.approx(1 / record.adc_gain[0], rel=1e-4) for x in leads.values())
        result = check_derived_leads(leads)
        assert result.checked == ("III", "aVR", "aVL", "aVF") and result.mismatched == (), hea.name
        # Rounding alone would keep aVL within 1.25 steps; real files reach 1.5, so the bound
        # allows a whole step per lead (2.5 for aVL).
        avl = np.abs(leads["aVL"] - (leads["I"] - leads["II"] / 2)).max() * record.adc_gain[0]
        assert 1.25 < avl <= 2.5 + 1e-3
