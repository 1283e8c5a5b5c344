"""Any folder of EDF/EDF+/BDF files: channels normalized, annotations kept, no labels.

The channel set ``auto`` is the canonical EEG channels of the first file (sorted by
path), in its order; other files provide them by name (missing ones masked).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from ..config import ChannelEntry, Manifest, ResolvedProfile
from ..dsp.channels import _standard_positions, match_channels
from ..errors import UsageError
from ..io.edf import EdfSource, read_header
from ..recording import Annotation, Recording, RecordingRef, SignalSource
from ..splits import subject_split
from .base import CorpusAdapter

SUFFIXES = (".edf", ".bdf")


@cache
def _standard_entries() -> tuple[ChannelEntry, ...]:
    return tuple(ChannelEntry(native=name, canonical=name, type="eeg") for name in _standard_positions())


def _with_standard_electrodes(manifest: Manifest) -> Manifest:
    """The manifest plus every 10-05 electrode of MNE's standard montage as a channel."""
    known = {c.native.upper() for c in manifest.channels} | {c.canonical.upper() for c in manifest.channels}
    extra = [e for e in _standard_entries() if e.native.upper() not in known]
    return manifest.model_copy(update={"channels": [*manifest.channels, *extra]})


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())


class EdfFolderAdapter(CorpusAdapter):
    corpus = "edf"
    aliases = ("bdf",)

    def __init__(self, manifest: Manifest | None = None):
        super().__init__(manifest)
        self.manifest = _with_standard_electrodes(self.manifest)

    def for_source(self, source: Path, subset: str | None = None) -> CorpusAdapter:
        adapter = super().for_source(source, subset)
        files = _files(Path(source))
        if not files:
            raise UsageError(f"no .edf or .bdf files under {source}")
        labels = read_header(files[0]).labels
        auto = list(dict.fromkeys(m.canonical for m in match_channels(list(labels), self.manifest) if m.canonical))
        if not auto:
            raise UsageError(f"{files[0].name} has no channel with a 10-05 electrode name")
        manifest = self.manifest.model_copy(update={"channel_sets": {**self.manifest.channel_sets, "auto": auto}})
        return type(adapter)(manifest)

    def discover(self, source: Path, rp: ResolvedProfile) -> list[RecordingRef]:
        root = Path(source)
        refs = []
        for path in _files(root):
            rel = path.relative_to(root)
            subject = rel.parts[-2] if len(rel.parts) > 1 else path.stem
            refs.append(
                RecordingRef(
                    recording_id=rel.with_suffix("").as_posix(),
                    subject=subject,
                    session="",
                    split=subject_split(subject, self.manifest.splits),
                    path=path,
                    relpath=rel.as_posix(),
                )
            )
        return sorted(refs, key=lambda r: r.recording_id)

    def open_source(self, ref: RecordingRef, rp: ResolvedProfile) -> SignalSource:
        return EdfSource(ref.path, rp.unit)

    def open(self, ref: RecordingRef, rp: ResolvedProfile) -> Recording:
        rec = super().open(ref, rp)
        source = rec.source
        if isinstance(source, EdfSource) and source.header.is_edf_plus:
            rec.annotations = [Annotation(on, on + dur, text) for on, dur, text in source.annotations()]
        return rec
