"""DEAP: ``data_preprocessed_python/s01.dat`` holds one participant's 40 trials as a Python-2 pickle.

``{'data': (40 trials, 40 channels, 8064) float64, 'labels': (40, 4)}`` at 128 Hz, the first
3 s of each trial a pre-trial baseline (LAYOUTS.md section 3). One recording per trial.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import Manifest, ResolvedProfile
from ..dsp.channels import ChannelMatch, select_channels
from ..errors import HeaderError, MissingFileError, RecordingError, UsageError
from ..io.array import ArraySource
from ..io.safe_pickle import safe_load
from ..recording import Recording, RecordingRef, SignalSource
from ..splits import subject_split
from .base import CorpusAdapter

_DAT = re.compile(r"^s(?P<number>\d{2})\.dat$")
_TRIAL_IN_ID = re.compile(r"_t(?P<trial>\d+)$")
RATING_COLUMNS = ("valence", "arousal", "dominance", "liking")  # the columns of 'labels'


class DeapOptions(BaseModel):
    """``source_options`` of a DEAP profile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    baseline: Literal["drop", "correct"] = Field(
        "drop",
        description="drop: the 3 s baseline is cut off; correct: each channel minus its baseline mean, then cut off",
    )
    threshold: float = Field(5.0, description="a rating >= threshold is 'high' in the *_binary labels")


def deap_options(rp: ResolvedProfile) -> DeapOptions:
    try:
        return DeapOptions.model_validate(rp.profile.source_options)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise UsageError(f"DEAP source_options.{where}: {err['msg']}") from None


@dataclass(frozen=True)
class DeapFile:
    """One decoded ``sNN.dat``."""

    data: np.ndarray  # (trials, 40, samples) float32, uV for the EEG rows
    ratings: np.ndarray  # (trials, 4) float64: valence, arousal, dominance, liking


def read_dat(path: Path, n_channels: int) -> DeapFile:
    """Decode ``path`` with the restricted unpickler and check the documented layout."""
    obj = safe_load(path, encoding="latin1")
    if not isinstance(obj, dict) or not {"data", "labels"} <= set(obj):
        keys = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise HeaderError(f"{path.name}: expected a dict with 'data' and 'labels', found {keys}")
    data, ratings = obj["data"], obj["labels"]
    if not isinstance(data, np.ndarray) or data.ndim != 3 or data.shape[1] != n_channels:
        raise HeaderError(f"{path.name}: 'data' has shape {np.shape(data)}, expected (trials, {n_channels}, samples)")
    if not isinstance(ratings, np.ndarray) or ratings.shape != (data.shape[0], len(RATING_COLUMNS)):
        raise HeaderError(f"{path.name}: 'labels' has shape {np.shape(ratings)}, expected ({data.shape[0]}, 4)")
    if data.dtype.kind not in "fiu" or ratings.dtype.kind not in "fiu":
        # e.g. an object array: allowed by the unpickler, but not signals
        raise HeaderError(f"{path.name}: 'data' is {data.dtype} and 'labels' {ratings.dtype}, not numbers")
    return DeapFile(np.asarray(data, dtype=np.float32), np.asarray(ratings, dtype=np.float64))


def trial_labels(ratings: np.ndarray, threshold: float) -> dict[str, Any]:
    """Label columns of one trial: the four ratings and their high/low binarization."""
    out: dict[str, Any] = {}
    for name, value in zip(RATING_COLUMNS, ratings, strict=True):
        ok = bool(np.isfinite(value))
        out[name] = float(value) if ok else None
        out[f"{name}_binary"] = ("high" if value >= threshold else "low") if ok else None
    return out


def read_familiarity(root: Path) -> dict[tuple[int, int], float]:
    """(participant, Experiment_id) -> Familiarity from ``participant_ratings.csv``, if there is one.

    The file sits in the DEAP root or one folder below it (``metadata_csv/``); rows without
    a familiarity rating (participants 2, 15 and 23) are left out.
    """
    found = sorted(root.glob("participant_ratings.csv")) + sorted(root.glob("*/participant_ratings.csv"))
    if not found:
        return {}
    import pandas as pd

    table = pd.read_csv(found[0])
    table.columns = [str(c).strip() for c in table.columns]
    needed = {"Participant_id", "Experiment_id", "Familiarity"}
    if not needed <= set(table.columns):
        raise UsageError(f"{found[0]}: columns {sorted(needed - set(table.columns))} missing")
    out = {}
    for pid, video, fam in table[["Participant_id", "Experiment_id", "Familiarity"]].itertuples(index=False):
        if pd.notna(fam) and pd.notna(pid) and pd.notna(video):
            out[(int(pid), int(video))] = float(fam)
    return out


class DeapAdapter(CorpusAdapter):
    corpus = "deap"
    remote_eager = ("s*.dat",)  # discovery reads each file's ratings

    def __init__(self, manifest: Manifest | None = None):
        super().__init__(manifest)
        # The trials of a file are read one after another (ids sort by file): the last
        # decoded file (or its error) is kept, so each .dat is decoded once per pass.
        self._lock = threading.Lock()
        self._last: tuple[tuple[Path, int, int], DeapFile | RecordingError] | None = None

    def _decoded(self, path: Path) -> DeapFile:
        if not path.is_file():
            raise MissingFileError(f"{path.name} does not exist")
        st = path.stat()
        key = (path, st.st_mtime_ns, st.st_size)
        with self._lock:
            if self._last is None or self._last[0] != key:
                try:
                    value: DeapFile | RecordingError = read_dat(path, len(self.manifest.channels))
                except RecordingError as exc:
                    value = exc
                self._last = (key, value)
            value = self._last[1]
        if isinstance(value, RecordingError):
            raise type(value)(str(value))
        return value

    def discover(self, source: Path, rp: ResolvedProfile) -> list[RecordingRef]:
        root = Path(source)
        folder = root / "data_preprocessed_python" if (root / "data_preprocessed_python").is_dir() else root
        files = sorted(p for p in folder.glob("s*.dat") if _DAT.match(p.name))
        if not files:
            raise UsageError(f"no sNN.dat files under {root} (expected data_preprocessed_python/s01.dat ...)")
        opts = deap_options(rp)
        familiarity = read_familiarity(root)
        refs = []
        for path in files:
            subject = path.stem  # s01: the participant, as the file names it
            participant = int(_DAT.match(path.name)["number"])  # type: ignore[index]
            # The ratings are inside the pickle. A file that cannot be decoded (a forbidden
            # global, truncation) still gets its documented 40 trials, which then fail at open
            # with the file's error: the run goes on and the recordings table says why.
            try:
                ratings: np.ndarray | None = self._decoded(path).ratings
            except RecordingError:
                ratings = None
            n_trials = len(ratings) if ratings is not None else int(self.manifest.extra["trials_per_subject"])
            split = subject_split(subject, self.manifest.splits)
            for trial in range(1, n_trials + 1):
                # Trials are in video order (Experiment_id), not presentation order (LAYOUTS.md 3.2).
                labels = trial_labels(ratings[trial - 1], opts.threshold) if ratings is not None else {}
                labels["familiarity"] = familiarity.get((participant, trial))
                refs.append(
                    RecordingRef(
                        recording_id=f"{subject}_t{trial:02d}",
                        subject=subject,
                        session="1",
                        split=split,
                        path=path,
                        relpath=path.relative_to(root).as_posix(),
                        labels=labels,
                    )
                )
        return sorted(refs, key=lambda r: r.recording_id)

    def open_source(self, ref: RecordingRef, rp: ResolvedProfile) -> SignalSource:
        m = _TRIAL_IN_ID.search(ref.recording_id)
        if m is None:
            raise HeaderError(f"{ref.recording_id}: not an sNN_tNN recording id")
        trial = int(m["trial"])
        decoded = self._decoded(ref.path)
        if not 1 <= trial <= decoded.data.shape[0]:
            raise HeaderError(f"{ref.path.name}: no trial {trial} (the file holds {decoded.data.shape[0]})")
        fs = rp.profile.source_fs_hz or self.manifest.native_rates_hz[0]
        n_base = round(float(self.manifest.extra["baseline_s"]) * fs)
        x = decoded.data[trial - 1]
        if x.shape[1] <= n_base:
            raise HeaderError(
                f"{ref.path.name}: trial {trial} has {x.shape[1]} samples, not more than the {n_base}-sample baseline"
            )
        if deap_options(rp).baseline == "correct":
            trial_x = x[:, n_base:] - x[:, :n_base].mean(axis=1, keepdims=True, dtype=np.float64).astype(np.float32)
        else:
            trial_x = x[:, n_base:]
        channels = self.manifest.channels
        return ArraySource(list(trial_x), [c.native for c in channels], [fs] * len(channels), rp.unit)

    def open(self, ref: RecordingRef, rp: ResolvedProfile) -> Recording:
        source = self.open_source(ref, rp)
        # The .dat has no channel labels: row i is the manifest's channel i. Matching by
        # position keeps the EDF label rules (e.g. "RESP..." is never an electrode) from
        # excluding DEAP's "Respiration belt".
        matches = [ChannelMatch(i, c.native, c.canonical, c.native) for i, c in enumerate(self.manifest.channels)]
        try:
            selected = select_channels(matches, rp.channels)
        except Exception:
            source.close()
            raise
        used = {m.index for m in selected}
        excluded = [m.label for m in matches if m.index not in used]
        return Recording(ref=ref, source=source, selected=selected, excluded=excluded)
