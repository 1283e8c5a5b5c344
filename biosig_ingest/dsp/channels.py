"""Canonical channel names, channel selection and 3-D positions.

File labels (``EEG T3-REF``, ``avf``) become canonical names (``T7``, ``aVF``) through
the corpus manifest; anything the manifest does not name is excluded and listed.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from functools import lru_cache

from ..config import Manifest
from ..errors import ChannelError

# "EEG FP1-REF" -> "FP1"; "EEG T3-LE" -> "T3"; "Fc5." -> "FC5"; "ECG EKG-REF" stays junk.
_EEG_PREFIX = re.compile(r"^(EEG|ECG|EKG)\s+", re.IGNORECASE)
_REF_SUFFIX = re.compile(r"-(REF|LE|AR|AVG|A1A2)$", re.IGNORECASE)


def electrode_key(label: str) -> str:
    """The electrode or lead part of a file's channel label, upper-case."""
    key = label.strip()
    key = _EEG_PREFIX.sub("", key)
    key = _REF_SUFFIX.sub("", key)
    return key.rstrip(".").strip().upper()


def reference_of(label: str) -> str | None:
    """``REF`` for ``EEG FP1-REF``, ``LE`` for ``EEG FP1-LE``, else None."""
    m = _REF_SUFFIX.search(label.strip())
    return m.group(1).upper() if m else None


@dataclass(frozen=True)
class ChannelMatch:
    index: int  # position in the file
    label: str  # as written in the file
    canonical: str | None  # None: excluded (junk, non-signal, not in the manifest)
    original: str  # electrode/lead name as the corpus writes it (T3 for T7)


def match_channels(labels: list[str], manifest: Manifest) -> list[ChannelMatch]:
    """Map every file label to its canonical name (or None) via the manifest."""
    # Canonical spellings are accepted too, so a file that already says T7 is not junk.
    table = {entry.canonical.upper(): entry for entry in manifest.channels}
    table.update({entry.native.upper(): entry for entry in manifest.channels})
    out = []
    for i, label in enumerate(labels):
        key = electrode_key(label) if manifest.modality == "eeg" else label.strip().upper()
        entry = table.get(key)
        if entry is not None and manifest.modality == "eeg" and not _looks_eeg(label):
            entry = None  # e.g. "EMG-REF" never becomes an electrode
        out.append(ChannelMatch(i, label, entry.canonical if entry else None, entry.native if entry else key))
    return out


def _looks_eeg(label: str) -> bool:
    text = label.strip().upper()
    return not text.startswith(("ECG", "EKG", "EMG", "EOG", "RESP", "PHOTIC"))


def find_channels(matches: list[ChannelMatch], wanted: list[str]) -> dict[str, ChannelMatch]:
    """The file channel of each ``wanted`` canonical name present in the file.

    Absent names are left out; a name two file channels map to is a ``ChannelError``.
    """
    by_name: dict[str, list[ChannelMatch]] = {}
    for m in matches:
        if m.canonical is not None:
            by_name.setdefault(m.canonical, []).append(m)
    ambiguous = [name for name in wanted if len(by_name.get(name, [])) > 1]
    if ambiguous:
        detail = "; ".join(f"{n}: {[m.label for m in by_name[n]]}" for n in ambiguous)
        raise ChannelError(f"several file channels map to {detail}")
    return {name: by_name[name][0] for name in wanted if name in by_name}


def select_channels(matches: list[ChannelMatch], wanted: list[str]) -> list[ChannelMatch]:
    """The matches for ``wanted`` canonical names, in that order; a clear error otherwise."""
    found = find_channels(matches, wanted)
    missing = [name for name in wanted if name not in found]
    if missing:
        raise ChannelError(f"missing channels {', '.join(missing)}")
    return [found[name] for name in wanted]


@lru_cache(maxsize=1)
def _standard_positions() -> dict[str, tuple[float, float, float]]:
    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 'standard_1005' is being renamed in newer MNE
        montage = mne.channels.make_standard_montage("standard_1005")
    return {name: (float(pos[0]), float(pos[1]), float(pos[2])) for name, pos in montage.get_positions()["ch_pos"].items()}


def channel_table(
    channels: list[str],
    modality: str,
    unit: str,
    manifest: Manifest,
    derivations: list[tuple[str, str]] | None = None,
) -> list[dict]:
    """Rows of the store's channel table: name, type, unit, original name, 3-D position (m).

    A derived (bipolar) channel has ``pair`` (anode, cathode), its position is the
    midpoint of the two electrodes, its original name the corpus's spelling (F7-T3).
    """
    originals = {entry.canonical: entry.native for entry in manifest.channels}
    types = {entry.canonical: entry.type for entry in manifest.channels}
    units = {entry.canonical: entry.unit for entry in manifest.channels if entry.unit}
    positions = _standard_positions() if modality == "eeg" else {}
    rows = []
    for k, name in enumerate(channels):
        pair = derivations[k] if derivations else None
        if pair is not None:
            ends = [positions.get(e) for e in pair]
            pos = tuple((a + b) / 2 for a, b in zip(*ends, strict=True)) if all(ends) else None  # type: ignore[arg-type]
            original = "-".join(originals.get(e, e) for e in pair)
        else:
            pos = positions.get(name)
            original = originals.get(name, name)
        rows.append(
            {
                "name": name,
                "type": types.get(pair[0] if pair else name, modality),
                "unit": units.get(name, unit),
                "original": original,
                "pair": list(pair) if pair else None,
                "position_m": list(pos) if pos is not None else None,
                "position_frame": "MNE standard_1005 (head)" if pos is not None else None,
            }
        )
    return rows
