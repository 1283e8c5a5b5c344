"""Zero-phase band-pass and notch filtering, applied in the frequency domain.

The response is |H(f)|^2 of a Butterworth band-pass times |H(f)|^2 of an IIR notch:
exactly the magnitude that forward-backward filtering (``sosfiltfilt``) applies,
with zero phase. Multiplying FFT blocks with odd-reflected padding lets long
recordings be filtered block by block; blocks overlap by :func:`FilterSpec.margin`
samples, beyond which the impulse response has decayed below ``tol``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft as sfft
from scipy.signal import butter, freqz, iirnotch, sosfreqz


@dataclass(frozen=True)
class ZeroPhaseFilter:
    fs_hz: float
    highpass_hz: float | None = None
    lowpass_hz: float | None = None
    order: int = 4
    notch_hz: float | None = None
    notch_q: float = 30.0

    @property
    def is_identity(self) -> bool:
        return self.highpass_hz is None and self.lowpass_hz is None and self.notch_hz is None

    def response(self, n_fft: int) -> np.ndarray:
        return _response(self, n_fft)

    def margin(self, tol: float = 1e-7) -> int:
        """Samples beyond which the zero-phase impulse response stays under ``tol`` x peak."""
        return _margin(self, tol)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Filter float32 ``x`` (channels, samples); edges padded by odd reflection."""
        if self.is_identity:
            return x
        buf, pad = self.buffer(x.shape[0], x.shape[-1])
        buf[:, pad : pad + x.shape[-1]] = x
        return self.apply_buffer(buf, pad, x.shape[-1])

    def buffer(self, n_channels: int, n: int) -> tuple[np.ndarray, int]:
        """A zeroed FFT buffer for ``n`` samples and the offset where they go.

        Callers write the signal into ``buf[:, pad:pad + n]`` (saves a copy), then
        call :meth:`apply_buffer`.
        """
        pad = min(self.margin(), max(n - 1, 0))
        # a margin of zeros after the pads keeps the circular wrap of the (not quite
        # finite) impulse response from folding one end of the block onto the other
        n_fft = sfft.next_fast_len(n + 2 * pad + self.margin(), real=True)
        return np.zeros((n_channels, n_fft), np.float32), pad

    def apply_buffer(self, buf: np.ndarray, pad: int, n: int) -> np.ndarray:
        """Filter the samples in ``buf[:, pad:pad + n]``, transforming ``buf`` in place."""
        n_fft = buf.shape[1]
        x = buf[:, pad : pad + n]
        if pad:
            buf[:, :pad] = 2 * x[:, :1] - x[:, pad:0:-1]
            buf[:, pad + n : pad + n + pad] = 2 * x[:, -1:] - x[:, -2 : -pad - 2 : -1]
        spectrum = sfft.rfft(buf, axis=1, workers=-1, overwrite_x=True)
        spectrum *= self.response(n_fft)
        y = sfft.irfft(spectrum, n=n_fft, axis=1, workers=-1, overwrite_x=True)
        return y[:, pad : pad + n]


@lru_cache(maxsize=32)
def _response(spec: ZeroPhaseFilter, n_fft: int) -> np.ndarray:
    freqs = np.fft.rfftfreq(n_fft, d=1.0 / spec.fs_hz)
    gain = np.ones(freqs.size)
    nyquist = spec.fs_hz / 2
    hp, lp = spec.highpass_hz, spec.lowpass_hz
    if hp is not None or lp is not None:
        if hp is not None and lp is not None:
            sos = butter(spec.order, [hp, lp], btype="bandpass", fs=spec.fs_hz, output="sos")
        elif hp is not None:
            sos = butter(spec.order, hp, btype="highpass", fs=spec.fs_hz, output="sos")
        else:
            sos = butter(spec.order, lp, btype="lowpass", fs=spec.fs_hz, output="sos")
        _, h = sosfreqz(sos, worN=freqs, fs=spec.fs_hz)
        gain *= np.abs(h) ** 2
    if spec.notch_hz is not None and spec.notch_hz < nyquist:
        b, a = iirnotch(spec.notch_hz, spec.notch_q, fs=spec.fs_hz)
        _, h = freqz(b, a, worN=freqs, fs=spec.fs_hz)
        gain *= np.abs(h) ** 2
    return gain.astype(np.float32)


@lru_cache(maxsize=32)
def _margin(spec: ZeroPhaseFilter, tol: float) -> int:
    if spec.is_identity:
        return 0
    n_fft = 1 << 20
    while n_fft < 64 * spec.fs_hz:  # at least a minute of lag
        n_fft <<= 1
    impulse = np.fft.irfft(_response(spec, n_fft).astype(np.float64), n=n_fft)
    tail = np.abs(impulse[: n_fft // 2])
    above = np.nonzero(tail > tol * tail.max())[0]
    return int(above[-1]) + 1 if above.size else 1
