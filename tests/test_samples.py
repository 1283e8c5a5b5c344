"""The TUAB and PTB-XL replicas, read back with pyedflib and wfdb: layout, quirks, signals, seeds.
Reference files from the real corpus are used where ../shared/real is present."""

from __future__ import annotations

import ast
import csv
import os
import re
from pathlib import Path

import numpy as np
import pyedflib
import pytest
import wfdb

from biosig_ingest.samples import (
    PtbxlReplica,
    TuabReplica,
    write_ptbxl_replica,
    write_tuab_like_edf,
    write_tuab_replica,
)
from biosig_ingest.samples.ptbxl import COMMENT_SENTINEL, DATABASE_COLUMNS, STATEMENT_COLUMNS
from biosig_ingest.samples.tuab import ELECTRODES, tuab_like_block, tuab_like_labels

# Same rule as conftest.REAL: ../shared/real beside the repository, or $BIOSIG_REAL_DIR.
REAL_PTBXL = (
    Path(os.environ.get("BIOSIG_REAL_DIR", Path(__file__).resolve().parents[2] / "shared" / "real"))
    / "ptb-xl"
)

JUNK_LABELS = {
    "EEG ROC-REF", "EEG LOC-REF", "EEG EKG1-REF", "EEG EKG-REF", "EMG-REF", "PHOTIC-REF", "IBI",
    "BURSTS", "SUPPR", "EEG SP1-REF", "EEG SP2-REF", "EEG LUC-REF", "EEG RLC-REF",
    "EEG RESP1-REF", "EEG RESP2-REF",
} | {f"EEG {n}-REF" for n in range(20, 129)}  # fmt: skip


def real_ptbxl(name: str) -> Path:
    path = REAL_PTBXL / name
    if not path.exists():
        pytest.skip(
            f"real PTB-XL file {path} is absent (set BIOSIG_REAL_DIR); "
            "skipping only the comparison with the real file"
        )
    return path


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def stem(label: str) -> str:
    return re.sub(r"-(REF|LE)$", "", label.removeprefix("EEG "))


# --- TUAB ---------------------------------------------------------------------------------------


def test_tuab_tree_is_flat_v3_layout_with_eight_letter_subjects(tuab: TuabReplica) -> None:
    pattern = re.compile(
        r"edf/(train|eval)/(normal|abnormal)/01_tcp_ar/([a-z]{8})_(s\d{3})_(t\d{3})\.edf"
    )
    on_disk = {p.relative_to(tuab.root).as_posix() for p in tuab.root.rglob("*.edf")}
    assert on_disk == {f.relpath for f in tuab.files}
    for f in tuab.files:
        m = pattern.fullmatch(f.relpath)
        assert m, f.relpath
        assert m.groups() == (f.split, f.label, f.subject, f.session, f.token)
        assert f.path == tuab.root / f.relpath
    for split in ("train", "eval"):
        for label in ("normal", "abnormal"):
            good = [f for f in tuab.good_files if (f.split, f.label) == (split, label)]
            assert len(good) == len(tuab.good_files) // 4 >= 1


def test_train_and_eval_subjects_never_overlap_but_a_train_subject_has_two_sessions(
    tuab: TuabReplica,
) -> None:
    train = {f.subject for f in tuab.files if f.split == "train"}
    evaluation = {f.subject for f in tuab.files if f.split == "eval"}
    assert not train & evaluation
    sessions: dict[str, set[str]] = {}
    for f in tuab.good_files:
        sessions.setdefault(f.subject, set()).add(f.session)
    assert any(len(s) > 1 for s in sessions.values())


def test_most_files_are_ref_and_one_train_and_one_eval_file_use_linked_ear_labels(
    tuab: TuabReplica,
) -> None:
    le = [f for f in tuab.good_files if f.reference == "LE"]
    assert {f.split for f in le} == {"train", "eval"}
    assert len(le) < len(tuab.good_files) / 2
    for f in tuab.files:
        eeg = [lab for lab in f.channel_labels if lab.startswith("EEG ")]
        assert all(lab.endswith(f"-{f.reference}") for lab in eeg), f.relpath


def test_labels_are_uppercase_old_1020_names_plus_junk_in_a_shuffled_order(
    tuab: TuabReplica,
) -> None:
    orders = set()
    for f in tuab.files:
        ref_labels = tuple(lab.replace("-LE", "-REF") for lab in f.channel_labels)
        stems = [stem(lab) for lab in f.channel_labels]
        assert all(lab == lab.upper() for lab in f.channel_labels)
        assert set(ELECTRODES) | {"T1", "T2"} <= set(stems)
        assert not {"T7", "T8", "P7", "P8"} & set(stems)  # TUH keeps the old names
        assert set(ref_labels) & JUNK_LABELS, f.relpath
        orders.add(tuple(s for s in stems if s in ELECTRODES))
    assert len(orders) == len(tuab.files)  # every file has its own channel order
    everywhere = {lab.replace("-LE", "-REF") for f in tuab.files for lab in f.channel_labels}
    assert {
        "EEG ROC-REF",
        "EEG EKG1-REF",
        "EMG-REF",
        "EEG 26-REF",
        "PHOTIC-REF",
        "IBI",
    } <= everywhere


def test_every_good_file_opens_with_pyedflib_as_1s_records_of_16bit_samples(
    tuab: TuabReplica,
) -> None:
    for f in tuab.good_files:
        with pyedflib.EdfReader(str(f.path)) as edf:
            assert tuple(edf.getSignalLabels()) == f.channel_labels
            assert edf.datarecord_duration == 1.0
            assert edf.file_duration == f.duration_s
            for i, label in enumerate(f.channel_labels):
                assert (edf.getDigitalMinimum(i), edf.getDigitalMaximum(i)) == (-32768, 32767)
                if label.startswith("EEG "):
                    assert edf.getPhysicalDimension(i) == "uV"
                    assert edf.getPhysicalMaximum(i) == pytest.approx(3000.0)
                    assert edf.getPhysicalMinimum(i) == pytest.approx(-3000.0)
                    if stem(label) in ELECTRODES:
                        assert edf.getSampleFrequency(i) == f.fs_hz
                        assert 5.0 < edf.readSignal(i, 0, int(15 * f.fs_hz)).std() < 45.0


def test_rates_250_256_512_all_occur_and_one_file_mixes_rates_across_channels(
    tuab: TuabReplica,
) -> None:
    assert {f.fs_hz for f in tuab.good_files} == {250.0, 256.0, 512.0}
    mixed = []
    for f in tuab.good_files:
        with pyedflib.EdfReader(str(f.path)) as edf:
            rates = dict(zip(edf.getSignalLabels(), edf.getSampleFrequencies(), strict=True))
        if len(set(rates.values())) > 1:
            mixed.append(f)
            assert rates["PHOTIC-REF"] != f.fs_hz and rates["IBI"] == 1.0
    assert len(mixed) == 1


def test_truncated_file_is_refused_by_pyedflib_and_shorter_than_its_header_says(
    tuab: TuabReplica,
) -> None:
    (bad,) = [f for f in tuab.files if f.broken]
    assert bad.broken == "truncated"
    assert bad.relpath.startswith("edf/train/normal/01_tcp_ar/")
    raw = bad.path.read_bytes()
    n_signals = int(raw[252:256])
    declared_records = int(raw[236:244])
    header_bytes = 256 * (n_signals + 1)
    spr = [int(raw[256 + 216 * n_signals + 8 * i : 256 + 216 * n_signals + 8 * (i + 1)])
           for i in range(n_signals)]  # fmt: skip
    record_bytes = 2 * sum(spr)
    assert declared_records == bad.duration_s
    assert len(raw) < header_bytes + declared_records * record_bytes
    assert (len(raw) - header_bytes) % record_bytes != 0  # cut inside a record
    with pytest.raises(OSError):
        pyedflib.EdfReader(str(bad.path))


def test_patient_name_and_birthdate_sentinels_sit_in_every_header(tuab: TuabReplica) -> None:
    for f in tuab.files:
        patient_field = f.path.read_bytes()[8:88]
        assert tuab.patient_name.encode() in patient_field
        assert tuab.birthdate.encode() in patient_field
        assert patient_field.startswith(f.subject.encode() + b" ")  # TUH-style "<subj> F 01-JAN..."


def tone_amplitude(x: np.ndarray, t: np.ndarray, freq_hz: float) -> float:
    basis = np.stack([np.sin(2 * np.pi * freq_hz * t), np.cos(2 * np.pi * freq_hz * t),
                      np.ones_like(t)], axis=1)  # fmt: skip
    coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
    return float(np.hypot(coef[0], coef[1]))


def test_cz_carries_the_7hz_test_tone_from_20_to_25_s_and_no_other_channel_does(
    tuab: TuabReplica,
) -> None:
    sine = tuab.sine
    assert (sine.channel, sine.start_s, sine.duration_s, sine.freq_hz, sine.amplitude_uv) == (
        "Cz",
        20.0,
        5.0,
        7.0,
        150.0,
    )
    for f in tuab.good_files:
        with pyedflib.EdfReader(str(f.path)) as edf:
            for i, label in enumerate(edf.getSignalLabels()):
                x = edf.readSignal(i)
                t = np.arange(len(x)) / edf.getSampleFrequency(i)
                burst, before = (t >= 20.0) & (t < 25.0), (t >= 10.0) & (t < 15.0)
                amplitude = tone_amplitude(x[burst], t[burst], 7.0)
                if stem(label) == "CZ":
                    assert np.corrcoef(x[burst], sine.at(t[burst]))[0, 1] > 0.9, f.relpath
                    assert amplitude == pytest.approx(150.0, abs=20.0)
                    assert tone_amplitude(x[before], t[before], 7.0) < 30.0
                elif stem(label) in ELECTRODES:
                    assert amplitude < 30.0, (f.relpath, label)
                elif x[burst].std() > 0:
                    # EKG channels carry 7 Hz harmonics of the heartbeat, but nothing locked
                    # to the test tone.
                    assert abs(np.corrcoef(x[burst], sine.at(t[burst]))[0, 1]) < 0.3, label


def test_same_seed_writes_a_byte_identical_tuab_tree_and_another_seed_does_not(
    tmp_path: Path,
) -> None:
    kwargs = {"n_per_group": 1, "duration_s": 30.0}
    first = tree_bytes(write_tuab_replica(tmp_path / "a", seed=7, **kwargs).root)
    again = tree_bytes(write_tuab_replica(tmp_path / "b", seed=7, **kwargs).root)
    other = tree_bytes(write_tuab_replica(tmp_path / "c", seed=8, **kwargs).root)
    assert first == again
    assert first != other


def test_a_long_tuab_like_edf_opens_with_pyedflib_and_holds_the_documented_samples(
    tmp_path: Path,
) -> None:
    path = write_tuab_like_edf(
        tmp_path / "aaaaaaaa_s001_t000.edf", duration_s=149.5, fs_hz=250, seed=3, block_s=60
    )
    assert not list(tmp_path.glob("*.part"))
    with pyedflib.EdfReader(str(path)) as edf:
        assert tuple(edf.getSignalLabels()) == tuab_like_labels(23)
        assert edf.datarecords_in_file == 150  # rounded up to whole 1-s records
        assert set(edf.getSampleFrequencies()) == {250.0}
        assert edf.getPhysicalDimension(0) == "uV"
        digital = np.stack([edf.readSignal(i, digital=True) for i in range(23)])
    expected = np.concatenate(
        [tuab_like_block(k, fs_hz=250, seed=3, block_s=60) for k in range(3)], axis=1
    )[:, : 150 * 250]
    np.testing.assert_array_equal(digital, expected)
    assert path.stat().st_size == 256 * 24 + 150 * 23 * 250 * 2
    assert {"EEG A1-REF", "EEG T1-REF", "EEG T2-REF"} <= set(tuab_like_labels(23))


# --- PTB-XL -------------------------------------------------------------------------------------


def read_database(root: Path) -> list[dict[str, str]]:
    with open(root / "ptbxl_database.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_ptbxl_tree_has_both_tables_and_records_in_thousand_folders(ptbxl: PtbxlReplica) -> None:
    assert (ptbxl.root / "ptbxl_database.csv").is_file()
    assert (ptbxl.root / "scp_statements.csv").is_file()
    assert len(ptbxl.good_records) >= 5
    for r in ptbxl.good_records:
        folder = f"{r.ecg_id // 1000 * 1000:05d}"
        assert r.filename_lr == f"records100/{folder}/{r.ecg_id:05d}_lr"
        assert r.filename_hr == f"records500/{folder}/{r.ecg_id:05d}_hr"
        for name in (r.filename_lr, r.filename_hr):
            assert (ptbxl.root / f"{name}.hea").is_file() and (ptbxl.root / f"{name}.dat").is_file()
    assert {r.filename_lr.split("/")[1] for r in ptbxl.good_records} == {"00000", "01000"}


def test_database_header_is_the_real_28_column_header(ptbxl: PtbxlReplica) -> None:
    ours = (ptbxl.root / "ptbxl_database.csv").read_text(encoding="utf-8").splitlines()[0]
    assert ours.split(",") == list(DATABASE_COLUMNS) and len(DATABASE_COLUMNS) == 28
    real = real_ptbxl("ptbxl_database.csv").read_text(encoding="utf-8").splitlines()[0]
    assert ours == real


def test_scp_statements_has_the_real_header_and_71_rows_with_flags_1_0_or_empty(
    ptbxl: PtbxlReplica,
) -> None:
    with open(ptbxl.root / "scp_statements.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == STATEMENT_COLUMNS
    body = rows[1:]
    assert len(body) == 71
    for column in (2, 3, 4):
        assert {row[column] for row in body} == {"1.0", ""}
    assert sum(row[2] == "1.0" for row in body) == 44  # diagnostic
    assert sum(row[3] == "1.0" for row in body) == 19  # form
    assert sum(row[4] == "1.0" for row in body) == 12  # rhythm
    assert {row[5] for row in body} == {"NORM", "MI", "STTC", "CD", "HYP", ""}
    real = real_ptbxl("scp_statements.csv").read_text(encoding="utf-8").splitlines()[0]
    assert (ptbxl.root / "scp_statements.csv").read_text(encoding="utf-8").splitlines()[0] == real


def test_database_rows_use_the_ptbxl_value_formats_and_cover_every_split(
    ptbxl: PtbxlReplica,
) -> None:
    rows = read_database(ptbxl.root)
    assert [int(r["ecg_id"]) for r in rows] == [r.ecg_id for r in ptbxl.records]
    statements = (ptbxl.root / "scp_statements.csv").read_text(encoding="utf-8")
    codes = {row[0] for row in csv.reader(statements.splitlines())}
    for row, rec in zip(rows, ptbxl.records, strict=True):
        assert (
            re.fullmatch(r"\d+\.0", row["patient_id"])
            and int(float(row["patient_id"])) == rec.patient_id
        )
        assert re.fullmatch(r"\d+\.0", row["age"]) and row["sex"] in {"0", "1"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row["recording_date"])
        assert row["device"] in {"CS-12   E", "AT-6 C 5.5"}
        assert ast.literal_eval(row["scp_codes"]) == rec.scp_codes
        assert set(rec.scp_codes) <= codes
        assert int(row["strat_fold"]) == rec.strat_fold
        assert (row["filename_lr"], row["filename_hr"]) == (rec.filename_lr, rec.filename_hr)
        assert row["validated_by_human"] == "True"
    folds = {r.strat_fold for r in ptbxl.good_records}
    assert folds & set(range(1, 9)) and 9 in folds and 10 in folds
    assert any(r["age"] == "300.0" for r in rows)  # PTB-XL's code for "over 89"
    patients = [r.patient_id for r in ptbxl.records]
    assert len(set(patients)) == len(patients) - 1  # one patient with two ECGs, in one fold


def test_wfdb_headers_are_shaped_like_the_real_ptbxl_headers(ptbxl: PtbxlReplica) -> None:
    r = ptbxl.good_records[0]
    for name, fs, n in ((r.filename_lr, 100, 1000), (r.filename_hr, 500, 5000)):
        lines = (ptbxl.root / f"{name}.hea").read_text().splitlines()
        record = name.rsplit("/", 1)[1]
        assert lines[0] == f"{record} 12 {fs} {n}"  # no base date or time
        for line, lead in zip(lines[1:13], r.lead_names, strict=True):
            fields = line.split(" ")
            assert fields[:5] == [f"{record}.dat", "16", "1000.0(0)/mV", "16", "0"]
            assert fields[7:] == ["0", lead]
    real = real_ptbxl("records100/00000/00001_lr.hea").read_text().splitlines()
    ours = (ptbxl.root / f"{r.filename_lr}.hea").read_text().splitlines()
    assert [ln.split(" ")[1:5] for ln in ours[1:13]] == [ln.split(" ")[1:5] for ln in real[1:13]]
    assert ours[0].split(" ")[1:] == real[0].split(" ")[1:]


def test_good_records_open_with_rdsamp_as_12_leads_at_100_and_500_hz(ptbxl: PtbxlReplica) -> None:
    for r in ptbxl.good_records:
        for name, fs, n in ((r.filename_lr, 100, 1000), (r.filename_hr, 500, 5000)):
            signal, fields = wfdb.rdsamp(str(ptbxl.root / name))
            assert signal.shape == (n, 12) and fields["fs"] == fs
            assert tuple(fields["sig_name"]) == r.lead_names
            assert fields["units"] == ["mV"] * 12
            assert 0.3 < np.ptp(signal, axis=0).max() < 5.0  # about a millivolt of QRS


def leads(root: Path, name: str) -> dict[str, np.ndarray]:
    signal, fields = wfdb.rdsamp(str(root / name))
    return {lead.upper(): signal[:, i] for i, lead in enumerate(fields["sig_name"])}


def test_limb_leads_obey_einthoven_and_goldberger_within_quantization(ptbxl: PtbxlReplica) -> None:
    tolerance = 1.5 / 1000  # three rounded values, half an ADU (1 uV) each
    for r in ptbxl.good_records:
        for name in (r.filename_lr, r.filename_hr):
            x = leads(ptbxl.root, name)
            assert np.abs(x["III"] - (x["II"] - x["I"])).max() <= tolerance
            assert np.abs(x["AVR"] + (x["I"] + x["II"]) / 2).max() <= tolerance
            assert np.abs(x["AVL"] - (x["I"] - x["II"] / 2)).max() <= tolerance
            assert np.abs(x["AVF"] - (x["II"] - x["I"] / 2)).max() <= tolerance


def test_the_100hz_record_is_the_500hz_record_decimated(ptbxl: PtbxlReplica) -> None:
    for r in ptbxl.good_records:
        low, high = leads(ptbxl.root, r.filename_lr), leads(ptbxl.root, r.filename_hr)
        for lead in ("I", "V2"):
            assert np.corrcoef(low[lead], high[lead][::5])[0, 1] > 0.95


def test_some_records_shuffle_their_leads_and_some_spell_them_in_mixed_or_lower_case(
    ptbxl: PtbxlReplica,
) -> None:
    canonical = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")
    names = [r.lead_names for r in ptbxl.good_records]
    assert all(tuple(sorted(n.upper() for n in ln)) == tuple(sorted(canonical)) for ln in names)
    assert sum(tuple(n.upper() for n in ln) != canonical for ln in names) >= 2
    assert any({"aVR", "aVL", "aVF"} <= set(ln) for ln in names)
    assert any("avr" in ln for ln in names)
    assert sum(ln == canonical for ln in names) >= len(names) // 2


def test_broken_rows_lack_files_and_a_header_without_data_does_not_read(
    ptbxl: PtbxlReplica,
) -> None:
    missing = [r for r in ptbxl.records if r.files == "missing"]
    (no_dat,) = [r for r in ptbxl.records if r.files == "no_dat"]
    assert len(missing) == 2
    database_ids = {int(row["ecg_id"]) for row in read_database(ptbxl.root)}
    for r in missing:
        assert r.ecg_id in database_ids and r.lead_names == ()
        assert not list(ptbxl.root.glob(f"records*/*/{r.ecg_id:05d}_*"))
    for name in (no_dat.filename_lr, no_dat.filename_hr):
        assert (ptbxl.root / f"{name}.hea").is_file()
        assert not (ptbxl.root / f"{name}.dat").exists()
        with pytest.raises(FileNotFoundError):
            wfdb.rdsamp(str(ptbxl.root / name))


def test_a_wfdb_comment_carries_the_sentinel_that_no_store_may_contain(ptbxl: PtbxlReplica) -> None:
    headers = [(ptbxl.root / f"{r.filename_lr}.hea").read_text() for r in ptbxl.good_records]
    assert any(f"# {COMMENT_SENTINEL}" in h.splitlines() for h in headers)
    with_comment = [r for r, h in zip(ptbxl.good_records, headers, strict=True) if "#" in h]
    assert wfdb.rdheader(str(ptbxl.root / with_comment[0].filename_hr)).comments == [
        COMMENT_SENTINEL
    ]


def test_same_seed_writes_a_byte_identical_ptbxl_tree_and_another_seed_does_not(
    tmp_path: Path,
) -> None:
    first = tree_bytes(write_ptbxl_replica(tmp_path / "a", n_records=5, seed=4).root)
    again = tree_bytes(write_ptbxl_replica(tmp_path / "b", n_records=5, seed=4).root)
    other = tree_bytes(write_ptbxl_replica(tmp_path / "c", n_records=5, seed=5).root)
    assert first == again
    assert first != other
