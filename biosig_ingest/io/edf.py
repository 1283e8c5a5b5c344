"""EDF/EDF+/BDF reader: header parsed with NumPy, data records read block by block.

Reads int16 data records straight from the file into a bounded buffer (no
whole-file load, no memory map), so a 24-hour recording costs a few MB of RAM.
Patient and recording identification fields are skipped, never parsed or kept.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from ..errors import HeaderError, MissingFileError, TruncatedFileError, UnitError
from ..recording import SourceChannel
from .units import unit_scale

# Per-signal header fields and their widths, in file order (EDF spec, 1992).
_SIGNAL_FIELDS = (
    ("label", 16),
    ("transducer", 80),
    ("physical_dim", 8),
    ("physical_min", 8),
    ("physical_max", 8),
    ("digital_min", 8),
    ("digital_max", 8),
    ("prefilter", 80),
    ("samples_per_record", 8),
    ("reserved", 32),
)
ANNOTATION_LABELS = {"EDF ANNOTATIONS", "BDF ANNOTATIONS"}


@numba.njit(parallel=True, cache=True, nogil=True)
def _decode(records, offsets, n, first, count, gain, offset, out):  # pragma: no cover - compiled
    """int16 data records -> float32 physical samples, one pass, channels in parallel.

    ``out[c, j] = records[r, offsets[c] + s] * gain[c] + offset[c]`` for the sample
    ``first + j`` of channel ``c``, with ``r, s = divmod(first + j, n)``.
    """
    for c in numba.prange(out.shape[0]):
        g = gain[c]
        o = offset[c]
        base = offsets[c]
        r = first // n
        s = first % n
        j = 0
        while j < count:  # record by record: contiguous runs, no division per sample
            take = min(n - s, count - j)
            for k in range(take):
                out[c, j + k] = np.float32(records[r, base + s + k]) * g + o
            j += take
            r += 1
            s = 0


@dataclass(frozen=True)
class EdfHeader:
    """The technical part of an EDF header (identification fields deliberately absent)."""

    header_bytes: int
    n_records: int
    record_duration_s: float
    labels: tuple[str, ...]
    physical_dim: tuple[str, ...]
    gain: np.ndarray  # physical = digital * gain + offset
    offset: np.ndarray
    digital_min: np.ndarray
    digital_max: np.ndarray
    samples_per_record: np.ndarray
    is_edf_plus: bool
    discontinuous: bool
    sample_bytes: int = 2  # 3 for BDF (24-bit)

    @property
    def record_samples(self) -> int:
        return int(self.samples_per_record.sum())

    @property
    def signal_offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.samples_per_record)[:-1]]).astype(np.int64)


def _field(raw: bytes, what: str) -> str:
    return raw.decode("latin-1").strip()


def _number(text: str, what: str, path: Path) -> float:
    try:
        return float(text)
    except ValueError:
        raise HeaderError(f"{path.name}: header field {what} is {text!r}, not a number") from None


def read_header(path: Path) -> EdfHeader:
    try:
        with open(path, "rb") as f:
            fixed = f.read(256)
            if len(fixed) < 256:
                raise TruncatedFileError(f"{path.name}: {len(fixed)} bytes, shorter than an EDF header")
            is_bdf = fixed[:8] == b"\xffBIOSEMI"
            if not is_bdf and fixed[:8].strip() != b"0":
                raise HeaderError(f"{path.name}: not an EDF or BDF file (version field {fixed[:8]!r})")
            # bytes 8-168 (patient and recording identification) are never decoded
            reserved = _field(fixed[192:236], "reserved")
            header_bytes = int(_number(_field(fixed[184:192], ""), "header bytes", path))
            n_records = int(_number(_field(fixed[236:244], ""), "number of data records", path))
            duration = _number(_field(fixed[244:252], ""), "duration of a data record", path)
            ns = int(_number(_field(fixed[252:256], ""), "number of signals", path))
            if ns <= 0 or header_bytes != 256 * (ns + 1):
                raise HeaderError(f"{path.name}: header declares {ns} signals in {header_bytes} bytes")
            body = f.read(256 * ns)
            if len(body) < 256 * ns:
                raise TruncatedFileError(f"{path.name}: signal headers cut short")
    except FileNotFoundError:
        raise MissingFileError(f"{path.name} does not exist") from None

    fields: dict[str, list[str]] = {}
    pos = 0
    for name, width in _SIGNAL_FIELDS:
        fields[name] = [_field(body[pos + i * width : pos + (i + 1) * width], name) for i in range(ns)]
        pos += ns * width

    def numbers(name: str) -> np.ndarray:
        return np.array([_number(v, f"{name} of signal {i + 1}", path) for i, v in enumerate(fields[name])])

    pmin, pmax = numbers("physical_min"), numbers("physical_max")
    dmin, dmax = numbers("digital_min"), numbers("digital_max")
    spr = numbers("samples_per_record").astype(np.int64)
    labels = tuple(fields["label"])
    signal = np.array([label.upper() not in ANNOTATION_LABELS for label in labels])
    if np.any(signal & (dmax <= dmin)):
        raise HeaderError(f"{path.name}: digital maximum not above digital minimum")
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(signal, (pmax - pmin) / (dmax - dmin), 1.0)
    offset = pmin - gain * dmin
    if duration <= 0 or np.any(spr <= 0):
        raise HeaderError(f"{path.name}: record duration {duration} s or samples per record not positive")

    sample_bytes = 3 if is_bdf else 2
    record_bytes = sample_bytes * int(spr.sum())
    size = os.path.getsize(path)
    held = (size - header_bytes) // record_bytes
    if n_records < 0:  # -1: still recording when the header was written
        n_records = held
    elif held < n_records:
        raise TruncatedFileError(
            f"{path.name}: header declares {n_records} data records, the file holds "
            f"{(size - header_bytes) / record_bytes:.2f}"
        )
    return EdfHeader(
        header_bytes=header_bytes,
        n_records=n_records,
        record_duration_s=duration,
        labels=labels,
        physical_dim=tuple(fields["physical_dim"]),
        gain=gain,
        offset=offset,
        digital_min=dmin,
        digital_max=dmax,
        samples_per_record=spr,
        is_edf_plus=reserved.startswith(("EDF+", "BDF+")),
        discontinuous=reserved.startswith(("EDF+D", "BDF+D")),
        sample_bytes=sample_bytes,
    )


class EdfSource:
    """:class:`~biosig_ingest.recording.SignalSource` over one EDF file."""

    def __init__(self, path: Path, target_unit: str):
        self.path = Path(path)
        self.header = h = read_header(self.path)
        if h.discontinuous:
            raise HeaderError(f"{self.path.name}: EDF+D (discontinuous) recordings are not supported")
        self.duration_s = h.n_records * h.record_duration_s
        self._scale = np.full(len(h.labels), np.nan)
        channels = []
        for i, label in enumerate(h.labels):
            # junk channels may have any unit: only reading one of them fails
            with contextlib.suppress(UnitError):
                self._scale[i] = unit_scale(h.physical_dim[i], target_unit)
            g, o = self._gain_offset32(i)
            lo, hi = (np.float32(h.digital_min[i]) * g + o, np.float32(h.digital_max[i]) * g + o)
            channels.append(
                SourceChannel(
                    label=label,
                    fs_hz=float(h.samples_per_record[i] / h.record_duration_s),
                    n_samples=int(h.samples_per_record[i] * h.n_records),
                    physical_unit=h.physical_dim[i],
                    clip_low=float(min(lo, hi)) if np.isfinite(self._scale[i]) else -np.inf,
                    clip_high=float(max(lo, hi)) if np.isfinite(self._scale[i]) else np.inf,
                )
            )
        self.channels = tuple(channels)
        self._file = open(self.path, "rb")  # noqa: SIM115 - closed by close()

    def _gain_offset32(self, i: int) -> tuple[np.float32, np.float32]:
        s = self._scale[i] if np.isfinite(self._scale[i]) else 1.0
        return np.float32(self.header.gain[i] * s), np.float32(self.header.offset[i] * s)

    def read(self, indices: Sequence[int], start: int, stop: int) -> np.ndarray:
        h = self.header
        spr = {int(h.samples_per_record[i]) for i in indices}
        if len(spr) != 1:
            raise ValueError("read() takes channels of one sampling rate")
        (n,) = spr
        for i in indices:
            if not np.isfinite(self._scale[i]):
                raise UnitError(f"{self.path.name}: channel {h.labels[i]!r} has unit {h.physical_dim[i]!r}")
        r0, r1 = start // n, -(-stop // n)
        records = self._records(r0, r1)
        gain_offset = [self._gain_offset32(i) for i in indices]
        out = np.empty((len(indices), stop - start), np.float32)
        _decode(
            records,
            h.signal_offsets[list(indices)],
            n,
            start - r0 * n,
            stop - start,
            np.array([g for g, _ in gain_offset], np.float32),
            np.array([o for _, o in gain_offset], np.float32),
            out,
        )
        return out

    def _records(self, r0: int, r1: int) -> np.ndarray:
        """Data records ``r0:r1`` as integers, (records, samples per record)."""
        h = self.header
        self._file.seek(h.header_bytes + h.sample_bytes * h.record_samples * r0)
        count = (r1 - r0) * h.record_samples
        if h.sample_bytes == 2:
            raw = np.fromfile(self._file, dtype="<i2", count=count)
        else:  # BDF: little-endian 24-bit two's complement
            b = np.fromfile(self._file, dtype=np.uint8, count=3 * count)
            if b.size == 3 * count:
                t = b.reshape(-1, 3).astype(np.int32)
                raw = t[:, 0] | (t[:, 1] << 8) | (t[:, 2] << 16)
                raw = np.where(raw >= 1 << 23, raw - (1 << 24), raw)
            else:
                raw = b[:0]
        if raw.size < count:
            raise TruncatedFileError(f"{self.path.name}: data ends before record {r1}")
        return raw.reshape(r1 - r0, h.record_samples)

    def annotations(self, max_records: int = 4096) -> list[tuple[float, float, str]]:
        """EDF+ annotations as ``(onset_s, duration_s, text)``, read in bounded blocks.

        Time-keeping entries (empty texts) are skipped. Onsets are relative to the file
        start, as written.
        """
        h = self.header
        channels = [i for i, label in enumerate(h.labels) if label.upper() in ANNOTATION_LABELS]
        out: list[tuple[float, float, str]] = []
        for r0 in range(0, h.n_records, max_records):
            records = self._records(r0, min(h.n_records, r0 + max_records))
            for i in channels:
                n = int(h.samples_per_record[i])
                cols = records[:, h.signal_offsets[i] : h.signal_offsets[i] + n]
                width = "<i2" if h.sample_bytes == 2 else None
                for row in cols:
                    raw = row.astype(width).tobytes() if width else _bdf_bytes(row)
                    out.extend(parse_tals(raw))
        return out

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> EdfSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _bdf_bytes(row: np.ndarray) -> bytes:
    v = row.astype(np.int64) & 0xFFFFFF
    return np.stack([v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF], axis=1).astype(np.uint8).tobytes()


def parse_tals(raw: bytes) -> list[tuple[float, float, str]]:
    """Time-stamped annotation lists of one EDF+ record: ``+onset[\x15duration]\x14text\x14...\x00``."""
    out = []
    for tal in raw.split(b"\x00"):
        if not tal.strip(b"\x00"):
            continue
        head, *texts = tal.split(b"\x14")
        onset_text, _, duration_text = head.partition(b"\x15")
        try:
            onset = float(onset_text.decode("latin-1"))
            duration = float(duration_text.decode("latin-1")) if duration_text else 0.0
        except ValueError:
            continue  # padding or a damaged entry: skip, the signal is still valid
        for text in texts:
            label = text.decode("utf-8", errors="replace").strip()
            if label:
                out.append((onset, duration, label))
    return out

