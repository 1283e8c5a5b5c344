"""Miniature, format-exact replica of MIMIC-IV-ECG v1.0 (WFDB records + record_list.csv +
machine_measurements.csv); headers and .dat bytes are written directly, fast enough for 20,000
records. Layout facts follow LAYOUTS.md section 5; the header is byte-identical to wfdb.wrsamp's."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from biosig_ingest.samples._signals import ECG_LEADS, ecg_12lead

FS_HZ = 500
N_SAMPLES = 5000  # 10 s
ADC_GAIN = 200.0  # ADU per mV, as in every MIMIC-IV-ECG header
INVALID = -32768  # WFDB's invalid-sample code for format 16; wfdb reads it as NaN

# File order of the leads (LAYOUTS 5.3): aVF before aVL, mixed case.
FILE_LEADS = ("I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6")

RECORD_LIST_COLUMNS = ("subject_id", "study_id", "file_name", "ecg_time", "path")
REPORT_COLUMNS = tuple(f"report_{i}" for i in range(18))
INTERVAL_COLUMNS = ("rr_interval", "p_onset", "p_end", "qrs_onset", "qrs_end", "t_end")  # ms
AXIS_COLUMNS = ("p_axis", "qrs_axis", "t_axis")  # degrees
MEASUREMENT_COLUMNS = (
    "subject_id", "study_id", "cart_id", "ecg_time", *REPORT_COLUMNS,
    "bandwidth", "filtering", *INTERVAL_COLUMNS, *AXIS_COLUMNS,
)  # fmt: skip


@dataclass(frozen=True)
class ReplicaStudy:
    """One row of record_list.csv, what its WFDB files hold, and what QC must find."""

    subject_id: int
    study_id: int
    ecg_time: str  # "2180-07-23 08:44:00", as in both CSV files
    path: str  # record_list.csv path, no extension: "files/p1000/p10000032/s40689238/40689238"
    files: str  # ok | missing (listed, no files) | no_dat (.hea only)
    nan_samples: Mapping[str, int] = field(default_factory=dict)  # lead -> samples written -32768
    flat_leads: tuple[str, ...] = ()  # leads written as one constant value
    derived_mismatch: tuple[str, ...] = ()  # derived leads whose samples break their identity
    measured: bool = True  # has a machine_measurements.csv row
    report: str | None = None  # the statements joined as the adapter joins them ("; ")
    measurements: Mapping[str, float | None] = field(default_factory=dict)  # interval/axis columns

    @property
    def nan_leads(self) -> tuple[str, ...]:
        return tuple(lead for lead in FILE_LEADS if self.nan_samples.get(lead))

    @property
    def all_nan_leads(self) -> tuple[str, ...]:
        """Leads whose every sample is invalid (zero-filled, these are flat as well)."""
        return tuple(lead for lead, k in self.nan_samples.items() if k >= N_SAMPLES)


@dataclass(frozen=True)
class MimicReplica:
    root: Path
    studies: tuple[ReplicaStudy, ...]

    @property
    def good_studies(self) -> tuple[ReplicaStudy, ...]:
        return tuple(s for s in self.studies if s.files == "ok")

    def study(self, study_id: int) -> ReplicaStudy:
        return next(s for s in self.studies if s.study_id == study_id)


@dataclass(frozen=True)
class _Finding:
    """A machine read-out: statements (blank = the separator rows the real file has) and rhythm."""

    statements: tuple[str, ...]
    heart_rate_bpm: tuple[float, float]
    qrs_axis_deg: float = 60.0
    irregular: bool = False  # no P waves: p_onset, p_end and p_axis are empty


_FINDINGS = (
    _Finding(("Sinus rhythm", "Normal ECG"), (60, 90)),
    _Finding(("Sinus rhythm", "Possible right atrial abnormality", "", "Borderline ECG"), (60, 95)),
    _Finding(("Sinus bradycardia", "Otherwise normal ECG"), (45, 58)),
    _Finding(("Sinus tachycardia", "", "Abnormal ECG"), (101, 130)),
    _Finding(("Atrial fibrillation", "Nonspecific T wave abnormalities", "Abnormal ECG"), (70, 120), irregular=True),
    _Finding(("Sinus rhythm", "Left axis deviation", "Borderline ECG"), (60, 85), qrs_axis_deg=-40.0),
    _Finding(("Sinus rhythm", "Right bundle branch block", "", "Abnormal ECG"), (60, 90)),
)

BANDWIDTH = "0.005-150 Hz"
FILTERING = "60 Hz notch Baseline filter"


def study_path(subject_id: int, study_id: int) -> str:
    """'files/p1000/p10000032/s40689238/40689238': group folder p + first 4 digits of the subject."""
    return f"files/p{str(subject_id)[:4]}/p{subject_id}/s{study_id}/{study_id}"


def header_text(study_id: int, digital: np.ndarray, recorded: datetime, subject_id: int) -> str:
    """The .hea text for ``digital`` (samples, 12) int16 in FILE_LEADS order, as MIMIC writes it.

    Checksums are the 16-bit sums of the written samples (invalid codes included), initial
    values the first samples, exactly as wfdb.wrsamp computes them.
    """
    checksums = digital.sum(axis=0, dtype=np.int64) % 65536
    lines = [f"{study_id} 12 {FS_HZ} {digital.shape[0]} {recorded:%H:%M:%S} {recorded:%d/%m/%Y}"]
    for j, lead in enumerate(FILE_LEADS):
        lines.append(
            f"{study_id}.dat 16 {ADC_GAIN:.1f}(0)/mV 16 0 {int(digital[0, j])} {int(checksums[j])} 0 {lead}"
        )
    lines.append(f"# <subject_id>: {subject_id}")
    return "\n".join(lines) + "\n"


def write_record(
    root: Path, subject_id: int, study_id: int, digital: np.ndarray, recorded: datetime
) -> str:
    """Write one record (.hea + .dat) under ``root``; returns its record_list.csv path."""
    rel = study_path(subject_id, study_id)
    folder = Path(root) / rel.rsplit("/", 1)[0]
    os.makedirs(folder, exist_ok=True)
    np.ascontiguousarray(digital, dtype="<i2").tofile(folder / f"{study_id}.dat")
    (folder / f"{study_id}.hea").write_text(
        header_text(study_id, digital, recorded, subject_id), encoding="ascii", newline="\n"
    )
    return rel


def digitize(signal_mv: np.ndarray) -> np.ndarray:
    """(samples, 12) mV in ECG_LEADS order -> int16 ADC codes in FILE_LEADS order (gain 200)."""
    column = [ECG_LEADS.index(name.upper()) for name in FILE_LEADS]
    # -32768 is reserved for invalid samples: valid data stop one code above it.
    return np.clip(np.rint(signal_mv[:, column] * ADC_GAIN), -32767, 32767).astype(np.int16)


def _pool(rng: np.random.Generator, size: int) -> list[tuple[_Finding, np.ndarray, float]]:
    """Base 10 s ECGs (mV, ECG_LEADS order) that records reuse shifted and scaled: writing
    20,000 records must not synthesise 20,000 heartbeats."""
    out = []
    for k in range(size):
        finding = _FINDINGS[k % len(_FINDINGS)]
        hr = float(rng.uniform(*finding.heart_rate_bpm))
        signal = ecg_12lead(
            rng,
            N_SAMPLES,
            FS_HZ,
            heart_rate_bpm=hr,
            qrs_axis_deg=finding.qrs_axis_deg + rng.uniform(-15, 15),
            rr_jitter=0.15 if finding.irregular else 0.03,
            p_waves=not finding.irregular,
        )
        out.append((finding, signal, hr))
    return out


def _measurements(finding: _Finding, hr: float, axis: float, rng: np.random.Generator) -> dict[str, float | None]:
    """Interval (ms) and axis (degrees) read-outs in the style of the real row (LAYOUTS 5.4)."""
    p_onset = int(rng.integers(30, 60))
    qrs_onset = p_onset + int(rng.integers(110, 170))
    qrs_end = qrs_onset + int(rng.integers(80, 110))
    values: dict[str, float | None] = {
        "rr_interval": float(round(60000 / hr)),
        "p_onset": float(p_onset),
        "p_end": float(p_onset + int(rng.integers(80, 120))),
        "qrs_onset": float(qrs_onset),
        "qrs_end": float(qrs_end),
        "t_end": float(qrs_end + int(rng.integers(220, 300))),
        "p_axis": float(int(rng.integers(20, 80))),
        "qrs_axis": float(round(axis)),
        "t_axis": float(int(rng.integers(10, 80))),
    }
    if finding.irregular:  # no P wave to measure: the cells are left empty
        values.update(p_onset=None, p_end=None, p_axis=None)
    return values


def _fmt(value: float | None) -> str:
    return "" if value is None else str(int(value))


def write_mimic_replica(
    root: Path, *, n_records: int = 40, seed: int = 0, broken: bool = True
) -> MimicReplica:
    """Write a MIMIC-IV-ECG tree under ``root``: files/pNNNN/pNNNNNNNN/sNNNNNNNN/NNNNNNNN.{hea,dat},
    record_list.csv, machine_measurements.csv and RECORDS.

    ``n_records`` studies with signal files (at least 8). With ``broken``: invalid (-32768)
    samples in some records (a block in II and V3; all of V4; the last second of every lead;
    plus about 1.3 % of the rest, the share in the real corpus), a constant lead in others (V5;
    plus about 0.25 %), one record with the aVL and aVF samples swapped under their names, one
    study without a machine_measurements row, and two more listed studies: one without files,
    one with its .hea only. The returned studies carry all of it. Same seed, same bytes.
    """
    if n_records < 8:
        raise ValueError("n_records must be at least 8 to carry every quirk")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 5])
    n_total = n_records + (2 if broken else 0)

    # About five studies per subject, as in the corpus (800,035 / 161,352), skewed like it.
    n_subjects = max(2, n_total // 5)
    subject_ids = rng.choice(np.arange(10_000_000, 20_000_000), size=n_subjects, replace=False)
    weights = rng.pareto(1.5, size=n_subjects) + 1.0
    owner = np.sort(rng.choice(n_subjects, size=n_total, p=weights / weights.sum()))
    study_ids = rng.choice(np.arange(40_000_000, 50_000_000), size=n_total, replace=False)
    # Shifted dates (2110-2210) at whole minutes; a subject's studies follow each other.
    first_day = {
        s: datetime(int(rng.integers(2110, 2210)), 1, 1) + timedelta(days=int(rng.integers(0, 365)))
        for s in range(n_subjects)
    }
    times, last = [], dict(first_day)
    for s in owner:
        last[s] += timedelta(days=int(rng.integers(0, 60)), minutes=int(rng.integers(1, 24 * 60)))
        times.append(last[s])

    pool = _pool(rng, 16)
    # Which index gets which quirk: fixed ones first (tests rely on each being present).
    order = rng.permutation(n_total)
    listed_only = {int(order[0]): "missing", int(order[1]): "no_dat"} if broken else {}
    fixed = [int(i) for i in order[2:8]] if broken else []
    quirk: dict[int, str] = dict(
        zip(fixed, ("nan_block", "nan_lead", "nan_tail", "flat", "swap", "unmeasured"), strict=False)
    )
    if broken:
        for i in map(int, order[8:]):
            u = rng.random()
            if u < 0.013:
                quirk[i] = "nan_random"
            elif u < 0.0155:
                quirk[i] = "flat_random"

    records, list_rows, meas_rows = [], [], []
    for i in range(n_total):
        subject_id, study_id = int(subject_ids[owner[i]]), int(study_ids[i])
        recorded = times[i]
        ecg_time = f"{recorded:%Y-%m-%d %H:%M:%S}"
        finding, base, hr = pool[int(rng.integers(len(pool)))]
        # A shift and a gain keep Einthoven's and Goldberger's identities exact before rounding.
        scale = float(rng.uniform(0.8, 1.25))
        signal = np.roll(base, int(rng.integers(N_SAMPLES)), axis=0) * scale
        digital = digitize(signal)
        files = listed_only.get(i, "ok")
        kind = quirk.get(i, "")
        nan_samples: dict[str, int] = {}
        flat: tuple[str, ...] = ()
        mismatch: tuple[str, ...] = ()
        col = {lead: j for j, lead in enumerate(FILE_LEADS)}
        if kind == "nan_block":
            digital[1200:1450, col["II"]] = INVALID
            digital[3000:3100, col["V3"]] = INVALID
            nan_samples = {"II": 250, "V3": 100}
        elif kind == "nan_lead":
            digital[:, col["V4"]] = INVALID
            nan_samples = {"V4": N_SAMPLES}
        elif kind == "nan_tail":
            digital[-FS_HZ:, :] = INVALID
            nan_samples = dict.fromkeys(FILE_LEADS, FS_HZ)
        elif kind == "nan_random":
            lead = FILE_LEADS[int(rng.integers(12))]
            start, length = int(rng.integers(0, N_SAMPLES - 500)), int(rng.integers(1, 500))
            digital[start : start + length, col[lead]] = INVALID
            nan_samples = {lead: length}
        elif kind in ("flat", "flat_random"):
            lead = "V5" if kind == "flat" else FILE_LEADS[int(rng.integers(6, 12))]
            digital[:, col[lead]] = 0 if kind == "flat" else int(rng.integers(-400, 400))
            flat = (lead,)
        elif kind == "swap":
            digital[:, [col["aVF"], col["aVL"]]] = digital[:, [col["aVL"], col["aVF"]]]
            mismatch = ("aVL", "aVF")
        rel = study_path(subject_id, study_id)
        if files != "missing":
            write_record(root, subject_id, study_id, digital, recorded)
            if files == "no_dat":
                (root / f"{rel}.dat").unlink()
        axis = finding.qrs_axis_deg
        measured = kind != "unmeasured"
        values = _measurements(finding, hr, axis, rng) if measured else {}
        statements = finding.statements
        report = "; ".join(s for s in statements if s) if measured else None
        list_rows.append([subject_id, study_id, study_id, ecg_time, rel])
        if measured:
            cells = list(statements) + [""] * (len(REPORT_COLUMNS) - len(statements))
            meas_rows.append(
                [subject_id, study_id, int(rng.integers(1_000_000, 9_999_999)), ecg_time, *cells,
                 BANDWIDTH, FILTERING, *(_fmt(values[c]) for c in (*INTERVAL_COLUMNS, *AXIS_COLUMNS))]
            )  # fmt: skip
        records.append(
            ReplicaStudy(
                subject_id=subject_id,
                study_id=study_id,
                ecg_time=ecg_time,
                path=rel,
                files=files,
                nan_samples=nan_samples,
                flat_leads=flat,
                derived_mismatch=mismatch,
                measured=measured,
                report=report,
                measurements=values,
            )
        )

    _write_csv(root / "record_list.csv", RECORD_LIST_COLUMNS, list_rows)
    _write_csv(root / "machine_measurements.csv", MEASUREMENT_COLUMNS, meas_rows)
    groups = sorted({s.path.split("/")[1] for s in records})
    (root / "RECORDS").write_text("".join(f"files/{g}/\n" for g in groups), encoding="ascii")
    return MimicReplica(root=root, studies=tuple(records))


def _write_csv(path: Path, header: Sequence[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
