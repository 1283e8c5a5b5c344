"""Quality flags per window and channel: flat, clipped, NaN, implausible amplitude.

Flags are a uint8 bitmask per (window, channel); the loader filters by them,
nothing is dropped silently.
"""

from __future__ import annotations

import numba
import numpy as np

FLAT, CLIPPED, NAN, IMPLAUSIBLE = 1, 2, 4, 8
FLAG_NAMES = {FLAT: "flat", CLIPPED: "clipped", NAN: "nan", IMPLAUSIBLE: "implausible"}


@numba.njit(parallel=True, cache=True, nogil=True)
def raw_counts(x, lo, hi, seg, start, stop):  # pragma: no cover - compiled
    """Per channel and per ``seg`` samples of ``x[:, start:stop]``: samples at the ADC limits, NaNs.

    NaNs anywhere in ``x`` are replaced by 0 in place so that filters do not spread them;
    only the ``start:stop`` core is counted (block margins belong to the neighbours).
    """
    n_ch, n = x.shape
    n_seg = (stop - start + seg - 1) // seg
    clipped = np.zeros((n_ch, n_seg), np.int32)
    nans = np.zeros((n_ch, n_seg), np.int32)
    for c in numba.prange(n_ch):
        low = lo[c]
        high = hi[c]
        row = x[c]
        for i in range(n):
            v = row[i]
            if v != v:
                row[i] = 0.0
                if start <= i < stop:
                    nans[c, (i - start) // seg] += 1
            elif (v <= low or v >= high) and start <= i < stop:
                clipped[c, (i - start) // seg] += 1
    return clipped, nans


@numba.njit(parallel=True, cache=True, nogil=True)
def window_stats(w):  # pragma: no cover - compiled
    """Standard deviation and peak-to-peak per (window, channel), one pass, float64 sums."""
    n_w, n_ch, n = w.shape
    std = np.empty((n_w, n_ch), np.float32)
    ptp = np.empty((n_w, n_ch), np.float32)
    for k in numba.prange(n_w * n_ch):
        i = k // n_ch
        c = k % n_ch
        s = 0.0
        s2 = 0.0
        mn = np.inf
        mx = -np.inf
        for t in range(n):
            v = np.float64(w[i, c, t])
            s += v
            s2 += v * v
            mn = min(mn, v)
            mx = max(mx, v)
        mean = s / n
        std[i, c] = np.sqrt(max(s2 / n - mean * mean, 0.0))
        ptp[i, c] = mx - mn
    return std, ptp


def window_flags(
    windows: np.ndarray,
    clipped_share: np.ndarray,
    has_nan: np.ndarray,
    flat_std: float | None,
    max_ptp: float | None,
    clipped_fraction: float,
) -> np.ndarray:
    """Bitmask (windows, channels) from the window signals and raw-sample counts."""
    std, ptp = window_stats(windows)
    flags = np.zeros(std.shape, np.uint8)
    if flat_std is not None:
        flags[std < flat_std] |= FLAT
    if max_ptp is not None:
        flags[ptp > max_ptp] |= IMPLAUSIBLE
    flags[clipped_share > clipped_fraction] |= CLIPPED
    flags[has_nan] |= NAN
    return flags
