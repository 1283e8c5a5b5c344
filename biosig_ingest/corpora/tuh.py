"""TUH EEG family: TUEG, TUAB, TUEV, TUSZ and TUAR, one adapter per subset.

Trees (LAYOUTS.md 1.2), e.g. TUAB ``edf/train/normal/01_tcp_ar/aaaaaaav_s004_t000.edf``,
TUSZ ``edf/dev/aaaaaaac/s001_2002/02_tcp_le/aaaaaaac_s001_t000.edf`` (+ ``.csv``,
``.csv_bi``), TUEV ``edf/train/aaaaaaar/aaaaaaar_00000001.edf`` (+ ``.rec``). ``tuh``
detects the subset from the tree; ``--subset`` overrides.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..config import ResolvedProfile
from ..errors import UsageError
from ..io.edf import EdfSource
from ..io.tuh_annotations import TuhInterval, read_csv, read_rec
from ..labels import categorical_by_overlap, multilabel_by_overlap
from ..recording import Recording, RecordingRef, SignalSource
from ..splits import subject_split
from .base import CorpusAdapter

MONTAGE_DIRS = ("01_tcp_ar", "02_tcp_le", "03_tcp_ar_a", "04_tcp_le_a")


@dataclass(frozen=True)
class TuhName:
    """Tokens of a TUH EDF file name.

    ``aaaaaaav_s004_t000.edf`` (v2: 8-letter subject), ``00010194_s001_t001.edf`` (v1:
    8 digits), TUEV ``aaaaaaar_00000001.edf`` (subject, file counter) and TUEV eval
    ``pled_001_a_2.edf`` (label, number, run: no subject in the name).
    """

    subject: str | None
    session: str | None
    token: str | None

    SESSION_TOKEN: ClassVar = re.compile(r"^(?:.+_)?(?P<subject>[0-9]{8}|[a-z]{8})_(?P<session>s\d{3})_(?P<token>t\d{3})$")
    TUEV_TRAIN: ClassVar = re.compile(r"^(?P<subject>[0-9]{8}|[a-z]{8})_(?P<token>\d{8})$")
    TUEV_EVAL: ClassVar = re.compile(r"^(?P<label>[a-z]{4})_(?P<number>\d{3})_a_(?P<run>\d*)$")

    @classmethod
    def parse(cls, path: Path) -> TuhName | None:
        if m := cls.SESSION_TOKEN.match(path.stem):
            return cls(m["subject"], m["session"], m["token"])
        if m := cls.TUEV_TRAIN.match(path.stem):
            return cls(m["subject"], None, m["token"])
        if cls.TUEV_EVAL.match(path.stem):
            return cls(None, None, None)
        return None


def detect_subset(root: Path) -> str:
    """Which TUH subset a tree is, from its folder structure and annotation files."""
    edf = root / "edf" if (root / "edf").is_dir() else root

    def has(pattern: str) -> bool:
        return next(edf.glob(pattern), None) is not None

    if has("train/normal") or has("eval/normal") or has("train/abnormal"):
        return "tuab"
    if has("*/*/*/*/*.csv_bi") or has("dev"):
        return "tusz"
    if has("train/*/*.rec") or has("eval/*/*.rec"):
        return "tuev"
    if has("0*_tcp_*/*.csv"):
        return "tuar"
    return "tueg"


class TuhAdapter(CorpusAdapter):
    """The family: detects the subset, then hands over to that subset's adapter."""

    corpus = "tuh"
    subset_dirs: ClassVar[tuple[str, ...]] = ()

    def for_source(self, source: Path, subset: str | None = None) -> CorpusAdapter:
        chosen = subset or (detect_subset(Path(source)) if type(self) is TuhAdapter else self.corpus)
        if type(self) is not TuhAdapter:
            return super().for_source(source, subset)
        if chosen not in SUBSETS:
            raise UsageError(f"unknown TUH subset {chosen!r} (known: {', '.join(SUBSETS)})")
        return SUBSETS[chosen]()

    # -- discovery ---------------------------------------------------------------
    def discover(self, source: Path, rp: ResolvedProfile) -> list[RecordingRef]:
        root = Path(source)
        edf_root = root / "edf" if (root / "edf").is_dir() else root
        paths = sorted(edf_root.rglob("*.edf"))
        if not paths:
            raise UsageError(f"no EDF files under {root} (expected the {self.corpus.upper()} tree, see docs/corpora.md)")
        refs = [ref for p in paths if (ref := self._ref(root, edf_root, p)) is not None]
        counts = Counter(r.recording_id for r in refs)
        if any(n > 1 for n in counts.values()):  # TUSZ keeps some sessions in two montage folders
            refs = [
                _with_id(r, f"{r.recording_id}_{_montage_of(r.path)}") if counts[r.recording_id] > 1 else r
                for r in refs
            ]
        return sorted(refs, key=lambda r: r.recording_id)

    def _ref(self, root: Path, edf_root: Path, path: Path) -> RecordingRef | None:
        name = TuhName.parse(path)
        if name is None:
            return None
        parts = path.relative_to(edf_root).parts
        subject = name.subject or parts[-2]  # TUEV eval names carry no subject: its folder (NNN)
        split = self._split(parts, subject)
        if split is None:
            return None
        return RecordingRef(
            recording_id=path.stem,
            subject=subject,
            session=name.session or "",
            split=split,
            path=path,
            relpath=path.relative_to(root).as_posix(),
            labels=self._recording_labels(parts),
            # the annotation files too: hashed with the EDF, fetched with it from a remote source
            files=(path, *(p for p in _sidecars(path) if p.is_file())),
        )

    def _split(self, parts: tuple[str, ...], subject: str) -> str | None:
        spec = self.manifest.splits
        if spec.fractions:
            return subject_split(subject, spec)
        split_of = {str(v): split for split, values in spec.assign.items() for v in values}
        return split_of.get(parts[0])

    def _recording_labels(self, parts: tuple[str, ...]) -> dict[str, Any]:
        return {}

    def open_source(self, ref: RecordingRef, rp: ResolvedProfile) -> SignalSource:
        return EdfSource(ref.path, rp.unit)

    # -- annotations ---------------------------------------------------------------
    def _min_overlap(self, rp: ResolvedProfile) -> float:
        return float(rp.profile.source_options.get("min_overlap_s", 1.0))

    def _classes(self, label: str) -> list[str]:
        return self.manifest.label(label).classes

    def _checked(self, rec: Recording, intervals: list[TuhInterval], what: str) -> list[TuhInterval]:
        """Clip intervals to the recording and warn about the odd ones; never fail."""
        duration = rec.duration_s
        out = []
        beyond = 0
        for iv in intervals:
            if iv.stop_s <= iv.start_s:
                rec.warnings.append(f"{what}: empty interval {iv.start_s}-{iv.stop_s} s ({iv.label}) ignored")
                continue
            if iv.start_s < 0 or iv.stop_s > duration + 1e-6:
                beyond += 1
            out.append(TuhInterval(iv.channel, max(0.0, iv.start_s), min(duration, iv.stop_s), iv.label))
        if beyond:
            rec.warnings.append(f"{what}: {beyond} intervals extend beyond the {duration:.1f} s recording (clipped)")
        by_channel: dict[str, list[TuhInterval]] = {}
        for iv in out:
            by_channel.setdefault(iv.channel, []).append(iv)
        overlapping = 0
        for ivs in by_channel.values():
            ivs.sort(key=lambda iv: iv.start_s)
            overlapping += sum(
                1 for a, b in zip(ivs, ivs[1:], strict=False) if b.start_s < a.stop_s - 1e-6 and a.label != b.label
            )
        if overlapping:
            rec.warnings.append(f"{what}: {overlapping} overlapping intervals with different labels on one channel")
        return out


def _sidecars(edf: Path) -> tuple[Path, ...]:
    """Annotation files that TUH keeps beside an EDF (TUSZ/TUAR .csv, .csv_bi, _seiz.csv; TUEV .rec)."""
    return (edf.with_suffix(".csv"), edf.with_suffix(".csv_bi"), edf.with_name(edf.stem + "_seiz.csv"), edf.with_suffix(".rec"))


def _with_id(ref: RecordingRef, recording_id: str) -> RecordingRef:
    from dataclasses import replace

    return replace(ref, recording_id=recording_id)


def _montage_of(path: Path) -> str:
    return next((p for p in reversed(path.parts) if p in MONTAGE_DIRS), "edf")


class TuabAdapter(TuhAdapter):
    """TUAB: the label is the directory (normal/abnormal), the split train/eval."""

    corpus = "tuab"

    def _ref(self, root: Path, edf_root: Path, path: Path) -> RecordingRef | None:
        parts = path.relative_to(edf_root).parts
        if len(parts) < 3 or parts[1] not in ("normal", "abnormal"):
            return None
        return super()._ref(root, edf_root, path)

    def _recording_labels(self, parts: tuple[str, ...]) -> dict[str, Any]:
        return {"abnormal": parts[1]}


class TuegAdapter(TuhAdapter):
    """TUEG: unlabelled; v1 (``edf/01_tcp_ar/NNN/<8 digits>/...``) and v2 (``edf/NNN/<8 letters>/...``)."""

    corpus = "tueg"


class TuevAdapter(TuhAdapter):
    """TUEV: 1-s events per TCP channel in ``.rec`` files; windows centred on events."""

    corpus = "tuev"

    def open(self, ref: RecordingRef, rp: ResolvedProfile) -> Recording:
        rec = super().open(ref, rp)
        events = read_rec(ref.path.with_suffix(".rec"), self._classes("event_channel"), self._classes("event"))
        events = self._checked(rec, events, ".rec")
        rec.annotations = [_annotation(iv) for iv in events]
        if rp.profile.window.mode == "events":
            centre = np.array([(iv.start_s + iv.stop_s) / 2 for iv in events])
            rec.window_starts_s = centre - rp.profile.window.duration_s / 2
        return rec

    def window_labels(self, rec: Recording, starts_s: np.ndarray, index: np.ndarray, rp: ResolvedProfile) -> dict[str, Any]:
        events, channels = self._classes("event"), self._classes("event_channel")
        ann = rec.annotations
        if rp.profile.window.mode == "events":
            return {
                "event": np.array([events.index(ann[i].label) for i in index], np.int16),
                "event_channel": np.array([channels.index(ann[i].channel or "") for i in index], np.int16),
            }
        intervals = [(a.start_s, a.stop_s, a.label) for a in ann]
        code = categorical_by_overlap(starts_s, rp.profile.window.duration_s, intervals, events, self._min_overlap(rp))
        chan = np.full(len(starts_s), -1, np.int16)
        for k, c in enumerate(code):
            if c >= 0:  # the channel of the longest-overlapping event of that class
                same = [a for a in ann if a.label == events[c]]
                over = [max(0.0, min(a.stop_s, starts_s[k] + rp.profile.window.duration_s) - max(a.start_s, starts_s[k])) for a in same]
                chan[k] = channels.index(same[int(np.argmax(over))].channel or "")
        return {"event": code, "event_channel": chan}


class TuszAdapter(TuhAdapter):
    """TUSZ: per-channel seizure events (``.csv``) and TERM seizure/background (``.csv_bi``)."""

    corpus = "tusz"

    def open(self, ref: RecordingRef, rp: ResolvedProfile) -> Recording:
        rec = super().open(ref, rp)
        term_path, chan_path = ref.path.with_suffix(".csv_bi"), ref.path.with_suffix(".csv")
        term = self._checked(rec, read_csv(term_path), ".csv_bi") if term_path.is_file() else []
        per_channel = self._checked(rec, read_csv(chan_path), ".csv") if chan_path.is_file() else []
        if not term_path.is_file() and not chan_path.is_file():
            rec.warnings.append("no .csv or .csv_bi annotation next to the EDF: labels missing")
        rec.annotations = [_annotation(iv) for iv in term + per_channel]
        return rec

    def window_labels(self, rec: Recording, starts_s: np.ndarray, index: np.ndarray, rp: ResolvedProfile) -> dict[str, Any]:
        d = rp.profile.window.duration_s
        least = self._min_overlap(rp)
        term = [(a.start_s, a.stop_s, a.label) for a in rec.annotations if a.channel is None]
        chan = [a for a in rec.annotations if a.channel is not None]
        seizures = [(a.start_s, a.stop_s, a.label) for a in chan if a.label != "bckg"]
        if not term:  # no .csv_bi: any per-channel seizure event counts
            term = [(s, e, "seiz") for s, e, _ in seizures]
        annotated = bool(rec.annotations)
        out: dict[str, Any] = {
            "seizure": categorical_by_overlap(starts_s, d, term, ["bckg", "seiz"], least, "bckg" if annotated else None, prefer=["seiz"]),
            "seizure_type": categorical_by_overlap(
                starts_s, d, seizures, self._classes("seizure_type"), least, "bckg" if annotated else None
            ),
            "seizure_channels": multilabel_by_overlap(
                starts_s, d, [(a.start_s, a.stop_s, a.channel or "") for a in chan if a.label != "bckg"],
                self._classes("seizure_channels"), least,
            ),
        }
        return out


class TuarAdapter(TuhAdapter):
    """TUAR: per-channel artifact events (``.csv``, combined labels like ``eyem_chew``),
    optional ``_seiz.csv``; no official split."""

    corpus = "tuar"

    def discover(self, source: Path, rp: ResolvedProfile) -> list[RecordingRef]:
        return [r for r in super().discover(source, rp) if not r.path.stem.endswith("_seiz")]

    def open(self, ref: RecordingRef, rp: ResolvedProfile) -> Recording:
        rec = super().open(ref, rp)
        art_path = ref.path.with_suffix(".csv")
        seiz_path = ref.path.with_name(ref.path.stem + "_seiz.csv")
        artifacts = self._checked(rec, read_csv(art_path), ".csv") if art_path.is_file() else []
        seizures = self._checked(rec, read_csv(seiz_path), "_seiz.csv") if seiz_path.is_file() else []
        # artifacts are per channel; seizure intervals (optional file) apply to the recording
        rec.annotations = [_annotation(iv) for iv in artifacts] + [
            _annotation(TuhInterval("TERM", iv.start_s, iv.stop_s, iv.label)) for iv in seizures
        ]
        return rec

    def window_labels(self, rec: Recording, starts_s: np.ndarray, index: np.ndarray, rp: ResolvedProfile) -> dict[str, Any]:
        d = rp.profile.window.duration_s
        least = self._min_overlap(rp)
        artifacts = [a for a in rec.annotations if a.channel is not None]
        seizures = [a for a in rec.annotations if a.channel is None]
        parts = [(a.start_s, a.stop_s, kind) for a in artifacts for kind in a.label.split("_")]
        out: dict[str, Any] = {
            "artifact": multilabel_by_overlap(starts_s, d, parts, self._classes("artifact"), least),
            "artifact_channels": multilabel_by_overlap(
                starts_s, d, [(a.start_s, a.stop_s, a.channel or "") for a in artifacts], self._classes("artifact_channels"), least
            ),
        }
        if seizures:  # only files with a _seiz.csv say anything about seizures
            marked = [(a.start_s, a.stop_s, "seiz") for a in seizures if a.label != "bckg"]
            out["seizure"] = categorical_by_overlap(starts_s, d, marked, ["bckg", "seiz"], least, "bckg")
        return out


def _annotation(iv: TuhInterval):
    from ..recording import Annotation

    return Annotation(iv.start_s, iv.stop_s, iv.label, None if iv.channel == "TERM" else iv.channel)


SUBSETS: dict[str, type[TuhAdapter]] = {
    "tueg": TuegAdapter,
    "tuab": TuabAdapter,
    "tuev": TuevAdapter,
    "tusz": TuszAdapter,
    "tuar": TuarAdapter,
}
