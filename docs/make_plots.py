"""Make the figures of docs/processing.md (docs-only tool; needs matplotlib).

    python docs/make_plots.py            # writes docs/plots/*.png

(a) filter_response.png: the TUH default profile's zero-phase response at 200 Hz and the
    polyphase anti-alias response of 256 -> 200 Hz, both computed by biosig_ingest itself.
(b) tuab_window.png: one TUAB replica window around the injected 7 Hz Cz tone, before
    (raw EDF samples) and after harmonization (the stored window).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.signal import freqz, welch  # noqa: E402

from biosig_ingest import ingest, open_store  # noqa: E402
from biosig_ingest.config import resolve_profile  # noqa: E402
from biosig_ingest.dsp.filter import ZeroPhaseFilter  # noqa: E402
from biosig_ingest.dsp.resample import polyphase_taps, rational_ratio  # noqa: E402
from biosig_ingest.io.edf import EdfSource  # noqa: E402
from biosig_ingest.manifest import load_manifest  # noqa: E402
from biosig_ingest.samples import write_tuab_replica  # noqa: E402

OUT = Path(__file__).resolve().parent / "plots"


def _db(x: np.ndarray) -> np.ndarray:
    return 20 * np.log10(np.maximum(np.abs(x), 1e-12))


def plot_filter_response(path: Path) -> None:
    m = load_manifest("tuh")
    rp = resolve_profile(m, m.profile("default"))
    f = rp.profile.filters
    fs_out, fs_in = rp.profile.target_fs_hz, 256.0
    zp = ZeroPhaseFilter(fs_out, f.highpass_hz, f.lowpass_hz, f.order, rp.notch_hz, f.notch_q)
    n_fft = 1 << 20
    freqs = np.fft.rfftfreq(n_fft, 1 / fs_out)
    gain = zp.response(n_fft).astype(np.float64)  # |H_bp|^2 |H_notch|^2, applied as is

    # The resampler's prototype FIR, rebuilt from the per-phase taps the kernel uses.
    up, down = rational_ratio(fs_in, fs_out)
    taps, half_len = polyphase_taps(up, down)
    h = taps[:, ::-1].T.reshape(-1)[: 2 * half_len + 1].astype(np.float64) / up
    f_aa = np.linspace(0, fs_in / 2, 4097)
    _, aa = freqz(h, worN=f_aa, fs=fs_in * up)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), constrained_layout=True)
    for ax, xscale in zip(axes, ("log", "linear"), strict=True):
        ax.plot(
            freqs[1:],
            _db(gain[1:]),
            color="C0",
            lw=1.8,
            label="zero-phase filter at 200 Hz (applied gain)",
        )
        ax.plot(
            f_aa[1:],
            _db(aa[1:]),
            color="C1",
            lw=1.4,
            label=f"polyphase anti-alias {fs_in:g} -> {fs_out:g} Hz",
        )
        both = np.interp(freqs[1:], f_aa, np.abs(aa)) * gain[1:]
        ax.plot(
            freqs[1:], _db(both), color="k", lw=0.9, ls="--", label="both (256 Hz file, as stored)"
        )
        ax.axhline(-6.02, color="0.6", lw=0.7, ls=":")
        ax.axvline(fs_out / 2, color="0.6", lw=0.7, ls=":")
        ax.set_xscale(xscale)
        ax.set_ylim(-120, 6)
        ax.set_xlabel("frequency (Hz)")
        ax.grid(True, which="both", lw=0.3, alpha=0.5)
    axes[0].set_xlim(0.05, fs_in / 2)
    axes[0].set_ylabel("gain (dB)")
    axes[0].set_title("0.05-128 Hz (log)")
    axes[0].annotate(
        "-6 dB: 0.5 Hz",
        (0.5, -6),
        (0.07, -40),
        arrowprops={"arrowstyle": "->", "lw": 0.6},
        fontsize=8,
    )
    axes[1].set_xlim(40, fs_in / 2)
    axes[1].set_title("40-128 Hz (linear): notch, low-pass edge, output Nyquist")
    axes[1].annotate(
        "60 Hz notch", (60, -60), (42, -90), arrowprops={"arrowstyle": "->", "lw": 0.6}, fontsize=8
    )
    axes[1].annotate(
        "-6 dB: 75 Hz", (75, -6), (80, -25), arrowprops={"arrowstyle": "->", "lw": 0.6}, fontsize=8
    )
    axes[1].annotate("200 Hz Nyquist", (100, -110), (103, -110), fontsize=8, va="center")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(
        "TUH default profile: Butterworth band-pass 0.5-75 Hz (N=4) and iirnotch 60 Hz (Q=30), "
        "both squared (forward-backward), at 200 Hz",
        fontsize=10,
    )
    fig.savefig(path, dpi=130)
    plt.close(fig)


def plot_tuab_window(path: Path, work: Path) -> None:
    tuab = write_tuab_replica(work / "tuab")
    store_path = work / "tuab.zarr"
    ingest("tuh", tuab.root, store_path)
    store = open_store(store_path)
    sine = tuab.sine
    good = tuab.good_files
    rec = next((f for f in good if f.fs_hz == 256 and f.reference == "LE"), good[0])
    rid = f"{rec.subject}_{rec.session}_{rec.token}"
    meta = store.metadata
    row = meta[(meta.recording_id == rid) & (meta.start_s <= sine.start_s)].iloc[-1]
    after = store[int(row.window)].signal[store.channels.index(sine.channel)]
    fs_out = store.fs_hz
    t0 = float(row.start_s)
    t_after = t0 + np.arange(after.size) / fs_out

    with EdfSource(rec.path, "uV") as src:
        label = next(c.label for c in src.channels if c.label.upper().split()[-1].startswith("CZ"))
        i = [c.label for c in src.channels].index(label)
        fs_in = src.channels[i].fs_hz
        a, b = round(t0 * fs_in), round((t0 + after.size / fs_out) * fs_in)
        before = src.read([i], a, b)[0]
    t_before = t0 + np.arange(before.size) / fs_in

    fig = plt.figure(figsize=(11, 6.4), constrained_layout=True)
    gs = fig.add_gridspec(2, 3)
    ax0 = fig.add_subplot(gs[0, :2])
    ax1 = fig.add_subplot(gs[1, :2], sharex=ax0, sharey=ax0)
    ax2 = fig.add_subplot(gs[:, 2])
    ax0.plot(t_before, before, lw=0.6, color="C7")
    ax0.set_title(
        f"before: EDF channel '{label}', {fs_in:g} Hz, physical uV ({rec.relpath.split('/')[-1]})",
        fontsize=9,
    )
    ax1.plot(t_after, after, lw=0.6, color="C0", label="stored window, Cz")
    ax1.plot(
        t_after, sine.at(t_after), lw=0.8, ls="--", color="C3", label="injected tone (150 uV, 7 Hz)"
    )
    ax1.set_title(
        f"after: store window {int(row.window)}, Cz, {fs_out:g} Hz, start_s {t0:g} "
        "(0.5-75 Hz band-pass, 60 Hz notch, resampled)",
        fontsize=9,
    )
    ax1.legend(loc="upper right", fontsize=8)
    for ax in (ax0, ax1):
        ax.set_ylabel("uV")
        ax.axvspan(sine.start_s, sine.start_s + sine.duration_s, color="C3", alpha=0.06)
        ax.grid(True, lw=0.3, alpha=0.5)
    ax1.set_xlabel("time from recording start (s)")

    fb, pb = welch(before, fs=fs_in, nperseg=int(2 * fs_in))
    fa, pa = welch(after, fs=fs_out, nperseg=int(2 * fs_out))
    ax2.semilogy(fb, pb, lw=0.8, color="C7", label=f"before ({fs_in:g} Hz)")
    ax2.semilogy(fa, pa, lw=0.8, color="C0", label=f"after ({fs_out:g} Hz)")
    ax2.axvline(sine.freq_hz, color="C3", lw=0.6, ls="--")
    ax2.set_xlabel("frequency (Hz)")
    ax2.set_ylabel("PSD of the 10 s window (uV^2/Hz)")
    ax2.set_title("Welch PSD, 2 s segments", fontsize=9)
    ax2.legend(fontsize=8)
    ax2.grid(True, which="both", lw=0.3, alpha=0.5)
    fig.suptitle(
        f"TUAB replica {rid}: one 10 s window around the 7 Hz test tone on Cz", fontsize=10
    )
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    plot_filter_response(OUT / "filter_response.png")
    with tempfile.TemporaryDirectory() as tmp:
        plot_tuab_window(OUT / "tuab_window.png", Path(tmp))
    print(f"wrote {OUT / 'filter_response.png'} and {OUT / 'tuab_window.png'}")


if __name__ == "__main__":
    main()
