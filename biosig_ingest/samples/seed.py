"""Miniature, format-exact replicas of SEED (``Preprocessed_EEG``) and SEED-IV (``eeg_raw_data``).
MAT v5 via scipy.io (compressed and not) and v7.3 via h5py in MATLAB's layout; LAYOUTS.md section 2."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from biosig_ingest.samples._signals import eeg_background

FS_HZ = 200.0

# The 62 rows of every trial array, as channel-order.xlsx names them (LAYOUTS 2.5).
CHANNELS = (
    "FP1", "FPZ", "FP2", "AF3", "AF4", "F7", "F5", "F3", "F1", "FZ", "F2", "F4", "F6", "F8",
    "FT7", "FC5", "FC3", "FC1", "FCZ", "FC2", "FC4", "FC6", "FT8", "T7", "C5", "C3", "C1", "CZ",
    "C2", "C4", "C6", "T8", "TP7", "CP5", "CP3", "CP1", "CPZ", "CP2", "CP4", "CP6", "TP8", "P7",
    "P5", "P3", "P1", "PZ", "P2", "P4", "P6", "P8", "PO7", "PO5", "PO3", "POZ", "PO4", "PO6",
    "PO8", "CB1", "O1", "OZ", "O2", "CB2",
)  # fmt: skip

# SEED file dates per subject, sessions 1-3 (LAYOUTS 2.2).
SEED_DATES = {
    "1": ("20131027", "20131030", "20131107"), "2": ("20140404", "20140413", "20140419"),
    "3": ("20140603", "20140611", "20140629"), "4": ("20140621", "20140702", "20140705"),
    "5": ("20140411", "20140418", "20140506"), "6": ("20130712", "20131016", "20131113"),
    "7": ("20131027", "20131030", "20131106"), "8": ("20140511", "20140514", "20140521"),
    "9": ("20140620", "20140627", "20140704"), "10": ("20131130", "20131204", "20131211"),
    "11": ("20140618", "20140625", "20140630"), "12": ("20131127", "20131201", "20131207"),
    "13": ("20140527", "20140603", "20140610"), "14": ("20140601", "20140615", "20140627"),
    "15": ("20130709", "20131016", "20131105"),
}  # fmt: skip
# Variable prefixes per subject as published (LAYOUTS 2.3).
SEED_PREFIXES = {
    "1": "djc", "2": "jl", "3": "jj", "4": "lqj", "5": "ly", "6": "mhw", "7": "phl", "8": "sxy",
    "9": "wk", "10": "ww", "11": "wsf", "12": "wyw", "13": "xyl", "14": "ys", "15": "zjy",
}  # fmt: skip
# Given to the second replica subject instead of its published prefix. It is in no list
# (not LAYOUTS', not the manifest's), so only a reader that finds prefixes by pattern copes.
UNLISTED_PREFIX = "qhx"
SEED_LABELS = (1, 0, -1, -1, 0, 1, -1, 0, 1, 1, 0, -1, 0, 1, -1)  # label.mat (LAYOUTS 2.4)
SEED_CLASSES = {-1: "negative", 0: "neutral", 1: "positive"}
# Published trial lengths in seconds (LAYOUTS 2.3: 47001 samples = 235 s + 1 sample, ...).
SEED_TRIAL_S = (235, 233, 206, 238, 185, 195, 237, 216, 265, 237, 235, 233, 235, 238, 206)
# The replica maps them linearly onto 10-20 s (185 s -> 10 s, 265 s -> 20 s): same order of
# lengths, 1 s and 4 s windows both see trials of different lengths, files stay small.
REPLICA_SEED_TRIAL_S = tuple(round(10 + (s - 185) / 8) for s in SEED_TRIAL_S)

# SEED-IV file dates per subject, sessions 1-3 (LAYOUTS 2.7).
SEED_IV_DATES = {
    "1": ("20160518", "20161125", "20161126"), "2": ("20150915", "20150920", "20151012"),
    "3": ("20150919", "20151018", "20151101"), "4": ("20151111", "20151118", "20151123"),
    "5": ("20160406", "20160413", "20160420"), "6": ("20150507", "20150511", "20150512"),
    "7": ("20150715", "20150717", "20150721"), "8": ("20151103", "20151110", "20151117"),
    "9": ("20151028", "20151119", "20151209"), "10": ("20151014", "20151021", "20151023"),
    "11": ("20150916", "20150921", "20151011"), "12": ("20150725", "20150804", "20150807"),
    "13": ("20151115", "20151125", "20161130"), "14": ("20151205", "20151208", "20151215"),
    "15": ("20150508", "20150514", "20150527"),
}  # fmt: skip
# Only subject 1's prefix is documented (LAYOUTS 2.7); the others are invented initials.
SEED_IV_PREFIXES = {"1": "cz", "2": "ha", "3": "hql", "4": "lm", "5": "zq", "6": "wt"}
SEED_IV_LABELS = {
    1: (1, 2, 3, 0, 2, 0, 0, 1, 0, 1, 2, 1, 1, 1, 2, 3, 2, 2, 3, 3, 0, 3, 0, 3),
    2: (2, 1, 3, 0, 0, 2, 0, 2, 3, 3, 2, 3, 2, 0, 1, 1, 2, 1, 0, 3, 0, 1, 3, 1),
    3: (1, 2, 2, 1, 3, 3, 3, 1, 1, 2, 1, 0, 2, 3, 3, 0, 2, 3, 0, 0, 2, 0, 1, 0),
}  # LAYOUTS 2.7
SEED_IV_CLASSES = ("neutral", "sad", "fear", "happy")
# SEED-IV clips last about two to four minutes; the replica's trials last 5-8 s.
REPLICA_SEED_IV_TRIAL_S = tuple(5 + (3 * k) % 4 for k in range(24))


@dataclass(frozen=True)
class ReplicaMat:
    """One session file of a SEED or SEED-IV replica and what was put into it."""

    path: Path
    relpath: str
    subject: str
    session: int  # SEED: rank of the date among the subject's files; SEED-IV: the folder
    date: str  # YYYYMMDD, as in the file name
    prefix: str  # variables are <prefix>_eeg1 ... <prefix>_eeg<n>
    mat_format: str  # "v5" (uncompressed), "v5-compressed" or "v7.3" (HDF5)
    trial_samples: tuple[int, ...]  # samples per trial, trial 1 first
    emotions: tuple[str, ...]  # class name per trial

    def recording_id(self, trial: int) -> str:
        return f"{self.subject}_{self.session}_t{trial:02d}"


@dataclass(frozen=True)
class SeedReplica:
    root: Path  # what --source takes
    corpus: str  # "seed" or "seed-iv"
    files: tuple[ReplicaMat, ...]
    fs_hz: float
    channels: tuple[str, ...]  # rows of every trial array

    @property
    def subjects(self) -> tuple[str, ...]:
        return tuple(sorted({f.subject for f in self.files}, key=int))


def _matlab_header(version: str, date: str, suffix: str = "") -> bytes:
    """The 116-byte text header MATLAB writes, dated like the file name (scipy would write today)."""
    when = datetime.strptime(date, "%Y%m%d").replace(hour=10)
    text = f"MATLAB {version} MAT-file, Platform: GLNXA64, Created on: {when:%a %b %d %H:%M:%S %Y}{suffix}"
    return text.ljust(116).encode("ascii")


def write_mat_v5(path: Path, variables: dict[str, np.ndarray], *, compressed: bool, date: str) -> None:
    """A MAT v5 file as MATLAB's ``save -v6`` (uncompressed) or ``-v7`` (zlib-compressed) writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), variables, do_compression=compressed, oned_as="row")
    with open(path, "r+b") as f:
        f.write(_matlab_header("5.0", date))


def write_mat_v73(path: Path, variables: dict[str, np.ndarray], *, date: str) -> None:
    """A MAT v7.3 file in MATLAB's layout: HDF5 after a 512-byte user block holding MATLAB's
    128-byte header, each matrix a column-major dataset (so stored transposed) with its
    ``MATLAB_class`` attribute."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            arr = np.asarray(value, dtype=np.float64)
            # track_times=False: no creation time in the object header, so same seed, same bytes
            ds = f.create_dataset(
                name, data=np.ascontiguousarray(arr.T), compression="gzip", compression_opts=3, track_times=False
            )
            ds.attrs["MATLAB_class"] = np.bytes_("double")
    header = _matlab_header("7.3", date, " HDF5 schema 1.00 .") + bytes(8) + b"\x00\x02" + b"IM"
    with open(path, "r+b") as f:
        f.write(header)


def _trials(rng: np.random.Generator, seconds: Sequence[int]) -> list[np.ndarray]:
    # 200 * n + 1 samples per trial, as in the published arrays (47001 for 235 s).
    return [eeg_background(rng, list(CHANNELS), int(s * FS_HZ) + 1, FS_HZ) for s in seconds]


def _write_session(
    path: Path, prefix: str, trials: list[np.ndarray], mat_format: str, date: str
) -> None:
    variables = {f"{prefix}_eeg{k}": x for k, x in enumerate(trials, start=1)}
    if mat_format == "v7.3":
        write_mat_v73(path, variables, date=date)
    else:
        write_mat_v5(path, variables, compressed=mat_format == "v5-compressed", date=date)


def write_seed_replica(
    root: Path, *, n_subjects: int = 3, trial_s: Sequence[int] = REPLICA_SEED_TRIAL_S, seed: int = 0
) -> SeedReplica:
    """Write a SEED tree under ``root``: ``Preprocessed_EEG/<subject>_<YYYYMMDD>.mat`` + ``label.mat``.

    Subjects 1..n_subjects with their three published dates, 15 trials per file (lengths
    ``trial_s``, default 10-20 s). Session 2 files are zlib-compressed MAT v5 (MATLAB's
    ``-v7``), sessions 1 and 3 uncompressed v5 (``-v6``), except the last subject's session 3,
    which is v7.3 (HDF5). The second
    subject's prefix is :data:`UNLISTED_PREFIX`. Files are written in a shuffled order, so
    directory order says nothing about sessions. Same seed, same bytes.
    """
    if not 1 <= n_subjects <= len(SEED_DATES):
        raise ValueError(f"n_subjects must be 1-{len(SEED_DATES)}")
    if len(trial_s) != len(SEED_LABELS):
        raise ValueError(f"trial_s needs {len(SEED_LABELS)} lengths")
    root = Path(root)
    folder = root / "Preprocessed_EEG"
    emotions = tuple(SEED_CLASSES[c] for c in SEED_LABELS)
    plans = []
    for i in range(n_subjects):
        subject = str(i + 1)
        prefix = UNLISTED_PREFIX if i == 1 else SEED_PREFIXES[subject]
        for session, date in enumerate(SEED_DATES[subject], start=1):
            last = i == n_subjects - 1 and session == 3
            fmt = "v7.3" if last else ("v5-compressed" if session == 2 else "v5")
            plans.append((subject, session, date, prefix, fmt))
    order = np.random.default_rng([seed, 0]).permutation(len(plans))
    files = {}
    for k in order:
        subject, session, date, prefix, fmt = plans[k]
        # one stream per file, so a file can be regenerated on its own
        trials = _trials(np.random.default_rng([seed, 1, int(subject), session]), trial_s)
        rel = f"Preprocessed_EEG/{subject}_{date}.mat"
        _write_session(root / rel, prefix, trials, fmt, date)
        files[k] = ReplicaMat(
            root / rel, rel, subject, session, date, prefix, fmt, tuple(x.shape[1] for x in trials), emotions
        )
    # label.mat as MATLAB saves a row of doubles
    labels = {"label": np.array([SEED_LABELS], dtype=np.float64)}
    write_mat_v5(folder / "label.mat", labels, compressed=False, date=SEED_DATES["9"][2])
    (folder / "readme.txt").write_text(
        "Replica of SEED Preprocessed_EEG written by biosig_ingest.samples: real layout, synthetic signals.\n"
    )
    return SeedReplica(root, "seed", tuple(files[k] for k in range(len(plans))), FS_HZ, CHANNELS)


def write_seed_iv_replica(
    root: Path, *, n_subjects: int = 2, trial_s: Sequence[int] = REPLICA_SEED_IV_TRIAL_S, seed: int = 0
) -> SeedReplica:
    """Write a SEED-IV tree under ``root``: ``eeg_raw_data/{1,2,3}/<subject>_<YYYYMMDD>.mat``.

    Subjects 1..n_subjects with their published dates, 24 trials per file (``trial_s``,
    default 5-8 s); session folder 1 holds zlib-compressed MAT v5, folders 2 and 3 uncompressed.
    The emotion of each trial follows the documented sequence of its session. Same seed, same bytes.
    """
    if not 1 <= n_subjects <= len(SEED_IV_PREFIXES):
        raise ValueError(f"n_subjects must be 1-{len(SEED_IV_PREFIXES)}")
    if len(trial_s) != len(SEED_IV_LABELS[1]):
        raise ValueError(f"trial_s needs {len(SEED_IV_LABELS[1])} lengths")
    root = Path(root)
    files = []
    for i in range(n_subjects):
        subject = str(i + 1)
        for session, date in enumerate(SEED_IV_DATES[subject], start=1):
            trials = _trials(np.random.default_rng([seed, 2, int(subject), session]), trial_s)
            fmt = "v5-compressed" if session == 1 else "v5"
            rel = f"eeg_raw_data/{session}/{subject}_{date}.mat"
            _write_session(root / rel, SEED_IV_PREFIXES[subject], trials, fmt, date)
            emotions = tuple(SEED_IV_CLASSES[c] for c in SEED_IV_LABELS[session])
            files.append(
                ReplicaMat(
                    root / rel, rel, subject, session, date, SEED_IV_PREFIXES[subject], fmt,
                    tuple(x.shape[1] for x in trials), emotions,
                )
            )
    return SeedReplica(root, "seed-iv", tuple(files), FS_HZ, CHANNELS)
