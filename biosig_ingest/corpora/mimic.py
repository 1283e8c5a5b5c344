"""MIMIC-IV-ECG: ``record_list.csv`` + ``machine_measurements.csv`` + one WFDB record per study.

Example row path: ``files/p1000/p10000032/s40689238/40689238`` (LAYOUTS.md section 5). The
list is read without touching the tree; the tree is walked only when the list is absent.
"""

from __future__ import annotations

import os
import posixpath
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import ResolvedProfile
from ..errors import (
    HeaderError,
    MissingFileError,
    RecordingError,
    TruncatedFileError,
    UsageError,
)
from ..io.wfdb_source import MemoryLeads
from ..recording import RecordingRef, SignalSource
from ..splits import subject_split
from .base import CorpusAdapter

if TYPE_CHECKING:
    import pandas as pd

REPORT_COLUMNS = tuple(f"report_{i}" for i in range(18))
REPORT_SEPARATOR = "; "
# Columns of machine_measurements.csv kept per recording besides the numeric labels.
TEXT_COLUMNS = ("bandwidth", "filtering")


class PathOutsideRootError(RecordingError):
    """A path from the corpus's metadata points outside the source root; it is never opened."""


@dataclass(frozen=True)
class MimicPath:
    """A study's place in the tree: ``files/p1000/p10000032/s40689238/40689238``.

    The group folder is ``p`` + the first four digits of the subject id.
    """

    subject_id: int
    study_id: int

    PATTERN = re.compile(r"^files/p(?P<group>\d{4})/p(?P<subject>\d+)/s(?P<study>\d+)/(?P<name>\d+)$")

    @classmethod
    def parse(cls, relpath: str) -> MimicPath | None:
        m = cls.PATTERN.match(relpath)
        if not m or m["name"] != m["study"] or not m["subject"].startswith(m["group"]):
            return None
        return cls(int(m["subject"]), int(m["study"]))

    @property
    def relpath(self) -> str:
        return f"files/p{str(self.subject_id)[:4]}/p{self.subject_id}/s{self.study_id}/{self.study_id}"


@dataclass(frozen=True)
class MimicRef(RecordingRef):
    """A study as listed: per-recording columns for the recordings table, and a refusal reason
    when the listed path leaves the source root (then ``path`` names nothing, never read)."""

    refused: str | None = None


def inside_root(relpath: str) -> str | None:
    """``relpath`` normalized if it stays under the root, else None (absolute, ``..``, drive)."""
    text = relpath.strip().replace("\\", "/")
    if not text or text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        return None
    norm = posixpath.normpath(text)
    if norm == ".." or norm.startswith("../") or norm == ".":
        return None
    return norm


class MimicAdapter(CorpusAdapter):
    corpus = "mimic-iv-ecg"
    aliases = ("mimic", "mimic-ecg")

    def discover(self, source: Path, rp: ResolvedProfile) -> list[RecordingRef]:
        import pandas as pd

        root = Path(source)
        if not root.is_dir():
            raise UsageError(f"{root} is not a folder: --source must be the MIMIC-IV-ECG root folder")
        listing = root / "record_list.csv"
        walked = not listing.is_file()
        if not walked:
            studies = _read_record_list(listing)
        elif (root / "files").is_dir():
            studies = _walk(root)
        else:
            raise UsageError(f"{root} has neither record_list.csv nor files/: --source must be the MIMIC-IV-ECG root folder")
        measurements = root / "machine_measurements.csv"
        meas = _read_measurements(measurements, self.manifest.labels) if measurements.is_file() else None
        if "ecg_time" not in studies:
            times = meas["ecg_time"] if meas is not None and "ecg_time" in meas else pd.Series(dtype=object)
            studies["ecg_time"] = times.reindex(studies["study_id"].to_numpy()).to_numpy(object)
        if walked:  # the headers are being read anyway: line 1 has the same shifted time
            unknown = studies["ecg_time"].isna().to_numpy()
            studies.loc[unknown, "ecg_time"] = [_header_time(root / f"{p}.hea") for p in studies["path"][unknown]]
        studies["ecg_time"] = studies["ecg_time"].fillna("")
        dup = studies["study_id"][studies["study_id"].duplicated()]
        if len(dup):
            raise UsageError(f"study ids listed more than once: {', '.join(map(str, dup.iloc[:5]))}")
        label_names = [spec.name for spec in self.manifest.labels]
        n = len(studies)
        if meas is not None:  # aligned to the listed studies; a study without a row gets NaN/None
            aligned = meas.reindex(studies["study_id"].to_numpy())
            measured = studies["study_id"].isin(meas.index).to_numpy()
            label_values = {name: aligned[name].to_numpy(np.float64) for name in label_names}
            text = {c: aligned[c].to_numpy(object) for c in ("machine_report", *TEXT_COLUMNS)}
        else:
            measured = np.zeros(n, bool)
            label_values, text = {}, {}
        split_of: dict[str, str] = {}
        refs: list[RecordingRef] = []
        rows = zip(studies["subject_id"], studies["study_id"], studies["ecg_time"], studies["path"], strict=True)
        for i, (subject_id, study_id, ecg_time, raw) in enumerate(rows):
            subject = str(subject_id)
            if subject not in split_of:
                split_of[subject] = subject_split(subject, self.manifest.splits)
            labels: dict[str, Any] = {}
            columns: dict[str, Any] = {"ecg_time": ecg_time or None, "machine_report": None}
            if measured[i]:
                labels = {name: float(v[i]) for name, v in label_values.items() if not np.isnan(v[i])}
                columns.update({c: _text(v[i]) for c, v in text.items()})
            rel = inside_root(raw)
            common: dict[str, Any] = dict(
                recording_id=str(study_id),
                subject=subject,
                session=ecg_time,
                split=split_of[subject],
                labels=labels,
                columns=columns,
            )
            if rel is None:
                refused = f"path {raw!r} from the metadata points outside the source root"
                # a name that does not exist inside the root: nothing outside is hashed or opened
                refs.append(MimicRef(path=root / f".refused-{study_id}", relpath=raw, refused=refused, **common))
                continue
            refs.append(
                MimicRef(path=root / rel, relpath=rel + ".hea", files=(root / f"{rel}.hea", root / f"{rel}.dat"), **common)
            )
        return sorted(refs, key=lambda r: r.recording_id)

    def open_source(self, ref: RecordingRef, rp: ResolvedProfile) -> SignalSource:
        refused = getattr(ref, "refused", None)
        if refused:
            raise PathOutsideRootError(refused)
        src = open_wfdb(ref.path, rp.unit)
        fs = rp.profile.source_fs_hz
        if fs is not None and any(abs(c.fs_hz - fs) > 1e-6 for c in src.channels):
            src.close()
            raise HeaderError(f"{ref.relpath}: {src.channels[0].fs_hz:g} Hz, the profile reads {fs:g} Hz records")
        return src


# -- metadata tables --------------------------------------------------------------------------


def _ids(values: pd.Series, what: str, table: str) -> pd.Series:
    bad = values[~values.str.fullmatch(r"\d+")]
    if len(bad):
        raise UsageError(f"{table} row {int(bad.index[0]) + 2}: {what} {bad.iloc[0]!r} is not a number")
    return values.astype(np.int64)


def _read_record_list(path: Path) -> pd.DataFrame:
    """subject_id, study_id, path (as written), ecg_time; no file of the tree is touched."""
    import pandas as pd

    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("subject_id", "study_id", "path") if c not in df.columns]
    if missing:
        raise UsageError(f"{path.name} lacks the columns {', '.join(missing)}")
    out = pd.DataFrame(
        {
            "subject_id": _ids(df["subject_id"], "subject_id", path.name),
            "study_id": _ids(df["study_id"], "study_id", path.name),
            "path": df["path"],
        }
    )
    if "ecg_time" in df.columns:
        out["ecg_time"] = df["ecg_time"].replace("", None)
    return out


def _walk(root: Path) -> pd.DataFrame:
    """Every ``files/pNNNN/pNNNNNNNN/sNNNNNNNN/NNNNNNNN.hea`` (the fallback without a list)."""
    import pandas as pd

    rows = []
    for folder, _dirs, names in os.walk(root / "files"):
        for name in names:
            if not name.endswith(".hea"):
                continue
            rel = Path(folder, name[:-4]).relative_to(root).as_posix()
            parsed = MimicPath.parse(rel)
            if parsed is not None:
                rows.append((parsed.subject_id, parsed.study_id, rel))
    if not rows:
        raise UsageError(f"no MIMIC-IV-ECG headers under {root / 'files'} (expected files/pNNNN/pNNNNNNNN/sNNNNNNNN/NNNNNNNN.hea)")
    return pd.DataFrame(sorted(rows), columns=["subject_id", "study_id", "path"])


def _read_measurements(path: Path, labels: Sequence[Any]) -> pd.DataFrame:
    """One row per study: numeric labels, the joined machine report, bandwidth and filtering."""
    import pandas as pd

    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "study_id" not in df.columns:
        raise UsageError(f"{path.name} lacks the column study_id")
    df = df[df["study_id"].str.fullmatch(r"\d+")].drop_duplicates("study_id")
    out = pd.DataFrame(index=pd.Index(df["study_id"].astype(np.int64), name="study_id"))
    for spec in labels:
        column = df[spec.name] if spec.name in df.columns else pd.Series("", index=df.index)
        out[spec.name] = pd.to_numeric(column, errors="coerce").to_numpy(np.float64)
    reports = [c for c in REPORT_COLUMNS if c in df.columns]
    cells = df[reports].to_numpy(dtype=object)
    # Machine statements in column order; blank cells only separate groups of statements.
    joined = [REPORT_SEPARATOR.join(s.strip() for s in row if s.strip()) for row in cells]
    # A fixed vocabulary repeated over 800,035 studies: one string object per distinct text.
    out["machine_report"] = [sys.intern(text) if text else None for text in joined]
    for c in TEXT_COLUMNS:
        values: list[str] = df[c].tolist() if c in df.columns else [""] * len(df)
        out[c] = [sys.intern(v) if v else None for v in values]
    if "ecg_time" in df.columns:
        out["ecg_time"] = df["ecg_time"].replace("", None).to_numpy(object)
    return out


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _header_time(hea: Path) -> str | None:
    """Base time and date of line 1 (``08:44:00 23/07/2180``) as ``2180-07-23 08:44:00``.

    Only for the walk without record_list.csv; it is the same shifted time as ecg_time.
    """
    try:
        with open(hea, encoding="ascii", errors="replace") as f:
            tokens = f.readline().split()
        return datetime.strptime(f"{tokens[5]} {tokens[4]}", "%d/%m/%Y %H:%M:%S").strftime("%Y-%m-%d %H:%M:%S")
    except (OSError, IndexError, ValueError):
        return None


# -- signals ----------------------------------------------------------------------------------

# Format 16: the lowest code means "invalid sample" (NaN); valid codes stop one above it.
_INVALID_16 = -32768
_RANGE_16 = (-32767, 32767)
_GAIN = re.compile(r"^(?P<gain>[0-9.eE+-]+)(?:\((?P<baseline>-?\d+)\))?/(?P<unit>\S+)$")


@dataclass(frozen=True)
class _Fmt16Header:
    dat: str
    n_samples: int
    fs_hz: float
    names: tuple[str, ...]
    gains: np.ndarray
    baselines: np.ndarray
    units: tuple[str, ...]


def _parse_fmt16_header(text: str) -> _Fmt16Header | None:
    """The MIMIC header shape (one .dat, format 16, gain(baseline)/unit), or None for anything
    else, which then goes to wfdb. Comment lines are skipped, never kept."""
    lines = [ln for ln in (raw.strip() for raw in text.splitlines()) if ln and not ln.startswith("#")]
    if not lines:
        return None
    head = lines[0].split()
    if len(head) < 4 or not head[1].isdigit() or not head[3].isdigit() or "/" in head[2]:
        return None
    n_sig, fs, n_samples = int(head[1]), float(head[2]), int(head[3])
    if n_sig < 1 or len(lines) != 1 + n_sig or fs <= 0:
        return None
    dats, names, gains, baselines, units = set(), [], [], [], []
    for line in lines[1:]:
        tok = line.split(maxsplit=8)
        if len(tok) != 9 or tok[1] != "16" or tok[7] != "0":
            return None
        m = _GAIN.match(tok[2])
        if m is None or m["baseline"] is None:
            return None
        gain = float(m["gain"])
        if not gain > 0:
            return None
        dats.add(tok[0])
        names.append(tok[8].strip())
        gains.append(gain)
        baselines.append(int(m["baseline"]))
        units.append(m["unit"])
    if len(dats) != 1:
        return None
    return _Fmt16Header(
        dat=dats.pop(),
        n_samples=n_samples,
        fs_hz=fs,
        names=tuple(names),
        gains=np.asarray(gains, np.float64),
        baselines=np.asarray(baselines, np.float64),
        units=tuple(units),
    )


class Fmt16Source(MemoryLeads):
    """:class:`~biosig_ingest.recording.SignalSource` over a MIMIC-shaped WFDB record.

    Reads what ``wfdb.rdrecord(..., return_res=32)`` reads, to the bit, in a fraction of the
    time: wfdb's header parser costs about 12 ms a record, which is hours over 800,035 records.
    """

    def __init__(self, path: Path, header: _Fmt16Header, target_unit: str):
        self.path = path
        dat = path.parent / header.dat
        if not dat.is_file():
            raise MissingFileError(f"{path.name}.hea names signal file {header.dat}, which does not exist")
        n_sig = len(header.names)
        digital = np.fromfile(dat, dtype="<i2", count=n_sig * header.n_samples)
        if digital.size != n_sig * header.n_samples:
            raise TruncatedFileError(
                f"{path.name}: signal file shorter than the header says "
                f"({digital.size // n_sig} of {header.n_samples} samples)"
            )
        digital = digital.reshape(header.n_samples, n_sig).T
        physical = (digital - header.baselines[:, None]) / header.gains[:, None]
        physical[digital == _INVALID_16] = np.nan
        self._data = np.ascontiguousarray(physical, dtype=np.float32)
        self.duration_s = header.n_samples / header.fs_hz
        self._set_leads(
            header.names, header.units, header.gains, header.baselines, [_RANGE_16] * n_sig, header.fs_hz, header.n_samples, target_unit
        )


def open_wfdb(record: Path, target_unit: str) -> SignalSource:
    """The fast reader for the MIMIC header shape, wfdb (``WfdbSource``) for any other."""
    path = Path(record)
    hea = path.with_name(path.name + ".hea")
    try:
        text = hea.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        raise MissingFileError(f"{hea.name} does not exist") from None
    except OSError as exc:
        raise HeaderError(f"{hea.name}: {type(exc).__name__}: {exc}") from None
    header = _parse_fmt16_header(text)
    if header is not None:
        return Fmt16Source(path, header, target_unit)
    from ..io.wfdb_source import WfdbSource  # wfdb imports pandas: only when needed

    return WfdbSource(path, target_unit)
