"""Miniature, format-exact replica of DEAP's preprocessed Python release (``data_preprocessed_python/sNN.dat``).
The pickles are written opcode by opcode as Python 2's pickler writes protocol 2; LAYOUTS.md section 3."""

from __future__ import annotations

import csv
import io
import shlex
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from biosig_ingest.samples._signals import colored_noise, eeg_background

FS_HZ = 128.0
BASELINE_S = 3
# Rows 1-32: EEG in Geneva order; rows 33-40: peripheral channels (LAYOUTS 3.2).
EEG_CHANNELS = (
    "Fp1", "AF3", "F3", "F7", "FC5", "FC1", "C3", "T7", "CP5", "CP1", "P3", "P7", "PO3", "O1", "Oz", "Pz",
    "Fp2", "AF4", "Fz", "F4", "F8", "FC6", "FC2", "Cz", "C4", "T8", "CP6", "CP2", "P4", "P8", "PO4", "O2",
)  # fmt: skip
PERIPHERAL_CHANNELS = ("hEOG", "vEOG", "zEMG", "tEMG", "GSR", "Respiration belt", "Plethysmograph", "Temperature")
RATINGS_COLUMNS = (
    "Participant_id", "Trial", "Experiment_id", "Start_time", "Valence", "Arousal", "Dominance", "Liking", "Familiarity",
)  # fmt: skip
NO_FAMILIARITY = (2, 15, 23)  # participants without familiarity ratings (LAYOUTS 3.4)
MARKER_NAME = "MALICIOUS_PICKLE_RAN"


@dataclass(frozen=True)
class ReplicaDat:
    """One ``sNN.dat`` of the replica and what was put into it."""

    path: Path
    relpath: str
    subject: str  # "s01"
    participant: int  # 1
    n_trials: int
    trial_samples: int  # per trial, the 3 s baseline included
    ratings: tuple[tuple[float, ...], ...]  # (valence, arousal, dominance, liking) per trial
    familiarity: tuple[float | None, ...]  # per trial (video), as in participant_ratings.csv
    malicious: bool  # a pickle that calls os.system instead of holding arrays

    def recording_id(self, trial: int) -> str:
        return f"{self.subject}_t{trial:02d}"


@dataclass(frozen=True)
class DeapReplica:
    root: Path  # what --source takes
    files: tuple[ReplicaDat, ...]
    marker: Path  # the malicious pickle's command creates this file: it must never exist
    ratings_csv: Path
    fs_hz: float
    baseline_s: int
    eeg_channels: tuple[str, ...]
    peripheral_channels: tuple[str, ...]

    @property
    def good_files(self) -> tuple[ReplicaDat, ...]:
        return tuple(f for f in self.files if not f.malicious)


@dataclass(frozen=True)
class _Global:
    """A module-level name as a pickle refers to it (GLOBAL opcode)."""

    module: str
    name: str


class Py2Pickler:
    """Writes pickle protocol 2 as Python 2.7's pickler did, for what DEAP's files hold.

    Python 2 ``str`` is bytes: it goes out as SHORT_BINSTRING/BINSTRING, which Python 3 reads
    back only with an ``encoding``, and array payloads are not ASCII, hence ``encoding='latin1'``.
    Arrays are reduced the numpy-1.x way: ``_reconstruct(ndarray, (0,), 'b')`` and then the state
    ``(1, shape, dtype, is_fortran, raw bytes)``; dtypes as ``dtype('f8', 0, 1)`` plus state.
    """

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.memo: dict[object, int] = {}  # what can be fetched back with BINGET
        self.n_put = 0

    def dumps(self, obj: object) -> bytes:
        self.out.write(b"\x80\x02")  # PROTO 2
        self.save(obj)
        self.out.write(b".")  # STOP
        return self.out.getvalue()

    def _put(self, key: object | None = None) -> None:
        index, self.n_put = self.n_put, self.n_put + 1
        if key is not None:
            self.memo[key] = index
        self.out.write(b"q" + bytes([index]) if index < 256 else b"r" + struct.pack("<I", index))  # BINPUT

    def _get(self, key: object) -> bool:
        index = self.memo.get(key)
        if index is None:
            return False
        self.out.write(b"h" + bytes([index]) if index < 256 else b"j" + struct.pack("<I", index))  # BINGET
        return True

    def save(self, obj: object) -> None:
        w = self.out.write
        if obj is None:
            w(b"N")
        elif obj is True or obj is False:
            w(b"\x88" if obj else b"\x89")  # NEWTRUE / NEWFALSE
        elif isinstance(obj, int):
            if 0 <= obj <= 0xFF:
                w(b"K" + bytes([obj]))  # BININT1
            elif 0 <= obj <= 0xFFFF:
                w(b"M" + struct.pack("<H", obj))  # BININT2
            else:
                w(b"J" + struct.pack("<i", obj))  # BININT
        elif isinstance(obj, (bytes, str)):
            self._save_str(obj.encode("latin-1") if isinstance(obj, str) else obj)
        elif isinstance(obj, tuple):
            self._save_tuple(obj)
        elif isinstance(obj, dict):
            w(b"}")  # EMPTY_DICT
            self._put()
            if len(obj) == 1:
                ((key, value),) = obj.items()
                self.save(key)
                self.save(value)
                w(b"s")  # SETITEM
            elif obj:
                w(b"(")  # MARK
                for key, value in obj.items():
                    self.save(key)
                    self.save(value)
                w(b"u")  # SETITEMS
        elif isinstance(obj, _Global):
            if not self._get(obj):
                w(b"c" + f"{obj.module}\n{obj.name}\n".encode("ascii"))  # GLOBAL
                self._put(obj)
        elif isinstance(obj, np.dtype):
            if not self._get(("dtype", obj.str)):
                order = "<" if obj.byteorder in "=<" else obj.byteorder
                self.save_reduce(
                    _Global("numpy", "dtype"), (f"{obj.kind}{obj.itemsize}", 0, 1), ("dtype", obj.str),
                    state=(3, order, None, None, None, -1, -1, 0),
                )
        elif isinstance(obj, np.ndarray):
            arr = np.ascontiguousarray(obj, dtype=obj.dtype.newbyteorder("<"))
            self.save_reduce(
                _Global("numpy.core.multiarray", "_reconstruct"), (_Global("numpy", "ndarray"), (0,), b"b"), None,
                state=(1, arr.shape, arr.dtype, False, arr.tobytes()),
            )
        else:
            raise TypeError(f"Py2Pickler cannot write {type(obj).__name__}")

    def save_reduce(self, func: _Global, args: tuple, key: object | None, state: object = None) -> None:
        """``func(*args)``, then ``__setstate__(state)`` if a state is given (REDUCE, BUILD)."""
        self.save(func)
        self.save(args)
        self.out.write(b"R")  # REDUCE
        self._put(key)
        if state is not None:
            self.save(state)
            self.out.write(b"b")  # BUILD

    def _save_str(self, data: bytes) -> None:
        if self._get(("str", data)):
            return
        if len(data) < 256:
            self.out.write(b"U" + bytes([len(data)]) + data)  # SHORT_BINSTRING
        else:
            self.out.write(b"T" + struct.pack("<i", len(data)) + data)  # BINSTRING
        self._put(("str", data))

    def _save_tuple(self, items: tuple) -> None:
        if not items:
            self.out.write(b")")  # EMPTY_TUPLE
            return
        if len(items) <= 3:
            for item in items:
                self.save(item)
            self.out.write({1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(items)])  # TUPLE1-3
        else:
            self.out.write(b"(")  # MARK
            for item in items:
                self.save(item)
            self.out.write(b"t")  # TUPLE
        self._put()


def py2_pickle(obj: object) -> bytes:
    """``obj`` (dicts, tuples, str, int, numpy arrays) as Python 2.7 pickles it at protocol 2."""
    return Py2Pickler().dumps(obj)


def malicious_pickle(command: str, labels: np.ndarray) -> bytes:
    """A DEAP-shaped pickle whose 'data' is ``os.system(command)``: loading it normally runs the command."""
    p = Py2Pickler()
    p.out.write(b"\x80\x02}")
    p._put()
    p.out.write(b"(")
    p.save(b"labels")
    p.save(labels)  # a genuine array first: the unpickler is mid-file when it meets the call
    p.save(b"data")
    p.save_reduce(_Global("os", "system"), (command,), None)
    p.out.write(b"u.")
    return p.out.getvalue()


def _peripheral(rng: np.random.Generator, n: int) -> np.ndarray:
    """Rows 33-40: EOG and EMG in uV, then GSR, respiration, plethysmograph, temperature (arbitrary units)."""
    t = np.arange(n) / FS_HZ
    heart_hz = rng.uniform(1.0, 1.4)
    pulse = np.maximum(0.0, np.sin(2 * np.pi * heart_hz * t)) ** 3
    return np.stack(
        [
            60.0 * colored_noise(rng, 1, n, FS_HZ, exponent=2.0, f_min_hz=0.1)[0],  # hEOG
            80.0 * colored_noise(rng, 1, n, FS_HZ, exponent=2.0, f_min_hz=0.1)[0],  # vEOG
            8.0 * rng.standard_normal(n),  # zEMG
            12.0 * rng.standard_normal(n),  # tEMG
            rng.uniform(800, 1500) + 30.0 * np.cumsum(rng.standard_normal(n)) / np.sqrt(n),  # GSR
            400.0 * np.sin(2 * np.pi * rng.uniform(0.2, 0.3) * t + rng.uniform(0, 6.3)),  # respiration belt
            1000.0 * pulse + 5.0 * rng.standard_normal(n),  # plethysmograph
            rng.uniform(30.0, 34.0) + 0.01 * t,  # temperature
        ]
    )


def _ratings(rng: np.random.Generator, n_trials: int) -> np.ndarray:
    """Continuous 1-9 ratings; trial 1 sits exactly on 5.0 and trial 2 just below, to pin the `>=` rule."""
    r = np.round(rng.uniform(1.0, 9.0, size=(n_trials, 4)), 2)
    r[0] = 5.0
    if n_trials > 1:
        r[1] = 4.99
    return r


def write_deap_replica(
    root: Path,
    *,
    n_subjects: int = 5,
    n_trials: int = 40,
    trial_s: int = 5,
    malicious: bool = True,
    seed: int = 0,
) -> DeapReplica:
    """Write a DEAP tree under ``root``: ``data_preprocessed_python/sNN.dat`` and ``metadata_csv/participant_ratings.csv``.

    Participants 1..n_subjects, each a Python-2-style protocol-2 pickle of
    ``{'labels': (n_trials, 4), 'data': (n_trials, 40, (3 + trial_s) * 128)}`` float64 (the real
    trials last 60 s after the 3 s baseline; 5 s here keeps the files small). Each EEG channel
    carries a per-trial DC offset, so baseline correction is visible. With ``malicious``, one
    more ``sNN.dat`` whose pickle calls ``os.system('touch <root>/MALICIOUS_PICKLE_RAN')``.
    Participant 2 has no familiarity ratings, as in the real file. Same seed and root, same bytes
    (the malicious file names its marker under ``root``).
    """
    if n_subjects < 1 or n_trials < 2 or trial_s < 1:
        raise ValueError("need n_subjects >= 1, n_trials >= 2 and trial_s >= 1")
    root = Path(root)
    folder = root / "data_preprocessed_python"
    folder.mkdir(parents=True, exist_ok=True)
    n = int((BASELINE_S + trial_s) * FS_HZ)
    marker = root / MARKER_NAME
    files: list[ReplicaDat] = []
    rows: list[list[Any]] = []
    for participant in range(1, n_subjects + 1 + int(malicious)):
        rng = np.random.default_rng([seed, participant])
        subject = f"s{participant:02d}"
        rel = f"data_preprocessed_python/{subject}.dat"
        ratings = _ratings(rng, n_trials)
        bad = malicious and participant == n_subjects + 1
        if bad:
            payload = malicious_pickle(f"touch {shlex.quote(str(marker))}", ratings)
        else:
            data = np.empty((n_trials, 40, n))
            for k in range(n_trials):
                offset = rng.uniform(-20.0, 20.0, size=(32, 1))
                data[k, :32] = eeg_background(rng, list(EEG_CHANNELS), n, FS_HZ) + offset
                data[k, 32:] = _peripheral(rng, n)
            payload = py2_pickle({"labels": ratings, "data": data})
        (root / rel).write_bytes(payload)
        familiarity = tuple(
            None if participant in NO_FAMILIARITY else float(rng.integers(1, 6)) for _ in range(n_trials)
        )
        # Presentation order differs from the video order of the .dat trials.
        order = rng.permutation(n_trials) + 1
        for video in range(1, n_trials + 1):
            v, a, d, li = ratings[video - 1]
            fam = familiarity[video - 1]
            rows.append(
                [participant, int(order[video - 1]), video, int(order[video - 1]) * 75_000_000,
                 f"{v:g}", f"{a:g}", f"{d:g}", f"{li:g}", "" if fam is None else f"{fam:g}"]
            )  # fmt: skip
        files.append(
            ReplicaDat(
                root / rel, rel, subject, participant, n_trials, n,
                tuple(tuple(float(x) for x in r) for r in ratings), familiarity, bad,
            )
        )
    ratings_csv = root / "metadata_csv" / "participant_ratings.csv"
    ratings_csv.parent.mkdir(parents=True, exist_ok=True)
    with open(ratings_csv, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(RATINGS_COLUMNS)
        rows.sort(key=lambda r: (r[0], r[1]))  # the real file lists trials in presentation order
        writer.writerows(rows)
    return DeapReplica(
        root, tuple(files), marker, ratings_csv, FS_HZ, BASELINE_S, EEG_CHANNELS, PERIPHERAL_CHANNELS
    )
