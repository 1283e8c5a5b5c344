"""End-to-end ingest benchmark: biosig-ingest against the same work done with MNE.

One process, one run:

1. writes a TUAB-like EDF (23 channels, 256 Hz, default 1 hour) into a TUAB tree;
2. times ``biosig_ingest.ingest("tuh", ...)`` on it (read, 0.5-75 Hz band-pass, 60 Hz notch,
   resample to 200 Hz, 10 s windows, QC, blosc-lz4 Zarr store), best of N after a warm-up;
3. times MNE doing the same (read_raw_edf, pick the 19 channels, filter, notch, resample,
   10 s windows, np.save), best of N, and MNE without the notch;
4. measures the peak RSS and speed of ingesting a long (default 24 h, ~1 GB) EDF in a fresh
   subprocess (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` after it exits).

Timings are printed, never asserted; the acceptance bar (biosig >= 3x MNE, peak RSS < 500 MB)
is reported as met or not, and the exit status is 0 either way.

    python benchmarks/bench_ingest.py [--hours 1] [--long-hours 24] [--workdir DIR]
                                      [--skip-long] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from _common import tree_bytes, versions, write_json  # benchmarks/_common.py

# The 19 channels of the TUH default profile, as they are labelled in the EDF (old 10-20 names).
EEG19 = (
    "FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2",
    "F7", "F8", "T3", "T4", "T5", "T6", "FZ", "CZ", "PZ",
)  # fmt: skip
FS_IN_HZ = 256
FS_OUT_HZ = 200
N_CHANNELS = 23
WINDOW_S = 10.0
RELPATH = Path("edf/train/normal/01_tcp_ar/aaaaaaaa_s001_t000.edf")

TARGET_SPEEDUP = 3.0  # biosig x realtime / MNE x realtime
TARGET_PEAK_RSS_MB = 500.0  # 10^6 bytes

# The long-recording ingest runs in its own interpreter, started at the very beginning while this
# process is still small: on Linux a child's ru_maxrss starts from its parent's peak RSS at
# fork/exec time, so a child forked after the timed runs (hundreds of MB) would report at least
# that. It waits for "<tree>\t<store>" on stdin, ingests, and prints one JSON line. VmHWM (the
# peak RSS of its own address space since exec) is reported as a cross-check.
_CHILD = """
import sys
line = sys.stdin.readline().rstrip("\\n")
if not line:
    sys.exit(0)
tree, store = line.split("\\t")
import json, resource, time

def vm_hwm_kb():
    with open("/proc/self/status") as f:
        for row in f:
            if row.startswith("VmHWM:"):
                return int(row.split()[1])
    return None

from biosig_ingest import ingest
hwm_imported_kb = vm_hwm_kb()
t0 = time.perf_counter()
r = ingest("tuh", tree, store, overwrite=True)
wall = time.perf_counter() - t0
print(json.dumps({
    "wall_s": wall, "recording_seconds": r.recording_seconds, "windows_written": r.windows_written,
    "recordings_ok": r.recordings_ok, "recordings_failed": r.recordings_failed,
    "failures": r.failures, "vm_hwm_after_import_kb": hwm_imported_kb, "vm_hwm_kb": vm_hwm_kb(),
    "self_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}))
"""



def write_tree(root: Path, duration_s: float) -> Path:
    from biosig_ingest.samples import write_tuab_like_edf

    return write_tuab_like_edf(
        root / RELPATH, duration_s=duration_s, fs_hz=FS_IN_HZ, n_channels=N_CHANNELS
    )


def run_biosig(tree: Path, store: Path) -> dict[str, Any]:
    from biosig_ingest import ingest

    # Removing the previous run's output is not part of the work (MNE's np.save
    # below also starts from no file), so it happens before the clock starts.
    shutil.rmtree(store, ignore_errors=True)
    t0 = time.perf_counter()
    report = ingest("tuh", tree, store)
    wall = time.perf_counter() - t0
    if report.recordings_failed or not report.recordings_ok:
        raise RuntimeError(f"biosig ingest failed: {report.failures}")
    return {
        "wall_s": wall,
        "recording_seconds": report.recording_seconds,
        "windows": report.windows_written,
    }


def run_mne(edf: Path, out_npy: Path, notch: bool) -> dict[str, Any]:
    import mne

    out_npy.unlink(missing_ok=True)
    t0 = time.perf_counter()
    raw = mne.io.read_raw_edf(edf, preload=True)
    raw.pick([f"EEG {e}-REF" for e in EEG19])
    raw.filter(0.5, 75.0)
    if notch:
        raw.notch_filter(60.0)
    raw.resample(FS_OUT_HZ)
    x = raw.get_data(units="uV").astype(np.float32)
    w = round(WINDOW_S * FS_OUT_HZ)
    n = x.shape[1] // w
    windows = np.ascontiguousarray(x[:, : n * w].reshape(x.shape[0], n, w).transpose(1, 0, 2))
    np.save(out_npy, windows)
    wall = time.perf_counter() - t0
    return {
        "wall_s": wall,
        "recording_seconds": float(raw.n_times / raw.info["sfreq"]),
        "windows": int(n),
    }


def best_of(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = min(runs, key=lambda r: r["wall_s"])
    return {
        "name": name,
        "runs_wall_s": [round(r["wall_s"], 4) for r in runs],
        "best_wall_s": best["wall_s"],
        "recording_seconds": best["recording_seconds"],
        "windows": best["windows"],
        "x_realtime": best["recording_seconds"] / best["wall_s"],
    }


def bench_short(work: Path, hours: float, repeats: int, warmup_s: float) -> dict[str, Any]:
    import mne

    import biosig_ingest.samples  # noqa: F401  (imported here so the EDF write time is the write's)

    mne.set_log_level("ERROR")
    tree, warm_tree = work / "tuab", work / "warmup"
    t0 = time.perf_counter()
    edf = write_tree(tree, hours * 3600.0)
    write_s = time.perf_counter() - t0
    warm_edf = write_tree(warm_tree, warmup_s)
    print(f"wrote {edf} ({edf.stat().st_size / 1e6:.1f} MB) in {write_s:.2f} s")

    # Warm-up: numba kernels loaded (or compiled once, then cached on disk), MNE's and SciPy's
    # lazy imports done, so the timed runs measure the steady state of both tools.
    run_biosig(warm_tree, work / "warmup.zarr")
    run_mne(warm_edf, work / "warmup.npy", notch=True)

    store, npy = work / "store.zarr", work / "mne_windows.npy"
    runs: dict[str, list[dict[str, Any]]] = {"biosig": [], "mne": [], "mne_no_notch": []}
    steps: dict[str, Callable[[], dict[str, Any]]] = {
        "biosig": lambda: run_biosig(tree, store),
        "mne": lambda: run_mne(edf, npy, notch=True),
        "mne_no_notch": lambda: run_mne(edf, npy, notch=False),
    }
    # Interleaved, so that a slow spell of a noisy machine hits all three alike.
    for k in range(repeats):
        for name, step in steps.items():
            runs[name].append(step())
            print(f"  run {k + 1}/{repeats} {name:<13} {runs[name][-1]['wall_s']:7.3f} s")
    out = {name: best_of(name, r) for name, r in runs.items()}

    edf_bytes = edf.stat().st_size
    store_bytes = tree_bytes(store)
    win = out["biosig"]["windows"]
    raw_f32 = win * len(EEG19) * round(WINDOW_S * FS_OUT_HZ) * 4
    out["sizes"] = {
        "edf_bytes": edf_bytes,
        "store_bytes": store_bytes,
        "store_over_edf": store_bytes / edf_bytes,
        "store_uncompressed_float32_bytes": raw_f32,
        "store_compression_ratio": raw_f32 / store_bytes,
        "mne_npy_bytes": npy.stat().st_size,
    }
    out["edf"] = {"hours": hours, "channels": N_CHANNELS, "fs_hz": FS_IN_HZ, "write_s": write_s}
    return out


def start_long_child(work: Path) -> tuple[subprocess.Popen[str], int]:
    """Start the waiting long-ingest interpreter; returns it and this process's peak RSS (KiB)."""
    parent_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD],
        # `python -c` puts its working directory first on sys.path: run it in the workdir, so it
        # imports the installed biosig_ingest as this process does, never a source tree in the cwd.
        cwd=work,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return child, parent_kb


def bench_long(
    work: Path, hours: float, child: subprocess.Popen[str], parent_kb: int
) -> dict[str, Any]:
    tree = work / "tuab_long"
    t0 = time.perf_counter()
    edf = write_tree(tree, hours * 3600.0)
    write_s = time.perf_counter() - t0
    print(
        f"wrote {edf} ({edf.stat().st_size / 1e9:.2f} GB) in {write_s:.1f} s; ingesting it in a fresh process"
    )
    t0 = time.perf_counter()
    stdout, stderr = child.communicate(f"{tree}\t{work / 'long.zarr'}\n")
    process_wall = time.perf_counter() - t0
    # ru_maxrss of the waited-for children, KiB on Linux: the only child is the ingest process.
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if child.returncode != 0:
        raise RuntimeError(f"long ingest subprocess failed ({child.returncode}):\n{stderr}")
    out = json.loads(stdout.strip().splitlines()[-1])
    if out["recordings_failed"] or not out["recordings_ok"]:
        raise RuntimeError(f"long ingest failed: {out['failures']}")
    return {
        "hours": hours,
        "edf_bytes": edf.stat().st_size,
        "write_s": write_s,
        "ingest_wall_s": out["wall_s"],
        "process_wall_s": process_wall,
        "recording_seconds": out["recording_seconds"],
        "windows": out["windows_written"],
        "x_realtime": out["recording_seconds"] / out["wall_s"],
        "peak_rss_mb": peak_kb * 1024 / 1e6,
        "child_vm_hwm_mb": out["vm_hwm_kb"] * 1024 / 1e6 if out["vm_hwm_kb"] else None,
        "rss_after_import_mb": out["vm_hwm_after_import_kb"] * 1024 / 1e6
        if out["vm_hwm_after_import_kb"]
        else None,
        "parent_peak_rss_at_spawn_mb": parent_kb * 1024 / 1e6,
        "store_bytes": tree_bytes(work / "long.zarr"),
    }


def machine() -> dict[str, Any]:
    return {
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "versions": versions(("biosig-ingest", "numpy", "scipy", "numba", "zarr", "mne")),
    }


def print_table(res: dict[str, Any]) -> None:
    s = res["short"]
    b, m, mn = s["biosig"], s["mne"], s["mne_no_notch"]
    hours = s["edf"]["hours"]
    print()
    print(
        f"{hours:g} h, {N_CHANNELS} ch, {FS_IN_HZ} Hz EDF -> 19 ch, {FS_OUT_HZ} Hz, 10 s windows "
        f"(best of {len(b['runs_wall_s'])})"
    )
    print(f"{'pipeline':<38}{'best wall s':>12}{'x realtime':>12}{'biosig / it':>13}")
    rows = [
        ("biosig-ingest (band-pass + notch)", b),
        ("MNE (filter + notch_filter)", m),
        ("MNE (filter only, no notch)", mn),
    ]
    for label, r in rows:
        ratio = b["x_realtime"] / r["x_realtime"]
        print(f"{label:<38}{r['best_wall_s']:>12.3f}{r['x_realtime']:>12.0f}{ratio:>12.2f}x")
    z = s["sizes"]
    print(
        f"store {z['store_bytes'] / 1e6:.1f} MB vs EDF {z['edf_bytes'] / 1e6:.1f} MB "
        f"(store/EDF {z['store_over_edf']:.2f}; blosc-lz4 ratio {z['store_compression_ratio']:.2f} "
        f"over raw float32; MNE .npy {z['mne_npy_bytes'] / 1e6:.1f} MB)"
    )
    if res.get("long"):
        lg = res["long"]
        print(
            f"{lg['hours']:g} h EDF ({lg['edf_bytes'] / 1e9:.2f} GB) in a fresh process: "
            f"peak RSS {lg['peak_rss_mb']:.0f} MB (its VmHWM {lg['child_vm_hwm_mb']:.0f} MB; "
            f"{lg['rss_after_import_mb']:.0f} MB after imports), "
            f"{lg['x_realtime']:.0f}x realtime ({lg['ingest_wall_s']:.1f} s), "
            f"store {lg['store_bytes'] / 1e6:.0f} MB"
        )
    print()
    acc = res["acceptance"]
    print(
        f"acceptance: biosig >= {TARGET_SPEEDUP:g}x MNE (with notch): "
        f"{'MET' if acc['speedup_met'] else 'NOT MET'} ({acc['speedup']:.2f}x)"
    )
    if acc["peak_rss_met"] is None:
        print("acceptance: peak RSS < 500 MB: not measured (--skip-long)")
    else:
        print(
            f"acceptance: peak RSS < {TARGET_PEAK_RSS_MB:g} MB: "
            f"{'MET' if acc['peak_rss_met'] else 'NOT MET'} ({acc['peak_rss_mb']:.0f} MB)"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=1.0, help="length of the timed recording (1)")
    ap.add_argument(
        "--long-hours", type=float, default=24.0, help="length of the RSS recording (24)"
    )
    ap.add_argument(
        "--workdir", type=Path, help="keep the files here (default: a temp dir, deleted)"
    )
    ap.add_argument("--skip-long", action="store_true", help="skip the long-recording RSS run")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per pipeline, best counts (5)")
    ap.add_argument("--warmup-minutes", type=float, default=2.0, help="warm-up recording (2)")
    ap.add_argument("--json", type=Path, help="write all numbers to this JSON file")
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.hours <= 0 or args.long_hours <= 0:
        ap.error("--repeats, --hours and --long-hours must be positive")

    if args.workdir is not None:
        work = args.workdir.resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="biosig-bench-"))
    res: dict[str, Any] = {"machine": machine()}
    print(
        f"workdir {work}; {res['machine']['cpus']} CPUs; python {res['machine']['python']}; "
        + ", ".join(f"{k} {v}" for k, v in res["machine"]["versions"].items())
    )
    child = None if args.skip_long else start_long_child(work)
    try:
        res["short"] = bench_short(work, args.hours, args.repeats, args.warmup_minutes * 60.0)
        res["long"] = None if child is None else bench_long(work, args.long_hours, *child)
    finally:
        if child is not None and child[0].poll() is None:  # stopped early: let it exit
            child[0].communicate("")
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    s = res["short"]
    speedup = s["biosig"]["x_realtime"] / s["mne"]["x_realtime"]
    res["ratios"] = {
        "biosig_over_mne": speedup,
        "biosig_over_mne_no_notch": s["biosig"]["x_realtime"] / s["mne_no_notch"]["x_realtime"],
    }
    peak = res["long"]["peak_rss_mb"] if res["long"] else None
    res["acceptance"] = {
        "speedup": speedup,
        "speedup_target": TARGET_SPEEDUP,
        "speedup_met": bool(speedup >= TARGET_SPEEDUP),
        "peak_rss_mb": peak,
        "peak_rss_target_mb": TARGET_PEAK_RSS_MB,
        "peak_rss_met": None if peak is None else bool(peak < TARGET_PEAK_RSS_MB),
    }
    print_table(res)
    if args.json is not None:
        write_json(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
