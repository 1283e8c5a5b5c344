"""Which windows a loader serves: split, subjects, recordings, label availability, QC flags.

Everything is decided from the store's tables (recordings, per-window columns, QC bitmask);
no signal is read. Needs no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..dsp.quality import FLAG_NAMES
from ..store.reader import Store, open_store

FLAG_BITS = {name: bit for bit, name in FLAG_NAMES.items()}


def qc_bits(flags: Iterable[str] | int | None) -> int:
    """A QC bitmask from flag names (``flat``, ``clipped``, ``nan``, ``implausible``, ``missing``)."""
    if flags is None:
        return 0
    if isinstance(flags, (int, np.integer)):
        return int(flags)
    if isinstance(flags, str):
        flags = [flags]
    bits = 0
    for name in flags:
        if name not in FLAG_BITS:
            raise ValueError(f"unknown QC flag {name!r} (known: {', '.join(FLAG_BITS)})")
        bits |= FLAG_BITS[name]
    return bits


def label_available(store: Store, name: str) -> np.ndarray:
    """Per window: the label has a value (categorical code >= 0, a number, any class of a multilabel)."""
    spec = next((s for s in store.label_specs if s["name"] == name), None)
    if spec is None:
        known = ", ".join(s["name"] for s in store.label_specs) or "none"
        raise ValueError(f"{store.path.name} has no label {name!r} (labels: {known})")
    values = store.label_array(name)
    if len(values) == 0:
        return np.zeros(0, bool)
    if spec["kind"] == "categorical":
        return np.asarray(values >= 0)
    if spec["kind"] == "multilabel":
        return np.asarray(values.reshape(len(values), -1).any(axis=1))
    return np.isfinite(values)


def _as_set(values: str | Iterable[Any] | None) -> set[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        return {values}
    return {str(v) for v in values}


def select_windows(
    store: Store,
    *,
    split: str | Iterable[str] | None = None,
    subjects: Iterable[str] | None = None,
    recordings: Iterable[str] | None = None,
    require_labels: str | Iterable[str] = (),
    exclude_qc: Iterable[str] | int | None = None,
    max_flagged_channels: int = 0,
    where: Callable[[Any], Any] | None = None,
) -> np.ndarray:
    """Global indices (ascending) of the windows that pass every given condition.

    - ``split``: one split name or several (``train``, ``val``, ``test``, ``unassigned``).
    - ``subjects`` / ``recordings``: the corpus's ids.
    - ``require_labels``: label names that must have a value (see :func:`label_available`).
    - ``exclude_qc``: QC flag names (or a bitmask); a window is dropped when more than
      ``max_flagged_channels`` of its channels carry any of them.
    - ``where``: a function of ``store.metadata`` (one row per window) returning a boolean mask.
    """
    n = len(store)
    keep = np.ones(n, bool)
    if n == 0:
        return np.zeros(0, np.int64)
    meta = store.metadata
    for column, wanted in (("split", _as_set(split)), ("subject", _as_set(subjects)), ("recording_id", _as_set(recordings))):
        if wanted is not None:
            keep &= meta[column].astype(str).isin(wanted).to_numpy()
    for name in [require_labels] if isinstance(require_labels, str) else require_labels:
        keep &= label_available(store, name)
    bits = qc_bits(exclude_qc)
    if bits:
        flagged = ((store.qc & bits) != 0).sum(axis=1)
        keep &= flagged <= max_flagged_channels
    if where is not None:
        mask = np.asarray(where(meta), dtype=bool)
        if mask.shape != (n,):
            raise ValueError(f"where(...) must return one boolean per window ({n}), got shape {mask.shape}")
        keep &= mask
    return np.nonzero(keep)[0].astype(np.int64)


@dataclass
class Selection:
    """A store and the windows a loader takes from it (the arguments of :func:`select_windows`,
    or explicit global ``indices``). Several of them make a mixture."""

    store: Store | str | Path
    split: str | Iterable[str] | None = None
    subjects: Iterable[str] | None = None
    recordings: Iterable[str] | None = None
    require_labels: str | Iterable[str] = ()
    exclude_qc: Iterable[str] | int | None = None
    max_flagged_channels: int = 0
    where: Callable[[Any], Any] | None = None
    indices: Any = None
    weight: float | None = None  # sampling weight in a mixture (default: its window count)
    _resolved: np.ndarray | None = field(default=None, repr=False)

    def open(self) -> Store:
        if not isinstance(self.store, Store):
            self.store = open_store(self.store)
        return self.store

    def resolve(self) -> np.ndarray:
        """The selected global window indices (ascending, unique), computed once."""
        if self._resolved is None:
            store = self.open()
            picked = select_windows(
                store,
                split=self.split,
                subjects=self.subjects,
                recordings=self.recordings,
                require_labels=self.require_labels,
                exclude_qc=self.exclude_qc,
                max_flagged_channels=self.max_flagged_channels,
                where=self.where,
            )
            if self.indices is not None:
                explicit = np.unique(np.asarray(self.indices, np.int64).reshape(-1))
                if explicit.size and (explicit[0] < 0 or explicit[-1] >= len(store)):
                    raise IndexError(f"window indices out of range for {len(store)} windows")
                picked = np.intersect1d(picked, explicit)
            self._resolved = picked
        return self._resolved


def as_selection(source: Selection | Store | str | Path) -> Selection:
    return source if isinstance(source, Selection) else Selection(source)
