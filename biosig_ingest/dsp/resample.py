"""Polyphase resampling (the filter of ``scipy.signal.resample_poly``) as a numba kernel.

Same Kaiser-windowed FIR and the same output alignment as SciPy, evaluated as
contiguous float32 dot products per output sample, channels in parallel.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numba
import numpy as np
from scipy.signal import firwin


def rational_ratio(fs_in: float, fs_out: float, max_denominator: int = 1000) -> tuple[int, int]:
    """``(up, down)`` in lowest terms with ``fs_in * up / down == fs_out``."""
    ratio = Fraction(fs_out / fs_in).limit_denominator(max_denominator)
    if abs(float(ratio) * fs_in - fs_out) > 1e-6 * fs_out:
        raise ValueError(f"cannot resample {fs_in} Hz to {fs_out} Hz with a small rational ratio")
    return ratio.numerator, ratio.denominator


@lru_cache(maxsize=64)
def polyphase_taps(up: int, down: int) -> tuple[np.ndarray, int]:
    """Per-phase taps, reversed for ascending dot products, and the filter half length.

    Returns ``(taps[up, n_taps], half_len)``: ``taps[p, i]`` multiplies input sample
    ``j_max - n_taps + 1 + i`` for an output whose upsampled position has phase ``p``.
    """
    max_rate = max(up, down)
    half_len = 10 * max_rate  # scipy's default for resample_poly
    h = firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0)) * up
    n_taps = -(-h.size // up)
    padded = np.zeros(n_taps * up)
    padded[: h.size] = h
    phases = padded.reshape(n_taps, up).T  # phases[p, q] = h[p + q * up]
    return np.ascontiguousarray(phases[:, ::-1], dtype=np.float32), half_len


def output_length(n_in: int, up: int, down: int) -> int:
    return -(-(n_in * up) // down)


@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def _polyphase(x, taps, up, down, half_len, out):  # pragma: no cover - compiled
    n_ch, n_in = x.shape
    n_out = out.shape[1]
    n_taps = taps.shape[1]
    # Output m = k * up + q always uses phase phase_of[q] and starts its taps at
    # input first_of[q] + k * down: precompute one cycle, no division per sample.
    phase_of = np.empty(up, np.int64)
    first_of = np.empty(up, np.int64)
    for q in range(up):
        r = q * down + half_len
        phase_of[q] = r % up
        first_of[q] = r // up - n_taps + 1
    n_cycles = (n_out + up - 1) // up
    for c in numba.prange(n_ch):
        xc = x[c]
        for k in range(n_cycles):
            for q in range(up):
                m = k * up + q
                if m >= n_out:
                    break
                j0 = first_of[q] + k * down
                tp = taps[phase_of[q]]
                acc = np.float32(0.0)
                if j0 >= 0 and j0 + n_taps <= n_in:
                    seg = xc[j0 : j0 + n_taps]
                    for i in range(n_taps):
                        acc += tp[i] * seg[i]
                else:  # signal edges: zeros outside, as resample_poly
                    for i in range(n_taps):
                        j = j0 + i
                        if 0 <= j < n_in:
                            acc += tp[i] * xc[j]
                out[c, m] = acc


def resample(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """Resample float32 ``x`` (channels, samples) by ``up/down`` along the last axis.

    Equals ``scipy.signal.resample_poly(x, up, down, axis=-1)`` (zeros outside the
    signal) to float32 precision.
    """
    if up == down:
        return x
    taps, half_len = polyphase_taps(up, down)
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty((x32.shape[0], output_length(x32.shape[1], up, down)), dtype=np.float32)
    _polyphase(x32, taps, up, down, half_len, out)
    return out


def resample_margin(up: int, down: int) -> int:
    """Input samples on each side that influence an output sample."""
    if up == down:
        return 0
    _, half_len = polyphase_taps(up, down)
    return -(-half_len // up) + 1
