"""MIMIC-IV-ECG: replica and real metadata ingest with exact QC, canonical leads, safe paths,
and a store that stays small in files at thousands of records."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import wfdb

from biosig_ingest import ingest, open_store
from biosig_ingest.config import Profile, QcSpec, resolve_profile
from biosig_ingest.corpora import get_adapter
from biosig_ingest.corpora.mimic import (
    Fmt16Source,
    MimicPath,
    _parse_fmt16_header,
    inside_root,
    open_wfdb,
)
from biosig_ingest.dsp.quality import FLAT, NAN
from biosig_ingest.errors import MissingFileError, TruncatedFileError
from biosig_ingest.io.wfdb_source import WfdbSource
from biosig_ingest.samples import write_mimic_replica
from biosig_ingest.samples._signals import ecg_12lead
from biosig_ingest.samples.mimic import FILE_LEADS, digitize, study_path, write_record
from biosig_ingest.splits import subject_split
from biosig_ingest.store.inspect import validate

ECG12 = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
INTERVALS_MS = ["rr_interval", "p_onset", "p_end", "qrs_onset", "qrs_end", "t_end"]
AXES_DEG = ["p_axis", "qrs_axis", "t_axis"]


def _ordered(leads) -> list[str]:
    return [lead for lead in ECG12 if lead in set(leads)]


@pytest.fixture(scope="module")
def mimic(tmp_path_factory):
    return write_mimic_replica(tmp_path_factory.mktemp("mimic-src"), n_records=40)


@pytest.fixture(scope="module")
def ecg500(mimic, tmp_path_factory):
    out = tmp_path_factory.mktemp("mimic-stores") / "ecg500.zarr"
    report = ingest("mimic-iv-ecg", mimic.root, out, "ecg500")
    return open_store(out), report


@pytest.fixture(scope="module")
def raw500(mimic, tmp_path_factory):
    out = tmp_path_factory.mktemp("mimic-stores") / "raw500.zarr"
    ingest("mimic-iv-ecg", mimic.root, out, "raw500")
    return open_store(out)


def _profile(name: str, nan_policy: str) -> Profile:
    manifest = get_adapter("mimic").manifest
    base = dict(manifest.profiles[name])
    return Profile(name=f"{name}-{nan_policy}", **base, qc=QcSpec(flat_std=0.001, max_ptp=20.0, nan_policy=nan_policy))


def test_a_replica_with_invalid_samples_and_flat_leads_gets_exactly_the_qc_the_writer_put_in(mimic, ecg500):
    store, report = ecg500
    recs = store.recordings.set_index("recording_id")
    good = mimic.good_studies
    assert any(s.nan_samples for s in good) and any(s.flat_leads for s in good) and any(s.all_nan_leads for s in good)
    assert report.recordings_ok == len(good)
    for s in good:
        row = recs.loc[str(s.study_id)]
        assert row["nan_channels"] == _ordered(s.nan_leads), s
        assert row["nan_samples"] == sum(s.nan_samples.values()), s
        # a lead with no valid sample is zero-filled (nan_policy zero), so it is flat as well
        assert row["flat_channels"] == _ordered(s.flat_leads + s.all_nan_leads), s
        assert row["clipped_channels"] == [] and row["implausible_channels"] == [], s
        qc = store.qc[int(row["window_offset"])]
        assert [c for c, q in zip(ECG12, qc, strict=True) if q & NAN] == _ordered(s.nan_leads)
        assert [c for c, q in zip(ECG12, qc, strict=True) if q & FLAT] == _ordered(s.flat_leads + s.all_nan_leads)
    assert validate(store.path) == []


def test_nan_policy_keep_stores_nan_exactly_where_the_file_is_invalid(mimic, tmp_path):
    out = tmp_path / "keep.zarr"
    ingest("mimic-iv-ecg", mimic.root, out, _profile("raw500", "keep"))
    store = open_store(out)
    meta = store.metadata.set_index("recording_id")
    with_nan = [s for s in mimic.good_studies if s.nan_samples]
    assert with_nan
    for s in with_nan:
        signal, fields = wfdb.rdsamp(str(mimic.root / s.path))
        stored = store[int(meta.loc[str(s.study_id), "window"])].signal
        expected = signal.T[[fields["sig_name"].index(c) for c in ECG12]].astype(np.float32)
        np.testing.assert_array_equal(np.isnan(stored), np.isnan(expected))
        np.testing.assert_array_equal(stored, expected)  # NaN == NaN for assert_array_equal
        assert int(np.isnan(stored).sum()) == sum(s.nan_samples.values())


def test_nan_policy_drop_fails_those_records_and_keeps_every_other(mimic, tmp_path):
    report = ingest("mimic-iv-ecg", mimic.root, tmp_path / "drop.zarr", _profile("ecg500", "drop"))
    recs = open_store(tmp_path / "drop.zarr").recordings.set_index("recording_id")
    assert len(recs) == len(mimic.studies)  # nothing silently dropped: every listed study has a row
    for s in mimic.studies:
        row = recs.loc[str(s.study_id)]
        if s.files != "ok":
            assert row["error_type"] == "MissingFileError"
        elif s.nan_samples:
            assert row["status"] == "failed" and row["error_type"] == "InvalidSamplesError"
            assert "nan_policy: drop" in row["error"]
        else:
            assert row["status"] == "ok"
    assert report.errors["InvalidSamplesError"] == sum(1 for s in mimic.good_studies if s.nan_samples)


def test_leads_in_file_order_aVF_before_aVL_come_out_in_canonical_order(mimic, raw500):
    assert raw500.channels == ECG12
    meta = raw500.metadata.set_index("recording_id")
    clean = [s for s in mimic.good_studies if not (s.nan_samples or s.flat_leads or s.derived_mismatch)][:5]
    for s in clean:
        signal, fields = wfdb.rdsamp(str(mimic.root / s.path))
        assert fields["sig_name"] == list(FILE_LEADS) and fields["sig_name"][4:6] == ["aVF", "aVL"]
        stored = raw500[int(meta.loc[str(s.study_id), "window"])].signal
        for j, lead in enumerate(fields["sig_name"]):
            np.testing.assert_array_equal(stored[ECG12.index(lead)], signal[:, j].astype(np.float32))


def test_subjects_ecg_times_splits_and_measurements_follow_the_csvs(mimic, ecg500):
    store, _ = ecg500
    meta = store.metadata.set_index("recording_id")
    specs = {s["name"]: s for s in store.label_specs}
    assert {specs[n]["unit"] for n in INTERVALS_MS} == {"ms"} and {specs[n]["unit"] for n in AXES_DEG} == {"degrees"}
    spec = get_adapter("mimic-iv-ecg").manifest.splits
    split_of_subject: dict[str, set[str]] = {}
    for s in mimic.good_studies:
        row = meta.loc[str(s.study_id)]
        assert row["subject"] == str(s.subject_id)
        assert row["session"] == s.ecg_time
        assert row["split"] == subject_split(str(s.subject_id), spec)
        split_of_subject.setdefault(row["subject"], set()).add(row["split"])
        for name in INTERVALS_MS + AXES_DEG:
            want = s.measurements.get(name)
            assert (np.isnan(row[name]) if want is None else row[name] == want), (s.study_id, name)
    assert all(len(splits) == 1 for splits in split_of_subject.values())  # subject-wise
    assert any(not s.measured for s in mimic.good_studies)


def test_the_listing_carries_ecg_time_and_the_machine_report_per_study(mimic):
    adapter = get_adapter("mimic")
    rp = resolve_profile(adapter.manifest, adapter.manifest.profile("ecg500"))
    refs = {r.recording_id: r for r in adapter.discover(mimic.root, rp)}
    assert len(refs) == len(mimic.studies)
    for s in mimic.studies:
        columns = refs[str(s.study_id)].columns  # type: ignore[attr-defined]
        assert columns["ecg_time"] == s.ecg_time
        assert columns["machine_report"] == s.report
        if s.measured:
            assert columns["bandwidth"] == "0.005-150 Hz" and columns["filtering"] == "60 Hz notch Baseline filter"
    blank_separated = next(s for s in mimic.studies if s.report and "Possible right atrial" in s.report)
    assert blank_separated.report == "Sinus rhythm; Possible right atrial abnormality; Borderline ECG"


def test_listing_reads_record_list_and_never_touches_the_tree(mimic, monkeypatch):
    touched: list[str] = []
    for name in ("stat", "lstat", "scandir", "listdir"):
        real = getattr(os, name)

        def spy(path=".", *args, _real=real, **kwargs):
            touched.append(os.fspath(path))
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(os, name, spy)
    adapter = get_adapter("mimic-iv-ecg")
    rp = resolve_profile(adapter.manifest, adapter.manifest.profile("ecg500"))
    refs = adapter.discover(mimic.root, rp)
    monkeypatch.undo()
    assert len(refs) == len(mimic.studies)  # listed studies without files included
    files = str(mimic.root / "files")
    assert not [p for p in touched if p.startswith(files)]


def test_without_record_list_the_tree_is_walked(mimic, tmp_path):
    root = tmp_path / "walked"
    shutil.copytree(mimic.root, root, ignore=shutil.ignore_patterns("record_list.csv"))
    adapter = get_adapter("mimic-iv-ecg")
    rp = resolve_profile(adapter.manifest, adapter.manifest.profile("ecg500"))
    refs = {r.recording_id: r for r in adapter.discover(root, rp)}
    with_header = [s for s in mimic.studies if s.files != "missing"]
    assert sorted(refs) == sorted(str(s.study_id) for s in with_header)
    for s in with_header:
        ref = refs[str(s.study_id)]
        assert ref.subject == str(s.subject_id) and ref.session == s.ecg_time  # from the header if unmeasured
        assert ref.relpath == s.path + ".hea"


def test_listed_studies_without_signal_files_are_reported_as_missing(mimic, ecg500):
    store, report = ecg500
    recs = store.recordings.set_index("recording_id")
    broken = {s.files: s for s in mimic.studies if s.files != "ok"}
    assert set(broken) == {"missing", "no_dat"}
    assert report.errors == {"MissingFileError": 2}
    assert recs.loc[str(broken["missing"].study_id), "error"] == f"{broken['missing'].study_id}.hea does not exist"
    no_dat = broken["no_dat"].study_id
    assert recs.loc[str(no_dat), "error"] == f"{no_dat}.hea names signal file {no_dat}.dat, which does not exist"


def test_a_listed_path_outside_the_source_root_is_refused_and_never_read(tmp_path):
    replica = write_mimic_replica(tmp_path / "mimic", n_records=8, broken=False)
    outside = tmp_path / "elsewhere"
    rng = np.random.default_rng(1)
    digital = digitize(ecg_12lead(rng, 5000, 500, heart_rate_bpm=70))
    from datetime import datetime

    rel = write_record(outside, 10000001, 40000001, digital, datetime(2150, 1, 1, 8, 0))
    sneaky = [
        f"10000001,40000001,40000001,2150-01-01 08:00:00,../elsewhere/{rel}",
        f"10000002,40000002,40000002,2150-01-01 09:00:00,{outside / rel}",
        f"10000003,40000003,40000003,2150-01-01 10:00:00,files/../../elsewhere/{rel}",
    ]
    with open(replica.root / "record_list.csv", "a", encoding="utf-8") as f:
        f.write("\n".join(sneaky) + "\n")
    report = ingest("mimic-iv-ecg", replica.root, tmp_path / "s.zarr", "raw500")
    recs = open_store(tmp_path / "s.zarr").recordings.set_index("recording_id")
    assert report.recordings_ok == 8 and report.errors == {"PathOutsideRootError": 3}
    for study in ("40000001", "40000002", "40000003"):
        row = recs.loc[study]
        assert row["error_type"] == "PathOutsideRootError" and "outside the source root" in row["error"]
        assert row["sha256"] is None or np.isnan(row["sha256"])  # not even hashed
        assert row["n_windows"] == 0
    assert inside_root("files/p1000/p10000032/s40689238/40689238") == "files/p1000/p10000032/s40689238/40689238"
    assert inside_root("./files/x/../y") == "files/y"
    assert inside_root("C:/x") is None and inside_root("..") is None and inside_root("") is None


def test_the_derived_lead_check_counts_only_the_record_with_swapped_aVL_and_aVF(mimic, ecg500):
    store, _ = ecg500
    recs = store.recordings.set_index("recording_id")
    for s in mimic.good_studies:
        row = recs.loc[str(s.study_id)]
        assert row["derived_checked_channels"] == ["III", "aVR", "aVL", "aVF"], s
        assert row["derived_mismatch_channels"] == list(s.derived_mismatch), s
        if not s.derived_mismatch:
            assert row["derived_max_residual"] <= 3 / 200 and row["derived_mismatch_samples"] == 0
    ok = recs[recs["status"] == "ok"]
    assert int(ok["derived_mismatch_channels"].map(bool).sum()) == 1


def test_replica_header_and_dat_are_what_wfdb_wrsamp_writes(tmp_path):
    from datetime import datetime

    rng = np.random.default_rng(3)
    digital = digitize(ecg_12lead(rng, 5000, 500, heart_rate_bpm=64))
    digital[100:130, 3] = -32768  # invalid samples count in the checksum as written
    recorded = datetime(2180, 7, 23, 8, 44)
    rel = write_record(tmp_path / "ours", 10000032, 40689238, digital, recorded)
    assert rel == "files/p1000/p10000032/s40689238/40689238" == study_path(10000032, 40689238)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    wfdb.wrsamp(
        "40689238", fs=500, units=["mV"] * 12, sig_name=list(FILE_LEADS), d_signal=digital.astype(np.int64),
        fmt=["16"] * 12, adc_gain=[200.0] * 12, baseline=[0] * 12, comments=["<subject_id>: 10000032"],
        base_time=recorded.time(), base_date=recorded.date(), write_dir=str(theirs),
    )  # fmt: skip
    for ext in ("hea", "dat"):
        assert (tmp_path / "ours" / f"{rel}.{ext}").read_bytes() == (theirs / f"40689238.{ext}").read_bytes()
    header = wfdb.rdheader(str(tmp_path / "ours" / rel))
    assert header.base_date.isoformat() == "2180-07-23" and header.base_time.isoformat() == "08:44:00"
    assert header.comments == ["<subject_id>: 10000032"] and header.adc_gain == [200.0] * 12
    assert MimicPath.parse(rel) == MimicPath(10000032, 40689238)


def test_the_fast_reader_reads_what_wfdb_reads_to_the_bit(mimic, tmp_path):
    nan_study = next(s for s in mimic.good_studies if s.nan_samples)
    path = mimic.root / nan_study.path
    fast, slow = open_wfdb(path, "mV"), WfdbSource(path, "mV")
    assert isinstance(fast, Fmt16Source)
    np.testing.assert_array_equal(fast._data, slow._data)
    assert fast.channels == slow.channels and fast.duration_s == slow.duration_s
    np.testing.assert_array_equal(fast.read([5, 4], 10, 400), slow.read([5, 4], 10, 400))
    # anything but the MIMIC header shape goes to wfdb
    wfdb.wrsamp("r212", fs=500, units=["mV"] * 2, sig_name=["I", "II"], d_signal=np.zeros((500, 2), np.int64),
                fmt=["212"] * 2, adc_gain=[200.0] * 2, baseline=[0] * 2, write_dir=str(tmp_path))  # fmt: skip
    assert isinstance(open_wfdb(tmp_path / "r212", "mV"), WfdbSource)
    short = tmp_path / "short"
    short.mkdir()
    for ext in ("hea", "dat"):
        shutil.copy(f"{path}.{ext}", short / f"x.{ext}")
    (short / "x.hea").write_text((short / "x.hea").read_text().replace(f"{nan_study.study_id}.dat", "x.dat"))
    with open(short / "x.dat", "r+b") as f:
        f.truncate(1000)
    with pytest.raises(TruncatedFileError):
        open_wfdb(short / "x", "mV")
    with pytest.raises(MissingFileError):
        open_wfdb(short / "absent", "mV")


@pytest.mark.slow
def test_a_few_thousand_records_make_fewer_than_100_store_files_per_1000_records(tmp_path):
    replica = write_mimic_replica(tmp_path / "mimic", n_records=2500)
    out = tmp_path / "many.zarr"
    report = ingest("mimic-iv-ecg", replica.root, out)  # default = ecg500: 2000 records a shard
    n_files = sum(len(files) for _, _, files in os.walk(out))
    per_1000 = 1000 * n_files / len(replica.studies)
    assert per_1000 < 100, f"{n_files} files for {len(replica.studies)} records"
    store = open_store(out)
    assert len(store) == report.recordings_ok == len(replica.good_studies)
    assert len(store.shard_names) == 2


# -- the real MIMIC-IV-ECG metadata and headers (no .dat files exist publicly) -----------------


@pytest.mark.real
def test_real_mimic_csvs_and_headers_parse_and_the_missing_signals_are_reported(real_dir, tmp_path):
    root = real_dir / "mimic-iv-ecg"
    report = ingest("mimic-iv-ecg", root, tmp_path / "real.zarr")
    assert report.recordings_ok == 0 and report.errors == {"MissingFileError": 1}
    assert report.failures[0]["error"] == "40689238.hea names signal file 40689238.dat, which does not exist"
    assert report.failures[0]["relpath"] == "files/p1000/p10000032/s40689238/40689238.hea"
    adapter = get_adapter("mimic-iv-ecg")
    rp = resolve_profile(adapter.manifest, adapter.manifest.profile("default"))
    (ref,) = adapter.discover(root, rp)
    assert (ref.recording_id, ref.subject, ref.session) == ("40689238", "10000032", "2180-07-23 08:44:00")
    assert dict(ref.labels) == {
        "rr_interval": 659, "p_onset": 40, "p_end": 128, "qrs_onset": 170, "qrs_end": 258,
        "t_end": 518, "p_axis": 81, "qrs_axis": 77, "t_axis": 79,
    }  # fmt: skip
    assert ref.columns["machine_report"] == "Sinus rhythm; Possible right atrial abnormality; Borderline ECG"  # type: ignore[attr-defined]
    assert ref.columns["filtering"] == "60 Hz notch Baseline filter"  # type: ignore[attr-defined]
    for hea in sorted((root / "files").rglob("*.hea")):
        ours = _parse_fmt16_header(hea.read_text())
        theirs = wfdb.rdheader(str(hea.with_suffix("")))
        assert ours is not None and ours.names == tuple(theirs.sig_name) == FILE_LEADS
        assert list(ours.gains) == theirs.adc_gain and list(ours.baselines) == theirs.baseline
        assert (ours.fs_hz, ours.n_samples, ours.dat) == (theirs.fs, theirs.sig_len, theirs.file_name[0])
    walked = tmp_path / "walked"
    shutil.copytree(root, walked, ignore=shutil.ignore_patterns("record_list.csv"))
    refs = {r.recording_id: r for r in adapter.discover(walked, rp)}
    assert sorted(refs) == ["40689238", "49036311"]
    assert refs["49036311"].session == "2180-08-06 09:07:00"  # header line 1: no measurements row


def test_store_of_only_failed_records_still_summarizes(tmp_path):
    replica = write_mimic_replica(tmp_path / "mimic", n_records=8, broken=False)
    for s in replica.studies:
        (replica.root / f"{s.path}.dat").unlink()
    ingest("mimic-iv-ecg", replica.root, tmp_path / "empty.zarr")
    from biosig_ingest.store.inspect import summary

    info = summary(open_store(tmp_path / "empty.zarr"))
    assert info["n_windows"] == 0 and info["recordings"] == {"ok": 0, "failed": 8, "errors": {"MissingFileError": 8}}
