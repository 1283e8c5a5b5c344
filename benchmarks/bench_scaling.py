"""Scaling: one TUAB-like corpus ingested in-process, on one core, and on 1 and 2 Dask workers.

One process, one run:

1. writes a TUAB tree of ``--recordings`` TUAB-like EDFs (23 channels, 256 Hz, ``--minutes``
   each, one seed per file) with ``biosig_ingest.samples.write_tuab_like_edf``;
2. warms up numba (cache load) here and in the workers of two local clusters (1 and 2
   single-threaded worker processes, ``parallel.local_cluster``), started once, outside the
   timings;
3. ingests the tree ``--repeats`` times in each mode, interleaved, best counts:
   in-process (``workers=1``: numba and scipy.fft may use every core), in-process pinned to
   one core (all threads' affinity), Dask with 1 worker, Dask with 2 workers (``client=``),
   and ``workers=2`` end to end (starting and stopping its LocalCluster);
4. checks that the in-process and the 2-worker stores hold identical windows, QC and
   recordings tables;
5. ``biosig features`` (spectral DE) in-process and on the 2 workers, identical arrays checked;
6. fixed costs: Dask no-op tasks (throughput and round trip), and per-shard cost from a corpus
   of ``--tiny`` one-minute recordings ingested as one shard per recording vs a single shard;
7. object counts (what an object store would see): files and folders per shard and per
   recording, JSON documents, bytes per chunk object, open_store time.

Prints recordings/s, x realtime, MB/s of source EDF, and parallel efficiency T1 / (2 x T2).
Timings are printed, never asserted; the exit status is 0.

    python benchmarks/bench_scaling.py [--recordings 48] [--minutes 20] [--per-shard 4]
                                       [--repeats 3] [--tiny 96] [--workdir DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from _common import tree_stats, versions  # benchmarks/_common.py

FS_HZ = 256
CHANNELS = 23
MODES = ("in-process", "in-process, 1 core", "dask, 1 worker", "dask, 2 workers", "workers=2 end to end")


def _versions() -> dict[str, str]:
    return {"python": platform.python_version(), **versions(("biosig-ingest", "numpy", "scipy", "numba", "zarr", "dask", "distributed"))}


def _load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])



def write_corpus(root: Path, n: int, seconds: float, seed0: int = 0) -> list[Path]:
    from biosig_ingest.samples import write_tuab_like_edf

    paths = []
    for k in range(n):
        subject = "aaaaa" + chr(97 + k // 676) + chr(97 + (k // 26) % 26) + chr(97 + k % 26)
        rel = Path(f"edf/train/normal/01_tcp_ar/{subject}_s001_t000.edf")
        paths.append(write_tuab_like_edf(root / rel, duration_s=seconds, fs_hz=FS_HZ, n_channels=CHANNELS, seed=seed0 + k))
    return paths


def profile(per_shard: int) -> Any:
    from biosig_ingest.corpora import get_adapter

    return get_adapter("tuh").manifest.profile("default").model_copy(update={"recordings_per_shard": per_shard})


@contextlib.contextmanager
def one_core() -> Iterator[int]:
    """Every thread of this process (numba's pool, scipy.fft's, the writer's) on one CPU;
    threads started meanwhile inherit it. Restored afterwards."""
    before = os.sched_getaffinity(0)
    cpu = min(before)
    tids = [int(t) for t in os.listdir("/proc/self/task")]
    for tid in tids:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, {cpu})
    try:
        yield cpu
    finally:
        for t in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(t), before)


def _cpu_s() -> float:
    """User + system CPU seconds of this process, all its threads."""
    t = os.times()
    return t.user + t.system


def cpu_clock(client: Any = None) -> Callable[[], float]:
    """CPU seconds spent so far by this process and, with a client, by every worker process:
    the work done, which a busy machine slows down far less than the wall time."""
    if client is None:
        return _cpu_s
    return lambda: _cpu_s() + sum(client.run(_cpu_s).values())


def ingest_once(tree: Path, store: Path, prof: Any, cpu: Callable[[], float] | None = None, **kw: Any) -> dict[str, Any]:
    from biosig_ingest import ingest

    shutil.rmtree(store, ignore_errors=True)  # not part of the work
    c0 = cpu() if cpu else 0.0
    t0 = time.perf_counter()
    report = ingest("tuh", tree, store, prof, **kw)
    wall = time.perf_counter() - t0
    cpu_s = cpu() - c0 if cpu else None
    if report.recordings_failed or not report.recordings_ok:
        raise RuntimeError(f"ingest failed: {report.failures[:3]}")
    return {
        "wall_s": wall,
        "cpu_s": cpu_s,
        "recordings": report.recordings_ok,
        "recording_seconds": report.recording_seconds,
        "windows": report.windows_written,
        "shards": report.shards_written,
    }


def same_store(a: Path, b: Path) -> bool:
    from biosig_ingest import open_store

    sa, sb = open_store(a), open_store(b)
    if sa.shard_names != sb.shard_names or len(sa) != len(sb) or len(sa) == 0:
        return False
    for lo in range(0, len(sa), 512):  # bounded memory
        idx = np.arange(lo, min(lo + 512, len(sa)))
        if not np.array_equal(sa.read(idx), sb.read(idx)):
            return False
    cols = ["recording_id", "status", "n_windows", "window_offset", "sha256"]
    return bool(sa.recordings[cols].equals(sb.recordings[cols]) and np.array_equal(sa.qc, sb.qc))


def _noop(x: int) -> int:
    return x


def dask_overhead(client: Any, n_tasks: int, round_trips: int) -> dict[str, float]:
    """Per-task cost of the scheduler itself: no-op tasks with distinct keys."""
    from dask.distributed import wait

    best_batch = best_rt = float("inf")
    for rep in range(3):
        t0 = time.perf_counter()
        futures = [client.submit(_noop, k, key=f"noop-{rep}-{k}", pure=False) for k in range(n_tasks)]
        wait(futures)
        best_batch = min(best_batch, time.perf_counter() - t0)
        del futures
        t0 = time.perf_counter()
        for k in range(round_trips):
            client.submit(_noop, k, key=f"rt-{rep}-{k}", pure=False).result()
        best_rt = min(best_rt, time.perf_counter() - t0)
    return {
        "tasks": n_tasks,
        "batch_s": best_batch,
        "per_task_ms": 1e3 * best_batch / n_tasks,
        "round_trip_ms": 1e3 * best_rt / round_trips,
    }


def best(runs: list[dict[str, Any]], source_bytes: int) -> dict[str, Any]:
    b = min(runs, key=lambda r: r["wall_s"])
    cpus = [r["cpu_s"] for r in runs if r.get("cpu_s") is not None]
    return {
        "runs_wall_s": [round(r["wall_s"], 3) for r in runs],
        "runs_cpu_s": [round(c, 3) for c in cpus],
        "min_cpu_s": min(cpus) if cpus else None,
        "best_wall_s": b["wall_s"],
        "recordings_per_s": b["recordings"] / b["wall_s"],
        "x_realtime": b["recording_seconds"] / b["wall_s"],
        "source_mb_per_s": source_bytes / 1e6 / b["wall_s"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recordings", type=int, default=48, help="EDFs in the corpus (48)")
    ap.add_argument("--minutes", type=float, default=20.0, help="minutes per EDF (20, TUAB's typical length)")
    ap.add_argument("--per-shard", type=int, default=4, help="recordings per shard (4)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per mode, best counts (3)")
    ap.add_argument("--tiny", type=int, default=96, help="one-minute EDFs for the per-shard cost (96)")
    ap.add_argument("--noop-tasks", type=int, default=2000, help="no-op Dask tasks (2000)")
    ap.add_argument("--workdir", type=Path, help="keep the files here (default: a temp dir, deleted)")
    ap.add_argument("--json", type=Path, help="write all numbers to this JSON file")
    args = ap.parse_args(argv)

    from dask.distributed import Client

    from biosig_ingest import open_store
    from biosig_ingest.features import FeatureSpec, compute_features, read_features
    from biosig_ingest.parallel import local_cluster

    work = args.workdir.resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="biosig-scaling-"))
    work.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cpus ({len(os.sched_getaffinity(0))} usable), {platform.platform()}",
        "versions": _versions(),
        "load_at_start": _load(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    print(f"workdir {work}; {res['machine']}; load average {res['load_at_start']}")
    clusters: list[Any] = []
    try:
        tree = work / "tuab"
        shutil.rmtree(tree, ignore_errors=True)
        t0 = time.perf_counter()
        edfs = write_corpus(tree, args.recordings, args.minutes * 60.0)
        source_bytes = sum(p.stat().st_size for p in edfs)
        res["corpus"] = {
            "recordings": len(edfs), "minutes_each": args.minutes, "source_bytes": source_bytes,
            "per_shard": args.per_shard, "write_s": time.perf_counter() - t0,
        }  # fmt: skip
        print(f"corpus: {len(edfs)} EDFs x {args.minutes:g} min ({source_bytes / 1e6:.0f} MB) in {res['corpus']['write_s']:.1f} s")
        prof = profile(args.per_shard)

        warm = work / "warm"
        write_corpus(warm, 4, 120.0, seed0=1000)
        warm_prof = profile(1)
        ingest_once(warm, work / "warm.zarr", warm_prof)
        for n in (1, 2):
            cluster = local_cluster(n)  # what `workers=n` starts
            clusters += [cluster, Client(cluster)]
            for _ in range(2):  # both workers get a warm-up shard
                ingest_once(warm, work / "warm.zarr", warm_prof, client=clusters[-1])
        client1, client2 = clusters[1], clusters[3]

        stores = {m: work / f"store-{k}.zarr" for k, m in enumerate(MODES)}
        steps: dict[str, Callable[[], dict[str, Any]]] = {
            "in-process": lambda: ingest_once(tree, stores["in-process"], prof, cpu_clock(), workers=1),
            "in-process, 1 core": lambda: _pinned(lambda: ingest_once(tree, stores["in-process, 1 core"], prof, cpu_clock())),
            "dask, 1 worker": lambda: ingest_once(tree, stores["dask, 1 worker"], prof, cpu_clock(client1), client=client1),
            "dask, 2 workers": lambda: ingest_once(tree, stores["dask, 2 workers"], prof, cpu_clock(client2), client=client2),
            "workers=2 end to end": lambda: ingest_once(tree, stores["workers=2 end to end"], prof, workers=2),
        }
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
        for k in range(args.repeats):  # interleaved: a busy spell hits every mode alike
            for mode, step in steps.items():
                runs[mode].append(step())
                cpu_s = runs[mode][-1]["cpu_s"]
                cpu_txt = f", CPU {cpu_s:6.2f} s" if cpu_s is not None else ""
                print(f"  run {k + 1}/{args.repeats} {mode:<22} {runs[mode][-1]['wall_s']:7.2f} s{cpu_txt}  (load {_load()})")
        first = runs["in-process"][0]
        res["ingest"] = {m: best(r, source_bytes) for m, r in runs.items()}
        res["ingest_work"] = {k: first[k] for k in ("recordings", "recording_seconds", "windows", "shards")}
        t1 = res["ingest"]["in-process"]["best_wall_s"]
        t2 = res["ingest"]["dask, 2 workers"]["best_wall_s"]
        res["efficiency"] = {
            "in_process_over_2_workers": t1 / (2 * t2),
            "one_core_over_2_workers": res["ingest"]["in-process, 1 core"]["best_wall_s"] / (2 * t2),
            "dask_1_over_dask_2": res["ingest"]["dask, 1 worker"]["best_wall_s"] / (2 * t2),
            "in_process_over_end_to_end": t1 / (2 * res["ingest"]["workers=2 end to end"]["best_wall_s"]),
            # CPU work of 2 workers over that of one pinned process: 1.0 = no parallel overhead
            "cpu_2_workers_over_1_core": res["ingest"]["dask, 2 workers"]["min_cpu_s"] / res["ingest"]["in-process, 1 core"]["min_cpu_s"],
        }
        res["identical"] = {
            "in-process == dask, 2 workers": same_store(stores["in-process"], stores["dask, 2 workers"]),
            "in-process == in-process, 1 core": same_store(stores["in-process"], stores["in-process, 1 core"]),
        }
        for m in ("dask, 1 worker", "workers=2 end to end"):
            shutil.rmtree(stores[m], ignore_errors=True)
        big = tree_stats(stores["in-process"])  # before feature sets are added to it

        # features on the in-process store: in-process against the 2 workers
        fstore = stores["in-process"]
        spec = FeatureSpec()
        fruns: dict[str, list[dict[str, Any]]] = {"in-process": [], "dask, 2 workers": []}
        kept: dict[str, dict[str, np.ndarray]] = {}
        for _ in range(args.repeats):
            for mode in fruns:
                for folder in (fstore / "shards").glob("s*/features_*"):
                    shutil.rmtree(folder)
                t0 = time.perf_counter()
                rep = compute_features(fstore, spec, client=client2 if mode != "in-process" else None)
                fruns[mode].append({"wall_s": time.perf_counter() - t0, "windows": rep.windows_written})
                kept[mode] = {m: read_features(fstore, rep.name, m) for m in ("de", "power")}
        res["features"] = {
            m: {
                "runs_wall_s": [round(r["wall_s"], 3) for r in rs],
                "best_wall_s": min(r["wall_s"] for r in rs),
                "windows_per_s": rs[0]["windows"] / min(r["wall_s"] for r in rs),
            }
            for m, rs in fruns.items()
        }
        res["features"]["efficiency"] = res["features"]["in-process"]["best_wall_s"] / (2 * res["features"]["dask, 2 workers"]["best_wall_s"])
        res["identical"]["features in-process == dask, 2 workers"] = all(
            np.array_equal(kept["in-process"][m], kept["dask, 2 workers"][m]) for m in kept["in-process"]
        )

        # fixed costs: the scheduler, and a shard
        res["dask_noop"] = dask_overhead(client2, args.noop_tasks, 100)
        tiny = work / "tiny"
        shutil.rmtree(tiny, ignore_errors=True)
        write_corpus(tiny, args.tiny, 60.0, seed0=2000)
        truns: dict[str, list[dict[str, Any]]] = {"1 shard": [], "1 recording per shard": [], "1 per shard, dask 2": []}
        tsteps = {
            "1 shard": lambda: ingest_once(tiny, work / "tiny-1.zarr", profile(args.tiny)),
            "1 recording per shard": lambda: ingest_once(tiny, work / "tiny-n.zarr", profile(1)),
            "1 per shard, dask 2": lambda: ingest_once(tiny, work / "tiny-d.zarr", profile(1), client=client2),
        }
        for _ in range(args.repeats):
            for mode, step in tsteps.items():
                truns[mode].append(step())
        tb = {m: min(r["wall_s"] for r in rs) for m, rs in truns.items()}
        res["tiny"] = {
            "recordings": args.tiny,
            "runs_wall_s": {m: [round(r["wall_s"], 3) for r in rs] for m, rs in truns.items()},
            "best_wall_s": tb,
            "per_shard_ms_in_process": 1e3 * (tb["1 recording per shard"] - tb["1 shard"]) / (args.tiny - 1),
            "per_recording_ms_one_shard": 1e3 * tb["1 shard"] / args.tiny,
            "per_shard_ms_dask_2_workers_wall": 1e3 * tb["1 per shard, dask 2"] / args.tiny,
        }

        # objects, as an object store would count them
        one = tree_stats(work / "tiny-1.zarr")
        many = tree_stats(work / "tiny-n.zarr")
        n_shards = res["ingest_work"]["shards"]
        chunk_files = [p.stat().st_size for p in (stores["in-process"] / "shards").glob("s*/signals/c/*/*/*")]
        t0 = time.perf_counter()
        st = open_store(stores["in-process"])
        n_win = len(st)
        open_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        recs = st.recordings
        recordings_s = time.perf_counter() - t0
        res["objects"] = {
            "store": big,
            "objects_per_shard": (big["files"]) / n_shards,
            "objects_per_recording": big["files"] / args.recordings,
            "json_per_shard": big["json_docs"] / n_shards,
            "chunk_objects": len(chunk_files),
            "median_chunk_bytes": float(np.median(chunk_files)) if chunk_files else 0.0,
            "tiny_one_shard": one,
            "tiny_shard_per_recording": many,
            "fixed_objects_per_shard": (many["files"] - one["files"]) / (args.tiny - 1),
            "open_store_s": open_s,
            "recordings_table_s": recordings_s,
            "windows": n_win,
            "recordings_rows": len(recs),
        }
        res["load_at_end"] = _load()
    finally:
        for thing in reversed(clusters):
            thing.close()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    report(res)
    if args.json is not None:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0


def _pinned(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    with one_core():
        return fn()


def report(res: dict[str, Any]) -> None:
    c, w = res["corpus"], res["ingest_work"]
    print()
    print(
        f"{c['recordings']} TUAB-like EDFs x {c['minutes_each']:g} min ({w['recording_seconds'] / 3600:.1f} h, "
        f"{c['source_bytes'] / 1e6:.0f} MB), {w['shards']} shards of {c['per_shard']}, {w['windows']} windows; "
        f"load {res['load_at_start']} -> {res['load_at_end']}"
    )
    print(f"{'mode':<24}{'wall s (runs)':<26}{'best s':>8}{'rec/s':>8}{'x realtime':>12}{'MB/s src':>10}")
    for mode, r in res["ingest"].items():
        runs = ", ".join(f"{x:.2f}" for x in r["runs_wall_s"])
        print(f"{mode:<24}{runs:<26}{r['best_wall_s']:>8.2f}{r['recordings_per_s']:>8.2f}{r['x_realtime']:>12,.0f}{r['source_mb_per_s']:>10.1f}")
    cpu = {m: r["min_cpu_s"] for m, r in res["ingest"].items() if r["min_cpu_s"] is not None}
    print("CPU seconds (least of the runs; the work, whatever the load): " + ", ".join(f"{m} {c:.2f}" for m, c in cpu.items()))
    e = res["efficiency"]
    print(
        f"parallel efficiency T1 / (2 T2), T2 = dask 2 workers: T1 in-process {e['in_process_over_2_workers']:.2f}; "
        f"T1 one core {e['one_core_over_2_workers']:.2f}; T1 dask 1 worker {e['dask_1_over_dask_2']:.2f}; "
        f"in-process over `workers=2` end to end {e['in_process_over_end_to_end']:.2f}; "
        f"CPU of 2 workers / CPU of 1 core {e['cpu_2_workers_over_1_core']:.2f}"
    )
    f = res["features"]
    print(
        f"features (spectral DE): in-process {f['in-process']['best_wall_s']:.2f} s ({f['in-process']['windows_per_s']:,.0f} windows/s), "
        f"dask 2 workers {f['dask, 2 workers']['best_wall_s']:.2f} s ({f['dask, 2 workers']['windows_per_s']:,.0f} windows/s); "
        f"efficiency {f['efficiency']:.2f}"
    )
    print("identical: " + "; ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in res["identical"].items()))
    d = res["dask_noop"]
    print(f"dask no-op tasks: {d['tasks']} in {d['batch_s']:.2f} s = {d['per_task_ms']:.2f} ms per task; round trip {d['round_trip_ms']:.2f} ms")
    t = res["tiny"]
    print(
        f"{t['recordings']} one-minute EDFs: one shard {t['best_wall_s']['1 shard']:.2f} s, one shard each "
        f"{t['best_wall_s']['1 recording per shard']:.2f} s in-process, {t['best_wall_s']['1 per shard, dask 2']:.2f} s on 2 workers: "
        f"{t['per_shard_ms_in_process']:.1f} ms fixed cost per shard (in-process), "
        f"{t['per_recording_ms_one_shard']:.1f} ms per 1-min recording"
    )
    o = res["objects"]
    print(
        f"objects: {o['store']['files']} files + {o['store']['dirs']} folders = {o['objects_per_shard']:.1f} files per shard "
        f"({o['json_per_shard']:.1f} JSON), {o['objects_per_recording']:.1f} per recording; {o['chunk_objects']} signal chunks, "
        f"median {o['median_chunk_bytes'] / 1e6:.2f} MB; fixed {o['fixed_objects_per_shard']:.1f} files per extra shard; "
        f"open_store {o['open_store_s'] * 1e3:.0f} ms, recordings table {o['recordings_table_s'] * 1e3:.0f} ms"
    )


if __name__ == "__main__":
    sys.exit(main())
