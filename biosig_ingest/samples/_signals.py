"""Synthetic physiological signals for the corpus replicas.
Plausible enough to exercise filters, montages and QC; not physiology models."""

from __future__ import annotations

import numpy as np

# Cardiac dipole components per beat: (name, delay_s, width_s, amplitude_mV, direction x/y/z).
# x points to the patient's left, y inferior, z anterior; the frontal plane is (x, y).
_BEAT_WAVES = (
    ("P", -0.16, 0.022, 0.14, (0.55, 0.80, -0.10)),
    ("Q", -0.035, 0.010, 0.10, (-0.40, -0.30, 0.55)),
    ("R", 0.0, 0.011, 1.0, None),  # along the record's QRS axis
    ("S", 0.035, 0.012, 0.30, (-0.35, -0.45, 0.70)),
    ("T", 0.26, 0.055, 0.30, None),  # roughly concordant with the QRS axis
)

# Precordial lead directions: angle in the transverse plane from the left (x) towards anterior (z).
_PRECORDIAL_ANGLES_DEG = (120.0, 95.0, 75.0, 55.0, 30.0, 0.0)

ECG_LEADS = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")


def colored_noise(
    rng: np.random.Generator,
    n_channels: int,
    n_samples: int,
    fs_hz: float,
    *,
    exponent: float = 1.0,
    f_min_hz: float = 0.5,
) -> np.ndarray:
    """Unit-variance noise with a 1/f**exponent power spectrum above `f_min_hz`, (channels, samples)."""
    white = rng.standard_normal((n_channels, n_samples))
    spectrum = np.fft.rfft(white, axis=-1)
    freqs = np.fft.rfftfreq(n_samples, d=1.0 / fs_hz)
    gain = np.zeros_like(freqs)
    # Nothing below f_min_hz: real EEG amplifiers high-pass, and a DC term would dominate the RMS.
    keep = freqs >= f_min_hz
    gain[keep] = freqs[keep] ** (-exponent / 2.0)
    x = np.fft.irfft(spectrum * gain, n=n_samples, axis=-1)
    return x / x.std(axis=-1, keepdims=True)


def eeg_background(
    rng: np.random.Generator,
    electrodes: list[str] | tuple[str, ...],
    n_samples: int,
    fs_hz: float,
) -> np.ndarray:
    """Resting EEG in uV, (channels, samples): 1/f background, 10 Hz alpha over occipital sites.

    `electrodes` are upper-case 10-20 names (TUH spelling: O1, PZ, T5 ...); the total RMS of
    each channel lies between about 10 and 40 uV.
    """
    n_channels = len(electrodes)
    t = np.arange(n_samples) / fs_hz
    own = colored_noise(rng, n_channels, n_samples, fs_hz, exponent=1.6)
    # A shared component makes neighbouring REF channels correlate as they do on a real cap.
    common = colored_noise(rng, 1, n_samples, fs_hz, exponent=1.6)
    rms_uv = rng.uniform(10.0, 25.0, size=(n_channels, 1))
    x = rms_uv * (0.85 * own + 0.5 * common) / np.hypot(0.85, 0.5)

    alpha_gain = {"O1": 1.0, "O2": 1.0, "P3": 0.5, "P4": 0.5, "PZ": 0.5, "T5": 0.4, "T6": 0.4}
    # Alpha waxes and wanes over a few seconds instead of being a stationary sinusoid.
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 0.08 * t + rng.uniform(0, 2 * np.pi))
    phase = rng.uniform(0, 2 * np.pi)
    alpha = envelope * np.sin(2 * np.pi * 10.0 * t + phase)
    peak_uv = rng.uniform(15.0, 25.0)
    for i, name in enumerate(electrodes):
        gain = alpha_gain.get(name.upper())
        if gain is not None:
            x[i] += gain * peak_uv * alpha
    return x


def beat_times(
    rng: np.random.Generator, duration_s: float, heart_rate_bpm: float, *, rr_jitter: float = 0.03
) -> np.ndarray:
    """R-peak times in seconds for a rhythm of `heart_rate_bpm` with relative RR jitter."""
    rr_s = 60.0 / heart_rate_bpm
    # Start before 0 so the first beat can be cut, as in a real 10 s strip.
    times = [rng.uniform(-0.5 * rr_s, 0.5 * rr_s)]
    while times[-1] < duration_s + rr_s:
        times.append(times[-1] + rr_s * (1.0 + rr_jitter * rng.standard_normal()))
    return np.asarray(times)


def heart_vector(
    rng: np.random.Generator,
    n_samples: int,
    fs_hz: float,
    *,
    heart_rate_bpm: float,
    qrs_axis_deg: float = 60.0,
    rr_jitter: float = 0.03,
    p_waves: bool = True,
) -> np.ndarray:
    """Cardiac dipole in mV, (3, samples), as a sum of Gaussian P, QRS and T waves per beat."""
    t = np.arange(n_samples) / fs_hz
    axis = np.deg2rad(qrs_axis_deg)
    qrs_dir = np.array([np.cos(axis), np.sin(axis), -0.30])
    t_dir = qrs_dir + np.array([0.1, -0.1, 0.4])
    r_amp = rng.uniform(0.9, 1.4)
    vector = np.zeros((3, n_samples))
    for beat in beat_times(rng, n_samples / fs_hz, heart_rate_bpm, rr_jitter=rr_jitter):
        for name, delay_s, width_s, amp_mv, direction in _BEAT_WAVES:
            if name == "P" and not p_waves:
                continue
            if name == "R":
                direction, amp_mv = qrs_dir, r_amp  # type: ignore[assignment]
            elif name == "T":
                direction = t_dir
            centre = beat + delay_s
            lo, hi = np.searchsorted(t, [centre - 5 * width_s, centre + 5 * width_s])
            if hi <= lo:
                continue
            wave = amp_mv * np.exp(-0.5 * ((t[lo:hi] - centre) / width_s) ** 2)
            unit = np.asarray(direction, dtype=float)
            vector[:, lo:hi] += np.outer(unit / np.linalg.norm(unit), wave)
    return vector


def ecg_12lead(
    rng: np.random.Generator,
    n_samples: int,
    fs_hz: float,
    *,
    heart_rate_bpm: float,
    qrs_axis_deg: float = 60.0,
    rr_jitter: float = 0.03,
    p_waves: bool = True,
    noise_mv: float = 0.01,
    wander_mv: float = 0.08,
) -> np.ndarray:
    """Standard 12-lead ECG in mV, (samples, 12), leads in `ECG_LEADS` order.

    Noise and baseline wander are added to I, II and the chest leads only; III, aVR, aVL and aVF
    are then derived from I and II, so Einthoven's and Goldberger's relations hold exactly.
    """
    t = np.arange(n_samples) / fs_hz
    d = heart_vector(
        rng,
        n_samples,
        fs_hz,
        heart_rate_bpm=heart_rate_bpm,
        qrs_axis_deg=qrs_axis_deg,
        rr_jitter=rr_jitter,
        p_waves=p_waves,
    )

    def wander() -> np.ndarray:
        f_hz = rng.uniform(0.1, 0.35)
        return (
            wander_mv * rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * f_hz * t + rng.uniform(0, 6.3))
        )

    def noise() -> np.ndarray:
        return noise_mv * rng.standard_normal(n_samples)

    lead_i = d[0] + wander() + noise()
    lead_ii = 0.5 * d[0] + (np.sqrt(3) / 2) * d[1] + wander() + noise()
    limb = [
        lead_i,
        lead_ii,
        lead_ii - lead_i,  # III
        -(lead_i + lead_ii) / 2,  # aVR
        lead_i - lead_ii / 2,  # aVL
        lead_ii - lead_i / 2,  # aVF
    ]
    chest = []
    for angle in np.deg2rad(_PRECORDIAL_ANGLES_DEG):
        unit = np.array([np.cos(angle), 0.1, np.sin(angle)])
        # Chest electrodes sit close to the heart: larger deflections than the limb leads.
        chest.append(1.3 * unit @ d + wander() + noise())
    return np.stack(limb + chest, axis=1)


def quantize(
    physical: np.ndarray,
    physical_min: float,
    physical_max: float,
    digital_min: int = -32768,
    digital_max: int = 32767,
) -> np.ndarray:
    """Physical values to integer ADC counts with the EDF linear map, rounded and clipped (int32)."""
    scale = (digital_max - digital_min) / (physical_max - physical_min)
    counts = np.rint((physical - physical_min) * scale + digital_min)
    return np.clip(counts, digital_min, digital_max).astype(np.int32)
