"""Types that flow from adapters to the harmonization core.

Adapters produce a :class:`RecordingRef` (what and where) and open a
:class:`Recording` (a block reader plus the channel selection); the core never
touches file formats, the store never sees either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .dsp.channels import ChannelMatch


@dataclass(frozen=True)
class RecordingRef:
    """One recording as discovered from the source tree and its metadata tables."""

    recording_id: str  # unique within the corpus, e.g. "aaaaaaav_s004_t000" or "00001"
    subject: str  # the corpus's own pseudonymous subject id
    session: str
    split: str  # "train" | "val" | "test" | "unassigned"
    path: Path  # main file (absolute)
    relpath: str  # posix path relative to the source root (what the store records)
    labels: Mapping[str, Any] = field(default_factory=dict)  # label column -> value(s)
    files: tuple[Path, ...] = ()  # every file of the recording (hashed); default (path,)
    columns: Mapping[str, Any] = field(default_factory=dict)  # per-recording metadata for the recordings table

    @property
    def all_files(self) -> tuple[Path, ...]:
        return self.files or (self.path,)


@dataclass(frozen=True)
class SourceChannel:
    """A channel as the file declares it; values converted to the modality's unit."""

    label: str
    fs_hz: float
    n_samples: int
    physical_unit: str
    clip_low: float  # value a saturated ADC reads, in the modality's unit (-inf: unknown)
    clip_high: float


class SignalSource(Protocol):
    """Block access to a recording's physical samples, in the modality's unit.

    ``read(indices, start, stop)`` returns float32 ``(len(indices), stop - start)``
    for channels that share one rate; invalid samples are NaN.
    """

    @property
    def channels(self) -> Sequence[SourceChannel]: ...

    @property
    def duration_s(self) -> float: ...

    def read(self, indices: Sequence[int], start: int, stop: int) -> np.ndarray: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Annotation:
    """A labelled interval from an annotation file or an EDF+ annotation channel."""

    start_s: float
    stop_s: float
    label: str
    channel: str | None = None  # None: the whole recording (TUSZ "TERM"), else a channel name


@dataclass
class Recording:
    """An opened recording: the reader and which file channels make the store's channels.

    ``selected`` are the file channels read (store order for referential profiles, the
    electrodes for derived ones); ``derivation`` (outputs x selected), when set, mixes
    them into the store's channels (bipolar montages). ``missing`` lists store channels
    the file cannot provide and the profile masks (zeros, QC flag ``missing``).
    """

    ref: RecordingRef
    source: SignalSource
    selected: list[ChannelMatch]
    excluded: list[str]  # file labels not used (junk, non-signal, not in the profile)
    derivation: np.ndarray | None = None
    missing: list[int] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    window_starts_s: np.ndarray | None = None  # explicit window starts (event-centred windows)
    warnings: list[str] = field(default_factory=list)  # for the run report, never fatal

    @property
    def duration_s(self) -> float:
        return self.source.duration_s
