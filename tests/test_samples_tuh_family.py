"""The TUEG, TUEV, TUSZ and TUAR replicas read back the way public readers read the real ones:
pyedflib for the EDFs, pandas/numpy for .rec, .csv and .csv_bi (LAYOUTS.md section 1)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyedflib
import pytest

from biosig_ingest.samples import (
    TuhEvent,
    TuhFamilyReplica,
    TuhFile,
    write_tuar_replica,
    write_tueg_replica,
    write_tuev_replica,
    write_tusz_replica,
)
from biosig_ingest.samples.tuab import ELECTRODES
from biosig_ingest.samples.tuh_family import (
    BIRTHDATE,
    EDF_PLUS_ANNOTATIONS,
    PATIENT_NAME,
    SEIZURE_RHYTHM_HZ,
    TCP_A_CHANNELS,
    TCP_CHANNELS,
    TCP_PAIRS,
    TUEV_CODES,
)

# Path patterns of LAYOUTS 1.2.
MONTAGE = r"(?P<montage>01_tcp_ar|02_tcp_le|03_tcp_ar_a|04_tcp_le_a)"
TUEG_V2 = re.compile(
    rf"^edf/\d{{3}}/(?P<subj>[a-z]{{8}})/(?P<sess>s\d{{3}})_(?P<date>\d{{4}}(_\d{{2}}_\d{{2}})?)/"
    rf"{MONTAGE}/(?P=subj)_(?P=sess)_t\d{{3}}\.edf$"
)
TUEG_V1 = re.compile(
    rf"^edf/{MONTAGE}/(?P<group>\d{{3}})/(?P<subj>\d{{8}})/(?P<sess>s\d{{3}})_\d{{4}}_\d{{2}}_\d{{2}}/"
    r"(?P=subj)_(?P=sess)_t\d{3}\.edf$"
)
TUEV_TRAIN = re.compile(r"^edf/train/(?P<subj>[a-z]{8})/(?P=subj)_\d{8}\.(edf|rec)$")
TUEV_EVAL = re.compile(
    r"^edf/eval/(?P<n>\d{3})/(?P<label>spsw|gped|pled|eyem|artf|bckg)_(?P=n)_a_\d*\.(edf|rec)$"
)
TUSZ = re.compile(
    r"^edf/(?P<split>train|dev|eval)/(?P<subj>[a-z]{8})/(?P<sess>s\d{3})_\d{4}(_\d{2}_\d{2})?/"
    rf"{MONTAGE}/(?P=subj)_(?P=sess)_t\d{{3}}\.(edf|csv|csv_bi)$"
)
TUAR = re.compile(
    r"^edf/(?P<montage>01_tcp_ar|02_tcp_le|03_tcp_ar_a)/[a-z]{8}_s\d{3}_t\d{3}(\.edf|\.csv|_seiz\.csv)$"
)

SUBSETS = ("tueg_v2", "tueg_v1", "tuev", "tusz", "tuar")


@pytest.fixture(scope="module")
def tueg_v2(tmp_path_factory) -> TuhFamilyReplica:
    return write_tueg_replica(tmp_path_factory.mktemp("tueg-v2"), version="v2")


@pytest.fixture(scope="module")
def tueg_v1(tmp_path_factory) -> TuhFamilyReplica:
    return write_tueg_replica(tmp_path_factory.mktemp("tueg-v1"), version="v1")


@pytest.fixture(scope="module")
def tuev(tmp_path_factory) -> TuhFamilyReplica:
    return write_tuev_replica(tmp_path_factory.mktemp("tuev"))


@pytest.fixture(scope="module")
def tusz(tmp_path_factory) -> TuhFamilyReplica:
    return write_tusz_replica(tmp_path_factory.mktemp("tusz"))


@pytest.fixture(scope="module")
def tuar(tmp_path_factory) -> TuhFamilyReplica:
    return write_tuar_replica(tmp_path_factory.mktemp("tuar"))


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def stem(label: str) -> str:
    return re.sub(r"-(REF|LE)$", "", label.removeprefix("EEG "))


def derivation(edf_path: Path, channel: str) -> tuple[np.ndarray, float]:
    """The TCP channel `channel` ("F7-T3") computed from the referential signals, and its rate."""
    first, second = TCP_PAIRS[TCP_CHANNELS.index(channel)]
    with pyedflib.EdfReader(str(edf_path)) as edf:
        index = {stem(label): i for i, label in enumerate(edf.getSignalLabels())}
        x = edf.readSignal(index[first]) - edf.readSignal(index[second])
        return x, edf.getSampleFrequency(index[first])


def tone_amplitude(x: np.ndarray, t: np.ndarray, freq_hz: float) -> float:
    basis = np.stack([np.sin(2 * np.pi * freq_hz * t), np.cos(2 * np.pi * freq_hz * t),
                      np.ones_like(t)], axis=1)  # fmt: skip
    coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
    return float(np.hypot(coef[0], coef[1]))


def csv_events(path: Path, **read_csv) -> list[TuhEvent]:
    df = pd.read_csv(path, **read_csv)
    assert list(df.columns) == ["channel", "start_time", "stop_time", "label", "confidence"]
    assert (df["confidence"] == 1.0).all()
    return [
        TuhEvent(r.channel, r.start_time, r.stop_time, r.label) for r in df.itertuples(index=False)
    ]


def assert_same_events(read: list[TuhEvent], written: list[TuhEvent] | tuple[TuhEvent, ...]):
    assert [(e.channel, e.label, e.code) for e in read] == [
        (e.channel, e.label, e.code) for e in written
    ]
    times = np.array([(e.start_s, e.stop_s) for e in read]).reshape(-1, 2)
    expected = np.array([(e.start_s, e.stop_s) for e in written]).reshape(-1, 2)
    np.testing.assert_allclose(times, expected, rtol=0, atol=1e-9)


# --- Every subset --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SUBSETS)
def test_every_edf_opens_with_pyedflib_as_its_record_says(name: str, request) -> None:
    replica: TuhFamilyReplica = request.getfixturevalue(name)
    assert replica.files
    for f in replica.files:
        assert f.path == replica.root / f.relpath and f.subset == replica.subset
        with pyedflib.EdfReader(str(f.path)) as edf:
            assert tuple(edf.getSignalLabels()) == f.channel_labels
            assert edf.datarecord_duration == 1.0
            assert edf.file_duration == f.duration_s
            assert (edf.filetype == pyedflib.FILETYPE_EDFPLUS) == f.edf_plus
            for i, label in enumerate(f.channel_labels):
                assert (edf.getDigitalMinimum(i), edf.getDigitalMaximum(i)) == (-32768, 32767)
                assert label.endswith(f"-{f.reference}") or not label.endswith(("-REF", "-LE"))
                if stem(label) in ELECTRODES:
                    assert edf.getSampleFrequency(i) == f.fs_hz
                    assert edf.getPhysicalDimension(i) == "uV"
                    assert 3.0 < edf.readSignal(i, 0, int(4 * f.fs_hz)).std() < 60.0
        for relpath in f.annotation_files:
            assert (replica.root / relpath).is_file()
            assert Path(relpath).name.startswith(f.path.stem)


@pytest.mark.parametrize("name", SUBSETS)
def test_patient_field_carries_the_tuab_sentinels_in_every_file(name: str, request) -> None:
    for f in request.getfixturevalue(name).files:
        patient_field = f.path.read_bytes()[8:88]
        assert patient_field.startswith(f.subject.encode() + b" ")
        assert PATIENT_NAME.encode() in patient_field and BIRTHDATE.encode() in patient_field


@pytest.mark.parametrize("name", ["tueg_v2", "tueg_v1", "tusz", "tuar"])
def test_a_montages_lack_a1_a2_and_le_folders_use_le_labels(name: str, request) -> None:
    replica: TuhFamilyReplica = request.getfixturevalue(name)
    for f in replica.files:
        assert f.montage_dir is not None and f.montage_dir in f.relpath.split("/")
        stems = {stem(label) for label in f.channel_labels}
        eeg = [label for label in f.channel_labels if stem(label) in ELECTRODES]
        assert ({"A1", "A2"} <= stems) != f.montage_dir.endswith("_a")
        assert not f.montage_dir.endswith("_a") or not {"A1", "A2"} & stems
        suffix = "-LE" if "_le" in f.montage_dir else "-REF"
        assert f.reference == suffix[1:]
        assert all(label.endswith(suffix) for label in eeg)
        assert not any(label.endswith("-REF" if suffix == "-LE" else "-LE") for label in eeg)


@pytest.mark.parametrize("name", ["tueg_v2", "tueg_v1", "tusz"])
def test_one_file_is_edf_plus_and_pyedflib_reports_its_annotations(name: str, request) -> None:
    replica: TuhFamilyReplica = request.getfixturevalue(name)
    plus = [f for f in replica.files if f.edf_plus]
    assert len(plus) == 1
    for f in replica.files:
        raw = f.path.read_bytes()
        n_signals = int(raw[252:256])
        labels = [raw[256 + 16 * i : 256 + 16 * (i + 1)].decode().strip() for i in range(n_signals)]
        assert raw[192:197] == (b"EDF+C" if f.edf_plus else b"     ")
        assert ("EDF Annotations" in labels) == f.edf_plus
        with pyedflib.EdfReader(str(f.path)) as edf:
            onsets, durations, texts = edf.readAnnotations()
        expected = EDF_PLUS_ANNOTATIONS if f.edf_plus else ()
        assert list(zip(onsets, durations, texts, strict=True)) == list(expected)


@pytest.mark.parametrize("name", ["tueg_v2", "tueg_v1", "tuev", "tusz", "tuar"])
def test_same_seed_writes_a_byte_identical_tree_and_another_seed_does_not(
    name: str, tmp_path: Path
) -> None:
    writer = {
        "tueg_v2": lambda root, seed: write_tueg_replica(root, version="v2", seed=seed),
        "tueg_v1": lambda root, seed: write_tueg_replica(root, version="v1", seed=seed),
        "tuev": lambda root, seed: write_tuev_replica(root, seed=seed),
        "tusz": lambda root, seed: write_tusz_replica(root, seed=seed),
        "tuar": lambda root, seed: write_tuar_replica(root, seed=seed),
    }[name]
    first = tree(writer(tmp_path / "a", 3).root)
    again = tree(writer(tmp_path / "b", 3).root)
    other = tree(writer(tmp_path / "c", 4).root)
    assert first == again
    assert first != other


# --- TUEG ----------------------------------------------------------------------------------------


def test_tueg_v2_tree_covers_all_four_montage_folders_and_both_session_spellings(
    tueg_v2: TuhFamilyReplica,
) -> None:
    assert tueg_v2.version == "v2"
    assert sorted(p.relative_to(tueg_v2.root).as_posix() for p in tueg_v2.root.rglob("*.*")) == (
        sorted(f.relpath for f in tueg_v2.files)
    )
    dates = set()
    for f in tueg_v2.files:
        m = TUEG_V2.match(f.relpath)
        assert m, f.relpath
        assert (m["subj"], m["sess"], m["montage"]) == (f.subject, f.session, f.montage_dir)
        assert f.split is None and f.events == () and f.annotation_files == ()
        dates.add(len(m["date"]))
    assert {f.montage_dir for f in tueg_v2.files} == {
        "01_tcp_ar", "02_tcp_le", "03_tcp_ar_a", "04_tcp_le_a",
    }  # fmt: skip
    assert dates == {4, 10}  # sNNN_YYYY and sNNN_YYYY_MM_DD


def test_tueg_v1_tree_puts_the_montage_first_and_eight_digit_subjects_in_digit_folders(
    tueg_v1: TuhFamilyReplica,
) -> None:
    assert tueg_v1.version == "v1"
    for f in tueg_v1.files:
        m = TUEG_V1.match(f.relpath)
        assert m, f.relpath
        assert m["group"] == f.subject[3:6]  # 00002729 -> 027
        assert (m["subj"], m["sess"], m["montage"]) == (f.subject, f.session, f.montage_dir)
    assert {f.montage_dir for f in tueg_v1.files} == {
        "01_tcp_ar", "02_tcp_le", "03_tcp_ar_a", "04_tcp_le_a",
    }  # fmt: skip
    # Old releases kept a report next to the EDFs; readers must skip it.
    (report,) = tueg_v1.root.rglob("*.txt")
    first = tueg_v1.files[0]
    assert report == first.path.parent / f"{first.subject}_{first.session}.txt"


@pytest.mark.parametrize("name", ["tueg_v2", "tueg_v1"])
def test_tueg_rates_are_250_256_400_512_and_one_file_runs_junk_channels_at_other_rates(
    name: str, request
) -> None:
    replica: TuhFamilyReplica = request.getfixturevalue(name)
    assert {f.fs_hz for f in replica.files} == {250.0, 256.0, 400.0, 512.0}
    mixed = []
    for f in replica.files:
        with pyedflib.EdfReader(str(f.path)) as edf:
            rates = dict(zip(edf.getSignalLabels(), edf.getSampleFrequencies(), strict=True))
        if len(set(rates.values())) > 1:
            mixed.append(f)
            assert rates["PHOTIC-REF"] == f.fs_hz / 2 and rates["IBI"] == 1.0
            assert {r for lab, r in rates.items() if stem(lab) in ELECTRODES} == {f.fs_hz}
    assert len(mixed) == 1


# --- TUEV ----------------------------------------------------------------------------------------


def test_tuev_tree_has_train_subject_folders_and_eval_number_folders(
    tuev: TuhFamilyReplica,
) -> None:
    for f in tuev.files:
        assert f.session is None and f.token is None and f.montage_dir is None
        assert f.fs_hz == 250.0 and f.reference == "REF"
        assert f.annotation_files == (f.relpath.removesuffix(".edf") + ".rec",)
        if f.split == "train":
            m = TUEV_TRAIN.match(f.relpath)
            assert m and m["subj"] == f.subject
        else:
            m = TUEV_EVAL.match(f.relpath)
            assert m and f.split == "eval" and m["n"] == f.subject
            assert m["label"] in {e.label for e in f.events}
    assert {f.split for f in tuev.files} == {"train", "eval"}


def test_rec_files_read_as_labram_and_braindecode_read_them_and_equal_the_events(
    tuev: TuhFamilyReplica,
) -> None:
    for f in tuev.files:
        path = tuev.root / f.annotation_files[0]
        for line in path.read_text().splitlines():
            assert len(line.split(",")) == 4  # braindecode's check
        rec = np.genfromtxt(path, delimiter=",")  # LaBraM / BIOT
        read = [
            TuhEvent(TCP_CHANNELS[int(ch)], start, stop, TUEV_CODES[int(code)], int(code))
            for ch, start, stop, code in rec
        ]
        assert_same_events(read, f.events)
        df = pd.read_csv(path, header=None, names=["channel", "start", "stop", "code"])
        assert df["channel"].dtype.kind == "i" and df["code"].dtype.kind == "i"
        assert ((df["stop"] - df["start"]).round(6) == 1.0).all()  # 1-s events


def test_tuev_events_cover_all_six_codes_the_file_edges_and_auricular_channels(
    tuev: TuhFamilyReplica,
) -> None:
    events = [(f, e) for f in tuev.files for e in f.events]
    assert {e.code for _, e in events} == {1, 2, 3, 4, 5, 6}
    assert all(TUEV_CODES[e.code] == e.label for _, e in events)
    # Events whose 5-s centred window leaves the file, at either end.
    assert any((e.start_s + e.stop_s) / 2 - 2.5 < 0 for _, e in events)
    assert any((e.start_s + e.stop_s) / 2 + 2.5 > f.duration_s for f, e in events)
    assert {"A1-T3", "T4-A2"} <= {e.channel for _, e in events}
    # An event is repeated on every channel it affects: same times, several rows.
    rows_per_event: dict[tuple, int] = {}
    for f, e in events:
        key = (f.relpath, e.start_s, e.code)
        rows_per_event[key] = rows_per_event.get(key, 0) + 1
    assert max(rows_per_event.values()) >= 16


def test_a_tuev_spike_shows_on_its_channel_at_the_event_centre(tuev: TuhFamilyReplica) -> None:
    f = next(f for f in tuev.files if any(e.label == "spsw" for e in f.events))
    e = next(e for e in f.events if e.label == "spsw")
    x, fs = derivation(f.path, e.channel)
    centre = int((e.start_s + e.stop_s) / 2 * fs)
    spike = np.abs(x[centre - int(0.05 * fs) : centre + int(0.05 * fs)]).max()
    assert spike > 4 * np.median(np.abs(x))


# --- TUSZ ----------------------------------------------------------------------------------------

CSV_HEADER = [
    "# version = csv_v1.0.0",
    "# bname = {bname}",
    "# duration = {duration} secs",
    "# montage_file = $NEDC_NFC/lib/nedc_eas_default_montage.txt",
    "#",
    "channel,start_time,stop_time,label,confidence",
]


def test_tusz_tree_has_splits_subject_session_and_montage_folders(tusz: TuhFamilyReplica) -> None:
    for f in tusz.files:
        for relpath in (f.relpath, *f.annotation_files):
            m = TUSZ.match(relpath)
            assert m, relpath
            assert (m["split"], m["subj"], m["sess"], m["montage"]) == (
                f.split, f.subject, f.session, f.montage_dir,
            )  # fmt: skip
        assert [Path(p).suffix for p in f.annotation_files] == [".csv", ".csv_bi"]
    assert {f.split for f in tusz.files} == {"train", "dev", "eval"}
    assert "02_tcp_le" in {f.montage_dir for f in tusz.files}
    assert {len(f.relpath.split("/")[3]) for f in tusz.files} == {
        9,
        15,
    }  # s001_2002, s001_2002_01_02


def test_tusz_csv_files_have_the_exact_csv_v1_header_and_read_with_skiprows_5(
    tusz: TuhFamilyReplica,
) -> None:
    for f in tusz.files:
        csv_path, bi_path = (tusz.root / p for p in f.annotation_files)
        lines = csv_path.read_text().splitlines()
        duration = re.fullmatch(r"# duration = (\d+\.\d+) secs", lines[2])[1]
        assert float(duration) == f.duration_s and len(duration.split(".")[1]) in (2, 4)
        assert lines[:6] == [h.format(bname=f.path.stem, duration=duration) for h in CSV_HEADER]
        per_channel = [e for e in f.events if e.channel != "TERM"]
        term = [e for e in f.events if e.channel == "TERM"]
        assert_same_events(csv_events(csv_path, skiprows=5), per_channel)
        assert_same_events(csv_events(csv_path, comment="#"), per_channel)
        # .csv_bi: the header without (or, in some files, with) the montage_file line.
        bi_lines = bi_path.read_text().splitlines()
        assert bi_lines[0] == CSV_HEADER[0] and bi_lines[2] == lines[2]
        assert bi_lines[3:5] == CSV_HEADER[4:] or bi_lines[3:6] == CSV_HEADER[3:]
        assert_same_events(csv_events(bi_path, comment="#"), term)
        # The text holds the times with 4 decimals, as the NEDC tools write them.
        with csv_path.open() as fh:
            rows = [r for r in csv.reader(fh) if not r[0].startswith("#")][1:]
        assert [r[1:3] for r in rows] == [
            [f"{e.start_s:.4f}", f"{e.stop_s:.4f}"] for e in per_channel
        ]
    assert {len(p.read_text().splitlines()[:6]) for p in tusz.root.rglob("*.csv_bi")} == {6}
    montage_lines = {
        p.read_text().splitlines()[3].startswith("# montage_file")
        for p in tusz.root.rglob("*.csv_bi")
    }
    assert montage_lines == {True, False}


def test_tusz_rows_cover_every_montage_channel_and_term_rows_the_whole_file(
    tusz: TuhFamilyReplica,
) -> None:
    for f in tusz.files:
        channels = TCP_A_CHANNELS if f.montage_dir.endswith("_a") else TCP_CHANNELS
        per_channel = [e for e in f.events if e.channel != "TERM"]
        assert list(dict.fromkeys(e.channel for e in per_channel)) == list(channels)
        term = [e for e in f.events if e.channel == "TERM"]
        assert {e.label for e in term} <= {"bckg", "seiz"}
        assert term[0].start_s == 0.0 and term[-1].stop_s >= f.duration_s
        for ch in channels:
            rows = [e for e in per_channel if e.channel == ch]
            assert rows[0].start_s == 0.0 and rows[-1].stop_s >= f.duration_s


def test_tusz_holds_a_file_without_seizure_focal_and_generalized_seizures_and_two_faulty_files(
    tusz: TuhFamilyReplica,
) -> None:
    def labels(f: TuhFile) -> set[str]:
        return {e.label for e in f.events if e.channel != "TERM"}

    assert any(
        labels(f) == {"bckg"} and {e.label for e in f.events} == {"bckg"} for f in tusz.files
    )
    seizure_types = set().union(*(labels(f) for f in tusz.files)) - {"bckg"}
    assert {"cpsz", "fnsz", "gnsz"} <= seizure_types
    focal = [f for f in tusz.files if labels(f) & {"cpsz", "fnsz"}]
    for f in focal:
        on_seizure = {e.channel for e in f.events if e.label in seizure_types}
        assert 1 < len(on_seizure) <= 4  # a seizure on a few channels only
    beyond = [f for f in tusz.files if any(e.stop_s > f.duration_s for e in f.events)]
    assert len(beyond) == 1
    overlapping = []
    for f in tusz.files:
        for ch in {e.channel for e in f.events}:
            rows = [e for e in f.events if e.channel == ch]
            if any(b.start_s < a.stop_s for a, b in zip(rows, rows[1:], strict=False)):
                overlapping.append((f.relpath, ch))
    assert {ch for _, ch in overlapping} == {"C4-P4", "TERM"}
    assert len({path for path, _ in overlapping}) == 1


def test_a_seizure_is_a_5hz_rhythm_on_its_channels_and_absent_before_it(
    tusz: TuhFamilyReplica,
) -> None:
    checked = 0
    for f in tusz.files:
        seizures = [e for e in f.events if e.channel != "TERM" and e.label != "bckg"]
        for e in seizures[:2]:
            x, fs = derivation(f.path, e.channel)
            t = np.arange(len(x)) / fs
            during = (t >= e.start_s + 1) & (t < min(e.stop_s, f.duration_s) - 1)
            before = (t >= 2.0) & (t < min(e.start_s, 25.0) - 2)
            assert tone_amplitude(x[during], t[during], SEIZURE_RHYTHM_HZ) > 40.0, e
            assert tone_amplitude(x[before], t[before], SEIZURE_RHYTHM_HZ) < 10.0, e
            checked += 1
        # A focal seizure stays on its side: channels sharing no electrode with it stay quiet.
        if seizures and len({e.channel for e in seizures}) <= 4:
            e = seizures[0]
            near = {el for s in seizures for el in TCP_PAIRS[TCP_CHANNELS.index(s.channel)]}
            far = [
                c for c, pair in zip(TCP_CHANNELS, TCP_PAIRS, strict=True) if not near & set(pair)
            ]
            x, fs = derivation(f.path, far[-1])
            t = np.arange(len(x)) / fs
            during = (t >= e.start_s + 1) & (t < min(e.stop_s, f.duration_s) - 1)
            assert tone_amplitude(x[during], t[during], SEIZURE_RHYTHM_HZ) < 10.0, far[-1]
            checked += 1
    assert checked >= 8


# --- TUAR ----------------------------------------------------------------------------------------


def test_tuar_tree_is_flat_montage_folders_with_csv_and_one_seiz_csv(
    tuar: TuhFamilyReplica,
) -> None:
    assert tuar.version == "v3"
    for f in tuar.files:
        for relpath in (f.relpath, *f.annotation_files):
            m = TUAR.match(relpath)
            assert m and m["montage"] == f.montage_dir, relpath
        assert f.annotation_files[0] == f.relpath.removesuffix(".edf") + ".csv"
    assert {f.montage_dir for f in tuar.files} == {"01_tcp_ar", "02_tcp_le", "03_tcp_ar_a"}
    assert len(list(tuar.root.rglob("*_seiz.csv"))) == 1


def test_tuar_csv_reads_with_header_6_and_holds_single_and_combined_artifact_labels(
    tuar: TuhFamilyReplica,
) -> None:
    for f in tuar.files:
        read: list[TuhEvent] = []
        for relpath in f.annotation_files:
            path = tuar.root / relpath
            lines = path.read_text().splitlines()
            assert lines[0] == "# version = csv_v1.0.0" and lines[1] == f"# bname = {f.path.stem}"
            assert all(line.startswith("#") for line in lines[:6])
            assert lines[6] == "channel,start_time,stop_time,label,confidence"
            from_header = csv_events(path, header=6)
            assert_same_events(csv_events(path, comment="#"), from_header)
            read += from_header
        assert_same_events(read, f.events)
        allowed = TCP_A_CHANNELS if f.montage_dir.endswith("_a") else TCP_CHANNELS
        assert {e.channel for e in f.events} <= set(allowed)
    labels = {e.label for f in tuar.files for e in f.events}
    assert {"eyem", "musc", "chew", "elec"} <= labels
    assert {"eyem_chew", "musc_elec"} <= labels
    assert "fnsz" in labels  # from the _seiz.csv


def test_a_tuar_eye_movement_shows_on_the_frontal_channels(tuar: TuhFamilyReplica) -> None:
    f = tuar.files[0]
    e = next(e for e in f.events if e.label == "eyem")
    x, fs = derivation(f.path, e.channel)
    t = np.arange(len(x)) / fs
    during = (t >= e.start_s) & (t < e.stop_s)
    assert np.abs(x[during]).max() > 3 * np.abs(x[~during]).std() + 50.0
