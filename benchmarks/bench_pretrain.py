"""Tokenizer pretraining benchmark: tokens per second, step time, share of step time waiting for
data, GPU memory, and encoding speed, on a TUAB-shaped store built on the spot.

One process, one run:

1. writes a TUAB-like EDF (23 channels, 256 Hz, default 1 hour) into a TUAB tree and ingests it
   with the default TUH profile (19 channels, 200 Hz, 10-s windows, all in the train split);
2. pretrains the tokenizer (default config, or ``--config``) for ``--steps`` steps on
   ``--device`` and reads ``metrics.jsonl``: the first ``--warmup-logs`` logged intervals
   (allocator, autotuning, first chunks) are left out of the figures;
3. times encoding every window (``biosig tokenize``'s code path) on the same device.

Timings are printed, never asserted; the exit status is 0. ``--json OUT`` writes every number.

    python benchmarks/bench_pretrain.py [--hours 1] [--steps 300] [--device auto]
                                        [--batch-windows 64] [--workers 0] [--config FILE]
                                        [--workdir DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np


def _versions() -> dict[str, str]:
    import torch

    import biosig_ingest

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__, "biosig_ingest": biosig_ingest.__version__}


def build_store(work: Path, hours: float) -> Path:
    from biosig_ingest import ingest
    from biosig_ingest.samples.tuab import write_tuab_like_edf

    tree = work / "tuab"
    write_tuab_like_edf(tree / "edf/train/normal/01_tcp_ar/aaaaaaaa_s001_t000.edf", duration_s=hours * 3600)
    store = work / "store.zarr"
    ingest("tuh", tree, store, overwrite=True)
    return store


def bench_pretrain(store: Path, run: Path, args: argparse.Namespace) -> dict[str, Any]:
    from biosig_ingest.tokenizer import load_config, pretrain

    cfg = load_config(args.config, batch_windows=args.batch_windows, loader_workers=args.workers, steps=args.steps, log_every=args.log_every)
    cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"checkpoint_every": args.steps})})
    t0 = time.perf_counter()
    report = pretrain([store], run, cfg, device=args.device)
    wall = time.perf_counter() - t0
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    timed = lines[args.warmup_logs :] or lines
    tokens_per_s = [r["tokens_per_s"] for r in timed]
    from biosig_ingest import open_store

    st = open_store(store)
    patch_samples = json.loads((run / "run.json").read_text())["patch_samples"]
    tokens_per_step = cfg.train.batch_windows * len(st.channels) * (st.window_samples // patch_samples)
    out = {
        "device": report.device,
        "steps": report.steps,
        "batch_windows": cfg.train.batch_windows,
        "tokens_per_step": tokens_per_step,
        "n_parameters": report.n_parameters,
        "config": cfg.model_dump(mode="json"),
        "wall_s": wall,
        "tokens_per_s_median": statistics.median(tokens_per_s),  # training: forward + backward + update
        "step_ms_median": 1000 * tokens_per_step / statistics.median(tokens_per_s),
        "data_wait_share_median": statistics.median(r["data_wait_share"] for r in timed),
        "loss_first": lines[0]["loss"],
        "loss_last": lines[-1]["loss"],
        "codes_used_last": lines[-1]["codes_used"],
        "intervals_timed": len(timed),
    }
    if "cuda_max_memory_gb" in lines[-1]:
        import torch

        out["cuda_max_memory_gb"] = lines[-1]["cuda_max_memory_gb"]
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def bench_encode(store: Path, run: Path, device: str) -> dict[str, Any]:
    from biosig_ingest import open_store
    from biosig_ingest.tokenizer.encode import encode_windows
    from biosig_ingest.tokenizer.run import load_run

    tt = load_run(run, device)
    st = open_store(store)
    scale = tt.scale_for(st)
    windows = np.arange(len(st))
    encode_windows(tt, st, windows[:64], scale, 0)  # warm-up
    t0 = time.perf_counter()
    tokens = 0
    for lo in range(0, len(windows), 256):
        codes = encode_windows(tt, st, windows[lo : lo + 256], scale, 0)
        tokens += int((codes[..., 0] >= 0).sum())
    seconds = time.perf_counter() - t0
    return {"windows": len(windows), "tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hours", type=float, default=1.0, help="length of the TUAB-like recording")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--warmup-logs", type=int, default=1, help="logged intervals left out of the figures")
    p.add_argument("--batch-windows", type=int, default=64)
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--device", default="auto")
    p.add_argument("--config", type=Path, default=None, help="tokenizer config (YAML/JSON); default: the default config")
    p.add_argument("--workdir", type=Path, default=None, help="keep files here (default: a temporary folder, deleted)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-pretrain-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        store = build_store(work, args.hours)
        build_s = time.perf_counter() - t0
        run = work / "run"
        shutil.rmtree(run, ignore_errors=True)
        pre = bench_pretrain(store, run, args)
        enc = bench_encode(store, run, args.device)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    result = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), **_versions()},
        "store": {"hours": args.hours, "build_s": build_s},
        "pretrain": pre,
        "encode": enc,
    }
    print(f"device {pre['device']}{' (' + pre['gpu'] + ')' if 'gpu' in pre else ''}, {os.cpu_count()} CPUs, torch {result['machine']['torch']}")
    print(
        f"pretrain: {pre['n_parameters']:,} parameters, batch {pre['batch_windows']} windows = {pre['tokens_per_step']:,} tokens; "
        f"{pre['tokens_per_s_median']:,.0f} tokens/s, {pre['step_ms_median']:.1f} ms/step, "
        f"waiting for data {pre['data_wait_share_median']:.1%} of the time"
        + (f", GPU memory {pre['cuda_max_memory_gb']:.2f} GB" if "cuda_max_memory_gb" in pre else "")
    )
    print(f"          loss {pre['loss_first']:.4f} -> {pre['loss_last']:.4f} in {pre['steps']} steps ({pre['wall_s']:.1f} s)")
    print(f"encode:   {enc['tokens_per_s']:,.0f} tokens/s ({enc['windows']} windows in {enc['seconds']:.2f} s)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    sys.exit(0)


if __name__ == "__main__":
    main()
