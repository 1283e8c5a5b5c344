"""Miniature, format-exact replicas of TUEG (v1 and v2 trees), TUEV, TUSZ and TUAR with their
annotation files (.rec, .csv, .csv_bi, _seiz.csv); layout facts follow LAYOUTS.md section 1.

Real paths these writers imitate (LAYOUTS 1.2):

    tuh_eeg/v2.0.0/edf/000/aaaaaaaa/s001_2015_12_30/01_tcp_ar/aaaaaaaa_s001_t000.edf      TUEG v2
    tuh_eeg/v1.1.0/edf/01_tcp_ar/027/00002729/s001_2006_04_12/00002729_s001_t000.edf      TUEG v1
    tuh_eeg_events/v2.0.1/edf/train/aaaaaaar/aaaaaaar_00000001.{edf,rec}                 TUEV
    tuh_eeg_events/v2.0.1/edf/eval/001/pled_001_a_2.{edf,rec}                            TUEV
    tuh_eeg_seizure/v2.0.3/edf/train/aaaaaaac/s001_2002/02_tcp_le/aaaaaaac_s001_t000.{edf,csv,csv_bi}
    tuh_eeg_artifact/v3.0.1/edf/01_tcp_ar/aaaaaaaj_s001_t000.{edf,csv} (+ _seiz.csv)      TUAR

The writers take the version folder (the one holding ``edf/``) as ``root``. Which file carries
which quirk is listed in docs/replicas.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyedflib

from biosig_ingest.samples._signals import eeg_background
from biosig_ingest.samples.tuab import (
    _BIRTHDATE,
    BIRTHDATE,
    CONFIGURATIONS,
    ELECTRODES,
    PATIENT_NAME,
    _channels,
    _stem,
    _with_reference,
    subject_id,
)

__all__ = [
    "BIRTHDATE",
    "EDF_PLUS_ANNOTATIONS",
    "PATIENT_NAME",
    "SEIZURE_RHYTHM_HZ",
    "TCP_A_CHANNELS",
    "TCP_CHANNELS",
    "TCP_PAIRS",
    "TUEV_CODES",
    "TuhEvent",
    "TuhFamilyReplica",
    "TuhFile",
    "write_tuar_replica",
    "write_tueg_replica",
    "write_tuev_replica",
    "write_tusz_replica",
]

# --- Facts from LAYOUTS.md -----------------------------------------------------------------------

# The 22-channel TCP ("double banana") montage; the position is the channel number of .rec files
# and the order of the per-channel rows in .csv files (LAYOUTS 1.4).
TCP_PAIRS: tuple[tuple[str, str], ...] = (
    ("FP1", "F7"), ("F7", "T3"), ("T3", "T5"), ("T5", "O1"),
    ("FP2", "F8"), ("F8", "T4"), ("T4", "T6"), ("T6", "O2"),
    ("A1", "T3"), ("T3", "C3"), ("C3", "CZ"), ("CZ", "C4"), ("C4", "T4"), ("T4", "A2"),
    ("FP1", "F3"), ("F3", "C3"), ("C3", "P3"), ("P3", "O1"),
    ("FP2", "F4"), ("F4", "C4"), ("C4", "P4"), ("P4", "O2"),
)  # fmt: skip
TCP_CHANNELS: tuple[str, ...] = tuple(f"{a}-{b}" for a, b in TCP_PAIRS)
AURICULAR = ("A1", "A2")
# The 20-channel TCP of the `_a` montages: without A1-T3 and T4-A2 (LAYOUTS 1.4 [S35]).
TCP_A_CHANNELS: tuple[str, ...] = tuple(
    name
    for name, pair in zip(TCP_CHANNELS, TCP_PAIRS, strict=True)
    if not set(pair) & set(AURICULAR)
)

# Montage folder -> (reference suffix of the EDF labels, whether A1/A2 are recorded) (LAYOUTS 1.3).
MONTAGE_DIRS: dict[str, tuple[str, bool]] = {
    "01_tcp_ar": ("REF", True),
    "02_tcp_le": ("LE", True),
    "03_tcp_ar_a": ("REF", False),
    "04_tcp_le_a": ("LE", False),
}

TUEV_CODES: dict[int, str] = {1: "spsw", 2: "gped", 3: "pled", 4: "eyem", 5: "artf", 6: "bckg"}
SEIZURE_TYPES = ("seiz", "fnsz", "gnsz", "spsz", "cpsz", "absz", "tnsz", "cnsz", "tcsz", "atsz",
                 "mysz", "nesz")  # fmt: skip

# The 27 channels of a TUEV file (LAYOUTS 1.3 [S34]).
TUEV_CONFIGURATION = tuple(f"EEG {e}-REF" for e in ELECTRODES) + (
    "EEG ROC-REF", "EEG LOC-REF", "EEG EKG1-REF", "EEG T1-REF", "EEG T2-REF", "PHOTIC-REF",
)  # fmt: skip
_CONFIGURATIONS = {**CONFIGURATIONS, "27ch": TUEV_CONFIGURATION}

CSV_VERSION = "# version = csv_v1.0.0"
CSV_COLUMNS = "channel,start_time,stop_time,label,confidence"
MONTAGE_FILE = "$NEDC_NFC/lib/nedc_eas_default_montage.txt"
# UNCONFIRMED: what TUAR's sixth comment line holds (LAYOUTS 1.5, section 6). This replica uses
# the NEDC header key `annotation_label_file` with the default label map of the NEDC tools.
ANNOTATION_LABEL_FILE = "$NEDC_NFC/lib/nedc_eas_default_map.txt"

# Free-text annotations in the "EDF Annotations" signal of the EDF+ files: (onset_s, duration_s,
# text). The photic one matches the flashes of the PHOTIC channel (35-45 s).
EDF_PLUS_ANNOTATIONS: tuple[tuple[float, float, str], ...] = (
    (5.0, 20.0, "EYES CLOSED"),
    (35.0, 10.0, "PHOTIC STIMULATION"),
)

# Every annotated seizure is a 5 Hz rhythm on the electrodes of its channels, so that a test can
# check that labels and signal line up.
SEIZURE_RHYTHM_HZ = 5.0
SEIZURE_AMPLITUDE_UV = 100.0


# --- Public records ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TuhEvent:
    """One annotation row, as written in the file."""

    channel: str  # TCP bipolar name as written in the file ("FP1-F7") or "TERM"
    start_s: float
    stop_s: float
    label: str  # "cpsz", "bckg", "seiz", "eyem_chew", or for TUEV the name of the code ("pled")
    code: int | None = None  # TUEV numeric code 1-6, else None


@dataclass(frozen=True)
class TuhFile:
    """One EDF of a replica, what was put into it, and its annotation files."""

    path: Path
    relpath: str  # posix, relative to the replica root
    subset: str  # "tueg" | "tuev" | "tusz" | "tuar"
    subject: str
    session: str | None  # "s001"; None for TUEV, whose names carry no session
    token: str | None  # "t000"; None for TUEV
    split: str | None  # "train" | "dev" | "eval" where the tree says, else None
    montage_dir: str | None  # "01_tcp_ar" ... where the tree has one
    reference: str  # "REF" | "LE"
    fs_hz: float  # EEG channels' rate
    duration_s: float
    channel_labels: tuple[str, ...]  # EDF labels in file order, without "EDF Annotations"
    edf_plus: bool  # True if written as EDF+ with an "EDF Annotations" channel
    events: tuple[TuhEvent, ...]  # what the annotation files say (empty for TUEG)
    annotation_files: tuple[str, ...]  # relpaths of .rec/.csv/.csv_bi/_seiz.csv next to it


@dataclass(frozen=True)
class TuhFamilyReplica:
    root: Path
    subset: str
    version: str
    files: tuple[TuhFile, ...]


# --- Plans ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """What to write for one EDF; the annotation files come as finished text."""

    relpath: str
    subset: str
    subject: str
    session: str | None
    token: str | None
    split: str | None
    montage_dir: str | None
    reference: str
    auricular: bool  # False for the `_a` montages: no A1/A2 channels
    fs_hz: int
    duration_s: int
    configuration: str  # key of _CONFIGURATIONS
    start: datetime
    sex: int  # edflib's coding: 1 male, 0 female
    mixed_rates: bool = False
    edf_plus: bool = False
    events: tuple[TuhEvent, ...] = ()
    annotations: dict[str, str] = field(default_factory=dict)  # relpath -> file text


def _montage(montage_dir: str) -> dict:
    reference, auricular = MONTAGE_DIRS[montage_dir]
    return {"montage_dir": montage_dir, "reference": reference, "auricular": auricular}


def _random_day(rng: np.random.Generator, year: int | None = None) -> date:
    """A day of `year`, or of 2002-2016 (the years TUEG spans)."""
    year = int(rng.integers(2002, 2017)) if year is None else year
    return date(year, int(rng.integers(1, 13)), int(rng.integers(1, 29)))


def _start(rng: np.random.Generator, day: date | None = None, year: int | None = None) -> datetime:
    """Recording start during working hours on `day`, or on a random day (of `year`)."""
    day = _random_day(rng, year) if day is None else day
    hms = (int(rng.integers(8, 18)), int(rng.integers(0, 60)), int(rng.integers(0, 60)))
    return datetime(day.year, day.month, day.day, *hms)


def _session_dir(session: str, day: date, full_date: bool) -> str:
    """'s001_2015_12_30' or 's001_2015' (LAYOUTS 1.2: both occur)."""
    return f"{session}_{day:%Y_%m_%d}" if full_date else f"{session}_{day:%Y}"


def _subjects(rng: np.random.Generator, n: int) -> list[str]:
    # Small numbers give ids like the real ones ('aaaaaaav', 'aaaaaqvx'), as in tuab.py.
    return [subject_id(int(k)) for k in rng.choice(26**4, size=n, replace=False)]


def _t4(x: float) -> float:
    """A time as the 4-decimal number written in the .csv files."""
    return float(f"{x:.4f}")


# --- Annotation text -----------------------------------------------------------------------------


def _rec_text(events: tuple[TuhEvent, ...]) -> str:
    """TUEV .rec: `channel_index,start,stop,code` per line, no header (LAYOUTS 1.5)."""
    return "".join(
        f"{TCP_CHANNELS.index(e.channel)},{e.start_s:.1f},{e.stop_s:.1f},{e.code}\n" for e in events
    )


def _csv_text(
    bname: str,
    duration: str,
    events: tuple[TuhEvent, ...] | list[TuhEvent],
    *,
    montage_line: bool = True,
    label_file_line: bool = False,
    confidence: str = "1.0000",
) -> str:
    """csv_v1.0.0 annotation file: comment header, column line, one row per event."""
    lines = [CSV_VERSION, f"# bname = {bname}", f"# duration = {duration} secs"]
    if montage_line:
        lines.append(f"# montage_file = {MONTAGE_FILE}")
    if label_file_line:
        lines.append(f"# annotation_label_file = {ANNOTATION_LABEL_FILE}")
    lines += ["#", CSV_COLUMNS]
    lines += [f"{e.channel},{e.start_s:.4f},{e.stop_s:.4f},{e.label},{confidence}" for e in events]
    return "\n".join(lines) + "\n"


def _per_channel(
    channels: tuple[str, ...],
    duration_s: float,
    seizures: dict[str, list[tuple[float, float, str]]],
) -> list[TuhEvent]:
    """TUSZ .csv rows: every channel of the montage covered from 0 to the end, `bckg` between
    its seizures; channels in montage order, rows in time order (LAYOUTS 1.5 example)."""
    rows = []
    for channel in channels:
        t = 0.0
        for start, stop, label in sorted(seizures.get(channel, [])):
            if start > t:
                rows.append(TuhEvent(channel, t, start, "bckg"))
            rows.append(TuhEvent(channel, start, stop, label))
            t = stop
        if t < duration_s:
            rows.append(TuhEvent(channel, t, float(duration_s), "bckg"))
    return rows


def _term(duration_s: float, seizures: list[tuple[float, float]]) -> list[TuhEvent]:
    """TUSZ .csv_bi rows: TERM bckg/seiz covering the whole file."""
    rows, t = [], 0.0
    for start, stop in sorted(seizures):
        if start > t:
            rows.append(TuhEvent("TERM", t, start, "bckg"))
        rows.append(TuhEvent("TERM", start, stop, "seiz"))
        t = stop
    if t < duration_s:
        rows.append(TuhEvent("TERM", t, float(duration_s), "bckg"))
    return rows


# --- Signals -------------------------------------------------------------------------------------


def _electrode_colours() -> dict[str, int]:
    """Greedy colouring (0-3) of the TCP graph in ELECTRODES order: the two electrodes of every
    TCP channel differ, so a waveform put on both never cancels in their difference."""
    neighbours: dict[str, set[str]] = {e: set() for e in ELECTRODES}
    for a, b in TCP_PAIRS:
        neighbours[a].add(b)
        neighbours[b].add(a)
    colours: dict[str, int] = {}
    for e in ELECTRODES:
        taken = {colours[n] for n in neighbours[e] if n in colours}
        colours[e] = min(set(range(4)) - taken)
    return colours


_COLOURS = _electrode_colours()
_GAINS = (1.0, -1.0, 0.5, -0.5)  # per colour: adjacent electrodes differ by at least 0.5


def _components(label: str) -> tuple[str, ...]:
    """Waveforms that stand for a label: 'eyem_chew' -> ('eyem', 'chew'), 'cpsz' -> ('seiz',)."""
    if label in SEIZURE_TYPES:
        return ("seiz",)
    if label in ("spsw", "gped", "pled"):
        return ("sharp",)
    if label == "artf":
        return ("musc",)
    if label in ("bckg", "null"):
        return ()
    return tuple("elec" if part == "elpp" else part for part in label.split("_"))


def _wave(
    component: str, t: np.ndarray, intervals: list[tuple[float, float]], colour: int
) -> np.ndarray:
    """uV added to one electrode for `component` over `intervals` (seconds)."""
    gain = _GAINS[colour]
    inside = np.zeros(t.shape, dtype=bool)
    for start, stop in intervals:
        inside |= (t >= start) & (t < stop)
    if component == "seiz":
        phase = colour * np.pi / 2
        return inside * SEIZURE_AMPLITUDE_UV * np.sin(2 * np.pi * SEIZURE_RHYTHM_HZ * t + phase)
    if component == "musc":
        carrier = (
            np.sin(2 * np.pi * 37 * t)
            + np.sin(2 * np.pi * 53 * t + 1)
            + np.sin(2 * np.pi * 71 * t + 2)
        )
        return inside * gain * 25.0 * carrier
    if component == "chew":  # bursts of muscle at 1.5 Hz
        return inside * gain * 60.0 * (np.sin(2 * np.pi * 1.5 * t) > 0) * np.sin(2 * np.pi * 45 * t)
    if component == "shiv":
        return inside * gain * 30.0 * np.sin(2 * np.pi * 22 * t)
    x = np.zeros(t.shape)
    for start, stop in intervals:
        centre = (start + stop) / 2
        if component == "eyem":
            x += gain * 150.0 * np.exp(-0.5 * ((t - centre) / min(0.3, (stop - start) / 4)) ** 2)
        elif component == "sharp":  # spike, then an after-going slow wave
            x += gain * (
                -150.0 * np.exp(-0.5 * ((t - centre) / 0.02) ** 2)
                + 50.0 * np.exp(-0.5 * ((t - centre - 0.12) / 0.08) ** 2)
            )
        elif component == "elec":  # electrode pop: a step that decays
            on = (t >= start) & (t < stop)
            x += np.where(on, gain * 250.0 * np.exp(-(t - start) / 0.15), 0.0)
        else:
            raise ValueError(f"no waveform for {component!r}")
    return x


def _injections(
    events: tuple[TuhEvent, ...], t: np.ndarray, duration_s: float
) -> dict[str, np.ndarray]:
    """Per electrode, the sum of the waveforms of every event on a channel it belongs to.

    An electrode shared by several annotated channels gets the union of their intervals, so an
    event written on two channels is not added twice; intervals beyond the file are clipped.
    """
    spans: dict[tuple[str, str], set[tuple[float, float]]] = {}
    for e in events:
        if e.channel == "TERM":
            continue
        pair = TCP_PAIRS[TCP_CHANNELS.index(e.channel)]
        interval = (max(e.start_s, 0.0), min(e.stop_s, float(duration_s)))
        for component in _components(e.label):
            for electrode in pair:
                spans.setdefault((electrode, component), set()).add(interval)
    added: dict[str, np.ndarray] = {}
    for (electrode, component), intervals in sorted(spans.items()):
        wave = _wave(component, t, sorted(intervals), _COLOURS[electrode])
        added[electrode] = added.get(electrode, 0.0) + wave
    return added


def _render(spec: _Spec, rng: np.random.Generator) -> tuple[list[dict], list[np.ndarray]]:
    """Headers and digital samples of one file, channels shuffled (seeded)."""
    labels = [
        _with_reference(label, spec.reference)
        for label in _CONFIGURATIONS[spec.configuration]
        if spec.auricular or _stem(label) not in AURICULAR
    ]
    stems = [_stem(label) for label in labels]
    eeg_names = [s for s in stems if s in ELECTRODES or s in ("T1", "T2", "SP1", "SP2")]
    n_eeg = spec.duration_s * spec.fs_hz
    eeg = dict(zip(eeg_names, eeg_background(rng, eeg_names, n_eeg, spec.fs_hz), strict=True))
    t = np.arange(n_eeg) / spec.fs_hz
    for electrode, wave in _injections(spec.events, t, spec.duration_s).items():
        eeg[electrode] = eeg[electrode] + wave

    return _channels(labels, stems, eeg, spec.fs_hz, spec.mixed_rates, spec.duration_s, rng)


def _write_edf(path: Path, spec: _Spec, headers: list[dict], samples: list[np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    file_type = pyedflib.FILETYPE_EDFPLUS if spec.edf_plus else pyedflib.FILETYPE_EDF
    writer = pyedflib.EdfWriter(str(path), len(headers), file_type=file_type)
    try:
        writer.setSignalHeaders(headers)
        # The patient field takes the TUAB replica's sentinels (privacy tests look for them).
        writer.setPatientCode(spec.subject)
        writer.setSex(spec.sex)
        writer.setBirthdate(_BIRTHDATE)
        writer.setPatientName(PATIENT_NAME)
        writer.setPatientAdditional(f"Age:{spec.start.year - _BIRTHDATE.year}")
        writer.setStartdatetime(spec.start)
        writer.writeSamples(samples, digital=True)
        if spec.edf_plus:
            for onset_s, duration_s, text in EDF_PLUS_ANNOTATIONS:
                writer.writeAnnotation(onset_s, duration_s, text)
    finally:
        writer.close()


def _write(
    root: Path, subset: str, version: str, specs: list[_Spec], seed: int, stream: int
) -> TuhFamilyReplica:
    files = []
    for k, spec in enumerate(specs):
        # One random stream per file, so that a file can be regenerated on its own.
        rng = np.random.default_rng([seed, stream, 1, k])
        path = root / spec.relpath
        headers, samples = _render(spec, rng)
        _write_edf(path, spec, headers, samples)
        for relpath, text in spec.annotations.items():
            (root / relpath).write_text(text, encoding="ascii", newline="\n")
        files.append(
            TuhFile(
                path=path,
                relpath=spec.relpath,
                subset=subset,
                subject=spec.subject,
                session=spec.session,
                token=spec.token,
                split=spec.split,
                montage_dir=spec.montage_dir,
                reference=spec.reference,
                fs_hz=float(spec.fs_hz),
                duration_s=float(spec.duration_s),
                channel_labels=tuple(h["label"] for h in headers),
                edf_plus=spec.edf_plus,
                events=spec.events,
                annotation_files=tuple(spec.annotations),
            )
        )
    return TuhFamilyReplica(root=root, subset=subset, version=version, files=tuple(files))


# --- TUEG ----------------------------------------------------------------------------------------

_TUEG_DURATION_S = 60


def _tueg_v2_specs(rng: np.random.Generator) -> list[_Spec]:
    s0, s1, s2 = _subjects(rng, 3)
    days = [_random_day(rng) for _ in range(4)]
    # (group dir, subject, session, full date?, day, montage, token, fs, configuration, quirk)
    rows = [
        ("000", s0, "s001", True, days[0], "01_tcp_ar", "t000", 256, "36ch", "mixed"),
        ("000", s0, "s001", True, days[0], "01_tcp_ar", "t001", 256, "30ch", ""),
        ("000", s1, "s002", False, days[1], "02_tcp_le", "t000", 250, "32ch", "edf+"),
        ("001", s2, "s001", True, days[2], "03_tcp_ar_a", "t000", 400, "30ch", ""),
        ("001", s2, "s004", False, days[3], "04_tcp_le_a", "t002", 512, "36ch", ""),
    ]
    return [
        _tueg_spec(
            rng,
            f"edf/{group}/{subject}/{_session_dir(session, day, full)}/{montage}/{subject}_{session}_{token}.edf",
            subject, session, token, montage, fs, config,
            _start(rng, day=day if full else None, year=day.year),
            quirk,
        )
        for group, subject, session, full, day, montage, token, fs, config, quirk in rows
    ]


def _tueg_spec(
    rng: np.random.Generator,
    relpath: str,
    subject: str,
    session: str,
    token: str,
    montage: str,
    fs: int,
    config: str,
    start: datetime,
    quirk: str,
) -> _Spec:
    """One TUEG file of either naming generation (v1 and v2 differ in the path only)."""
    return _Spec(
        relpath=relpath,
        subset="tueg",
        subject=subject,
        session=session,
        token=token,
        split=None,
        **_montage(montage),
        fs_hz=fs,
        duration_s=_TUEG_DURATION_S,
        configuration=config,
        start=start,
        sex=int(rng.integers(0, 2)),
        mixed_rates=quirk == "mixed",
        edf_plus=quirk == "edf+",
    )


def _tueg_v1_specs(rng: np.random.Generator) -> list[_Spec]:
    s0, s1, s2 = (f"{int(n):08d}" for n in rng.choice(np.arange(1, 14000), 3, replace=False))
    days = [_random_day(rng) for _ in range(4)]
    rows = [
        (s0, "s001", days[0], "01_tcp_ar", "t000", 250, "36ch", "mixed"),
        (s1, "s003", days[1], "02_tcp_le", "t001", 256, "30ch", "edf+"),
        (s2, "s001", days[2], "03_tcp_ar_a", "t000", 512, "32ch", ""),
        (s2, "s002", days[3], "04_tcp_le_a", "t000", 400, "30ch", ""),
    ]
    # v1: montage folder first, then digits 4-6 of the subject ('00002729' -> '027').
    return [
        _tueg_spec(
            rng,
            f"edf/{montage}/{subject[3:6]}/{subject}/{_session_dir(session, day, True)}/{subject}_{session}_{token}.edf",
            subject, session, token, montage, fs, config,
            _start(rng, day=day),
            quirk,
        )
        for subject, session, day, montage, token, fs, config, quirk in rows
    ]


_REPORT = (
    "CLINICAL HISTORY: Synthetic replica file, no patient.\n"
    "MEDICATIONS: None.\n"
    "INTRODUCTION: Digital video EEG using the standard 10-20 system.\n"
    "IMPRESSION: Normal EEG.\n"
)


def write_tueg_replica(root: Path, *, version: str = "v2", seed: int = 0) -> TuhFamilyReplica:
    """Write a TUEG tree under `root` (the version folder): v2 `edf/NNN/<8 letters>/sNNN_<date>/
    <montage>/...edf` or v1 `edf/<montage>/NNN/<8 digits>/sNNN_YYYY_MM_DD/...edf`.

    All four montage folders occur; one file mixes channel rates and one is EDF+ with an
    "EDF Annotations" signal. The v1 tree also holds one `<subject>_<sNNN>.txt` report, as v1.x
    releases did. TUEG has no annotation files, so `events` are empty.
    """
    if version not in ("v1", "v2"):
        raise ValueError("version must be 'v1' or 'v2'")
    root = Path(root)
    stream = 10 if version == "v1" else 11
    plan_rng = np.random.default_rng([seed, stream, 0])
    specs = _tueg_v1_specs(plan_rng) if version == "v1" else _tueg_v2_specs(plan_rng)
    replica = _write(root, "tueg", version, specs, seed, stream)
    if version == "v1":
        first = replica.files[0]
        report = first.path.parent / f"{first.subject}_{first.session}.txt"
        report.write_text(_REPORT, encoding="ascii", newline="\n")
    return replica


# --- TUEV ----------------------------------------------------------------------------------------

_TUEV_DURATION_S = 60
_TUEV_FS_HZ = 250


def _tuev_events(groups: list[tuple[float, int, tuple[int, ...]]]) -> tuple[TuhEvent, ...]:
    """1-s events from (start_s, code, TCP channel indices), one row per affected channel,
    rows in time order then channel order."""
    rows = []
    for start, code, channels in sorted(groups):
        for index in sorted(channels):
            rows.append(
                TuhEvent(
                    TCP_CHANNELS[index], round(start, 1), round(start + 1.0, 1),
                    TUEV_CODES[code], code,
                )
            )  # fmt: skip
    return tuple(rows)


_GENERALIZED = tuple(i for i in range(22) if i not in (8, 13))


def write_tuev_replica(root: Path, *, seed: int = 0) -> TuhFamilyReplica:
    """Write a TUEV v2 tree under `root`: `edf/train/<subj>/<subj>_<8 digits>.{edf,rec}` and
    `edf/eval/<NNN>/<label>_<NNN>_a_<run>.{edf,rec}`, 250 Hz REF files of 60 s.

    Events are 1 s long on a 0.1 s grid and repeated per affected TCP channel. One starts
    0.5 s into a file, one ends 1 s before a file's end, and some sit on A1-T3 / T4-A2.
    """
    root = Path(root)
    rng = np.random.default_rng([seed, 20, 0])
    a, b = _subjects(rng, 2)
    # (relpath stem, subject, split, events as (start_s, code, channels))
    rows: list[tuple[str, str, str, list[tuple[float, int, tuple[int, ...]]]]] = [
        (f"train/{a}/{a}_00000001", a, "train", [
            (0.5, 1, (0, 1)),  # within 2 s of the start
            (10.0, 6, (14, 15)), (11.0, 6, (14, 15)),
            (20.3, 4, (0, 4, 14, 18)),
            (35.7, 1, (2, 3, 9)),
            (47.0, 6, (2, 3)),
        ]),
        (f"train/{a}/{a}_00000002", a, "train", [
            (12.0, 2, _GENERALIZED), (13.0, 2, _GENERALIZED),
            (30.4, 5, (9, 10)),
            (58.0, 6, (11, 12)),  # within 2 s of the end
        ]),
        (f"train/{b}/{b}_00000005", b, "train", [
            (7.5, 6, (16, 17)),
            (20.0, 3, (6, 12, 13)), (21.0, 3, (6, 12, 13)),  # 13 = T4-A2
            (44.2, 4, (4, 18)),
        ]),
        ("eval/000/bckg_000_a_", "000", "eval", [
            (5.0, 6, (0, 1, 2)),
            (40.2, 4, (0, 4)),
            (58.9, 6, (20, 21)),  # ends 0.1 s before the file does
        ]),
        ("eval/000/gped_000_a_1", "000", "eval", [
            (25.0, 2, _GENERALIZED), (26.0, 2, _GENERALIZED), (27.0, 2, _GENERALIZED),
            (50.0, 6, (5, 6)),
        ]),
        ("eval/001/pled_001_a_2", "001", "eval", [
            (1.0, 3, (2, 8, 9)),  # within 2 s of the start; 8 = A1-T3
            (2.0, 3, (2, 8, 9)),
            (33.3, 5, (7, 21)),
        ]),
    ]  # fmt: skip
    specs = []
    for stem, subject, split, groups in rows:
        events = _tuev_events(groups)
        specs.append(
            _Spec(
                relpath=f"edf/{stem}.edf",
                subset="tuev",
                subject=subject,
                session=None,
                token=None,
                split=split,
                montage_dir=None,
                reference="REF",
                auricular=True,
                fs_hz=_TUEV_FS_HZ,
                duration_s=_TUEV_DURATION_S,
                configuration="27ch",
                start=_start(rng),
                sex=int(rng.integers(0, 2)),
                events=events,
                annotations={f"edf/{stem}.rec": _rec_text(events)},
            )
        )
    return _write(root, "tuev", "v2", specs, seed, 20)


# --- TUSZ ----------------------------------------------------------------------------------------


def _spread(
    rng: np.random.Generator, channels: tuple[str, ...], start: float, stop: float, label: str
) -> dict[str, list[tuple[float, float, str]]]:
    """A seizure as annotators mark it: each channel's onset up to 1.5 s later than `start`,
    its end up to 1.5 s earlier than `stop` (4-decimal times)."""
    return {
        ch: [(_t4(start + rng.uniform(0, 1.5)), _t4(stop - rng.uniform(0, 1.5)), label)]
        for ch in channels
    }


def _merge(*parts: dict[str, list[tuple[float, float, str]]]) -> dict:
    merged: dict[str, list[tuple[float, float, str]]] = {}
    for part in parts:
        for ch, spans in part.items():
            merged.setdefault(ch, []).extend(spans)
    return merged


def _hull(seizure: dict[str, list[tuple[float, float, str]]]) -> tuple[float, float]:
    spans = [s for v in seizure.values() for s in v]
    return min(s[0] for s in spans), max(s[1] for s in spans)


def write_tusz_replica(root: Path, *, seed: int = 0) -> TuhFamilyReplica:
    """Write a TUSZ v2 tree under `root`: `edf/{train,dev,eval}/<subj>/sNNN_<date>/<montage>/
    <subj>_sNNN_tNNN.{edf,csv,csv_bi}` with csv_v1.0.0 annotation files.

    `.csv` rows cover every montage channel from 0 to the end (`bckg` between seizures);
    `.csv_bi` rows are TERM bckg/seiz. Each seizure is a 5 Hz rhythm on its channels'
    electrodes. Quirks: a file without seizure, one with a seizure past the end of the file,
    one with overlapping rows, an EDF+ file, a mixed-rate file, both session-folder spellings.
    """
    root = Path(root)
    rng = np.random.default_rng([seed, 30, 0])
    a, b, c, d = _subjects(rng, 4)
    left_temporal = ("FP1-F7", "F7-T3", "T3-T5", "T5-O1")
    right_temporal = ("FP2-F8", "F8-T4", "T4-T6")

    # File 1: two complex partial seizures on a few left temporal channels.
    s1 = _spread(rng, left_temporal, 30.0 + rng.uniform(0, 3), 55.0, "cpsz")
    s2 = _spread(rng, left_temporal[1:3], 80.0, 95.0 + rng.uniform(0, 3), "cpsz")
    # File 3: a generalized seizure on all 22 channels.
    s3 = _spread(rng, TCP_CHANNELS, 50.0, 75.0, "gnsz")
    # File 4: a focal seizure whose annotation runs past the 120 s file.
    s4 = {ch: [(_t4(95.0 + rng.uniform(0, 1.5)), 131.5, "fnsz")] for ch in right_temporal}
    # File 5: a tonic-clonic seizure on all 20 channels of an `_a` file.
    s5 = _spread(rng, TCP_A_CHANNELS, 40.0, 70.0, "tcsz")

    days = [_random_day(rng) for _ in range(4)]
    # (split, subject, session, full date?, day, montage, token, fs, duration, configuration,
    #  seizures, quirk)
    rows = [
        ("train", a, "s001", False, days[0], "01_tcp_ar", "t000", 250, 120, "30ch", [s1, s2], ""),
        ("train", a, "s001", False, days[0], "01_tcp_ar", "t001", 250, 90, "36ch", [], ""),
        ("train", b, "s002", True, days[1], "02_tcp_le", "t000", 256, 120, "32ch", [s3], "edf+"),
        ("dev", c, "s001", False, days[2], "03_tcp_ar_a", "t002", 400, 120, "30ch", [s4], "beyond"),
        ("eval", d, "s003", True, days[3], "04_tcp_le_a", "t000", 512, 90, "36ch", [s5], "overlap"),
    ]  # fmt: skip
    specs = []
    for row in rows:
        split, subject, session, full, day, montage, token, fs, dur, config, seizures, quirk = row
        _, auricular = MONTAGE_DIRS[montage]
        channels = TCP_CHANNELS if auricular else TCP_A_CHANNELS
        rows_csv = _per_channel(channels, dur, _merge(*seizures))
        rows_bi = _term(dur, [_hull(s) for s in seizures])
        if quirk == "overlap":
            # One channel's bckg row runs 5 s into its seizure row, and the TERM bckg row 2 s
            # into the TERM seiz row: annotators' overlaps, which a reader must only warn about.
            ch = "C4-P4"
            k = next(i for i, r in enumerate(rows_csv) if r.channel == ch and r.label == "tcsz")
            overlap_s = _t4(rows_csv[k].start_s + 5.0)
            rows_csv[k - 1] = TuhEvent(ch, rows_csv[k - 1].start_s, overlap_s, "bckg")
            rows_bi[0] = TuhEvent("TERM", 0.0, _t4(rows_bi[1].start_s + 2.0), "bckg")
        name = f"{subject}_{session}_{token}"
        folder = f"edf/{split}/{subject}/{_session_dir(session, day, full)}/{montage}"
        # Both spellings of the duration header occur in real files (LAYOUTS 1.5).
        duration = f"{dur:.4f}" if quirk == "edf+" else f"{dur:.2f}"
        annotations = {
            f"{folder}/{name}.csv": _csv_text(name, duration, rows_csv),
            # Most .csv_bi files have no montage_file line; some do (LAYOUTS 1.5 [S38]).
            f"{folder}/{name}.csv_bi": _csv_text(
                name, duration, rows_bi, montage_line=quirk == "edf+"
            ),
        }
        specs.append(
            _Spec(
                relpath=f"{folder}/{name}.edf",
                subset="tusz",
                subject=subject,
                session=session,
                token=token,
                split=split,
                **_montage(montage),
                fs_hz=fs,
                duration_s=dur,
                configuration=config,
                start=_start(rng, day=day if full else None, year=day.year),
                sex=int(rng.integers(0, 2)),
                mixed_rates=quirk == "overlap",
                edf_plus=quirk == "edf+",
                events=tuple(rows_csv) + tuple(rows_bi),
                annotations=annotations,
            )
        )
    return _write(root, "tusz", "v2", specs, seed, 30)


# --- TUAR ----------------------------------------------------------------------------------------

_TUAR_DURATION_S = 60


def _artifacts(
    rng: np.random.Generator, marks: list[tuple[str, float, float, tuple[str, ...]]]
) -> tuple[TuhEvent, ...]:
    """TUAR rows from (label, start_s, stop_s, channels): only the artifacts themselves (no bckg
    rows), each channel's start and stop moved by up to 0.5 s, rows in montage then time order."""
    rows = [
        TuhEvent(ch, _t4(start + rng.uniform(0, 0.5)), _t4(stop - rng.uniform(0, 0.5)), label)
        for label, start, stop, channels in marks
        for ch in channels
    ]
    return tuple(sorted(rows, key=lambda e: (TCP_CHANNELS.index(e.channel), e.start_s)))


def _tuar_csv(bname: str, duration: str, events: tuple[TuhEvent, ...]) -> str:
    # UNCONFIRMED (LAYOUTS 1.5): six comment lines, the sixth `annotation_label_file`;
    # confidence with six decimals as in a third-party TUAR parser's example row.
    return _csv_text(bname, duration, events, label_file_line=True, confidence="1.000000")


def write_tuar_replica(root: Path, *, seed: int = 0) -> TuhFamilyReplica:
    """Write a TUAR v3 tree under `root`: `edf/{01_tcp_ar,02_tcp_le,03_tcp_ar_a}/
    <subj>_sNNN_tNNN.{edf,csv}` and one `_seiz.csv`, 60 s files.

    The `.csv` files have six comment lines before the column line (read with
    `pd.read_csv(path, header=6)`); per-channel artifact rows, combined labels included.
    """
    root = Path(root)
    rng = np.random.default_rng([seed, 40, 0])
    a, b, c = _subjects(rng, 3)
    frontal = ("FP1-F7", "FP2-F8", "FP1-F3", "FP2-F4")
    Marks = list[tuple[str, float, float, tuple[str, ...]]]
    # (montage, subject, session, token, fs, configuration, artifacts, seizures)
    rows: list[tuple[str, str, str, str, int, str, Marks, Marks]] = [
        ("01_tcp_ar", a, "s001", "t000", 250, "30ch", [
            ("eyem", 4.0, 7.0, frontal),
            ("musc", 15.0, 19.5, ("T3-T5", "T5-O1")),
            ("eyem_chew", 30.0, 34.0, ("FP1-F7", "FP2-F8", "F7-T3", "F8-T4")),
            ("elec", 47.0, 48.0, ("P3-O1",)),
        ], []),
        ("01_tcp_ar", a, "s001", "t001", 256, "36ch", [
            ("eyem_shiv", 8.0, 12.0, ("FP1-F7", "FP1-F3")),
            ("chew_musc", 22.0, 27.0, ("F7-T3", "T3-T5", "F8-T4", "T4-T6")),
            ("shiv_elec", 40.0, 42.0, ("C3-CZ", "CZ-C4")),
        ], []),
        ("02_tcp_le", b, "s002", "t001", 256, "32ch", [
            ("chew", 10.0, 16.0, ("F7-T3", "F8-T4", "T3-T5", "T4-T6")),
            ("shiv", 25.0, 28.0, ("C3-CZ", "CZ-C4")),
            ("musc_elec", 40.0, 43.0, ("T4-T6", "T6-O2")),
        ], []),
        ("03_tcp_ar_a", c, "s001", "t000", 250, "30ch", [
            ("eyem_musc", 8.0, 11.0, ("FP1-F7", "FP1-F3")),
            ("chew_elec", 52.0, 55.0, ("T3-T5", "T5-O1")),
        ], [
            ("fnsz", 30.0, 48.0, ("T4-T6", "T6-O2", "C4-P4", "P4-O2")),
        ]),
    ]  # fmt: skip
    specs = []
    for montage, subject, session, token, fs, config, marks, seizure_marks in rows:
        name = f"{subject}_{session}_{token}"
        folder = f"edf/{montage}"
        duration = f"{_TUAR_DURATION_S:.4f}"
        events = _artifacts(rng, marks)
        annotations = {f"{folder}/{name}.csv": _tuar_csv(name, duration, events)}
        if seizure_marks:
            seizure_events = _artifacts(rng, seizure_marks)
            annotations[f"{folder}/{name}_seiz.csv"] = _tuar_csv(name, duration, seizure_events)
            events += seizure_events
        specs.append(
            _Spec(
                relpath=f"{folder}/{name}.edf",
                subset="tuar",
                subject=subject,
                session=session,
                token=token,
                split=None,
                **_montage(montage),
                fs_hz=fs,
                duration_s=_TUAR_DURATION_S,
                configuration=config,
                start=_start(rng),
                sex=int(rng.integers(0, 2)),
                events=events,
                annotations=annotations,
            )
        )
    return _write(root, "tuar", "v3", specs, seed, 40)
