"""Miniature, format-exact replica of the TUH Abnormal EEG corpus (TUAB v3), written with pyedflib.
Used by `biosig demo` and the tests; layout facts follow LAYOUTS.md section 1 (docs/replicas.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyedflib

from biosig_ingest.samples._signals import (
    colored_noise,
    ecg_12lead,
    eeg_background,
    quantize,
)

# The 21 electrodes of TUH REF/LE files in the order of the most common TUAB configuration
# (LAYOUTS 1.3), upper-case old 10-20 names; T1/T2 come later in real files.
ELECTRODES = (
    "FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2",
    "F7", "F8", "T3", "T4", "T5", "T6", "A1", "A2", "FZ", "CZ", "PZ",
)  # fmt: skip

# Real TUAB channel configurations (LAYOUTS 1.3 [S33]), written here with the -REF suffix.
_EEG21 = tuple(f"EEG {e}-REF" for e in ELECTRODES)
_TAIL = ("EEG T1-REF", "EEG T2-REF", "PHOTIC-REF", "IBI", "BURSTS", "SUPPR")
CONFIGURATIONS: dict[str, tuple[str, ...]] = {
    "36ch": _EEG21
    + ("EEG ROC-REF", "EEG LOC-REF", "EEG EKG1-REF", "EMG-REF")
    + tuple(f"EEG {n}-REF" for n in range(26, 31))
    + _TAIL,
    "30ch": _EEG21 + ("EEG ROC-REF", "EEG LOC-REF", "EEG EKG1-REF") + _TAIL,
    "32ch": _EEG21
    + ("EEG EKG-REF", "EEG SP1-REF", "EEG SP2-REF", "EEG LUC-REF", "EEG RLC-REF")
    + ("EEG RESP1-REF", "EEG RESP2-REF", "EEG 31-REF", "EEG 32-REF", "EEG T1-REF", "EEG T2-REF"),
}

# Sentinels written into every EDF patient field; a store built from the replica must not hold them.
PATIENT_NAME = "SENTINEL^JANE"
_BIRTHDATE = date(1961, 1, 1)
BIRTHDATE = "01-JAN-1961"  # as edflib spells _BIRTHDATE in the header

EEG_PHYSICAL_RANGE_UV = (-3000.0, 3000.0)
DIGITAL_RANGE = (-32768, 32767)

_GROUPS = (("train", "normal"), ("train", "abnormal"), ("eval", "normal"), ("eval", "abnormal"))
_RATES_HZ = (256, 250, 512)


@dataclass(frozen=True)
class InjectedSine:
    """The test tone added to one electrode of every valid replica file."""

    channel: str  # canonical electrode name
    start_s: float
    duration_s: float
    freq_hz: float
    amplitude_uv: float  # peak

    def at(self, t_s: np.ndarray) -> np.ndarray:
        """The tone in uV at times `t_s` (seconds from the file start); zero outside the burst."""
        inside = (t_s >= self.start_s) & (t_s < self.start_s + self.duration_s)
        tone = self.amplitude_uv * np.sin(2 * np.pi * self.freq_hz * (t_s - self.start_s))
        return np.where(inside, tone, 0.0)


SINE = InjectedSine(channel="Cz", start_s=20.0, duration_s=5.0, freq_hz=7.0, amplitude_uv=150.0)


@dataclass(frozen=True)
class ReplicaEdf:
    """One EDF file of the replica and what was put into it."""

    path: Path
    relpath: str  # posix, relative to the replica root
    subject: str
    session: str
    token: str
    split: str  # train | eval
    label: str  # normal | abnormal
    fs_hz: float  # rate of the EEG channels
    reference: str  # REF | LE
    channel_labels: tuple[str, ...]  # EDF labels in file order
    duration_s: float  # as declared by the header
    broken: str | None  # None for a good file, else what is wrong ("truncated")


@dataclass(frozen=True)
class TuabReplica:
    root: Path
    files: tuple[ReplicaEdf, ...]
    sine: InjectedSine
    patient_name: str
    birthdate: str

    @property
    def good_files(self) -> tuple[ReplicaEdf, ...]:
        return tuple(f for f in self.files if f.broken is None)


@dataclass(frozen=True)
class _Plan:
    split: str
    label: str
    subject: str
    session: str
    token: str
    fs_hz: int
    reference: str
    configuration: str
    mixed_rates: bool
    sex: int  # edflib's coding: 1 male, 0 female
    broken: str | None = None


def subject_id(number: int) -> str:
    """TUH v2 subject id: `number` in base 26 written with a-z, 8 letters (21 -> 'aaaaaaav')."""
    letters = []
    for _ in range(8):
        number, digit = divmod(number, 26)
        letters.append(chr(ord("a") + digit))
    if number:
        raise ValueError("subject number too large for 8 letters")
    return "".join(reversed(letters))


def _plan_files(n_per_group: int, rng: np.random.Generator, broken: bool) -> list[_Plan]:
    n_good = 4 * n_per_group
    # Small numbers give ids like the real ones ('aaaaaaav', 'aaaaaqvx').
    numbers = rng.choice(26**4, size=n_good + 1, replace=False)
    subjects = [subject_id(int(n)) for n in numbers]
    plans: list[_Plan] = []
    k = 0
    for g, (split, label) in enumerate(_GROUPS):
        for i in range(n_per_group):
            subject = subjects[k]
            session = int(rng.integers(1, 10))
            sex = int(rng.integers(0, 2))
            if (g, i) == (1, 0):
                # One train subject has a normal and a later abnormal session, as in TUAB
                # (2,130 train sessions from 2,076 patients): splits must go by subject.
                subject = plans[0].subject
                session = int(plans[0].session[1:]) + 1 + int(rng.integers(0, 3))
                sex = plans[0].sex
            token = f"t{int(rng.choice([0, 0, 0, 1, 2])):03d}"
            mixed = (g, i) == (2, 0)
            plans.append(
                _Plan(
                    split=split,
                    label=label,
                    subject=subject,
                    session=f"s{session:03d}",
                    token=token,
                    fs_hz=_RATES_HZ[k % 3],
                    # The last file of train/abnormal and of eval/abnormal uses linked-ear labels.
                    reference="LE" if g in (1, 3) and i == n_per_group - 1 else "REF",
                    configuration="36ch" if mixed else ("30ch", "36ch", "32ch")[k % 3],
                    mixed_rates=mixed,
                    sex=sex,
                )
            )
            k += 1
    if broken:
        plans.append(
            _Plan(
                split="train",
                label="normal",
                subject=subjects[n_good],
                session="s001",
                token="t000",
                fs_hz=256,
                reference="REF",
                configuration="30ch",
                mixed_rates=False,
                sex=int(rng.integers(0, 2)),
                broken="truncated",
            )
        )
    return plans


def _stem(label: str) -> str:
    """'EEG FP1-REF' -> 'FP1', 'PHOTIC-REF' -> 'PHOTIC', 'IBI' -> 'IBI'."""
    stem = label.removeprefix("EEG ")
    for suffix in ("-REF", "-LE"):
        stem = stem.removesuffix(suffix)
    return stem


def _with_reference(label: str, reference: str) -> str:
    return label[: -len("-REF")] + f"-{reference}" if label.endswith("-REF") else label


def _channel_rate(stem: str, fs_hz: int, mixed_rates: bool) -> int:
    if mixed_rates and stem == "PHOTIC":
        return fs_hz // 2
    if mixed_rates and stem in ("IBI", "BURSTS", "SUPPR"):
        return 1  # one sample per 1-s record
    return fs_hz


def _non_eeg(
    stem: str, n: int, fs_hz: int, duration_s: float, rng: np.random.Generator
) -> np.ndarray:
    """Physical signal of a non-EEG channel: EOG, ECG, EMG, respiration, photic, trends, unused."""
    t = np.arange(n) / fs_hz
    if stem in ("ROC", "LOC", "LUC", "RLC"):
        return 40.0 * colored_noise(rng, 1, n, fs_hz, exponent=2.0, f_min_hz=0.1)[0]
    if stem in ("EKG", "EKG1"):
        return 1000.0 * ecg_12lead(rng, n, fs_hz, heart_rate_bpm=rng.uniform(60, 90))[:, 1]
    if stem == "EMG":
        return 10.0 * rng.standard_normal(n)
    if stem.startswith("RESP"):
        return 150.0 * np.sin(2 * np.pi * 0.25 * t + rng.uniform(0, 6.3)) + rng.standard_normal(n)
    if stem == "PHOTIC":
        # A 3 Hz flash train late in the file, away from the 7 Hz test tone.
        on = (t >= 35.0) & (t < min(45.0, duration_s)) & ((t * 3.0) % 1.0 < 0.05)
        return np.where(on, 500.0, 0.0)
    if stem in ("IBI", "BURSTS", "SUPPR"):
        return np.zeros(n)
    return 2.0 * rng.standard_normal(n)  # unused inputs ("EEG 26-REF"): amplifier noise


def _render(
    plan: _Plan, duration_s: float, rng: np.random.Generator, sine: InjectedSine | None
) -> tuple[list[dict], list[np.ndarray]]:
    """Headers and digital samples of one file, channels shuffled (seeded)."""
    labels = [_with_reference(lab, plan.reference) for lab in CONFIGURATIONS[plan.configuration]]
    stems = [_stem(lab) for lab in labels]
    eeg_names = [s for s in stems if s in ELECTRODES or s in ("T1", "T2", "SP1", "SP2")]
    n_eeg = int(round(duration_s * plan.fs_hz))
    eeg = dict(zip(eeg_names, eeg_background(rng, eeg_names, n_eeg, plan.fs_hz), strict=True))
    if sine is not None:
        eeg["CZ"] = eeg["CZ"] + sine.at(np.arange(n_eeg) / plan.fs_hz)

    return _channels(labels, stems, eeg, plan.fs_hz, plan.mixed_rates, duration_s, rng)


def _channels(
    labels: list[str],
    stems: list[str],
    eeg: dict[str, np.ndarray],
    fs_hz: int,
    mixed_rates: bool,
    duration_s: float,
    rng: np.random.Generator,
) -> tuple[list[dict], list[np.ndarray]]:
    """EDF signal headers and digital samples of a TUH file (EEG from ``eeg``, the other channels
    synthesized), in a seeded shuffled order: shared by the TUAB and TUH-family replicas."""
    headers, samples = [], []
    for label, stem in zip(labels, stems, strict=True):
        rate = _channel_rate(stem, fs_hz, mixed_rates)
        n = int(round(duration_s * rate))
        trend = stem in ("IBI", "BURSTS", "SUPPR")
        phys_min, phys_max = (-32768.0, 32767.0) if trend else EEG_PHYSICAL_RANGE_UV
        signal = eeg[stem] if stem in eeg else _non_eeg(stem, n, rate, duration_s, rng)
        headers.append(
            {
                "label": label,
                "dimension": "" if trend else "uV",
                "sample_frequency": rate,
                "physical_min": phys_min,
                "physical_max": phys_max,
                "digital_min": DIGITAL_RANGE[0],
                "digital_max": DIGITAL_RANGE[1],
                "transducer": "",
                "prefilter": "",
            }
        )
        samples.append(quantize(signal, phys_min, phys_max, *DIGITAL_RANGE))
    order = rng.permutation(len(labels))
    return [headers[i] for i in order], [samples[i] for i in order]


def _write_edf(
    path: Path,
    plan: _Plan,
    headers: list[dict],
    samples: list[np.ndarray],
    rng: np.random.Generator,
) -> None:
    start = datetime(
        int(rng.integers(2002, 2017)),
        int(rng.integers(1, 13)),
        int(rng.integers(1, 29)),
        int(rng.integers(8, 18)),
        int(rng.integers(0, 60)),
        int(rng.integers(0, 60)),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # Plain EDF (not EDF+): no annotation signal, yet edflib still fills the patient field in
    # the EDF+ order "<code> <sex> <birthdate> <name> <additional>", the shape of TUH headers.
    writer = pyedflib.EdfWriter(str(path), len(headers), file_type=pyedflib.FILETYPE_EDF)
    try:
        writer.setSignalHeaders(headers)
        writer.setPatientCode(plan.subject)
        writer.setSex(plan.sex)
        writer.setBirthdate(_BIRTHDATE)
        writer.setPatientName(PATIENT_NAME)
        writer.setPatientAdditional(f"Age:{start.year - _BIRTHDATE.year}")
        writer.setStartdatetime(start)
        writer.writeSamples(samples, digital=True)
    finally:
        writer.close()


def _truncate_mid_record(path: Path, headers: list[dict], n_records: int) -> None:
    """Cut the file inside a data record, leaving the declared record count unchanged."""
    header_bytes = 256 * (len(headers) + 1)
    record_bytes = 2 * sum(int(h["sample_frequency"]) for h in headers)
    os.truncate(path, header_bytes + (n_records // 2) * record_bytes + record_bytes // 2 + 1)


def write_tuab_replica(
    root: Path,
    *,
    n_per_group: int = 2,
    duration_s: float = 60.0,
    seed: int = 0,
    broken: bool = True,
) -> TuabReplica:
    """Write a TUAB v3 tree under `root`: edf/{train,eval}/{normal,abnormal}/01_tcp_ar/*.edf.

    `n_per_group` valid files per (split, label); with `broken`, one extra truncated EDF in
    edf/train/normal/01_tcp_ar. Every valid file carries `SINE` on its CZ channel. Same seed,
    same bytes. Which file has which quirk is listed in docs/replicas.md.
    """
    if n_per_group < 1:
        raise ValueError("n_per_group must be at least 1")
    if not float(duration_s).is_integer():
        raise ValueError("duration_s must be a whole number of 1-s EDF records")
    if duration_s < SINE.start_s + SINE.duration_s:
        raise ValueError(
            f"duration_s must cover the test tone (>= {SINE.start_s + SINE.duration_s} s)"
        )
    root = Path(root)
    plans = _plan_files(n_per_group, np.random.default_rng([seed, 0]), broken)
    files = []
    for k, plan in enumerate(plans):
        # One random stream per file, so that a file can be regenerated on its own.
        rng = np.random.default_rng([seed, 1, k])
        relpath = (
            f"edf/{plan.split}/{plan.label}/01_tcp_ar/"
            f"{plan.subject}_{plan.session}_{plan.token}.edf"
        )
        path = root / relpath
        headers, samples = _render(plan, duration_s, rng, None if plan.broken else SINE)
        _write_edf(path, plan, headers, samples, rng)
        if plan.broken == "truncated":
            _truncate_mid_record(path, headers, int(duration_s))
        files.append(
            ReplicaEdf(
                path=path,
                relpath=relpath,
                subject=plan.subject,
                session=plan.session,
                token=plan.token,
                split=plan.split,
                label=plan.label,
                fs_hz=float(plan.fs_hz),
                reference=plan.reference,
                channel_labels=tuple(h["label"] for h in headers),
                duration_s=float(duration_s),
                broken=plan.broken,
            )
        )
    return TuabReplica(
        root=root, files=tuple(files), sine=SINE, patient_name=PATIENT_NAME, birthdate=BIRTHDATE
    )


# --- Long TUAB-shaped files for benchmarks ------------------------------------------------------

TUAB_LIKE_ELECTRODES = ELECTRODES + ("T1", "T2")  # LaBraM's 23-channel TUAB set (LAYOUTS 1.7)
_POOL_BLOCKS = 4


def tuab_like_labels(n_channels: int = 23) -> tuple[str, ...]:
    """EDF labels of `write_tuab_like_edf`: the 23 TUAB electrodes, then unused 'EEG <n>-REF'."""
    names = list(TUAB_LIKE_ELECTRODES[:n_channels])
    names += [str(24 + i) for i in range(n_channels - len(names))]
    return tuple(f"EEG {n}-REF" for n in names)


def _block_records(block_s: float) -> int:
    if not float(block_s).is_integer() or block_s < 1:
        raise ValueError("block_s must be a whole number of 1-s records")
    return int(block_s)


def _tuab_like_pool(fs_hz: int, n_channels: int, seed: int, block_s: float) -> np.ndarray:
    """int16 samples of `_POOL_BLOCKS` consecutive blocks, laid out (block, record, channel, sample)."""
    records = _block_records(block_s)
    n = _POOL_BLOCKS * records * fs_hz
    rng = np.random.default_rng([seed, 2])
    names = [_stem(lab) for lab in tuab_like_labels(n_channels)]
    uv = eeg_background(rng, names, n, fs_hz)  # FFT-made, so the pool wraps around smoothly
    digital = quantize(uv, *EEG_PHYSICAL_RANGE_UV, *DIGITAL_RANGE).astype("<i2")
    return np.ascontiguousarray(
        digital.reshape(n_channels, _POOL_BLOCKS, records, fs_hz).transpose(1, 2, 0, 3)
    )


def _block_offset(block_index: int) -> np.int16:
    # A few counts of DC step per block, so that no two blocks of a long file are identical.
    return np.int16((block_index * 7919) % 41 - 20)


def tuab_like_block(
    block_index: int,
    *,
    fs_hz: int = 256,
    n_channels: int = 23,
    seed: int = 0,
    block_s: float = 60.0,
) -> np.ndarray:
    """Digital samples (channels, block_s * fs_hz) that block `block_index` of a
    `write_tuab_like_edf` file holds (the last block of a file may be cut short)."""
    pool = _tuab_like_pool(fs_hz, n_channels, seed, block_s)
    block = pool[block_index % _POOL_BLOCKS] + _block_offset(block_index)
    return block.transpose(1, 0, 2).reshape(n_channels, -1)


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def edf_date(day: date) -> str:
    """EDF+ date spelling, '01-JAN-1961', independent of the locale."""
    return f"{day.day:02d}-{_MONTHS[day.month - 1]}-{day.year}"


def _ascii_field(value: object, width: int) -> bytes:
    text = str(value)
    if len(text) > width or not text.isascii():
        raise ValueError(f"EDF header field {text!r} does not fit {width} ASCII characters")
    return text.ljust(width).encode("ascii")


def _edf_header(
    labels: tuple[str, ...], fs_hz: int, n_records: int, patient: str, start: datetime
) -> bytes:
    """EDF (1992) header: 256 bytes, then 256 bytes per signal, field by field (1-s records)."""
    ns = len(labels)
    phys_min, phys_max = (f"{v:g}" for v in EEG_PHYSICAL_RANGE_UV)
    fixed = b"".join(
        [
            _ascii_field("0", 8),
            _ascii_field(patient, 80),
            _ascii_field(f"Startdate {edf_date(start)} X X X", 80),
            _ascii_field(f"{start:%d.%m.%y}", 8),
            _ascii_field(f"{start:%H.%M.%S}", 8),
            _ascii_field(256 * (ns + 1), 8),
            _ascii_field("", 44),  # reserved: empty for plain EDF
            _ascii_field(n_records, 8),
            _ascii_field(1, 8),  # duration of a data record, s
            _ascii_field(ns, 4),
        ]
    )
    per_signal = [
        (16, labels),
        (80, [""] * ns),  # transducer
        (8, ["uV"] * ns),
        (8, [phys_min] * ns),
        (8, [phys_max] * ns),
        (8, [DIGITAL_RANGE[0]] * ns),
        (8, [DIGITAL_RANGE[1]] * ns),
        (80, [""] * ns),  # prefiltering
        (8, [fs_hz] * ns),  # samples per record
        (32, [""] * ns),  # reserved
    ]
    # The spec stores each field for all signals before the next field.
    signals = b"".join(_ascii_field(v, width) for width, values in per_signal for v in values)
    return fixed + signals


def write_tuab_like_edf(
    path: Path,
    *,
    duration_s: float,
    fs_hz: int = 256,
    n_channels: int = 23,
    seed: int = 0,
    block_s: float = 60.0,
) -> Path:
    """One long EDF shaped like a TUAB file (labels 'EEG <E>-REF', 1-s records, 16-bit samples).

    Written block by block in bounded memory (a pool of 4 blocks of `block_s` seconds, cycled,
    each with its own small DC step; see `tuab_like_block`), so 24 h take seconds. The duration
    is rounded up to whole records. The file appears under `path` only once complete.
    """
    path = Path(path)
    records_per_block = _block_records(block_s)
    n_records = int(np.ceil(duration_s))
    if n_records < 1:
        raise ValueError("duration_s must be positive")
    labels = tuab_like_labels(n_channels)
    subject = path.stem.split("_")[0] or "X"
    header = _edf_header(
        labels,
        fs_hz,
        n_records,
        f"{subject} M 01-JAN-1978 {subject} Age:37",
        datetime(2015, 1, 1, 9, 0, 0),
    )
    pool = _tuab_like_pool(fs_hz, n_channels, seed, block_s)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    with open(partial, "wb") as f:
        f.write(header)
        for k, first in enumerate(range(0, n_records, records_per_block)):
            n = min(records_per_block, n_records - first)
            f.write((pool[k % _POOL_BLOCKS, :n] + _block_offset(k)).astype("<i2").tobytes())
    os.replace(partial, path)
    return path
