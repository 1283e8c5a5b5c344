"""Pretraining: stream windows from one or more stores, AdamW with warm-up and cosine decay,
gradient clipping, bf16 autocast on CUDA, checkpoints that resume exactly, JSON-lines metrics.

Resuming is re-running: ``pretrain`` on a run folder with a checkpoint continues from it, with
the weights, optimizer, scheduler, random generator and data position it saved, so the loss
curve is the one an uninterrupted run draws (CPU; tested by killing a run).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from .. import _failpoints as failpoints
from ..errors import UsageError
from ..store.reader import open_store
from .config import TokenizerConfig
from .data import EpochStream, channel_vocabulary, layout_info, store_scale, training_windows
from .model import Batch, count_parameters, weight_decay_groups
from .run import (
    RUN_FORMAT,
    RunError,
    build_model,
    latest_checkpoint,
    load_weights,
    read_run_info,
    require_safetensors,
    resolve_device,
    save_checkpoint,
    to_device_batch,
    write_json_atomic,
)

METRICS = "metrics.jsonl"
LOSS_KEYS = ("total", "recon", "amplitude", "phase", "waveform", "vq")


@dataclass
class PretrainReport:
    run_dir: Path
    device: str
    steps: int  # total steps of the run
    start_step: int  # where this call began (0: fresh run)
    first: dict[str, Any] | None  # first metrics line of this call
    last: dict[str, Any] | None  # last metrics line
    wall_s: float
    n_parameters: int


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``min_ratio`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _store_row(path: Path, store: Any, scale: float, n: int, how: str) -> dict[str, Any]:
    return {
        "path": str(path.resolve()),
        "name": path.name,
        "corpus": store.attrs.get("corpus"),
        "profile_hash": store.attrs.get("profile_hash"),
        "n_windows": len(store),
        "training_windows": n,
        "windows": how,
        "scale": scale,
        "channels": list(store.channels),
    }


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop lines logged after ``step``: a killed run may have logged past its last checkpoint."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(line + "\n" for line in keep))
    os.replace(tmp, path)


def _tensorboard(run_dir: Path, purge_step: int) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional: JSON lines are the record
        return None
    return SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge_step)


def pretrain(
    stores: Sequence[str | Path],
    out: str | Path,
    config: TokenizerConfig | None = None,
    *,
    device: str = "auto",
    steps: int | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> PretrainReport:
    """Train (or resume) the tokenizer in run folder ``out`` on ``stores``' training windows.

    ``config`` None: the defaults, or the run's own config when resuming; a different config for
    an existing run is an error (only ``steps`` may change, which changes the cosine schedule).
    """
    require_safetensors()
    t_start = time.perf_counter()
    run_dir = Path(out)
    if not stores:
        raise UsageError("give at least one --store")
    paths = [Path(s) for s in stores]
    info = read_run_info(run_dir)
    if info is not None:
        saved = TokenizerConfig.model_validate(info["config"])
        if config is not None and config.digest() != saved.digest():
            raise RunError(f"{run_dir} was trained with another config; pass the same --config or choose another --out")
        if [str(p.resolve()) for p in paths] != [row["path"] for row in info["stores"]]:
            raise RunError(f"{run_dir} was trained on {[row['path'] for row in info['stores']]}; resume with the same --store list")
        config = saved
    cfg = config or TokenizerConfig()
    if steps is not None:
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"steps": int(steps)})})
    tc = cfg.train

    opened = [open_store(p) for p in paths]
    rates = sorted({s.fs_hz for s in opened})
    if len(rates) > 1:
        raise UsageError(f"stores have different sampling rates {rates} Hz; ingest them with profiles at one rate")
    fs = rates[0]
    patch = fs * cfg.model.patch_s
    if abs(patch - round(patch)) > 1e-6:
        raise UsageError(f"patch_s={cfg.model.patch_s} s is not a whole number of samples at {fs:g} Hz")
    too_long = [s.path.name for s in opened if s.window_samples // round(patch) > cfg.model.max_patches]
    if too_long:
        raise UsageError(f"windows of {too_long} hold more than max_patches={cfg.model.max_patches} patches; raise model.max_patches")
    if tc.store_weights is not None and len(tc.store_weights) != len(paths):
        raise UsageError(f"train.store_weights has {len(tc.store_weights)} numbers for {len(paths)} stores")

    from ..torch import Selection, StoreIterableDataset

    vocab = info["channel_vocabulary"] if info else channel_vocabulary(opened)
    selections, rows, scales = [], [], []
    for k, (path, store) in enumerate(zip(paths, opened, strict=True)):
        windows, how = training_windows(store, tc.split)
        if len(windows) == 0:
            raise UsageError(f"{path.name} has no window to train on ({how})")
        scale = float(info["stores"][k]["scale"]) if info else store_scale(store)
        selections.append(Selection(store, indices=windows))
        rows.append(_store_row(path, store, scale, len(windows), how))
        scales.append(scale)
    try:
        dataset = StoreIterableDataset(
            selections,
            batch_size=tc.batch_windows,
            seed=tc.seed,
            shuffle_buffer=tc.shuffle_buffer,
            weights=list(tc.store_weights) if tc.store_weights is not None else None,
            channels="union",
            labels=[],
            mask_qc=list(tc.exclude_qc),
        )
    except ValueError as exc:  # incompatible stores (rate, window length, units)
        raise UsageError(str(exc)) from None
    dev = resolve_device(device)
    on_cuda = dev.type == "cuda"
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=None,
        num_workers=tc.loader_workers,
        pin_memory=on_cuda,
        persistent_workers=tc.loader_workers > 0,
        # each iter() draws a worker seed; from its own generator, not the global one that
        # dead-code restarts use (resuming starts an extra iterator)
        generator=torch.Generator().manual_seed(tc.seed),
    )
    layout = layout_info(dataset.layout, vocab)
    inv_scale = torch.tensor([1.0 / s for s in scales], dtype=torch.float32)

    if info is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        info = {
            "format": RUN_FORMAT,
            "config": cfg.model_dump(mode="json"),
            "config_digest": cfg.digest(),
            "fs_hz": fs,
            "patch_samples": int(round(patch)),
            "channel_vocabulary": vocab,
            "stores": rows,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "software": {"biosig_ingest": __version__, "torch": torch.__version__},
        }
    info["config"] = cfg.model_dump(mode="json")  # steps may have been extended
    info["layout"] = list(layout.names)
    # channel ids and positions are the loader's layout for every batch: moved once
    fixed = to_device_batch(np.zeros((0, len(layout.names), 0), np.float32), np.zeros((0, len(layout.names)), bool), layout, dev)

    with torch.random.fork_rng(devices=[dev] if on_cuda else []):
        torch.manual_seed(tc.seed)
        model = build_model(info, cfg).to(dev)
        info["n_parameters"] = count_parameters(model)
        write_json_atomic(run_dir / "run.json", info)
        optimizer = torch.optim.AdamW(weight_decay_groups(model, tc.weight_decay), lr=tc.lr, betas=tc.betas)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: lr_factor(s, tc.warmup_steps, tc.steps, tc.min_lr_ratio)
        )
        step = 0
        data_state: dict[str, Any] | None = None
        ckpt = latest_checkpoint(run_dir)
        if ckpt is not None:
            load_weights(model, ckpt)
            state = torch.load(ckpt / "state.pt", map_location="cpu", weights_only=True)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            data_state = state["data"]
            torch.set_rng_state(state["rng"]["torch"])
            if on_cuda and state["rng"].get("cuda"):
                torch.cuda.set_rng_state_all(state["rng"]["cuda"])
            step = int(state["step"])
        _truncate_metrics(run_dir / METRICS, step)
        start_step = step
        if on_start is not None:
            on_start(tc.steps, step)

        stream = EpochStream(dataset, loader, data_state)
        tb = _tensorboard(run_dir, step + 1)
        metrics_file = (run_dir / METRICS).open("a")
        acc: dict[str, Any] = {}
        counts = [torch.zeros(cfg.model.codebook_size, dtype=torch.int64, device=dev) for _ in range(cfg.model.n_codebooks)]
        n_acc = tokens = 0
        data_s = 0.0
        t_interval = time.perf_counter()
        first = last = None
        model.train()
        try:
            while step < tc.steps:
                t0 = time.perf_counter()
                raw = stream.next_batch()
                data_s += time.perf_counter() - t0
                x = raw["signals"].to(dev, non_blocking=True)
                x = torch.nan_to_num(x * inv_scale.to(dev)[raw["store"].to(dev)][:, None, None])
                valid = raw["channel_mask"].to(dev, non_blocking=True)
                batch = Batch(x, fixed.channel_ids, fixed.positions, fixed.has_position, valid)
                with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=on_cuda):
                    output = model(batch)
                loss = output.losses["total"]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                optimizer.step()
                scheduler.step()
                step += 1
                data_state = stream.state()

                n_tok = int(raw["channel_mask"].sum()) * output.codes.shape[2]
                tokens += n_tok
                codes = output.codes[batch.valid]  # (valid channels, P, levels)
                for level, c in enumerate(counts):
                    c += torch.bincount(codes[..., level].reshape(-1), minlength=c.numel())
                # tensors, read at log steps only: no device sync per step
                for key, value in output.losses.items():
                    acc[key] = acc.get(key, 0.0) + value.detach().double()
                acc["grad_norm"] = acc.get("grad_norm", 0.0) + grad_norm.detach().double()
                n_acc += 1

                at_checkpoint = step % tc.checkpoint_every == 0 or step == tc.steps
                if step % tc.log_every == 0 or at_checkpoint:
                    if on_cuda:
                        torch.cuda.synchronize()
                    elapsed = time.perf_counter() - t_interval
                    record: dict[str, Any] = {"step": step}
                    for key in (*LOSS_KEYS, "grad_norm"):
                        if key in acc:
                            record["loss" if key == "total" else key] = float(acc[key]) / n_acc
                    record["lr"] = scheduler.get_last_lr()[0]
                    usage = [c.double() / c.sum().clamp_min(1) for c in counts]
                    record["codes_used"] = [float((c > 0).double().mean()) for c in counts]
                    record["perplexity"] = [float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum())) for p in usage]
                    record["tokens_per_s"] = tokens / max(elapsed, 1e-9)
                    record["data_wait_share"] = data_s / max(elapsed, 1e-9)
                    record["epoch"] = stream.epoch
                    if on_cuda:
                        record["cuda_max_memory_gb"] = torch.cuda.max_memory_allocated(dev) / 1e9
                    metrics_file.write(json.dumps(record) + "\n")
                    metrics_file.flush()
                    if tb is not None:
                        for key, value in record.items():
                            if isinstance(value, float):
                                tb.add_scalar(f"pretrain/{key}", value, step)
                            elif isinstance(value, list):  # per codebook level
                                for level, v in enumerate(value):
                                    tb.add_scalar(f"pretrain/{key}/level{level}", v, step)
                    if on_log is not None:
                        on_log(record)
                    first = first or record
                    last = record
                    acc, n_acc, tokens, data_s = {}, 0, 0, 0.0
                    for c in counts:
                        c.zero_()
                    t_interval = time.perf_counter()
                if at_checkpoint:
                    state = {
                        "step": step,
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "rng": {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if on_cuda else []},
                        "data": data_state,
                    }
                    save_checkpoint(run_dir, step, model, state, tc.keep_checkpoints)
                    failpoints.hit("tokenizer-after-checkpoint")
        finally:
            stream.close()
            metrics_file.close()
            if tb is not None:
                tb.close()
    if start_step >= tc.steps and latest_checkpoint(run_dir) is None:
        raise RunError(f"{run_dir}: nothing to do and no checkpoint")
    return PretrainReport(run_dir, str(dev), tc.steps, start_step, first, last, time.perf_counter() - t_start, info["n_parameters"])
