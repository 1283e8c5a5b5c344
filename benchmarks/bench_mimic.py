"""MIMIC-IV-ECG at scale: records per second, store bytes and files per record, open_store time.

One process, one run:

1. writes a MIMIC-IV-ECG replica of ``--records`` studies (default 20,000; ~2.4 GB) with
   ``biosig_ingest.samples.write_mimic_replica`` (timed, for information);
2. ingests a 40-record replica once so loading the numba kernels is not timed;
3. times ``biosig_ingest.ingest("mimic-iv-ecg", ...)`` with ``--profile`` (default: ``default``
   = ``ecg500``: 0.5 Hz high-pass, 60 Hz notch, 500 Hz, one 10 s window per record), and the
   listing alone (``adapter.discover``);
4. counts the store's files and bytes, and times ``open_store`` (plus ``len``, and the first
   ``recordings`` and ``metadata`` tables) in fresh interpreters, best of 3;
5. extrapolates time, size, files and shard-attribute JSON to the full 800,035 records.

Timings are printed, never asserted; the acceptance bars (open_store < 1 s, < 100 files per
1,000 records) are reported as met or not, and the exit status is 0 either way.

    python benchmarks/bench_mimic.py [--records 20000] [--profile default] [--workdir DIR] [--json OUT]
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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _common import tree_stats, versions  # benchmarks/_common.py

FULL_CORPUS = 800_035  # records in MIMIC-IV-ECG v1.0 (LAYOUTS.md 5.7)
TARGET_OPEN_S = 1.0
TARGET_FILES_PER_1000 = 100

_OPEN = """
import json, sys, time
t0 = time.perf_counter()
from biosig_ingest import open_store
t1 = time.perf_counter()
store = open_store(sys.argv[1])
n = len(store)
t2 = time.perf_counter()
recs = store.recordings
t3 = time.perf_counter()
meta = store.metadata
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "open_s": t2 - t1, "recordings_s": t3 - t2, "metadata_s": t4 - t3,
                  "n_windows": n, "n_recordings": len(recs)}))
"""


def _versions() -> dict[str, str]:
    return {"python": platform.python_version(), **versions(("biosig-ingest", "numpy", "scipy", "numba", "zarr", "wfdb", "pandas"))}



def _shard_json_bytes(store: Path) -> int:
    return sum(p.stat().st_size for p in (store / "shards").glob("s*/zarr.json"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--workdir", type=Path, default=None, help="kept after the run (default: a temporary folder, deleted)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from biosig_ingest import ingest
    from biosig_ingest.config import resolve_profile
    from biosig_ingest.corpora import get_adapter
    from biosig_ingest.samples import write_mimic_replica

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-mimic-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.platform()}",
        "versions": _versions(),
        "records": args.records,
        "profile": args.profile,
    }
    try:
        source = work / "mimic"
        store = work / "store.zarr"
        shutil.rmtree(source, ignore_errors=True)
        t = time.perf_counter()
        replica = write_mimic_replica(source, n_records=args.records)
        results["replica_write_s"] = time.perf_counter() - t
        results["source"] = tree_stats(source / "files")
        listed = len(replica.studies)
        print(f"replica: {listed} listed studies ({args.records} with files) in {results['replica_write_s']:.1f} s, "
              f"{results['source']['bytes'] / 1e9:.2f} GB")  # fmt: skip

        warm = work / "warm"
        write_mimic_replica(warm / "src", n_records=40)
        ingest("mimic-iv-ecg", warm / "src", warm / "store.zarr", args.profile, overwrite=True)

        adapter = get_adapter("mimic-iv-ecg")
        rp = resolve_profile(adapter.manifest, adapter.manifest.profile(args.profile))
        t = time.perf_counter()
        refs = adapter.discover(source, rp)
        results["discover_s"] = time.perf_counter() - t
        del refs

        t = time.perf_counter()
        report = ingest("mimic-iv-ecg", source, store, args.profile, overwrite=True)
        wall = time.perf_counter() - t
        st = tree_stats(store)
        ok = report.recordings_ok
        results.update(
            ingest_wall_s=wall,
            recordings_ok=ok,
            recordings_failed=report.recordings_failed,
            errors=dict(report.errors),
            windows=report.windows_written,
            shards=report.shards_written,
            records_per_s=listed / wall,
            store=st,
            store_bytes_per_record=st["bytes"] / ok,
            source_bytes_per_record=results["source"]["bytes"] / args.records,
            files_per_1000_records=1000 * st["files"] / listed,
            entries_per_1000_records=1000 * (st["files"] + st["dirs"]) / listed,
            shard_json_bytes=_shard_json_bytes(store),
        )
        print(f"ingest ({args.profile}): {listed} records in {wall:.1f} s = {results['records_per_s']:.0f} records/s; "
              f"ok {ok}, failed {report.recordings_failed} {dict(report.errors)}")  # fmt: skip
        print(f"store: {st['bytes'] / 1e9:.3f} GB = {results['store_bytes_per_record'] / 1e3:.1f} kB per record "
              f"(source {results['source_bytes_per_record'] / 1e3:.1f} kB); {st['files']} files, {st['dirs']} folders "
              f"in {report.shards_written} shards = {results['files_per_1000_records']:.1f} files "
              f"({results['entries_per_1000_records']:.1f} entries) per 1,000 records")  # fmt: skip
        print(f"listing (record_list.csv + machine_measurements.csv): {results['discover_s']:.2f} s")

        runs = []
        for _ in range(3):
            out = subprocess.run([sys.executable, "-c", _OPEN, str(store)], capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout))
        best = {k: min(r[k] for r in runs) for k in ("import_s", "open_s", "recordings_s", "metadata_s")}
        results["open_store"] = {"runs": runs, "best": best}
        print(f"open_store + len (fresh interpreter, best of 3): {best['open_s']:.3f} s; then recordings table "
              f"{best['recordings_s']:.3f} s, metadata table {best['metadata_s']:.3f} s (import {best['import_s']:.2f} s)")  # fmt: skip

        scale = FULL_CORPUS / listed
        full = {
            "ingest_hours": FULL_CORPUS / results["records_per_s"] / 3600,
            "store_gb": results["store_bytes_per_record"] * FULL_CORPUS / 1e9,
            "source_gb": results["source_bytes_per_record"] * FULL_CORPUS / 1e9,
            "files": results["files_per_1000_records"] * FULL_CORPUS / 1000,
            "shards": -(-FULL_CORPUS // rp.profile.recordings_per_shard),
            "shard_json_mb": results["shard_json_bytes"] * scale / 1e6,
        }
        results["extrapolated_800035"] = full
        print(f"extrapolated to {FULL_CORPUS:,} records on this machine: {full['ingest_hours']:.1f} h, "
              f"store {full['store_gb']:.0f} GB (source {full['source_gb']:.0f} GB), {full['files']:,.0f} files "
              f"in {full['shards']} shards; shard attributes {full['shard_json_mb']:.0f} MB of JSON")  # fmt: skip
        met_open = best["open_s"] < TARGET_OPEN_S
        met_files = results["files_per_1000_records"] < TARGET_FILES_PER_1000
        results["acceptance"] = {"open_store_under_1s": met_open, "files_per_1000_under_100": met_files}
        print(f"acceptance: open_store < {TARGET_OPEN_S:g} s {'met' if met_open else 'NOT met'}; "
              f"< {TARGET_FILES_PER_1000} files per 1,000 records {'met' if met_files else 'NOT met'}")
        results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
        print(f"peak RSS of this process: {results['peak_rss_mb']:.0f} MB")
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
