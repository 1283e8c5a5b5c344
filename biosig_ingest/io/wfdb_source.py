"""WFDB reader over the ``wfdb`` package: header checks, then physical samples.

WFDB records in ECG corpora are short (10 s), so the record is decoded once and
served from memory. Header comments (``#`` lines) are never read into the result.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import wfdb

from ..errors import HeaderError, MissingFileError, TruncatedFileError, UnitError
from ..recording import SourceChannel
from .units import unit_scale

# Digital range per storage format; the lowest value of 16-bit formats means "invalid".
_DIGITAL_RANGE = {"16": (-32767, 32767), "212": (-2047, 2047), "80": (-127, 127), "24": (-(2**23) + 1, 2**23 - 1)}


class MemoryLeads:
    """Leads decoded once into ``_data`` (float32, the file's physical units), served scaled to
    the target unit: the shared half of the WFDB sources. Subclasses call ``_set_leads``."""

    path: Path
    _data: np.ndarray

    def _set_leads(
        self,
        names: Sequence[str],
        units: Sequence[str],
        gains: Sequence[float] | np.ndarray,
        baselines: Sequence[float] | np.ndarray,
        digital_ranges: Sequence[tuple[int, int] | None],
        fs_hz: float,
        n_samples: int,
        target_unit: str,
    ) -> None:
        """Unit scales and channel descriptions; a lead's clip limits are its digital range in
        the target unit (unknown range or unit: none)."""
        self._scale = np.full(len(names), np.nan)
        channels = []
        for i, name in enumerate(names):
            with contextlib.suppress(UnitError):
                self._scale[i] = unit_scale(units[i], target_unit)
            s, digital = self._scale[i], digital_ranges[i]
            if digital is not None and np.isfinite(s):
                lo, hi = digital
                clip = (float(np.float32((lo - baselines[i]) / gains[i]) * s), float(np.float32((hi - baselines[i]) / gains[i]) * s))
            else:
                clip = (-np.inf, np.inf)
            channels.append(
                SourceChannel(
                    label=name, fs_hz=fs_hz, n_samples=n_samples, physical_unit=units[i], clip_low=clip[0], clip_high=clip[1]
                )
            )
        self.channels = tuple(channels)

    def read(self, indices: Sequence[int], start: int, stop: int) -> np.ndarray:
        idx = list(indices)
        for i in idx:
            if not np.isfinite(self._scale[i]):
                raise UnitError(f"{self.path.name}: lead {self.channels[i].label!r} has unit {self.channels[i].physical_unit!r}")
        out = self._data[idx, start:stop]
        scale = self._scale[idx].astype(np.float32)[:, None]
        return out * scale if np.any(scale != 1) else out.copy()

    def close(self) -> None:
        self._data = np.empty((0, 0), np.float32)


class WfdbSource(MemoryLeads):
    """:class:`~biosig_ingest.recording.SignalSource` over one WFDB record."""

    def __init__(self, record_path: Path, target_unit: str):
        """``record_path``: the record name with or without ``.hea``."""
        path = Path(record_path)
        if path.suffix == ".hea":
            path = path.with_suffix("")
        self.path = path
        hea = path.with_name(path.name + ".hea")
        if not hea.is_file():
            raise MissingFileError(f"{hea.name} does not exist")
        try:
            header = wfdb.rdheader(str(path))
        except Exception as exc:  # wfdb raises bare exceptions for bad headers
            raise HeaderError(f"{hea.name}: {type(exc).__name__}: {exc}") from None
        for name in sorted(set(header.file_name or [])):
            if not (path.parent / name).is_file():
                raise MissingFileError(f"{hea.name} names signal file {name}, which does not exist")
        try:
            record = wfdb.rdrecord(str(path), physical=True, return_res=32)
        except (ValueError, IndexError) as exc:
            raise TruncatedFileError(f"{path.name}: signal file shorter than the header says ({exc})") from None
        signal = record.p_signal
        if signal is None or signal.shape[0] != header.sig_len:
            raise TruncatedFileError(f"{path.name}: expected {header.sig_len} samples")
        self._data = np.ascontiguousarray(signal.T, dtype=np.float32)
        self.duration_s = header.sig_len / header.fs
        self._set_leads(
            header.sig_name,
            [u or "" for u in header.units],
            header.adc_gain,
            header.baseline,
            [_DIGITAL_RANGE.get(str(f)) for f in header.fmt],
            float(header.fs),
            int(header.sig_len),
            target_unit,
        )
