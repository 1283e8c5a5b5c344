"""Pydantic models at the edges: corpus manifests and pipeline profiles.

A profile is data: it is printed, hashed and stored in every store it builds, so
two stores with the same hash were made by the same processing.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# 2: each shard's recordings table in recordings.json.gz beside its arrays (1: in its attributes)
SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)

Modality = Literal["eeg", "ecg"]
MODALITY_UNIT = {"eeg": "uV", "ecg": "mV"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FilterSpec(_Model):
    highpass_hz: float | None = Field(None, gt=0)
    lowpass_hz: float | None = Field(None, gt=0)
    order: int = Field(4, ge=1, le=10, description="Butterworth order (applied forward-backward)")
    notch: float | Literal["mains"] | None = Field(
        None, description="notch frequency in Hz, or 'mains' for the corpus's mains frequency"
    )
    notch_q: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _band_is_ordered(self) -> FilterSpec:
        if self.highpass_hz and self.lowpass_hz and self.highpass_hz >= self.lowpass_hz:
            raise ValueError("highpass_hz must be below lowpass_hz")
        return self


class WindowSpec(_Model):
    mode: Literal["fixed", "record", "events"] = Field(
        "fixed",
        description=(
            "fixed: windows of duration_s every stride_s; record: one window per record; "
            "events: one window per annotated event, placed by the adapter (e.g. centred)"
        ),
    )
    duration_s: float = Field(gt=0)
    stride_s: float | None = Field(None, gt=0, description="defaults to duration_s")


class QcSpec(_Model):
    """Thresholds for the per-window, per-channel quality flags (units of the modality)."""

    flat_std: float | None = Field(None, ge=0, description="std below this is 'flat'")
    max_ptp: float | None = Field(None, gt=0, description="peak-to-peak above this is 'implausible'")
    clipped_fraction: float = Field(0.001, ge=0, le=1, description="share of samples at ADC limits")
    nan_policy: Literal["zero", "keep", "drop"] = Field(
        "zero",
        description=(
            "invalid (NaN) source samples: zero-fill and flag; keep NaN (sample-exact without "
            "filtering or resampling, else the whole window-channel); or drop the recording"
        ),
    )


DEFAULT_QC = {
    "eeg": QcSpec(flat_std=0.1, max_ptp=2000.0),  # uV
    "ecg": QcSpec(flat_std=0.001, max_ptp=20.0),  # mV
}


class Profile(_Model):
    """What to make of a corpus: channel set, rate, filters, windows, quality thresholds."""

    name: str = "default"
    description: str = ""
    channel_set: str | list[str]
    target_fs_hz: float = Field(gt=0)
    source_fs_hz: float | None = Field(None, description="which native rate to read, where a corpus offers several")
    missing_channels: Literal["error", "mask"] = Field(
        "error",
        description="a channel (or an electrode of a derived channel) the file lacks: fail the "
        "recording, or store zeros flagged 'missing'",
    )
    filters: FilterSpec = FilterSpec()
    window: WindowSpec
    qc: QcSpec | None = None
    dtype: Literal["float32", "float16", "int16"] = Field(
        "float32",
        description="how signals are stored: float32; float16; int16 codes with a float32 scale "
        "and offset per window and channel (lossless for unfiltered digital samples); see docs/loading.md",
    )
    chunk_windows: int = Field(32, ge=1, description="windows per Zarr chunk")
    recordings_per_shard: int = Field(64, ge=1)
    source_options: dict[str, Any] = Field(
        {}, description="adapter-specific options (e.g. DEAP baseline handling); part of the hash"
    )
    block_s: float = Field(300.0, gt=0, description="seconds processed at once (bounded memory)")

    @model_validator(mode="after")
    def _lowpass_below_nyquist(self) -> Profile:
        lp = self.filters.lowpass_hz
        if lp is not None and lp >= self.target_fs_hz / 2:
            raise ValueError(f"lowpass_hz {lp} must be below the target Nyquist {self.target_fs_hz / 2}")
        return self


ChannelType = Literal["eeg", "ecg", "eog", "emg", "gsr", "resp", "ppg", "temp", "misc"]


class ChannelEntry(_Model):
    native: str
    canonical: str
    type: ChannelType
    unit: str | None = Field(None, description="stored unit; defaults to the modality's unit")


class LabelSpec(_Model):
    name: str
    kind: Literal["categorical", "multilabel", "numeric"]
    description: str = ""
    classes: list[str] = []
    unit: str | None = None

    @model_validator(mode="after")
    def _classes_for_kind(self) -> LabelSpec:
        if self.kind != "numeric" and not self.classes:
            raise ValueError(f"label {self.name!r}: {self.kind} labels need classes")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"label {self.name!r}: duplicate classes")
        return self


class SplitSpec(_Model):
    """Official splits (``assign``: split -> values of ``column``) or, where a corpus has
    none, a deterministic subject-wise split (``fractions``, ``seed``): see splits.py."""

    rule: str
    column: str
    assign: dict[str, list[Any]] = {}
    fractions: dict[str, float] | None = None
    seed: int = 0

    @model_validator(mode="after")
    def _one_method(self) -> SplitSpec:
        if bool(self.assign) == bool(self.fractions):
            raise ValueError("splits need either 'assign' (official) or 'fractions' (subject-wise)")
        if self.fractions and abs(sum(self.fractions.values()) - 1) > 1e-9:
            raise ValueError("split fractions must sum to 1")
        return self


class Manifest(_Model):
    """Everything the package knows about a corpus that is not code."""

    corpus: str
    name: str
    version: str
    modality: Modality
    homepage: str
    licence: str
    citation: str
    native_rates_hz: list[float]
    units: str
    mains_hz: float
    subject: str
    channels: list[ChannelEntry]
    channel_sets: dict[str, list[str]]
    montages: dict[str, list[tuple[str, str]]] = Field(
        {}, description="derived channel sets: name -> (anode, cathode) pairs of canonical electrodes"
    )
    labels: list[LabelSpec]
    splits: SplitSpec
    profiles: dict[str, dict[str, Any]]
    extra: dict[str, Any] = {}

    @field_validator("channel_sets")
    @classmethod
    def _sets_not_empty(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, chans in v.items():
            if not chans or len(set(chans)) != len(chans):
                raise ValueError(f"channel set {name!r} is empty or has duplicates")
        return v

    @model_validator(mode="after")
    def _profiles_validate(self) -> Manifest:
        canon = {c.canonical for c in self.channels}
        for set_name, chans in self.channel_sets.items():
            unknown = [c for c in chans if c not in canon]
            if unknown:
                raise ValueError(f"channel set {set_name!r} names unknown channels {unknown}")
        for name, pairs in self.montages.items():
            unknown = [e for pair in pairs for e in pair if e not in canon]
            if unknown or name in self.channel_sets:
                raise ValueError(f"montage {name!r}: unknown electrodes {unknown} or name clash")
        for name in self.profiles:
            self.profile(name)
        return self

    def profile(self, name: str = "default") -> Profile:
        if name not in self.profiles:
            raise KeyError(f"{self.corpus} has no profile {name!r} (known: {', '.join(self.profiles)})")
        return Profile(name=name, **self.profiles[name])

    def label(self, name: str) -> LabelSpec:
        return next(spec for spec in self.labels if spec.name == name)


class ResolvedProfile(_Model):
    """A profile bound to a corpus: channel list and notch frequency made explicit."""

    corpus: str
    modality: Modality
    unit: str
    channels: list[str]
    derivations: list[tuple[str, str]] | None = None  # (anode, cathode) per channel, bipolar
    profile: Profile
    notch_hz: float | None
    qc: QcSpec

    @property
    def stride_s(self) -> float:
        return self.profile.window.stride_s or self.profile.window.duration_s

    @property
    def window_samples(self) -> int:
        return round(self.profile.window.duration_s * self.profile.target_fs_hz)

    @property
    def stride_samples(self) -> int:
        return round(self.stride_s * self.profile.target_fs_hz)

    def digest(self) -> str:
        """sha256 of the canonical JSON of everything that changes the stored arrays."""
        body = json.dumps(
            {"schema_version": SCHEMA_VERSION, **self.model_dump(mode="json")}, sort_keys=True
        )
        return hashlib.sha256(body.encode()).hexdigest()


def resolve_profile(manifest: Manifest, profile: Profile) -> ResolvedProfile:
    derivations = None
    if isinstance(profile.channel_set, str) and profile.channel_set in manifest.montages:
        derivations = [tuple(pair) for pair in manifest.montages[profile.channel_set]]
        channels = [f"{a}-{b}" for a, b in derivations]
    elif isinstance(profile.channel_set, str):
        if profile.channel_set not in manifest.channel_sets:
            known = sorted(manifest.channel_sets) + sorted(manifest.montages)
            raise ValueError(f"unknown channel set {profile.channel_set!r} (known: {', '.join(known)})")
        channels = manifest.channel_sets[profile.channel_set]
    else:
        channels = list(profile.channel_set)
    notch = profile.filters.notch
    notch_hz = manifest.mains_hz if notch == "mains" else notch
    if notch_hz is not None and notch_hz >= profile.target_fs_hz / 2:
        # at or above the target Nyquist the anti-alias filter already removes mains;
        # recording None keeps the stored profile honest about what was applied
        notch_hz = None
    return ResolvedProfile(
        corpus=manifest.corpus,
        modality=manifest.modality,
        unit=MODALITY_UNIT[manifest.modality],
        channels=channels,
        derivations=derivations,  # type: ignore[arg-type]
        profile=profile,
        notch_hz=notch_hz,
        qc=profile.qc or DEFAULT_QC[manifest.modality],
    )
