"""Quality flags per window and channel: flat, clipped, NaN, implausible amplitude.

Flags are a uint8 bitmask per (window, channel); the loader filters by them,
nothing is dropped silently.
"""

from __future__ import annotations

import numba
import numpy as np

FLAT, CLIPPED, NAN, IMPLAUSIBLE, MISSING = 1, 2, 4, 8, 16
FLAG_NAMES = {FLAT: "flat", CLIPPED: "clipped", NAN: "nan", IMPLAUSIBLE: "implausible", MISSING: "missing"}


@numba.njit(parallel=True, cache=True, nogil=True)
def raw_counts(x, lo, hi, seg, start, stop, fill):  # pragma: no cover - compiled
    """Per channel and per ``seg`` samples of ``x[:, start:stop]``: samples at the ADC limits, NaNs.

    If ``fill``, NaNs anywhere in ``x`` are replaced by 0 in place so filters do not spread them;
    only the ``start:stop`` core is counted (block margins belong to the neighbours).
    Counting is branch-free so it vectorizes; the NaN fix-up pass runs only if needed.
    """
    n_ch, n = x.shape
    n_seg = (stop - start + seg - 1) // seg
    clipped = np.zeros((n_ch, n_seg), np.int32)
    nans = np.zeros((n_ch, n_seg), np.int32)
    for c in numba.prange(n_ch):
        low = lo[c]
        high = hi[c]
        row = x[c]
        any_nan = 0
        for s in range(n_seg):
            k_clip = 0
            k_nan = 0
            for i in range(start + s * seg, min(stop, start + (s + 1) * seg)):
                v = row[i]
                k_clip += (v <= low) | (v >= high)
                k_nan += v != v
            clipped[c, s] = k_clip
            nans[c, s] = k_nan
            any_nan += k_nan
        for i in range(start):
            any_nan += row[i] != row[i]
        for i in range(stop, n):
            any_nan += row[i] != row[i]
        if any_nan and fill:
            for i in range(n):
                if row[i] != row[i]:
                    row[i] = 0.0
    return clipped, nans


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=True)
def window_stats(w):  # pragma: no cover - compiled
    """Standard deviation and peak-to-peak per (window, channel).

    Two passes (mean, then squared deviations) keep float32 accurate for signals with
    a large offset, such as unfiltered ECG; both vectorize.
    """
    n_w, n_ch, n = w.shape
    std = np.empty((n_w, n_ch), np.float32)
    ptp = np.empty((n_w, n_ch), np.float32)
    for k in numba.prange(n_w * n_ch):
        row = w[k // n_ch, k % n_ch]
        s = np.float32(0.0)
        mn = row[0]
        mx = row[0]
        for t in range(n):
            v = row[t]
            s += v
            mn = min(mn, v)
            mx = max(mx, v)
        mean = s / n
        s2 = np.float32(0.0)
        for t in range(n):
            d = row[t] - mean
            s2 += d * d
        std[k // n_ch, k % n_ch] = np.sqrt(s2 / n)
        ptp[k // n_ch, k % n_ch] = mx - mn
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
