"""Harmonize one recording block by block: unit-scaled samples -> resample -> filter -> windows.

Blocks of ``block_s`` seconds overlap by a margin (resampler half-length plus the
span of the filter's impulse response), so the result equals whole-signal
processing within float32 rounding while memory stays bounded.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..config import ResolvedProfile
from ..errors import ChannelError, InvalidSamplesError, RecordTooShortError
from ..recording import Recording
from .filter import ZeroPhaseFilter
from .quality import MISSING, NAN, raw_counts, window_flags
from .resample import output_length, rational_ratio, resample, resample_margin


@dataclass(frozen=True)
class _Group:
    """Selected file channels that share one native rate, and the store rows they make."""

    fs_in: float
    file_indices: list[int]
    positions: list[int]  # rows of rec.selected
    out_rows: list[int]  # store channels computed from this group
    mix: np.ndarray | None  # (out_rows, positions) derivation, None: rows are the channels
    up: int
    down: int
    n_in: int
    per_second: int  # input samples per QC second
    clip_low: np.ndarray
    clip_high: np.ndarray


@dataclass
class WindowBatch:
    signals: np.ndarray  # (windows, channels, samples) float32
    start_s: np.ndarray  # (windows,) float64, from the recording start
    qc: np.ndarray  # (windows, channels) uint8 bitmask, see dsp.quality
    index: np.ndarray  # (windows,) int64: position in the recording's window plan (event number)


def n_channels(rec: Recording) -> int:
    return rec.derivation.shape[0] if rec.derivation is not None else len(rec.selected)


def _groups(rec: Recording, fs_out: float) -> list[_Group]:
    by_rate: dict[float, list[tuple[int, int]]] = {}
    for pos, match in enumerate(rec.selected):
        fs = rec.source.channels[match.index].fs_hz
        by_rate.setdefault(fs, []).append((pos, match.index))
    derivation = rec.derivation
    groups = []
    claimed: set[int] = set()
    for fs_in, members in sorted(by_rate.items()):
        up, down = rational_ratio(fs_in, fs_out)
        positions = [p for p, _ in members]
        idx = [i for _, i in members]
        chans = [rec.source.channels[i] for i in idx]
        if derivation is None:
            out_rows, mix = positions, None
        else:
            uses = derivation[:, positions] != 0
            others = np.delete(derivation, positions, axis=1) != 0
            out_rows = [r for r in range(derivation.shape[0]) if uses[r].any() and not others[r].any()]
            mixed = [r for r in range(derivation.shape[0]) if uses[r].any() and others[r].any()]
            if mixed:
                raise ChannelError("a derived channel mixes electrodes sampled at different rates")
            mix = np.ascontiguousarray(derivation[np.ix_(out_rows, positions)], dtype=np.float32)
        claimed.update(out_rows)
        groups.append(
            _Group(
                fs_in=fs_in,
                file_indices=idx,
                positions=positions,
                out_rows=out_rows,
                mix=mix,
                up=up,
                down=down,
                n_in=min(c.n_samples for c in chans),
                per_second=max(1, round(fs_in)),
                clip_low=np.array([c.clip_low for c in chans], dtype=np.float32),
                clip_high=np.array([c.clip_high for c in chans], dtype=np.float32),
            )
        )
    return groups


def output_samples(rec: Recording, rp: ResolvedProfile) -> int:
    """Samples of the harmonized recording at the target rate."""
    groups = _groups(rec, rp.profile.target_fs_hz)
    return min(output_length(g.n_in, g.up, g.down) for g in groups)


def _keeps_nan_exactly(rp: ResolvedProfile, groups: list[_Group]) -> bool:
    """NaN can stay in the samples only where nothing mixes neighbouring samples."""
    f = rp.profile.filters
    identity = f.highpass_hz is None and f.lowpass_hz is None and rp.notch_hz is None
    return rp.qc.nan_policy == "keep" and identity and all(g.up == g.down for g in groups)


def _block_seconds(block_s: float, rates: list[float]) -> int:
    """Whole seconds per block such that every rate gives whole samples per block."""
    k = max(1, round(block_s))
    for _ in range(1000):
        if all(abs(k * r - round(k * r)) < 1e-9 for r in rates):
            return k
        k += 1
    raise ValueError(f"no block length aligns the rates {rates}")


def harmonized_blocks(
    rec: Recording, rp: ResolvedProfile, block_s: float | None = None
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(first_sample, block, clipped, nans)`` at the target rate, in store channel order.

    ``clipped``/``nans`` count raw samples per channel and per second of the block.
    """
    fs_out = rp.profile.target_fs_hz
    groups = _groups(rec, fs_out)
    n_out = min(output_length(g.n_in, g.up, g.down) for g in groups)
    f = rp.profile.filters
    zp = ZeroPhaseFilter(fs_out, f.highpass_hz, f.lowpass_hz, f.order, rp.notch_hz, f.notch_q)
    seconds = _block_seconds(block_s or rp.profile.block_s, [g.fs_in for g in groups] + [fs_out])
    core = round(seconds * fs_out)
    # Margin in output samples, rounded so that every group's input margin is whole
    # multiples of its `down` (keeps output samples on the same grid in every block).
    margin_out = zp.margin()
    for g in groups:
        margin_out = max(margin_out, math.ceil(resample_margin(g.up, g.down) * g.up / g.down))
    margins = []
    for g in groups:
        m_in = math.ceil(margin_out * g.down / g.up / g.down) * g.down
        margins.append(m_in)
    margin_out = max(m * g.up // g.down for m, g in zip(margins, groups, strict=True))
    margins = [margin_out * g.down // g.up for g in groups]
    n_ch = n_channels(rec)
    exact_nan = _keeps_nan_exactly(rp, groups)

    for o0 in range(0, n_out, core):
        o1 = min(n_out, o0 + core)
        p0, p1 = max(0, o0 - margin_out), min(n_out, o1 + margin_out)
        if zp.is_identity:
            buf, pad = np.zeros((n_ch, p1 - p0), np.float32), 0  # masked channels stay 0
        else:  # resampled samples go straight into the filter's FFT buffer
            buf, pad = zp.buffer(n_ch, p1 - p0)
        chunk = buf[:, pad : pad + p1 - p0]
        n_sec = -(-(o1 - o0) // round(fs_out))
        clipped = np.zeros((n_ch, n_sec), np.int32)
        nans = np.zeros((n_ch, n_sec), np.int32)
        for g, m_in in zip(groups, margins, strict=True):
            in0, in1 = o0 * g.down // g.up, min(g.n_in, -(-o1 * g.down // g.up))
            a, b = max(0, in0 - m_in), min(g.n_in, in1 + m_in)
            x = rec.source.read(g.file_indices, a, b)
            c_clip, c_nan = raw_counts(x, g.clip_low, g.clip_high, g.per_second, in0 - a, in1 - a, not exact_nan)
            if rp.qc.nan_policy == "drop" and c_nan.any():
                bad = [rec.selected[p].canonical for p, k in zip(g.positions, c_nan.sum(axis=1), strict=True) if k]
                raise InvalidSamplesError(
                    f"{int(c_nan.sum())} invalid samples in {', '.join(str(b) for b in bad)} (nan_policy: drop)"
                )
            if g.mix is not None:  # bipolar and other derivations: linear, so before resampling
                x = g.mix @ x
                touched = (g.mix != 0).astype(np.int32)
                c_clip, c_nan = touched @ c_clip, touched @ c_nan
            k = min(n_sec, c_clip.shape[1])
            clipped[g.out_rows, :k] = c_clip[:, :k]
            nans[g.out_rows, :k] = c_nan[:, :k]
            y = resample(x, g.up, g.down) if g.up != g.down else x
            y0 = a * g.up // g.down
            chunk[g.out_rows] = y[:, p0 - y0 : p1 - y0]
        filtered = chunk if zp.is_identity else zp.apply_buffer(buf, pad, p1 - p0)
        yield o0, filtered[:, o0 - p0 : o1 - p0], clipped, nans


def window_plan(rec: Recording, rp: ResolvedProfile) -> tuple[np.ndarray, np.ndarray]:
    """Window starts (output samples, ascending) and their plan indices.

    ``fixed``: every ``stride`` while a whole window fits (the incomplete tail is
    dropped); ``record``: one window at 0; ``events``: the recording's explicit starts
    (``rec.window_starts_s``), where windows outside the recording are dropped with a
    warning. The plan index of an event window is its event number.
    """
    fs_out = rp.profile.target_fs_hz
    n_out = output_samples(rec, rp)
    w, stride = rp.window_samples, rp.stride_samples
    mode = rp.profile.window.mode
    if mode == "fixed":
        starts = np.arange(0, max(n_out - w + 1, 0), stride, dtype=np.int64)
    elif mode == "record":
        starts = np.zeros(1 if n_out >= w else 0, np.int64)
    else:
        wanted = np.asarray(rec.window_starts_s if rec.window_starts_s is not None else [], float)
        starts = np.round(wanted * fs_out).astype(np.int64)
        inside = (starts >= 0) & (starts + w <= n_out)
        if not inside.all():
            rec.warnings.append(
                f"{int((~inside).sum())} of {len(starts)} event windows extend beyond the recording "
                f"({n_out / fs_out:.1f} s) and were skipped"
            )
        index = np.nonzero(inside)[0]
        order = np.argsort(starts[index], kind="stable")
        return starts[index][order], index[order]
    return starts, np.arange(len(starts), dtype=np.int64)


def window_recording(
    rec: Recording,
    rp: ResolvedProfile,
    block_s: float | None = None,
    batch_windows: int = 256,
    totals: dict[str, np.ndarray] | None = None,
) -> Iterator[WindowBatch]:
    """Windows of the harmonized recording with their start times and QC flags.

    ``totals``, if given, receives per-channel counts of raw ``nan`` and ``clipped``
    samples over the whole recording.
    """
    fs_out = rp.profile.target_fs_hz
    sec = round(fs_out)
    w = rp.window_samples
    groups = _groups(rec, fs_out)
    n_ch = n_channels(rec)
    per_second = np.ones(n_ch, np.float64)
    for g in groups:
        per_second[g.out_rows] = g.per_second
    qc = rp.qc
    nan_whole_window = qc.nan_policy == "keep" and not _keeps_nan_exactly(rp, groups)
    plan_starts, plan_index = window_plan(rec, rp)
    if len(plan_starts) == 0 and rp.profile.window.mode != "events":
        n_out = output_samples(rec, rp)
        raise RecordTooShortError(
            f"{n_out / fs_out:.2f} s at {fs_out:g} Hz is shorter than one {w / fs_out:g} s window"
        )

    pending = np.empty((n_ch, 0), np.float32)
    pending_start = 0  # output sample index of pending[:, 0]
    i_next = 0  # next window of the plan
    clip_sec: list[np.ndarray] = []  # raw-sample counts per channel and second, from sec0
    nan_sec: list[np.ndarray] = []
    sec0 = 0
    for o0, block, clipped, nans in harmonized_blocks(rec, rp, block_s):
        total = o0 + block.shape[1]
        if totals is not None:
            for key, counts in (("nan", nans), ("clipped", clipped)):
                totals[key] = totals.get(key, 0) + counts.sum(axis=1)
        if i_next >= len(plan_starts):
            continue  # nothing left to cut; keep reading for the QC totals
        clip_sec.append(clipped)
        nan_sec.append(nans)
        pending = block if pending.shape[1] == 0 else np.concatenate([pending, block], axis=1)
        i_end = i_next
        while i_end < len(plan_starts) and plan_starts[i_end] + w <= total:
            i_end += 1
        if i_end > i_next:
            clip_all = np.concatenate(clip_sec, axis=1)
            nan_all = np.concatenate(nan_sec, axis=1)
            clip_sec, nan_sec = [clip_all], [nan_all]
            for i in range(i_next, i_end, batch_windows):
                part = plan_starts[i : min(i_end, i + batch_windows)]
                offs = part - pending_start
                if len(part) > 1 and np.all(np.diff(part) == w):  # back to back: one reshape
                    sig = pending[:, offs[0] : offs[0] + w * len(part)]
                    sig = sig.reshape(n_ch, len(part), w).transpose(1, 0, 2).copy()
                else:
                    sig = np.stack([pending[:, o : o + w] for o in offs])
                share = np.empty((len(part), n_ch), np.float64)
                has_nan = np.empty((len(part), n_ch), bool)
                for j, s in enumerate(part):
                    s0, s1 = s // sec - sec0, -(-(s + w) // sec) - sec0
                    share[j] = clip_all[:, s0:s1].sum(axis=1) / (per_second * max(1, s1 - s0))
                    has_nan[j] = nan_all[:, s0:s1].any(axis=1)
                flags = window_flags(sig, share, has_nan, qc.flat_std, qc.max_ptp, qc.clipped_fraction)
                if rec.missing:
                    flags[:, rec.missing] |= MISSING
                if nan_whole_window:  # zero-filled for filtering: mark the whole window-channel
                    sig[(flags & NAN) != 0] = np.nan
                yield WindowBatch(
                    sig, part.astype(np.float64) / fs_out, flags, plan_index[i : i + len(part)]
                )
            i_next = i_end
        # samples and seconds before the next planned window are never looked at again
        keep = int(plan_starts[i_next]) if i_next < len(plan_starts) else total
        clip_all = np.concatenate(clip_sec, axis=1)
        nan_all = np.concatenate(nan_sec, axis=1)
        keep_from = max(0, min(keep // sec - sec0, clip_all.shape[1]))
        clip_sec, nan_sec = [clip_all[:, keep_from:]], [nan_all[:, keep_from:]]
        sec0 += keep_from
        drop = keep - pending_start
        if drop >= pending.shape[1]:
            pending = pending[:, :0]
            pending_start = total
        elif drop > 0:
            pending = pending[:, drop:]
            pending_start = keep
