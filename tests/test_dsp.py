"""The harmonization core: resampling, zero-phase filters, block-wise equivalence, QC flags."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import butter, filtfilt, iirnotch, resample_poly, sosfiltfilt

from biosig_ingest.config import DEFAULT_QC, FilterSpec, Profile, ResolvedProfile, WindowSpec
from biosig_ingest.dsp.channels import ChannelMatch
from biosig_ingest.dsp.filter import ZeroPhaseFilter
from biosig_ingest.dsp.pipeline import window_recording
from biosig_ingest.dsp.quality import CLIPPED, FLAT, IMPLAUSIBLE, NAN
from biosig_ingest.dsp.resample import rational_ratio, resample
from biosig_ingest.errors import RecordTooShortError
from biosig_ingest.io.array import ArraySource
from biosig_ingest.recording import Recording, RecordingRef

# Block-wise processing must equal whole-signal processing to this share of the input's
# peak amplitude: float32 FFT rounding scales with the input, drift included, and the
# impulse-response tail cut at the block margins is below 1e-7 of its peak.
BLOCKWISE_RTOL = 1e-6


def _rp(names, fs_out, window_s=10.0, stride_s=None, hp=0.5, lp=75.0, notch=60.0, mode="fixed"):
    profile = Profile(
        channel_set=list(names),
        target_fs_hz=fs_out,
        filters=FilterSpec(highpass_hz=hp, lowpass_hz=lp, notch=notch),
        window=WindowSpec(mode=mode, duration_s=window_s, stride_s=stride_s),
    )
    return ResolvedProfile(
        corpus="test", modality="eeg", unit="uV", channels=list(names), profile=profile, notch_hz=notch, qc=DEFAULT_QC["eeg"]
    )


def _recording(signals, fs, names=None, clip=None):
    names = names or [f"C{i}" for i in range(len(signals))]
    src = ArraySource(signals, names, fs, "uV", clip)
    sel = [ChannelMatch(i, n, n, n) for i, n in enumerate(names)]
    ref = RecordingRef("r", "s", "1", "train", None, "r")  # type: ignore[arg-type]
    return Recording(ref, src, sel, [])


def _windows(rec, rp, block_s=None):
    batches = list(window_recording(rec, rp, block_s=block_s))
    return (
        np.concatenate([b.signals for b in batches]),
        np.concatenate([b.start_s for b in batches]),
        np.concatenate([b.qc for b in batches]),
    )


@pytest.mark.parametrize("fs_in,fs_out", [(256, 200), (250, 200), (512, 200), (500, 100), (1000, 250), (100, 500)])
def test_polyphase_resampling_equals_scipy_resample_poly(fs_in, fs_out):
    x = np.random.default_rng(1).standard_normal((3, 2 * fs_in + 7)).astype(np.float32)
    up, down = rational_ratio(fs_in, fs_out)
    expected = resample_poly(x.astype(np.float64), up, down, axis=1)
    got = resample(x, up, down)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=2e-6)


def test_zero_phase_filter_matches_forward_backward_butterworth_and_notch_in_the_interior():
    fs = 200.0
    x = np.cumsum(np.random.default_rng(2).standard_normal((2, int(fs * 120))), axis=1)
    zp = ZeroPhaseFilter(fs, 0.5, 75.0, 4, 60.0, 30.0)
    sos = butter(4, [0.5, 75.0], btype="bandpass", fs=fs, output="sos")
    b, a = iirnotch(60.0, 30.0, fs=fs)
    ref = filtfilt(b, a, sosfiltfilt(sos, x, axis=1, padlen=6000), axis=1, padlen=6000)
    got = zp.apply(x.astype(np.float32))
    interior = slice(zp.margin(), -zp.margin())
    assert np.abs(got[:, interior] - ref[:, interior]).max() < 1e-4 * np.abs(ref).max()


def test_notch_removes_mains_and_keeps_eeg_bands():
    fs = 200.0
    t = np.arange(int(fs * 60)) / fs
    zp = ZeroPhaseFilter(fs, 0.5, 75.0, 4, 60.0, 30.0)
    mains = zp.apply(np.sin(2 * np.pi * 60 * t)[None].astype(np.float32))[0]
    alpha = zp.apply(np.sin(2 * np.pi * 10 * t)[None].astype(np.float32))[0]
    mid = slice(2000, -2000)
    assert np.abs(mains[mid]).max() < 1e-2  # more than 40 dB down
    assert abs(np.abs(alpha[mid]).max() - 1) < 0.01


def test_long_recording_processed_blockwise_equals_whole_signal_processing():
    fs = 256
    rng = np.random.default_rng(3)
    n = fs * 600
    sig = [np.cumsum(rng.standard_normal(n)).astype(np.float32) * 5 for _ in range(3)]
    rec = _recording(sig, [fs] * 3)
    rp = _rp(["C0", "C1", "C2"], 200.0, window_s=10.0, stride_s=7.5)
    blocks, starts_b, _ = _windows(rec, rp, block_s=40)  # 15 blocks with overlaps
    whole, starts_w, _ = _windows(rec, rp, block_s=10_000)  # one block
    assert blocks.shape == whole.shape == (79, 3, 2000)
    np.testing.assert_array_equal(starts_b, starts_w)
    peak_in = max(np.abs(x).max() for x in sig)
    assert np.abs(blocks - whole).max() <= BLOCKWISE_RTOL * peak_in


def test_channels_of_one_file_at_different_rates_land_on_one_time_base():
    t_s = 30.0
    f = 7.0
    a = np.sin(2 * np.pi * f * np.arange(int(256 * t_s)) / 256) * 100
    b = np.sin(2 * np.pi * f * np.arange(int(512 * t_s)) / 512) * 100
    rec = _recording([a, b], [256, 512], ["A", "B"])
    w, _, _ = _windows(rec, _rp(["A", "B"], 200.0))
    mid = slice(200, -200)
    np.testing.assert_allclose(w[1, 0, mid], w[1, 1, mid], atol=0.5)


def test_windows_start_on_the_stride_grid_and_incomplete_tail_is_dropped():
    rec = _recording([np.zeros(200 * 35) + 1.0], [200], ["A"])
    w, starts, _ = _windows(rec, _rp(["A"], 200.0, window_s=10, stride_s=10, hp=None, lp=None, notch=None))
    np.testing.assert_array_equal(starts, [0.0, 10.0, 20.0])
    assert w.shape == (3, 1, 2000)


def test_recording_shorter_than_a_window_is_a_typed_error():
    rec = _recording([np.zeros(200 * 5)], [200], ["A"])
    with pytest.raises(RecordTooShortError):
        _windows(rec, _rp(["A"], 200.0))


def test_quality_flags_mark_flat_clipped_nan_and_implausible_channels():
    fs, n = 200, 200 * 20
    rng = np.random.default_rng(4)
    ok = rng.standard_normal(n) * 20
    flat = np.zeros(n)
    clipped = np.clip(rng.standard_normal(n) * 400, -300, 300)  # ADC limits at +-300 uV
    with_nan = rng.standard_normal(n) * 20
    with_nan[200 * 12 : 200 * 12 + 50] = np.nan  # in the second window only
    huge = rng.standard_normal(n) * 3000
    rec = _recording(
        [ok, flat, clipped, with_nan, huge],
        [fs] * 5,
        ["ok", "flat", "clip", "nan", "huge"],
        clip=[(-np.inf, np.inf), (-np.inf, np.inf), (-300, 300), (-np.inf, np.inf), (-np.inf, np.inf)],
    )
    w, _, qc = _windows(rec, _rp(["ok", "flat", "clip", "nan", "huge"], 200.0))
    assert qc.shape == (2, 5)
    assert (qc[:, 0] == 0).all()
    assert (qc[:, 1] & FLAT).all()
    assert (qc[:, 2] & CLIPPED).all()
    assert qc[0, 3] & NAN == 0 and qc[1, 3] & NAN
    assert (qc[:, 4] & IMPLAUSIBLE).all()
    assert np.isfinite(w).all()  # NaN samples are zero-filled before filtering, and flagged


def _rp_nan(policy, filtered):
    from biosig_ingest.config import QcSpec

    rp = _rp(["A", "B"], 200.0, hp=0.5 if filtered else None, lp=None, notch=None)
    return rp.model_copy(update={"qc": QcSpec(flat_std=0.1, max_ptp=2000.0, nan_policy=policy)})


@pytest.mark.parametrize("filtered", [False, True])
def test_nan_policy_keep_leaves_nan_where_the_source_had_it(filtered):
    a = np.random.default_rng(5).standard_normal(200 * 20) * 20
    a[200 * 3 : 200 * 3 + 7] = np.nan
    b = np.random.default_rng(6).standard_normal(200 * 20) * 20
    w, _, qc = _windows(_recording([a, b], [200, 200], ["A", "B"]), _rp_nan("keep", filtered))
    assert qc[0, 0] & NAN and not qc[1, 0] & NAN and not qc[:, 1].any() & NAN
    assert np.isfinite(w[1]).all() and np.isfinite(w[:, 1]).all()
    if filtered:  # samples were mixed by the filter: the whole window-channel is NaN
        assert np.isnan(w[0, 0]).all()
    else:  # nothing mixes samples: NaN exactly where the source had it
        assert np.isnan(w[0, 0]).sum() == 7 and np.isnan(w[0, 0, 600:607]).all()


def test_nan_policy_drop_fails_the_recording_with_a_typed_error():
    from biosig_ingest.errors import InvalidSamplesError

    a = np.zeros(200 * 20)
    a[100] = np.nan
    with pytest.raises(InvalidSamplesError, match="1 invalid samples in A"):
        _windows(_recording([a, np.zeros(200 * 20)], [200, 200], ["A", "B"]), _rp_nan("drop", False))
