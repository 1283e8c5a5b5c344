"""Differential entropy and band power: numba kernels pinned by SciPy, and feature sets in a store."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from scipy.signal import butter, lfilter, periodogram, sosfilt, sosfiltfilt, sosfreqz
from scipy.special import digamma, polygamma
from typer.testing import CliRunner

from biosig_ingest import open_store
from biosig_ingest.cli import app
from biosig_ingest.features import (
    DEFAULT_BANDS,
    FeatureSetError,
    FeatureSpec,
    FeatureSpecError,
    band_power,
    compute,
    compute_features,
    differential_entropy,
    feature_sets,
    lds_smooth,
    moving_average,
    parse_bands,
    read_features,
)
from biosig_ingest.features.de import band_bins
from biosig_ingest.features.store import compute_shard
from biosig_ingest.store.inspect import validate

# A band that ends at the Nyquist rate holds the Nyquist bin (even windows).
EDGE = ("edge", 40.0, 50.0)
BANDS = (*DEFAULT_BANDS[:4], ("gamma", 31.0, 40.0), EDGE)
RTOL = {np.float64: 1e-4, np.float32: 1e-3}


def _signals(n_samples: int, dtype, seed: int = 0) -> np.ndarray:
    """Noise plus an offset (float32 must keep its precision under DC) plus a slow drift."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / 100.0
    x = 20.0 * rng.standard_normal((6, 4, n_samples)) + 300.0 + 15.0 * np.sin(2 * np.pi * 0.3 * t)
    return x.astype(dtype)


def _scipy_spectral(x: np.ndarray, fs: float, taper: str, bands) -> np.ndarray:
    f, pxx = periodogram(x.astype(np.float64), fs=fs, window=taper, detrend="constant", axis=-1)
    n = x.shape[-1]
    return np.stack([pxx[..., band_bins(n, fs, lo, hi)].sum(-1) * fs / n for _, lo, hi in bands], -1)


def _scipy_filter(x: np.ndarray, fs: float, order: int, zero_phase: bool, bands) -> np.ndarray:
    out = []
    for _, lo, hi in bands:
        sos = butter(order, [lo, hi], btype="band", fs=fs, output="sos")
        y = sosfiltfilt(sos, x.astype(np.float64), axis=-1) if zero_phase else sosfilt(sos, x.astype(np.float64), axis=-1)
        out.append(y.var(axis=-1))
    return np.stack(out, -1)


def _torcheeg_definition(x: np.ndarray, fs: float, bands) -> np.ndarray:
    """torcheeg 1.1.3 BandDifferentialEntropy, written out: butter(5, [lo/nyq, hi/nyq]), lfilter, log2."""
    nyq = 0.5 * fs
    out = []
    for _, lo, hi in bands:
        b, a = butter(5, [lo / nyq, hi / nyq], btype="band")
        out.append(0.5 * np.log2(2 * np.pi * np.e * np.var(lfilter(b, a, x.astype(np.float64), axis=-1), axis=-1)))
    return np.stack(out, -1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_samples", [200, 201, 97])
@pytest.mark.parametrize("taper", ["hann", "boxcar"])
def test_spectral_band_power_equals_the_scipy_periodogram_summed_over_the_band(dtype, n_samples, taper):
    x = _signals(n_samples, dtype)
    got = band_power(x, 100.0, BANDS, estimator="spectral", taper=taper)
    expected = _scipy_spectral(x, 100.0, taper, BANDS)
    assert got.power.dtype == dtype and got.power.shape == (6, 4, len(BANDS))
    np.testing.assert_allclose(got.power, expected, rtol=RTOL[dtype])
    # the window power is the tapered variance: np.var for the boxcar
    if taper == "boxcar":
        np.testing.assert_allclose(got.total, x.astype(np.float64).var(-1), rtol=RTOL[dtype])
    np.testing.assert_allclose(got.measure("de"), 0.5 * np.log(2 * np.pi * np.e * expected), rtol=RTOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("zero_phase", [True, False])
def test_filter_band_power_equals_scipy_butterworth_then_variance(dtype, zero_phase):
    bands = (*DEFAULT_BANDS[:4], ("high", 31.0, 49.9))  # a Butterworth band-pass stays below Nyquist
    for n_samples in (200, 201):
        x = _signals(n_samples, dtype)
        got = band_power(x, 100.0, bands, estimator="filter", order=4, zero_phase=zero_phase)
        np.testing.assert_allclose(got.power, _scipy_filter(x, 100.0, 4, zero_phase, bands), rtol=RTOL[dtype])
        np.testing.assert_allclose(got.total, x.astype(np.float64).var(-1), rtol=RTOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_torcheeg_mode_reproduces_torcheeg_s_definition(dtype):
    x = _signals(128, dtype)
    got = differential_entropy(x, 128.0, DEFAULT_BANDS, estimator="torcheeg")
    np.testing.assert_allclose(got, _torcheeg_definition(x, 128.0, DEFAULT_BANDS), rtol=RTOL[dtype], atol=1e-6)


def test_torcheeg_mode_matches_torcheeg_itself():
    try:
        from torcheeg.transforms import BandDifferentialEntropy
    except Exception as exc:  # torcheeg pulls in torch, mne, ...: any import failure means "not usable here"
        pytest.skip(f"torcheeg is not importable here ({type(exc).__name__}); `nox -s bench` installs it")
    x = _signals(200, np.float32)
    transform = BandDifferentialEntropy(sampling_rate=200, band_dict={n: [lo, hi] for n, lo, hi in DEFAULT_BANDS})
    expected = np.stack([transform(eeg=w)["eeg"] for w in x])
    np.testing.assert_allclose(differential_entropy(x, 200.0, estimator="torcheeg"), expected, rtol=1e-4, atol=1e-4)


def test_de_of_white_noise_matches_the_closed_form_within_the_stated_bias():
    # boxcar periodogram: the band variance of N(0, s2) noise is s2 / N * chi2 with 2 n_bins degrees
    # of freedom, so E[DE] = 0.5 ln(2 pi e s2 2 n_bins / N) + 0.5 (digamma(n_bins) - ln n_bins)
    rng = np.random.default_rng(7)
    s2, n, fs = 4.0, 200, 200.0
    x = rng.normal(0.0, np.sqrt(s2), (400, 8, n)).astype(np.float32)
    de = differential_entropy(x, fs, DEFAULT_BANDS, taper="boxcar")
    for b, (_, lo, hi) in enumerate(DEFAULT_BANDS):
        k = band_bins(n, fs, lo, hi).size
        expected = 0.5 * np.log(2 * np.pi * np.e * s2 * 2 * k / n) + 0.5 * (digamma(k) - np.log(k))
        se = 0.5 * np.sqrt(polygamma(1, k) / de[..., b].size)
        assert abs(de[..., b].mean() - expected) < 5 * se, (b, de[..., b].mean(), expected)
    # Hann: the band power is unbiased (bins >= 2); compare means of the power itself
    p = band_power(x, fs, DEFAULT_BANDS[1:], taper="hann").power
    for b, (_, lo, hi) in enumerate(DEFAULT_BANDS[1:]):
        expected = s2 * 2 * band_bins(n, fs, lo, hi).size / n
        se = p[..., b].std() / np.sqrt(p[..., b].size)
        assert abs(p[..., b].mean() - expected) < 6 * se * 2, (b, p[..., b].mean(), expected)  # bins correlate under Hann


def test_filter_power_of_white_noise_is_the_noise_through_the_filter_gain():
    # the filter estimator's bias is its response: E[var] = s2 * mean |H|^2 (|H|^4 zero-phase), not
    # the ideal band's share; 200-s windows so that the edge transients are negligible (at 40 s
    # the zero-phase delta band still reads 7% high: docs/features.md)
    rng = np.random.default_rng(8)
    s2, fs = 1.0, 200.0
    x = rng.normal(0.0, 1.0, (10, 4, 40000))
    for zero_phase in (True, False):
        p = band_power(x, fs, DEFAULT_BANDS, estimator="filter", zero_phase=zero_phase).power
        for b, (_, lo, hi) in enumerate(DEFAULT_BANDS):
            sos = butter(4, [lo, hi], btype="band", fs=fs, output="sos")
            _, h = sosfreqz(sos, worN=1 << 15)
            gain = np.abs(h) ** (4 if zero_phase else 2)
            assert abs(p[..., b].mean() / (s2 * gain.mean()) - 1) < 0.05


@pytest.mark.parametrize("estimator", ["spectral", "filter", "torcheeg"])
def test_a_sinusoid_in_the_alpha_band_raises_only_alpha_de(estimator):
    rng = np.random.default_rng(3)
    fs, n = 200.0, 400
    noise = rng.standard_normal((30, 4, n))
    tone = 3.0 * np.sin(2 * np.pi * 11.0 * np.arange(n) / fs)
    rise = differential_entropy(noise + tone, fs, estimator=estimator) - differential_entropy(noise, fs, estimator=estimator)
    rise = rise.mean(axis=(0, 1))
    alpha = [b[0] for b in DEFAULT_BANDS].index("alpha")
    assert rise[alpha] > 1.0
    assert np.all(np.abs(np.delete(rise, alpha)) < 0.2 * rise[alpha]), rise


def test_bands_hold_the_bins_in_low_to_high_and_the_nyquist_bin_at_the_edge():
    assert band_bins(200, 200.0, 1, 4).tolist() == [1, 2, 3]
    assert band_bins(200, 200.0, 4, 8).tolist() == [4, 5, 6, 7]
    assert band_bins(200, 200.0, 98, 100).tolist() == [98, 99, 100]
    assert band_bins(201, 200.0, 98, 100).tolist() == [99, 100]  # odd: no bin at exactly 100 Hz
    assert parse_bands("delta:1-4, alpha=8-14,30-45") == (("delta", 1.0, 4.0), ("alpha", 8.0, 14.0), ("b30-45", 30.0, 45.0))
    with pytest.raises(FeatureSpecError, match="Nyquist"):
        band_power(np.zeros((1, 1, 100)), 100.0, (("x", 40.0, 51.0),))
    with pytest.raises(FeatureSpecError, match="no DFT bin"):
        band_power(np.zeros((1, 1, 10)), 100.0, (("x", 1.0, 4.0),))
    with pytest.raises(FeatureSpecError, match="Butterworth"):
        band_power(np.zeros((1, 1, 200)), 100.0, (("x", 40.0, 50.0),), estimator="filter")
    with pytest.raises(FeatureSpecError):
        parse_bands("alpha:eight-14")


def test_relative_power_and_log_power_come_from_the_same_pass():
    x = _signals(200, np.float64)
    bp = band_power(x, 100.0, (("all", 0.0, 50.0),), taper="boxcar")
    np.testing.assert_allclose(bp.measure("relative_power")[..., 0], 1.0, rtol=1e-9)  # DC is removed
    bp = band_power(x, 100.0, BANDS)
    np.testing.assert_allclose(bp.measure("log_power"), np.log(bp.power))
    np.testing.assert_allclose(bp.measure("relative_power"), bp.power / bp.total[..., None])


def _clisa_lds(sequence: np.ndarray) -> np.ndarray:
    """SEED's de_LDS smoother as in the CLISA code (RunminGan1218/CLISA_Hydra, data/data_process.py)."""
    out = np.zeros_like(sequence)
    for d in range(sequence.shape[1]):
        x = sequence[:, d]
        n = len(x)
        v0, a, t, c, sigma = 0.01, 1.0, 0.0001, 1.0, 1.0
        p, u, v, k = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
        k[0] = v0 * c / (c * v0 * c + sigma)
        u[0] = x.mean() + k[0] * (x[0] - c * x.mean())
        v[0] = (1 - k[0] * c) * v0
        for i in range(1, n):
            p[i - 1] = a * v[i - 1] * a + t
            k[i] = p[i - 1] * c / (c * p[i - 1] * c + sigma)
            u[i] = a * u[i - 1] + k[i] * (x[i] - c * a * u[i - 1])
            v[i] = (1 - k[i] * c) * p[i - 1]
        uu = u.copy()
        for i in range(n - 2, -1, -1):
            uu[i] = u[i] + v[i] * a / p[i] * (uu[i + 1] - a * u[i])
        out[:, d] = uu
    return out


def test_seed_smoothers_follow_the_published_code_and_never_mix_recordings():
    rng = np.random.default_rng(2)
    f = rng.standard_normal((30, 3, 2)) + np.linspace(0, 3, 30)[:, None, None]
    np.testing.assert_allclose(lds_smooth(f), _clisa_lds(f.reshape(30, -1)).reshape(f.shape), rtol=1e-12)
    seg = np.repeat([4, 9], [12, 18])
    smoothed = lds_smooth(f, seg)
    np.testing.assert_allclose(smoothed[:12], lds_smooth(f[:12]))
    np.testing.assert_allclose(smoothed[12:], lds_smooth(f[12:]))
    ma = moving_average(f, 5, seg)
    np.testing.assert_allclose(ma[5], f[3:8].mean(0))
    np.testing.assert_allclose(ma[0], f[0:3].mean(0))  # shrinks at a recording's start
    np.testing.assert_allclose(ma[11], f[9:12].mean(0))  # and never reaches into the next one
    spec = FeatureSpec(smoothing="lds", measures=("de", "power"))
    x = _signals(200, np.float32)
    out = compute(x, 100.0, spec, segments=np.zeros(6))
    raw = compute(x, 100.0, FeatureSpec(measures=("de", "power")))
    np.testing.assert_allclose(out["de"], lds_smooth(raw["de"]), rtol=1e-6)  # each measure smoothed on its own


# -- feature sets in a store ------------------------------------------------------------------------
@pytest.fixture
def store_copy(tuab_store, tmp_path):
    """A private copy: feature sets must not leak into the session store other tests read."""
    path, _ = tuab_store
    dst = tmp_path / "tuab.zarr"
    shutil.copytree(path, dst)
    return dst


def _arrays(store, name):
    st = open_store(store)
    return {m: read_features(st, name, m) for m in ("de", "log_power", "power", "relative_power")}


def test_features_of_a_store_are_written_per_shard_chunked_like_the_signals_and_read_back(store_copy):
    import zarr

    rep = compute_features(store_copy, FeatureSpec())
    st = open_store(store_copy)
    assert rep.shards_written == len(st.shard_names) and rep.windows_written == len(st)
    g = zarr.open_group(str(store_copy / "shards" / st.shard_names[0] / f"features_{rep.name}"), mode="r")
    de = g["de"]
    assert de.metadata.dimension_names == ("window", "channel", "band")
    sig = zarr.open_group(str(store_copy / "shards" / st.shard_names[0]), mode="r")["signals"]
    assert de.chunks == (sig.chunks[0], len(st.channels), 5)
    assert g.attrs["biosig"]["spec"]["estimator"] == "spectral"
    assert [b["name"] for b in g.attrs["biosig"]["bands"]] == [b[0] for b in DEFAULT_BANDS]
    # the same numbers as computing on the windows read back, recording by recording
    expected = compute(st.read(np.arange(len(st))), st.fs_hz, FeatureSpec())
    np.testing.assert_array_equal(st.features(rep.name), expected["de"])
    idx = np.array([len(st) - 1, 0, 5, 5, 33])
    np.testing.assert_array_equal(st.features(rep.name, "power", idx), expected["power"][idx])
    assert feature_sets(st)[rep.name]["complete"]
    assert validate(store_copy) == []


def test_rerunning_is_a_no_op_and_new_bands_add_a_new_feature_set(store_copy):
    first = compute_features(store_copy, FeatureSpec())
    folder = next((store_copy / "shards").glob(f"*/features_{first.name}"))
    stamp = (folder / "de" / "zarr.json").stat().st_mtime_ns
    again = compute_features(store_copy, FeatureSpec())
    assert (again.shards_written, again.shards_skipped) == (0, first.shards_written)
    assert (folder / "de" / "zarr.json").stat().st_mtime_ns == stamp
    other = compute_features(store_copy, FeatureSpec(bands=(("alpha", 8.0, 13.0), ("beta", 13.0, 30.0))))
    assert other.name != first.name and other.shards_written == first.shards_written
    assert set(feature_sets(store_copy)) == {first.name, other.name}
    assert read_features(store_copy, other.name).shape[2] == 2
    with pytest.raises(FeatureSetError, match="other parameters"):
        compute_features(store_copy, FeatureSpec(taper="boxcar"), name=first.name)


def test_feature_computation_resumes_after_a_crash_and_nothing_partial_is_visible(store_copy, monkeypatch):
    import biosig_ingest.store.sets as sets  # where feature and token sets are committed

    spec = FeatureSpec(estimator="filter", smoothing="moving_average", smoothing_windows=3)
    complete = compute_features(store_copy, spec)
    before = _arrays(store_copy, complete.name)
    shards = sorted(p.parent for p in (store_copy / "shards").glob(f"*/features_{complete.name}"))
    shutil.rmtree(shards[-1] / f"features_{complete.name}")  # as if that shard never committed

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(sets.os, "rename", crash)
    with pytest.raises(OSError, match="disk full"):
        compute_features(store_copy, spec)
    assert not (shards[-1] / f"features_{complete.name}").exists()
    with pytest.raises(FeatureSetError, match="missing from 1 of"):
        read_features(store_copy, complete.name)
    monkeypatch.undo()
    resumed = compute_features(store_copy, spec)
    assert (resumed.shards_written, resumed.shards_skipped) == (1, len(shards) - 1)
    after = _arrays(store_copy, complete.name)
    for m in before:
        np.testing.assert_array_equal(after[m], before[m])
    assert validate(store_copy) == []


def test_the_shard_task_is_pure_and_skips_a_committed_shard(store_copy):
    st = open_store(store_copy)
    spec = FeatureSpec(measures=("de",))
    res = compute_shard(str(store_copy), st.shard_names[0], spec.to_dict(), "mine")
    assert res["status"] == "written" and res["n_windows"] == int(st.shard_attrs[st.shard_names[0]]["n_windows"])
    assert compute_shard(str(store_copy), st.shard_names[0], spec.to_dict(), "mine")["status"] == "skipped"
    assert not feature_sets(st)["mine"]["complete"]


def test_biosig_features_command_writes_reruns_and_refuses_bad_bands(store_copy):
    runner = CliRunner()
    r = runner.invoke(app, ["features", str(store_copy), "--bands", "theta:4-8,alpha:8-14", "--name", "de2"])
    assert r.exit_code == 0, r.output
    assert "shards written 2" in r.output
    r = runner.invoke(app, ["features", str(store_copy), "--bands", "theta:4-8,alpha:8-14", "--name", "de2"])
    assert r.exit_code == 0 and "already there 2" in r.output
    assert open_store(store_copy).features("de2").shape[2] == 2
    r = runner.invoke(app, ["features", str(store_copy), "--bands", "alpha:8-140"])
    assert r.exit_code == 2 and "Nyquist" in r.output
    r = runner.invoke(app, ["features", str(store_copy), "--estimator", "wavelet"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["validate", str(store_copy)])
    assert r.exit_code == 0, r.output
