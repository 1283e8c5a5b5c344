"""Differential-entropy features: windows per second of each estimator against the memory bound.

One process, one run, on 2,000 windows of 62 channels x 200 samples (float32, SEED-like 1-s
windows at 200 Hz), the default five bands:

1. the memory-bandwidth bound: the time of one ``np.copy`` of the input (read it once, write it once);
2. a NumPy baseline: ``np.fft.rfft`` of the mean-free Hann-tapered windows, squared magnitudes,
   band sums as a matrix product, DE;
3. every estimator of ``biosig_ingest.features`` (spectral Hann and boxcar, Butterworth
   zero-phase and causal, the torcheeg-compatible filter);
4. torcheeg's ``BandDifferentialEntropy`` on a subset, if torcheeg is importable, and how far
   our torcheeg mode is from it;
5. the first-call compile time of each numba kernel, in a fresh interpreter with an empty cache,
   and the cached first call in this process.

Best of ``--repeats`` interleaved rounds. Ratios are printed, never asserted; the acceptance bar
(spectral DE >= 25% of the memory bound and >= 3x the NumPy baseline, in this run) is reported
as met or not, and the exit status is 0 either way.

    python benchmarks/bench_features.py [--windows 2000] [--repeats 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from _common import versions, write_json  # benchmarks/_common.py

FS_HZ = 200.0
TARGET_OF_BOUND = 0.25
TARGET_OVER_NUMPY = 3.0

# In a fresh interpreter with an empty numba cache: the first call of each kernel compiles it.
_COMPILE_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from biosig_ingest.features import band_power
out = {"import_s": time.perf_counter() - t0}
for dtype in ("float32", "float64"):
    x = np.random.default_rng(0).standard_normal((2, 3, 200)).astype(dtype)
    for name, kw in (("spectral", {}), ("filter", {}), ("torcheeg", {})):
        t0 = time.perf_counter()
        band_power(x, 200.0, estimator=name, **kw)
        out[f"{name}_{dtype}_s"] = time.perf_counter() - t0
print(json.dumps(out))
"""



def machine() -> dict[str, Any]:
    import numba

    return {
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": _threading_layer(),
        "python": platform.python_version(),
        "versions": versions(("biosig-ingest", "numpy", "scipy", "numba", "torch", "torcheeg")),
    }


def _threading_layer() -> str:
    import numba

    try:
        return str(numba.threading_layer())
    except ValueError:  # no parallel kernel has run yet
        return "not started"


def numpy_rfft_de(x: np.ndarray, weights: np.ndarray, taper: np.ndarray) -> np.ndarray:
    """The vectorized NumPy way: mean-free, tapered, rfft, |X|^2, band sums, DE."""
    y = (x - x.mean(axis=-1, keepdims=True)) * taper
    spec = np.fft.rfft(y, axis=-1)
    power = (spec.real**2 + spec.imag**2) @ weights
    return 0.5 * np.log(2 * np.pi * np.e * power)


def rfft_weights(n: int, fs: float, taper: np.ndarray) -> np.ndarray:
    from biosig_ingest.features.de import DEFAULT_BANDS, band_bins

    w = np.zeros((n // 2 + 1, len(DEFAULT_BANDS)), np.float32)
    for b, (_, lo, hi) in enumerate(DEFAULT_BANDS):
        k = band_bins(n, fs, lo, hi)
        w[k, b] = np.where((k == 0) | (2 * k == n), 1.0, 2.0) / (n * float(np.sum(taper**2)))
    return w


def compile_times() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="biosig-numba-cache-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        # run outside the source tree so the child imports the installed package, as this process does
        res = subprocess.run([sys.executable, "-c", _COMPILE_CHILD], capture_output=True, text=True, env=env, cwd=cache)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}"}
    out: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def best_rounds(steps: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    runs: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):  # interleaved, so a noisy spell hits every step alike
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            runs[name].append(time.perf_counter() - t0)
    return runs


def bench(args: argparse.Namespace) -> dict[str, Any]:
    from biosig_ingest.features import band_power, differential_entropy
    from biosig_ingest.features.de import taper_window

    rng = np.random.default_rng(0)
    shape = (args.windows, args.channels, args.samples)
    x = (rng.standard_normal(shape, dtype=np.float32) * 10 + 3).astype(np.float32)
    print(f"input {shape} float32, {x.nbytes / 1e6:.1f} MB")

    t0 = time.perf_counter()
    first = {}
    for est in ("spectral", "filter", "torcheeg"):
        t1 = time.perf_counter()
        band_power(x[:2], FS_HZ, estimator=est)
        first[est] = time.perf_counter() - t1
    cached_first_s = time.perf_counter() - t0

    taper = taper_window("hann", args.samples).astype(np.float32)
    weights = rfft_weights(args.samples, FS_HZ, taper)
    steps: dict[str, Callable[[], Any]] = {
        "np.copy (memory bound)": lambda: np.copy(x),
        "spectral, Hann": lambda: differential_entropy(x, FS_HZ, taper="hann"),
        "spectral, boxcar": lambda: differential_entropy(x, FS_HZ, taper="boxcar"),
        "NumPy rfft baseline": lambda: numpy_rfft_de(x, weights, taper),
    }
    runs = best_rounds(steps, args.repeats)
    xf = x[: args.filter_windows]
    fsteps: dict[str, Callable[[], Any]] = {
        "filter, zero-phase (order 4)": lambda: differential_entropy(xf, FS_HZ, estimator="filter"),
        "filter, causal (order 4)": lambda: differential_entropy(xf, FS_HZ, estimator="filter", zero_phase=False),
        "torcheeg-compatible filter": lambda: differential_entropy(xf, FS_HZ, estimator="torcheeg"),
    }
    runs.update(best_rounds(fsteps, max(1, min(args.repeats, 3))))
    windows = {**{k: args.windows for k in steps}, **{k: len(xf) for k in fsteps}}
    rows = {k: {"runs_s": [round(t, 5) for t in v], "best_s": min(v), "windows": windows[k], "windows_per_s": windows[k] / min(v)} for k, v in runs.items()}

    tee: dict[str, Any] = {"installed": False}
    try:
        import warnings

        warnings.filterwarnings("ignore")
        from torcheeg.transforms import BandDifferentialEntropy

        from biosig_ingest.features.de import DEFAULT_BANDS

        transform = BandDifferentialEntropy(sampling_rate=int(FS_HZ), band_dict={n: [lo, hi] for n, lo, hi in DEFAULT_BANDS})
        sub = x[: args.torcheeg_windows]
        t1 = time.perf_counter()
        ref = np.stack([transform(eeg=w)["eeg"] for w in sub])
        wall = time.perf_counter() - t1
        ours = differential_entropy(sub, FS_HZ, estimator="torcheeg")
        tee = {
            "installed": True,
            "version": versions(["torcheeg"])["torcheeg"],
            "windows": len(sub),
            "wall_s": wall,
            "windows_per_s": len(sub) / wall,
            "max_abs_diff_vs_ours": float(np.abs(ours - ref).max()),
        }
    except Exception as exc:  # torcheeg drags in torch, mne, ...: any failure means "not here"
        tee["why"] = f"{type(exc).__name__}: {exc}"
    return {"rows": rows, "torcheeg": tee, "first_call_cached_s": first, "first_calls_total_s": cached_first_s}


def print_table(res: dict[str, Any]) -> None:
    rows = res["rows"]
    bound = rows["np.copy (memory bound)"]["windows_per_s"]
    base = rows["NumPy rfft baseline"]["windows_per_s"]
    print()
    print(f"{'step':<32}{'best s':>10}{'windows/s':>12}{'of bound':>10}{'x NumPy':>9}")
    for name, r in rows.items():
        print(f"{name:<32}{r['best_s']:>10.4f}{r['windows_per_s']:>12,.0f}{r['windows_per_s'] / bound:>9.0%}{r['windows_per_s'] / base:>8.2f}x")
    tee = res["torcheeg"]
    if tee["installed"]:
        spec = rows["spectral, Hann"]["windows_per_s"]
        mine = rows["torcheeg-compatible filter"]["windows_per_s"]
        print(
            f"{'torcheeg BandDifferentialEntropy':<32}{tee['wall_s']:>10.4f}{tee['windows_per_s']:>12,.1f}"
            f"   ({tee['windows']} windows; our torcheeg mode {mine / tee['windows_per_s']:,.0f}x faster, "
            f"spectral {spec / tee['windows_per_s']:,.0f}x; max |DE difference| {tee['max_abs_diff_vs_ours']:.1e})"
        )
    else:
        print(f"torcheeg: not measured ({tee.get('why', 'not installed')})")
    ct = res["compile"]
    if "error" in ct:
        print(f"compile times: not measured ({ct['error']})")
    else:
        kernels = ", ".join(f"{k[:-2].replace('_', ' ')} {v:.1f} s" for k, v in ct.items() if k != "import_s")
        print(f"first call, empty numba cache (compiles): {kernels}")
    first = res["bench"]["first_call_cached_s"] if "bench" in res else {}
    if first:
        print("first call in this process (numba cache on disk): " + ", ".join(f"{k} {v:.2f} s" for k, v in first.items()))
    acc = res["acceptance"]
    print()
    print(
        f"acceptance: spectral DE >= {TARGET_OF_BOUND:.0%} of the memory bound: {'MET' if acc['of_bound_met'] else 'NOT MET'} "
        f"({acc['of_bound']:.0%}: {acc['spectral_windows_per_s']:,.0f} vs {acc['bound_windows_per_s']:,.0f} windows/s)"
    )
    print(
        f"acceptance: spectral DE >= {TARGET_OVER_NUMPY:g}x the NumPy rfft baseline: {'MET' if acc['over_numpy_met'] else 'NOT MET'} "
        f"({acc['over_numpy']:.2f}x)"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--windows", type=int, default=2000, help="windows in the input (2000)")
    ap.add_argument("--channels", type=int, default=62, help="channels (62)")
    ap.add_argument("--samples", type=int, default=200, help="samples per window (200, 1 s at 200 Hz)")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved rounds, best counts (5)")
    ap.add_argument("--filter-windows", type=int, default=2000, help="windows for the filter estimators (2000)")
    ap.add_argument("--torcheeg-windows", type=int, default=20, help="windows for torcheeg, about 0.1 s each (20)")
    ap.add_argument("--skip-compile", action="store_true", help="do not measure cold compile times")
    ap.add_argument("--json", type=Path, help="write all numbers to this JSON file")
    args = ap.parse_args(argv)
    if min(args.windows, args.channels, args.samples, args.repeats, args.filter_windows, args.torcheeg_windows) < 1:
        ap.error("sizes and --repeats must be positive")

    res: dict[str, Any] = {}
    res["compile"] = {"error": "skipped (--skip-compile)"} if args.skip_compile else compile_times()
    res["bench"] = bench(args)
    res["machine"] = machine()
    m = res["machine"]
    print(
        f"{m['cpus']} CPUs, numba {m['numba_threads']} threads ({m['numba_threading_layer']}); python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    )
    res["rows"] = res["bench"]["rows"]
    res["torcheeg"] = res["bench"]["torcheeg"]
    rows = res["rows"]
    spectral = rows["spectral, Hann"]["windows_per_s"]
    bound = rows["np.copy (memory bound)"]["windows_per_s"]
    base = rows["NumPy rfft baseline"]["windows_per_s"]
    res["acceptance"] = {
        "spectral_windows_per_s": spectral,
        "bound_windows_per_s": bound,
        "of_bound": spectral / bound,
        "of_bound_met": bool(spectral / bound >= TARGET_OF_BOUND),
        "over_numpy": spectral / base,
        "over_numpy_met": bool(spectral / base >= TARGET_OVER_NUMPY),
    }
    print_table(res)
    if args.json is not None:
        write_json(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
