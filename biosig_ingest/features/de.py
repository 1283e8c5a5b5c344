"""Band power and differential entropy (DE) per window, channel and band, as numba kernels.

Two estimators of the band variance: the periodogram summed over the band's DFT bins
(Parseval), and Butterworth band-pass filtering (including a torcheeg-compatible mode).
See docs/features.md for the exact definitions, normalizations and biases.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numba
import numpy as np
from scipy.signal import butter, sosfilt_zi

from ..errors import UsageError

Band = tuple[str, float, float]

# SEED / torcheeg conventions (torcheeg's own default has no delta band).
DEFAULT_BANDS: tuple[Band, ...] = (
    ("delta", 1.0, 4.0),
    ("theta", 4.0, 8.0),
    ("alpha", 8.0, 14.0),
    ("beta", 14.0, 31.0),
    ("gamma", 31.0, 49.0),
)
ESTIMATORS = ("spectral", "filter", "torcheeg")
TAPERS = ("hann", "boxcar")
MEASURES = ("de", "log_power", "power", "relative_power")
SMOOTHINGS = ("none", "moving_average", "lds")
TORCHEEG_ORDER = 5

# SEED's linear dynamical system smoother as published with the CLISA code (Shen et al. 2022;
# RunminGan1218/CLISA_Hydra, data/data_process.py, LDS): a scalar random walk x_t = A x_{t-1} + w,
# w ~ N(0, T), observed as y_t = C x_t + v, v ~ N(0, SIGMA), prior N(mean of the sequence, V0);
# Kalman filter then Rauch-Tung-Striebel smoother, each feature dimension on its own.
LDS_V0, LDS_A, LDS_T, LDS_C, LDS_SIGMA = 0.01, 1.0, 0.0001, 1.0, 1.0


class FeatureSpecError(UsageError):
    """The bands, estimator or options of a feature computation are invalid."""


# -- parameters ----------------------------------------------------------------------------------
_BAND_RE = re.compile(r"^\s*(?:([A-Za-z_][\w-]*)\s*[:=]\s*)?([0-9.]+)\s*-\s*([0-9.]+)\s*$")


def parse_bands(text: str) -> tuple[Band, ...]:
    """Bands from ``"delta:1-4,theta:4-8"`` (names optional: ``"1-4,4-8"`` names them ``b1-4``)."""
    bands = []
    for part in text.split(","):
        if not part.strip():
            continue
        m = _BAND_RE.match(part)
        if m is None:
            raise FeatureSpecError(f"cannot read band {part.strip()!r}; write name:low-high in Hz, e.g. alpha:8-14")
        lo, hi = float(m.group(2)), float(m.group(3))
        bands.append((m.group(1) or f"b{m.group(2)}-{m.group(3)}", lo, hi))
    if not bands:
        raise FeatureSpecError("no bands given")
    return tuple(bands)


def check_bands(bands: Any, fs_hz: float | None = None, estimator: str = "spectral") -> tuple[Band, ...]:
    """Validated ``(name, low_hz, high_hz)`` tuples; with ``fs_hz``, also against the Nyquist rate."""
    out = []
    for b in bands:
        if len(b) != 3:
            raise FeatureSpecError(f"a band is (name, low_hz, high_hz), not {b!r}")
        name, lo, hi = str(b[0]), float(b[1]), float(b[2])
        if not (0.0 <= lo < hi) or not math.isfinite(hi):
            raise FeatureSpecError(f"band {name} {lo:g}-{hi:g} Hz: need 0 <= low < high")
        if fs_hz is not None:
            nyq = fs_hz / 2.0
            if hi > nyq * (1 + 1e-12):
                raise FeatureSpecError(f"band {name} {lo:g}-{hi:g} Hz ends above the Nyquist rate {nyq:g} Hz")
            if estimator != "spectral" and (lo <= 0.0 or hi >= nyq):
                raise FeatureSpecError(
                    f"band {name} {lo:g}-{hi:g} Hz: a Butterworth band-pass needs 0 < low < high < {nyq:g} Hz (the Nyquist rate)"
                )
        out.append((name, lo, hi))
    if not out:
        raise FeatureSpecError("no bands given")
    names = [b[0] for b in out]
    if len(set(names)) != len(names):
        raise FeatureSpecError(f"band names repeat: {names}")
    return tuple(out)


@dataclass(frozen=True)
class FeatureSpec:
    """Everything that determines a feature set; its digest names the set in a store."""

    bands: tuple[Band, ...] = DEFAULT_BANDS
    estimator: str = "spectral"  # spectral | filter | torcheeg
    taper: str = "hann"  # spectral: hann (periodic) | boxcar
    order: int = 4  # filter: Butterworth order of the low-pass prototype (band-pass has 2*order poles)
    zero_phase: bool = True  # filter: forward-backward (scipy sosfiltfilt) or causal (sosfilt)
    smoothing: str = "none"  # none | moving_average | lds, across consecutive windows of a recording
    smoothing_windows: int = 5  # moving_average: centred window length, in windows (odd)
    measures: tuple[str, ...] = MEASURES

    def __post_init__(self) -> None:
        object.__setattr__(self, "bands", check_bands(self.bands, estimator=self.estimator))
        object.__setattr__(self, "measures", tuple(self.measures))
        if self.estimator not in ESTIMATORS:
            raise FeatureSpecError(f"estimator {self.estimator!r} is not one of {', '.join(ESTIMATORS)}")
        if self.taper not in TAPERS:
            raise FeatureSpecError(f"taper {self.taper!r} is not one of {', '.join(TAPERS)}")
        if self.smoothing not in SMOOTHINGS:
            raise FeatureSpecError(f"smoothing {self.smoothing!r} is not one of {', '.join(SMOOTHINGS)}")
        if self.smoothing_windows < 1 or self.smoothing_windows % 2 == 0:
            raise FeatureSpecError(f"smoothing_windows must be odd and positive, not {self.smoothing_windows}")
        if not 1 <= self.order <= 12:
            raise FeatureSpecError(f"filter order must be 1..12, not {self.order}")
        bad = [m for m in self.measures if m not in MEASURES]
        if bad or not self.measures or len(set(self.measures)) != len(self.measures):
            raise FeatureSpecError(f"measures must be distinct names from {', '.join(MEASURES)}, not {list(self.measures)}")
        if self.estimator == "torcheeg":
            # torcheeg's BandDifferentialEntropy: order 5, causal lfilter; fixed so the digest says so
            object.__setattr__(self, "order", TORCHEEG_ORDER)
            object.__setattr__(self, "zero_phase", False)

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that change the numbers (taper for spectral, order/phase for filters)."""
        d: dict[str, Any] = {
            "bands": [[n, lo, hi] for n, lo, hi in self.bands],
            "estimator": self.estimator,
            "measures": list(self.measures),
            "smoothing": self.smoothing,
        }
        if self.estimator == "spectral":
            d["taper"] = self.taper
        else:
            d["order"] = self.order
            d["zero_phase"] = self.zero_phase
        if self.smoothing == "moving_average":
            d["smoothing_windows"] = self.smoothing_windows
        if self.smoothing == "lds":
            d["lds"] = {"V0": LDS_V0, "A": LDS_A, "T": LDS_T, "C": LDS_C, "sigma": LDS_SIGMA}
        d["definition_version"] = 1
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        kw: dict[str, Any] = {
            "bands": tuple((str(n), float(lo), float(hi)) for n, lo, hi in d["bands"]),
            "estimator": d["estimator"],
            "measures": tuple(d["measures"]),
            "smoothing": d.get("smoothing", "none"),
        }
        for key in ("taper", "order", "zero_phase", "smoothing_windows"):
            if key in d:
                kw[key] = d[key]
        return cls(**kw)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def default_name(self) -> str:
        return f"{self.estimator}-{self.digest()[:10]}"


# -- the spectral estimator -----------------------------------------------------------------------
def band_bins(n_samples: int, fs_hz: float, lo: float, hi: float) -> np.ndarray:
    """One-sided DFT bins ``k`` (frequency ``k * fs / n``) in ``[lo, hi)``; a band ending at the
    Nyquist rate also holds the Nyquist bin (even ``n``)."""
    k = np.arange(n_samples // 2 + 1)
    f = k * (fs_hz / n_samples)
    tol = 1e-9 * fs_hz / n_samples
    at_nyquist = hi >= fs_hz / 2 - tol
    inside = (f >= lo - tol) & ((f < hi - tol) | (at_nyquist & (f <= hi + tol)))
    return k[inside]


def taper_window(name: str, n: int) -> np.ndarray:
    if name == "boxcar":
        return np.ones(n)
    # periodic (DFT-even) Hann, as scipy.signal.get_window("hann", n) and periodogram use
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


@dataclass(frozen=True)
class SpectralPlan:
    """Precomputed tables of the two-stage DFT restricted to the bands' bins (see _spectral)."""

    n1: int
    n2: int
    step1_re: np.ndarray  # (K2, n1, n2): taper[i2*n1+i1] * cos(2 pi k2 i2 / n2)
    step1_im: np.ndarray  # (K2, n1, n2): taper[...] * -sin(...)
    taper_re: np.ndarray  # (K2, n1): the stage-1 transform of the taper (mean correction)
    taper_im: np.ndarray
    real_k2: np.ndarray  # (K2,) bool: k2 = 0 or n2 / 2, where the stage-1 output is real
    k2_of: np.ndarray  # (J,) row of the step-1 tables for each (bin, band) entry
    tw: np.ndarray  # (4, J, n1): step-2 twiddles a, b, d, e (see _spectral)
    band_of: np.ndarray  # (J,) band index of each entry
    scale: np.ndarray  # (J,) c_k / (n * sum(taper**2)), c_k = 1 at DC and Nyquist, else 2
    taper_sq: np.ndarray  # (n,) taper**2 / sum(taper**2) for the total power
    lanes: int  # rows per block


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _folded(k: np.ndarray, n2: int) -> np.ndarray:
    r = k % n2
    return np.minimum(r, n2 - r)


def choose_factors(n_samples: int, bins: np.ndarray) -> tuple[int, int]:
    """``n = n1 * n2`` minimizing the multiply-adds of the two stages (plus a per-loop overhead)."""
    best: tuple[float, int] | None = None
    n_entries = len(bins)
    for n1 in _divisors(n_samples):
        n2 = n_samples // n1
        k2 = np.unique(_folded(bins, n2))
        real = (k2 == 0) | (2 * k2 == n2)  # these rows cost half
        real_entries = int(np.isin(_folded(bins, n2), k2[real]).sum())
        fma = (2 * k2.size - int(real.sum())) * n1 * n2 + (4 * n_entries - 2 * real_entries) * n1
        loops = k2.size * n1 * (1 + n2 // 4) + n_entries * (3 + n1 // 4)
        cost = fma + 24.0 * loops  # measured: one lane-loop setup costs about 24 multiply-adds
        if best is None or cost < best[0]:
            best = (cost, n1)
    assert best is not None
    return best[1], n_samples // best[1]


@lru_cache(maxsize=64)
def spectral_plan(n_samples: int, fs_hz: float, bands: tuple[Band, ...], taper: str, dtype: str) -> SpectralPlan:
    entries = [(int(k), b) for b, (_, lo, hi) in enumerate(bands) for k in band_bins(n_samples, fs_hz, lo, hi)]
    for b, (name, lo, hi) in enumerate(bands):
        if not any(e[1] == b for e in entries):
            raise FeatureSpecError(
                f"band {name} {lo:g}-{hi:g} Hz holds no DFT bin of a {n_samples}-sample window at {fs_hz:g} Hz "
                f"(bin spacing {fs_hz / n_samples:g} Hz)"
            )
    bins = np.array([e[0] for e in entries], np.int64)
    n1, n2 = choose_factors(n_samples, bins)
    w = taper_window(taper, n_samples)
    k2_list = np.unique(_folded(bins, n2))
    i2 = np.arange(n2)
    ang = 2.0 * np.pi * np.outer(k2_list, i2) / n2  # (K2, n2)
    w_grid = w.reshape(n2, n1).T  # w_grid[i1, i2] = w[i2 * n1 + i1]
    s1_re = w_grid[None, :, :] * np.cos(ang)[:, None, :]
    s1_im = w_grid[None, :, :] * -np.sin(ang)[:, None, :]
    # X_k = sum_i1 Y[k mod n2, i1] exp(-2 pi i k i1 / n); for k mod n2 > n2/2 the stage-1 output is
    # the conjugate of the folded row (real input), which flips the sign of its imaginary part.
    r = bins % n2
    sign = np.where(r <= n2 - r, 1.0, -1.0)
    th = 2.0 * np.pi * np.outer(bins, np.arange(n1)) / n_samples
    tw = np.stack([np.cos(th), sign[:, None] * np.sin(th), sign[:, None] * np.cos(th), -np.sin(th)])
    ck = np.where((bins == 0) | (2 * bins == n_samples), 1.0, 2.0)
    w2 = float(np.sum(w * w))
    lanes = int(min(512, max(32, (65536 // n_samples) // 16 * 16)))
    dt = np.dtype(dtype)
    c = lambda a: np.ascontiguousarray(a, dtype=dt)  # noqa: E731
    return SpectralPlan(
        n1=n1,
        n2=n2,
        step1_re=c(s1_re),
        step1_im=c(s1_im),
        taper_re=c(s1_re.sum(axis=2)),
        taper_im=c(s1_im.sum(axis=2)),
        real_k2=(k2_list == 0) | (2 * k2_list == n2),
        k2_of=np.searchsorted(k2_list, _folded(bins, n2)).astype(np.int64),
        tw=c(tw),
        band_of=np.array([e[1] for e in entries], np.int64),
        scale=c(ck / (n_samples * w2)),
        taper_sq=c(w * w / w2),
        lanes=lanes,
    )


@numba.njit(parallel=True, cache=True, nogil=True)
def _spectral(x, p1r, p1i, twr, twi, real_k2, k2_of, tw, band_of, scale, wsq, n_bands, lanes, n_threads, power, total):  # pragma: no cover - compiled
    """Band variances of the rows of ``x`` (rows, n) by a DFT restricted to the bands' bins.

    Rows are processed in blocks of ``lanes``, transposed so that every inner loop runs over
    the block's rows (SIMD lanes) with scalar twiddles. With n = n1 * n2 and t = i2 * n1 + i1:
    stage 1, Y[k2, i1] = sum_i2 w[t] x[t] exp(-2 pi i k2 i2 / n2) for the folded k2 that the
    bins need; stage 2, X[k] = sum_i1 Y[k mod n2, i1] exp(-2 pi i k i1 / n). The window mean
    is removed in two parts (its float32 rounding subtracted before the transform, the rest
    corrected with the transform of the taper) so float32 keeps its precision under a DC offset.
    No fastmath: with it, the kernel just compiled and the same kernel loaded from numba's cache
    differed in the last bit (measured), and 1 and 2 worker processes must agree exactly.
    """
    n_rows, n = x.shape
    n_k2, n1, n2 = p1r.shape
    n_ent = k2_of.shape[0]
    stride = lanes + 8  # not a power of two: avoids cache-set conflicts between rows of T
    n_blocks = (n_rows + lanes - 1) // lanes
    n_threads = max(1, min(n_threads, n_blocks))
    for th in numba.prange(n_threads):
        cv = np.zeros(1, x.dtype)  # casts to the input's float type (numba has no dtype.type)
        s8 = np.zeros(8)
        zero = cv[0]
        T = np.empty((n, stride), x.dtype)
        yr = np.empty((n_k2, n1, stride), x.dtype)
        yi = np.empty((n_k2, n1, stride), x.dtype)
        acc = np.empty((n_bands, stride), x.dtype)
        xr = np.empty(stride, x.dtype)
        xi = np.empty(stride, x.dtype)
        m_lo = np.zeros(stride, x.dtype)
        mh = np.zeros(stride, x.dtype)
        pw = np.empty(stride, x.dtype)
        qw = np.empty(stride, x.dtype)
        for blk in range(th, n_blocks, n_threads):
            r0 = blk * lanes
            n_l = min(lanes, n_rows - r0)
            # rows: mean in float64, then the tapered power of the mean-free row
            for la in range(n_l):
                row = x[r0 + la]
                # eight partial sums: vectorizes without fastmath's reassociation
                for u in range(8):
                    s8[u] = 0.0
                t = 0
                while t + 8 <= n:
                    for u in range(8):
                        s8[u] += row[t + u]
                    t += 8
                s = 0.0
                while t < n:
                    s += row[t]
                    t += 1
                s += ((s8[0] + s8[1]) + (s8[2] + s8[3])) + ((s8[4] + s8[5]) + (s8[6] + s8[7]))
                mean = s / n
                cv[0] = mean
                m_hi = cv[0]
                mh[la] = m_hi
                m_lo[la] = mean - m_hi
            for la in range(n_l):
                row = x[r0 + la]
                mj = mh[la]
                for t in range(n):
                    T[t, la] = row[t] - mj
            for la in range(n_l, lanes):
                m_lo[la] = zero
                for t in range(n):
                    T[t, la] = zero
            # tapered power of the mean-free rows: sum (T - m_lo)^2 w^2 = p - 2 m_lo q + m_lo^2
            for la in range(lanes):
                pw[la] = zero
                qw[la] = zero
            t = 0
            while t + 3 < n:
                w0 = wsq[t]
                w1 = wsq[t + 1]
                w2 = wsq[t + 2]
                w3 = wsq[t + 3]
                v0 = T[t]
                v1 = T[t + 1]
                v2 = T[t + 2]
                v3 = T[t + 3]
                for la in range(lanes):
                    a0 = v0[la]
                    a1 = v1[la]
                    a2 = v2[la]
                    a3 = v3[la]
                    pw[la] += (a0 * a0 * w0 + a1 * a1 * w1) + (a2 * a2 * w2 + a3 * a3 * w3)
                    qw[la] += (a0 * w0 + a1 * w1) + (a2 * w2 + a3 * w3)
                t += 4
            while t < n:
                w0 = wsq[t]
                v0 = T[t]
                for la in range(lanes):
                    pw[la] += v0[la] * v0[la] * w0
                    qw[la] += v0[la] * w0
                t += 1
            for la in range(n_l):
                d = m_lo[la]
                total[r0 + la] = pw[la] - 2 * d * qw[la] + d * d
            # stage 1 (unrolled by 4 over i2: four multiply-adds per load and store)
            for q in range(n_k2):
                real = real_k2[q]  # k2 = 0 or n2/2: the stage-1 output is real (yi stays 0)
                for i1 in range(n1):
                    ar = yr[q, i1]
                    ai = yi[q, i1]
                    c0 = p1r[q, i1, 0]
                    s0 = p1i[q, i1, 0]
                    cr = twr[q, i1]
                    ci = twi[q, i1]
                    v0 = T[i1]
                    if real:
                        for la in range(lanes):
                            ar[la] = c0 * v0[la] - m_lo[la] * cr
                        i2 = 1
                        while i2 + 3 < n2:
                            c0 = p1r[q, i1, i2]
                            c1 = p1r[q, i1, i2 + 1]
                            c2 = p1r[q, i1, i2 + 2]
                            c3 = p1r[q, i1, i2 + 3]
                            v0 = T[i2 * n1 + i1]
                            v1 = T[(i2 + 1) * n1 + i1]
                            v2 = T[(i2 + 2) * n1 + i1]
                            v3 = T[(i2 + 3) * n1 + i1]
                            for la in range(lanes):
                                ar[la] += (c0 * v0[la] + c1 * v1[la]) + (c2 * v2[la] + c3 * v3[la])
                            i2 += 4
                        while i2 < n2:
                            c0 = p1r[q, i1, i2]
                            v0 = T[i2 * n1 + i1]
                            for la in range(lanes):
                                ar[la] += c0 * v0[la]
                            i2 += 1
                        continue
                    # the rest of the mean: subtract its transform (exact up to rounding)
                    for la in range(lanes):
                        ar[la] = c0 * v0[la] - m_lo[la] * cr
                        ai[la] = s0 * v0[la] - m_lo[la] * ci
                    i2 = 1
                    while i2 + 3 < n2:
                        c0 = p1r[q, i1, i2]
                        c1 = p1r[q, i1, i2 + 1]
                        c2 = p1r[q, i1, i2 + 2]
                        c3 = p1r[q, i1, i2 + 3]
                        s0 = p1i[q, i1, i2]
                        s1 = p1i[q, i1, i2 + 1]
                        s2 = p1i[q, i1, i2 + 2]
                        s3 = p1i[q, i1, i2 + 3]
                        v0 = T[i2 * n1 + i1]
                        v1 = T[(i2 + 1) * n1 + i1]
                        v2 = T[(i2 + 2) * n1 + i1]
                        v3 = T[(i2 + 3) * n1 + i1]
                        for la in range(lanes):
                            a0 = v0[la]
                            a1 = v1[la]
                            a2 = v2[la]
                            a3 = v3[la]
                            ar[la] += (c0 * a0 + c1 * a1) + (c2 * a2 + c3 * a3)
                            ai[la] += (s0 * a0 + s1 * a1) + (s2 * a2 + s3 * a3)
                        i2 += 4
                    while i2 < n2:
                        c0 = p1r[q, i1, i2]
                        s0 = p1i[q, i1, i2]
                        v0 = T[i2 * n1 + i1]
                        for la in range(lanes):
                            ar[la] += c0 * v0[la]
                            ai[la] += s0 * v0[la]
                        i2 += 1
            # stage 2, with the squared magnitudes summed per band
            acc[:, :] = zero
            for j in range(n_ent):
                q = k2_of[j]
                ta = tw[0, j]
                tb = tw[1, j]
                td = tw[2, j]
                te = tw[3, j]
                if real_k2[q]:  # half the work: X = sum_i1 Y (cos - i sin)
                    g = yr[q, 0]
                    a = ta[0]
                    e = te[0]
                    for la in range(lanes):
                        xr[la] = g[la] * a
                        xi[la] = g[la] * e
                    i1 = 1
                    while i1 + 3 < n1:
                        a0 = ta[i1]
                        a1 = ta[i1 + 1]
                        a2 = ta[i1 + 2]
                        a3 = ta[i1 + 3]
                        e0 = te[i1]
                        e1 = te[i1 + 1]
                        e2 = te[i1 + 2]
                        e3 = te[i1 + 3]
                        g0 = yr[q, i1]
                        g1 = yr[q, i1 + 1]
                        g2 = yr[q, i1 + 2]
                        g3 = yr[q, i1 + 3]
                        for la in range(lanes):
                            u0 = g0[la]
                            u1 = g1[la]
                            u2 = g2[la]
                            u3 = g3[la]
                            xr[la] += (u0 * a0 + u1 * a1) + (u2 * a2 + u3 * a3)
                            xi[la] += (u0 * e0 + u1 * e1) + (u2 * e2 + u3 * e3)
                        i1 += 4
                    while i1 < n1:
                        a = ta[i1]
                        e = te[i1]
                        g = yr[q, i1]
                        for la in range(lanes):
                            xr[la] += g[la] * a
                            xi[la] += g[la] * e
                        i1 += 1
                    sc = scale[j]
                    out = acc[band_of[j]]
                    for la in range(lanes):
                        out[la] += (xr[la] * xr[la] + xi[la] * xi[la]) * sc
                    continue
                g = yr[q, 0]
                h = yi[q, 0]
                a = ta[0]
                b = tb[0]
                d_ = td[0]
                e = te[0]
                for la in range(lanes):
                    xr[la] = g[la] * a + h[la] * b
                    xi[la] = h[la] * d_ + g[la] * e
                i1 = 1
                while i1 + 3 < n1:
                    a0 = ta[i1]
                    a1 = ta[i1 + 1]
                    a2 = ta[i1 + 2]
                    a3 = ta[i1 + 3]
                    b0 = tb[i1]
                    b1 = tb[i1 + 1]
                    b2 = tb[i1 + 2]
                    b3 = tb[i1 + 3]
                    d0 = td[i1]
                    d1 = td[i1 + 1]
                    d2 = td[i1 + 2]
                    d3 = td[i1 + 3]
                    e0 = te[i1]
                    e1 = te[i1 + 1]
                    e2 = te[i1 + 2]
                    e3 = te[i1 + 3]
                    g0 = yr[q, i1]
                    g1 = yr[q, i1 + 1]
                    g2 = yr[q, i1 + 2]
                    g3 = yr[q, i1 + 3]
                    h0 = yi[q, i1]
                    h1 = yi[q, i1 + 1]
                    h2 = yi[q, i1 + 2]
                    h3 = yi[q, i1 + 3]
                    for la in range(lanes):
                        u0 = g0[la]
                        u1 = g1[la]
                        u2 = g2[la]
                        u3 = g3[la]
                        z0 = h0[la]
                        z1 = h1[la]
                        z2 = h2[la]
                        z3 = h3[la]
                        xr[la] += ((u0 * a0 + z0 * b0) + (u1 * a1 + z1 * b1)) + ((u2 * a2 + z2 * b2) + (u3 * a3 + z3 * b3))
                        xi[la] += ((z0 * d0 + u0 * e0) + (z1 * d1 + u1 * e1)) + ((z2 * d2 + u2 * e2) + (z3 * d3 + u3 * e3))
                    i1 += 4
                while i1 < n1:
                    a = ta[i1]
                    b = tb[i1]
                    d_ = td[i1]
                    e = te[i1]
                    g = yr[q, i1]
                    h = yi[q, i1]
                    for la in range(lanes):
                        xr[la] += g[la] * a + h[la] * b
                        xi[la] += h[la] * d_ + g[la] * e
                    i1 += 1
                sc = scale[j]
                out = acc[band_of[j]]
                for la in range(lanes):
                    out[la] += (xr[la] * xr[la] + xi[la] * xi[la]) * sc
            for la in range(n_l):
                for b in range(n_bands):
                    power[r0 + la, b] = acc[b, la]


# -- the filter estimators ------------------------------------------------------------------------
@lru_cache(maxsize=64)
def filter_design(fs_hz: float, bands: tuple[Band, ...], order: int, torcheeg: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """``(coefficients, initial_state, padlen)`` for every band.

    Second-order sections ``(bands, order, 6)`` with scipy's ``sosfilt_zi`` for the zero-phase and
    causal filters; for torcheeg, its transfer function ``b, a`` as ``(bands, 2, 2 * order + 1)``,
    designed exactly as torcheeg does (``butter(order, [lo / nyq, hi / nyq], "band")``).
    """
    nyq = 0.5 * fs_hz
    if torcheeg:
        ba = np.stack([np.stack(butter(order, [lo / nyq, hi / nyq], btype="band")) for _, lo, hi in bands])
        return ba, np.zeros((len(bands), 0, 2)), 0
    sos = np.stack([butter(order, [lo, hi], btype="band", fs=fs_hz, output="sos") for _, lo, hi in bands])
    zi = np.stack([sosfilt_zi(s) for s in sos])
    # scipy.signal.sosfiltfilt's default odd-extension length
    ntaps = 2 * sos.shape[1] + 1 - min(int((sos[:, :, 2] == 0).sum(axis=1).min()), int((sos[:, :, 5] == 0).sum(axis=1).min()))
    return sos, zi, 3 * ntaps


@numba.njit(parallel=True, cache=True, nogil=True)
def _filter_bank(x, coef, zi, padlen, mode, lanes, n_threads, power, total):  # pragma: no cover - compiled
    """Variance of each row of ``x`` (rows, n) after each band's filter, in float64.

    ``mode`` 0: causal second-order sections from a zero state (scipy ``sosfilt``); 1: zero-phase
    sections, scipy ``sosfiltfilt`` exactly (odd extension of ``padlen`` samples, steady-state
    initial conditions, forward then backward); 2: transfer function ``b, a`` in transposed
    direct form II from a zero state (scipy ``lfilter``). Rows are SIMD lanes, as in _spectral;
    each section runs over the whole block before the next (plain multiply-adds, no
    reassociation, so the arithmetic is scipy's).
    """
    n_rows, n = x.shape
    n_bands = coef.shape[0]
    n_ext = n + 2 * padlen
    stride = lanes + 8
    n_blocks = (n_rows + lanes - 1) // lanes
    n_threads = max(1, min(n_threads, n_blocks))
    for th in numba.prange(n_threads):
        ext = np.empty((n_ext, stride))
        y = np.empty((n_ext, stride))
        n_state = coef.shape[2] - 1 if mode == 2 else 2
        z = np.empty((n_state, stride))
        out = np.empty(stride)
        s1 = np.empty(stride)
        s2 = np.empty(stride)
        for blk in range(th, n_blocks, n_threads):
            r0 = blk * lanes
            n_l = min(lanes, n_rows - r0)
            for la in range(n_l):
                row = x[r0 + la]
                m = 0.0
                for t in range(n):
                    m += row[t]
                m /= n
                v2 = 0.0
                for t in range(n):
                    d = row[t] - m
                    v2 += d * d
                total[r0 + la] = v2 / n
                for t in range(n):
                    ext[padlen + t, la] = row[t]
                for t in range(padlen):  # odd extension, as scipy.signal.odd_ext
                    ext[t, la] = 2.0 * row[0] - row[padlen - t]
                    ext[padlen + n + t, la] = 2.0 * row[n - 1] - row[n - 2 - t]
            for la in range(n_l, lanes):
                for t in range(n_ext):
                    ext[t, la] = 0.0
            for b in range(n_bands):
                y[:, :] = ext
                if mode == 2:
                    bb = coef[b, 0]
                    aa = coef[b, 1]
                    m_ = bb.shape[0]
                    z[:, :] = 0.0
                    for t in range(n):
                        yt = y[t]
                        for la in range(lanes):
                            out[la] = (bb[0] * yt[la] + z[0, la]) / aa[0]
                        for i in range(1, m_ - 1):
                            zi_ = z[i - 1]
                            zn = z[i]
                            for la in range(lanes):
                                zi_[la] = bb[i] * yt[la] + zn[la] - aa[i] * out[la]
                        zl = z[m_ - 2]
                        for la in range(lanes):
                            zl[la] = bb[m_ - 1] * yt[la] - aa[m_ - 1] * out[la]
                            yt[la] = out[la]
                    first = 0
                else:
                    passes = 2 if mode == 1 else 1
                    for pas in range(passes):
                        t0 = 0 if pas == 0 else n_ext - 1
                        for la in range(lanes):
                            out[la] = y[t0, la]  # the cascade's first input sample
                        # one section at a time over the whole block (measured faster than
                        # all sections per sample: fewer, longer SIMD loops)
                        for sec in range(coef.shape[1]):
                            b0 = coef[b, sec, 0]
                            b1 = coef[b, sec, 1]
                            b2 = coef[b, sec, 2]
                            a1 = coef[b, sec, 4]
                            a2 = coef[b, sec, 5]
                            z0 = z[0]
                            z1 = z[1]
                            # zero state (causal), or the steady state for the first input
                            # sample (zero-phase: sosfilt_zi * x0, as scipy sosfiltfilt)
                            c0 = zi[b, sec, 0] if mode == 1 else 0.0
                            c1 = zi[b, sec, 1] if mode == 1 else 0.0
                            for la in range(lanes):
                                z0[la] = c0 * out[la]
                                z1[la] = c1 * out[la]
                            for k in range(n_ext if mode == 1 else n):
                                yt = y[k if pas == 0 else n_ext - 1 - k]
                                for la in range(lanes):
                                    v = yt[la]
                                    o = b0 * v + z0[la]
                                    z0[la] = b1 * v - a1 * o + z1[la]
                                    z1[la] = b2 * v - a2 * o
                                    yt[la] = o
                    first = padlen
                for la in range(lanes):
                    s1[la] = 0.0
                for t in range(first, first + n):
                    yt = y[t]
                    for la in range(lanes):
                        s1[la] += yt[la]
                for la in range(lanes):
                    s1[la] /= n
                    s2[la] = 0.0
                for t in range(first, first + n):
                    yt = y[t]
                    for la in range(lanes):
                        d = yt[la] - s1[la]
                        s2[la] += d * d
                for la in range(n_l):
                    power[r0 + la, b] = s2[la] / n


# -- public estimators ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BandPower:
    """Band variances ``power`` (windows, channels, bands) and the window variance ``total``
    (windows, channels), both in the input's unit squared."""

    power: np.ndarray
    total: np.ndarray
    estimator: str

    def measure(self, name: str) -> np.ndarray:
        """``de``, ``log_power`` (natural log), ``power`` or ``relative_power``, in float64 (so a
        result does not depend on whether the powers were kept in float32 or float64)."""
        power = np.asarray(self.power, np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            if name == "power":
                return power
            if name == "log_power":
                return np.log(power)
            if name == "relative_power":
                return power / np.asarray(self.total, np.float64)[..., None]
            if name == "de":
                if self.estimator == "torcheeg":
                    # torcheeg 1.1.3: 1/2 log2(2 pi e np.var(lfilter(b, a, x))), in bits
                    return 0.5 * np.log2(2.0 * np.pi * np.e * power)
                return 0.5 * np.log(2.0 * np.pi * np.e * power)
        raise FeatureSpecError(f"unknown measure {name!r}; choose from {', '.join(MEASURES)}")


def _as_windows(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise FeatureSpecError(f"expected (windows, channels, samples) or (channels, samples), got shape {a.shape}")
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    return np.ascontiguousarray(a)


def band_power(
    x: np.ndarray,
    fs_hz: float,
    bands: Any = DEFAULT_BANDS,
    estimator: str = "spectral",
    taper: str = "hann",
    order: int = 4,
    zero_phase: bool = True,
) -> BandPower:
    """Band variances of ``x`` (windows, channels, samples), float32 or float64, in one pass.

    The result has the input's float type for ``spectral`` (float32 input is accumulated in
    float32) and float64 for the filter estimators (IIR states need it).
    """
    spec = FeatureSpec(bands=tuple(bands), estimator=estimator, taper=taper, order=order, zero_phase=zero_phase, measures=("power",))
    return _band_power(_as_windows(x), float(fs_hz), spec)


def _band_power(w: np.ndarray, fs_hz: float, spec: FeatureSpec) -> BandPower:
    bands = check_bands(spec.bands, fs_hz, spec.estimator)
    n_w, n_ch, n = w.shape
    rows = w.reshape(n_w * n_ch, n)
    nb = len(bands)
    if spec.estimator == "spectral":
        if n < 2:
            raise FeatureSpecError(f"windows of {n} samples are too short")
        plan = spectral_plan(n, fs_hz, bands, spec.taper, w.dtype.str)
        power = np.empty((rows.shape[0], nb), w.dtype)
        total = np.empty(rows.shape[0], w.dtype)
        if rows.shape[0]:
            _spectral(rows, plan.step1_re, plan.step1_im, plan.taper_re, plan.taper_im, plan.real_k2, plan.k2_of, plan.tw,
                      plan.band_of, plan.scale, plan.taper_sq, nb, plan.lanes, numba.get_num_threads(), power, total)  # fmt: skip
    else:
        torcheeg = spec.estimator == "torcheeg"
        coef, zi, padlen = filter_design(fs_hz, bands, spec.order, torcheeg)
        mode = 2 if torcheeg else (1 if spec.zero_phase else 0)
        if mode == 1 and n <= padlen:
            raise FeatureSpecError(f"zero-phase filtering needs windows longer than {padlen} samples, not {n}")
        power = np.empty((rows.shape[0], nb))
        total = np.empty(rows.shape[0])
        lanes = 64
        if rows.shape[0]:
            # float64 in: the arithmetic is float64 anyway, and one specialization compiles once
            rows64 = np.ascontiguousarray(rows, np.float64)
            _filter_bank(rows64, coef, zi, padlen if mode == 1 else 0, mode, lanes, numba.get_num_threads(), power, total)
    return BandPower(power.reshape(n_w, n_ch, nb), total.reshape(n_w, n_ch), spec.estimator)


def differential_entropy(
    x: np.ndarray,
    fs_hz: float,
    bands: Any = DEFAULT_BANDS,
    estimator: str = "spectral",
    taper: str = "hann",
    order: int = 4,
    zero_phase: bool = True,
) -> np.ndarray:
    """DE = 0.5 ln(2 pi e var) per (window, channel, band) of ``x`` (windows, channels, samples).

    ``estimator="torcheeg"`` returns torcheeg's ``BandDifferentialEntropy`` numbers instead
    (torcheeg 1.1.3: order-5 causal Butterworth ``lfilter``, then 0.5 log2(2 pi e var), in bits).
    """
    return band_power(x, fs_hz, bands, estimator, taper, order, zero_phase).measure("de")


# -- smoothing across windows ---------------------------------------------------------------------
def moving_average(f: np.ndarray, n: int = 5, segments: np.ndarray | None = None) -> np.ndarray:
    """Centred moving average over ``n`` (odd) consecutive windows along axis 0, shrinking at
    the ends of each segment (``segments``: a label per window; windows of different labels
    never mix)."""
    if n < 1 or n % 2 == 0:
        raise FeatureSpecError(f"moving-average length must be odd and positive, not {n}")
    out = np.empty(f.shape, np.float64)
    for lo, hi in _runs(f.shape[0], segments):
        seg = np.asarray(f[lo:hi], np.float64)
        c = np.concatenate([np.zeros((1, *seg.shape[1:])), np.cumsum(seg, axis=0)])
        i = np.arange(hi - lo)
        a = np.maximum(i - n // 2, 0)
        b = np.minimum(i + n // 2 + 1, hi - lo)
        out[lo:hi] = (c[b] - c[a]) / (b - a).reshape(-1, *([1] * (seg.ndim - 1)))
    return out.astype(f.dtype, copy=False)


def lds_gains(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kalman gains ``K``, smoother gains ``J`` and the first-step gain of the SEED LDS for a
    sequence of ``n`` windows: the variances do not depend on the data, only on ``n``."""
    k = np.empty(n)
    v = np.empty(n)
    p = np.empty(n)
    k[0] = LDS_V0 * LDS_C / (LDS_C * LDS_V0 * LDS_C + LDS_SIGMA)
    v[0] = (1 - k[0] * LDS_C) * LDS_V0
    for i in range(1, n):
        p[i - 1] = LDS_A * v[i - 1] * LDS_A + LDS_T
        k[i] = p[i - 1] * LDS_C / (LDS_C * p[i - 1] * LDS_C + LDS_SIGMA)
        v[i] = (1 - k[i] * LDS_C) * p[i - 1]
    jg = np.zeros(n)
    for i in range(n - 1):
        jg[i] = v[i] * LDS_A / p[i]
    return k, jg, v


def lds_smooth(f: np.ndarray, segments: np.ndarray | None = None) -> np.ndarray:
    """SEED's linear dynamical system smoother (Kalman filter + RTS smoother) along axis 0,
    every other element on its own, per segment; parameters ``LDS_*`` above."""
    out = np.empty(f.shape, np.float64)
    for lo, hi in _runs(f.shape[0], segments):
        seg = np.asarray(f[lo:hi], np.float64)
        n = seg.shape[0]
        k, jg, _ = lds_gains(n)
        u = np.empty_like(seg)
        u0 = seg.mean(axis=0)
        u[0] = u0 + k[0] * (seg[0] - LDS_C * u0)
        for i in range(1, n):
            u[i] = LDS_A * u[i - 1] + k[i] * (seg[i] - LDS_C * LDS_A * u[i - 1])
        for i in range(n - 2, -1, -1):
            u[i] = u[i] + jg[i] * (u[i + 1] - LDS_A * u[i])
        out[lo:hi] = u
    return out.astype(f.dtype, copy=False)


def smooth(f: np.ndarray, method: str, n: int = 5, segments: np.ndarray | None = None) -> np.ndarray:
    if method == "none":
        return f
    if method == "moving_average":
        return moving_average(f, n, segments)
    if method == "lds":
        return lds_smooth(f, segments)
    raise FeatureSpecError(f"smoothing {method!r} is not one of {', '.join(SMOOTHINGS)}")


def _runs(n: int, segments: np.ndarray | None) -> list[tuple[int, int]]:
    if n == 0:
        return []
    if segments is None:
        return [(0, n)]
    seg = np.asarray(segments).reshape(-1)
    cuts = np.flatnonzero(seg[1:] != seg[:-1]) + 1
    edges = [0, *cuts.tolist(), n]
    return list(zip(edges[:-1], edges[1:], strict=True))


def compute(x: np.ndarray, fs_hz: float, spec: FeatureSpec, segments: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every measure of ``spec`` for windows ``x`` (windows, channels, samples), float32 arrays
    (windows, channels, bands), smoothed across consecutive windows of each segment if asked
    (``segments``: one label per window, e.g. its recording; SEED smooths within a trial)."""
    return measures(_band_power(_as_windows(x), float(fs_hz), spec), spec, segments)


def measures(bp: BandPower, spec: FeatureSpec, segments: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The measures of ``spec`` from band powers, each smoothed on its own (as SEED's
    ``de_LDS`` and ``psd_LDS``), as float32."""
    out = {}
    for m in spec.measures:
        v = bp.measure(m)
        out[m] = np.asarray(smooth(v, spec.smoothing, spec.smoothing_windows, segments), np.float32)
    return out


def check_spec(spec: FeatureSpec, fs_hz: float, n_samples: int) -> None:
    """Raise :class:`FeatureSpecError` now if ``spec`` cannot run on these windows."""
    bands = check_bands(spec.bands, fs_hz, spec.estimator)
    if spec.estimator == "spectral":
        spectral_plan(n_samples, float(fs_hz), bands, spec.taper, "<f4")
    elif spec.estimator == "filter" and spec.zero_phase:
        _, _, padlen = filter_design(float(fs_hz), bands, spec.order, False)
        if n_samples <= padlen:
            raise FeatureSpecError(f"zero-phase filtering needs windows longer than {padlen} samples, not {n_samples}")

