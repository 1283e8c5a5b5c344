"""A signal source over in-memory arrays: for notebooks, tests and custom corpora."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..recording import SourceChannel


class ArraySource:
    """:class:`~biosig_ingest.recording.SignalSource` over arrays already in the modality's unit.

    ``signals`` is one array per channel (rates may differ); ``clip`` gives the
    ADC limits as ``(low, high)`` per channel where known.
    """

    def __init__(
        self,
        signals: Sequence[np.ndarray],
        labels: Sequence[str],
        fs_hz: Sequence[float],
        unit: str,
        clip: Sequence[tuple[float, float]] | None = None,
    ):
        self._data = [np.asarray(s, dtype=np.float32) for s in signals]
        clip = clip or [(-np.inf, np.inf)] * len(self._data)
        self.channels = tuple(
            SourceChannel(label, float(fs), x.size, unit, float(lo), float(hi))
            for x, label, fs, (lo, hi) in zip(self._data, labels, fs_hz, clip, strict=True)
        )
        self.duration_s = min(c.n_samples / c.fs_hz for c in self.channels)

    def read(self, indices: Sequence[int], start: int, stop: int) -> np.ndarray:
        return np.stack([self._data[i][start:stop] for i in indices]).astype(np.float32, copy=True)

    def close(self) -> None:
        pass
