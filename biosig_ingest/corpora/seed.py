"""SEED and SEED-IV: one MAT file per subject and session, one ``<prefix>_eeg<N>`` array per trial.

SEED: ``Preprocessed_EEG/10_20131130.mat`` plus ``label.mat``; SEED-IV:
``eeg_raw_data/1/1_20160518.mat`` (LAYOUTS.md sections 2.2-2.7). One recording per trial.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..config import Manifest, ResolvedProfile
from ..errors import HeaderError, MissingFileError, UsageError
from ..io.array import ArraySource
from ..io.mat import list_variables, load_variables
from ..recording import RecordingRef, SignalSource
from ..splits import subject_split
from .base import CorpusAdapter


@dataclass(frozen=True)
class SeedFileName:
    """``<subject>_<YYYYMMDD>.mat``, e.g. ``10_20131130.mat``: subject 10 (not zero-padded), 30 Nov 2013.

    The oldest SEED release named files after the participants (``dujingcheng_20131027.mat``);
    such names are not pseudonymous and are not accepted.
    """

    subject: str
    date: str  # YYYYMMDD

    PATTERN: ClassVar[re.Pattern[str]] = re.compile(r"^(?P<subject>\d+)_(?P<date>\d{8})\.mat$")

    @classmethod
    def parse(cls, path: Path) -> SeedFileName | None:
        m = cls.PATTERN.match(path.name)
        if m is None:
            return None
        try:
            datetime.strptime(m["date"], "%Y%m%d")
        except ValueError:
            return None
        return cls(m["subject"], m["date"])


# Trial arrays are named <prefix>_eeg<N>, the prefix being the subject's initials (djc_eeg1 ...).
TRIAL_VARIABLE = re.compile(r"^(?P<prefix>[A-Za-z][A-Za-z0-9]*)_eeg(?P<trial>\d+)$")
_TRIAL_IN_ID = re.compile(r"_t(?P<trial>\d+)$")


def trial_variables(names: list[str], known_prefix: str | None, filename: str) -> dict[int, str]:
    """Trial number -> variable name, found by the ``<prefix>_eeg<N>`` pattern.

    Prefixes differ per subject and are not all documented, so any prefix is accepted; the
    manifest's known prefix only settles a file that holds more than one.
    """
    by_prefix: dict[str, dict[int, str]] = {}
    for name in names:
        m = TRIAL_VARIABLE.match(name)
        if m is not None:
            by_prefix.setdefault(m["prefix"], {})[int(m["trial"])] = name
    if not by_prefix:
        raise HeaderError(f"{filename}: no <prefix>_eeg<N> trial variables (found {', '.join(sorted(names)) or 'none'})")
    if len(by_prefix) == 1:
        return next(iter(by_prefix.values()))
    if known_prefix in by_prefix:
        return by_prefix[known_prefix]
    raise HeaderError(f"{filename}: several trial variable prefixes ({', '.join(sorted(by_prefix))})")


@dataclass(frozen=True)
class _SessionFile:
    path: Path
    name: SeedFileName
    session: str
    emotions: tuple[str, ...]  # class name per trial, trial 1 first


class _SeedFamily(CorpusAdapter):
    """What SEED and SEED-IV share: trial arrays in MAT files, one recording per trial."""

    def __init__(self, manifest: Manifest | None = None):
        super().__init__(manifest)
        self._lock = threading.Lock()
        self._trials: dict[tuple[Path, int, int], dict[int, str]] = {}

    def session_files(self, root: Path) -> list[_SessionFile]:
        raise NotImplementedError

    def discover(self, source: Path, rp: ResolvedProfile) -> list[RecordingRef]:
        if rp.profile.source_options:
            raise UsageError(f"{self.corpus} takes no source_options (got {sorted(rp.profile.source_options)})")
        root = Path(source)
        refs = []
        for f in self.session_files(root):
            split = subject_split(f.name.subject, self.manifest.splits)
            for trial, emotion in enumerate(f.emotions, start=1):
                refs.append(
                    RecordingRef(
                        recording_id=f"{f.name.subject}_{f.session}_t{trial:02d}",
                        subject=f.name.subject,
                        session=f.session,
                        split=split,
                        path=f.path,
                        relpath=f.path.relative_to(root).as_posix(),
                        labels={"emotion": emotion},
                    )
                )
        return sorted(refs, key=lambda r: r.recording_id)

    def _trial_names(self, path: Path, subject: str) -> dict[int, str]:
        """Trial -> variable of one file, from its headers (kept: a file serves 15 or 24 trials)."""
        if not path.is_file():
            raise MissingFileError(f"{path.name} does not exist")
        st = path.stat()
        key = (path, st.st_mtime_ns, st.st_size)
        with self._lock:
            cached = self._trials.get(key)
        if cached is None:
            known = self.manifest.extra.get("known_prefixes", {}).get(subject)
            cached = trial_variables(list(list_variables(path)), known, path.name)
            with self._lock:
                self._trials[key] = cached
        return cached

    def open_source(self, ref: RecordingRef, rp: ResolvedProfile) -> SignalSource:
        m = _TRIAL_IN_ID.search(ref.recording_id)
        if m is None:
            raise HeaderError(f"{ref.recording_id}: not a <subject>_<session>_t<NN> recording id")
        trial = int(m["trial"])
        names = self._trial_names(ref.path, ref.subject)
        if trial not in names:
            prefix = TRIAL_VARIABLE.match(next(iter(names.values())))["prefix"]  # type: ignore[index]
            raise HeaderError(f"{ref.path.name}: no trial variable {prefix}_eeg{trial}")
        # Only this trial's bytes are decoded: scipy skips the other variables, h5py reads one dataset.
        x = load_variables(ref.path, [names[trial]])[names[trial]]
        channels = self.manifest.channels
        if x.ndim != 2 or x.shape[0] != len(channels):
            raise HeaderError(f"{ref.path.name}: {names[trial]} has shape {x.shape}, expected ({len(channels)}, samples)")
        # The files carry no rate: the manifest's 200 Hz, or the profile's source_fs_hz if set.
        fs = rp.profile.source_fs_hz or self.manifest.native_rates_hz[0]
        return ArraySource(list(x), [c.native for c in channels], [fs] * len(channels), rp.unit)


def _data_folder(root: Path, candidates: list[Path], what: str) -> Path:
    for folder in candidates:
        if folder.is_dir() and any(SeedFileName.parse(p) for p in folder.glob("*.mat")):
            return folder
    raise UsageError(f"no {what} files <subject>_<YYYYMMDD>.mat under {root}")


class SeedAdapter(_SeedFamily):
    corpus = "seed"

    def session_files(self, root: Path) -> list[_SessionFile]:
        folder = _data_folder(
            root,
            [
                root / "Preprocessed_EEG",
                root / "SEED_EEG" / "Preprocessed_EEG",
                root / "SEED" / "SEED_EEG" / "Preprocessed_EEG",
                root,
            ],
            "SEED Preprocessed_EEG",
        )
        emotions = self._label_mat(folder / "label.mat")
        by_subject: dict[str, list[tuple[SeedFileName, Path]]] = {}
        for path in folder.glob("*.mat"):
            name = SeedFileName.parse(path)
            if name is not None:
                by_subject.setdefault(name.subject, []).append((name, path))
        out = []
        for files in by_subject.values():
            # Session = chronological rank of the recording date among the subject's files, as
            # torcheeg derives it (LAYOUTS.md 2.2); the file name ties equal dates.
            for rank, (name, path) in enumerate(sorted(files, key=lambda f: (f[0].date, f[1].name)), start=1):
                out.append(_SessionFile(path, name, str(rank), emotions))
        return out

    def _label_mat(self, path: Path) -> tuple[str, ...]:
        if not path.is_file():
            raise UsageError(f"{path} not found: SEED's per-trial labels live in Preprocessed_EEG/label.mat")
        try:
            values = np.asarray(load_variables(path, ["label"])["label"], dtype=np.float64).ravel()
        except HeaderError as exc:
            raise UsageError(f"{path}: {exc.one_line()}") from None
        classes = {-1: "negative", 0: "neutral", 1: "positive"}
        n = int(self.manifest.extra["trials_per_session"])
        if values.size != n or not all(v in classes for v in values):
            raise UsageError(f"{path}: 'label' should hold {n} values in -1, 0, 1, not {values.tolist()}")
        return tuple(classes[int(v)] for v in values)


class SeedIvAdapter(_SeedFamily):
    corpus = "seed-iv"
    aliases = ("seediv",)

    def session_files(self, root: Path) -> list[_SessionFile]:
        sessions = self.manifest.extra["session_labels"]
        base = root / "eeg_raw_data" if (root / "eeg_raw_data").is_dir() else root
        _data_folder(root, [base / s for s in sessions], "SEED-IV eeg_raw_data/{1,2,3}")
        classes = self.manifest.label("emotion").classes
        out = []
        for session, codes in sessions.items():
            emotions = tuple(classes[int(c)] for c in codes)
            for path in sorted((base / session).glob("*.mat")):
                name = SeedFileName.parse(path)
                if name is not None:
                    # The folder is the session (LAYOUTS.md 2.7), whatever the date says.
                    out.append(_SessionFile(path, name, session, emotions))
        return out
