"""Token sets in a store: the code indices of every window, written shard by shard, each shard
committed by one atomic rename (the pattern of ``biosig_ingest.features.store``).

```
shards/s00000/tokens_<name>/     group; attributes["biosig"]: run, step, digest, shape meaning
  codes   (window, channel, patch) int16, or (window, channel, patch, level) with residual VQ;
          -1 where the channel carries a QC flag the run leaves out (no token)
```
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr

from ..errors import StoreError, UsageError
from ..store.layout import ATTRS_KEY, SHARDS, array
from ..store.reader import Store, open_store
from ..store.sets import check_name, commit_set, list_sets, set_attrs, set_groups
from ..torch.selection import qc_bits
from .run import TrainedTokenizer, latest_checkpoint, load_run

PREFIX = "tokens_"


class TokenSetError(StoreError):
    """A token set is missing from shards, or its name is taken by another tokenizer."""


@dataclass
class TokenizeReport:
    store: str
    name: str
    run: str
    step: int
    shards_written: int = 0
    shards_skipped: int = 0
    windows_written: int = 0
    tokens_written: int = 0
    encode_s: float = 0.0
    wall_s: float = 0.0
    shards: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens_written / self.encode_s if self.encode_s > 0 else 0.0


def group_name(name: str) -> str:
    return PREFIX + name


def tokenizer_digest(tt: TrainedTokenizer) -> str:
    """Identifies the weights: sha256 of the checkpoint's safetensors file and the run's config."""
    ckpt = latest_checkpoint(tt.run_dir)
    h = hashlib.sha256(tt.info["config_digest"].encode())
    if ckpt is not None:
        with open(ckpt / "model.safetensors", "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def encode_windows(tt: TrainedTokenizer, store: Store, indices: np.ndarray, scale: float, exclude_bits: int) -> np.ndarray:
    """Codes (windows, channels, patches, levels) int64 of global window ``indices``; -1 for
    channels flagged with ``exclude_bits``."""
    raw = store.read(indices)
    valid = (store.qc[indices] & exclude_bits) == 0 if exclude_bits else np.ones(raw.shape[:2], bool)
    valid &= np.isfinite(raw).all(axis=-1)
    batch = tt.batch(raw, tt.channels(store), scale, valid)
    with torch.no_grad(), torch.autocast(device_type=tt.device.type, dtype=torch.bfloat16, enabled=tt.device.type == "cuda"):
        codes, _ = tt.model.tokenize(batch)
    out = codes.cpu().numpy()
    out[~valid] = -1
    return out


def _already(existing: dict[str, Any], digest: str, name: str, shard: str) -> dict[str, Any]:
    if existing.get("digest") != digest:
        raise TokenSetError(f"token set {name!r} in shard {shard} was made by another tokenizer or checkpoint; choose another --name")
    return {"shard": shard, "status": "skipped", "n_windows": int(existing.get("n_windows", 0))}


def tokenize_store(
    run_dir: str | Path,
    store_path: str | Path,
    name: str | None = None,
    *,
    device: str = "auto",
    on_shard: Callable[[dict[str, Any]], None] | None = None,
) -> TokenizeReport:
    """Write the run's codes for every window of every committed shard as token set ``name``
    (default: ``<run folder>-step<N>``); shards that hold the set already are skipped."""
    t0 = time.perf_counter()
    tt = load_run(run_dir, device)
    store = open_store(store_path)
    if store.location.local is None:
        raise UsageError(f"{store.url}: token sets are written into local stores only (an object-store copy: fsspec's put)")
    tt.check_store(store)
    name = check_name(name or f"{Path(run_dir).resolve().name}-step{tt.step}", "token set")
    digest = tokenizer_digest(tt)
    scale = tt.scale_for(store)
    bits = qc_bits(list(tt.config.train.exclude_qc))
    cfg = tt.config.model
    n_patches = store.window_samples // tt.model.patch_samples
    dtype = np.dtype(cfg.index_dtype)
    report = TokenizeReport(str(store.path), name, str(Path(run_dir)), tt.step)
    for k, shard in enumerate(store.shard_names):
        shard_dir = store.path / SHARDS / shard
        existing = set_attrs(shard_dir / group_name(name))
        if existing is not None:
            res = _already(existing, digest, name, shard)
        else:
            res = _write_shard(tt, store, k, shard_dir, name, digest, scale, bits, n_patches, dtype)
            report.encode_s += res.pop("encode_s")
            report.tokens_written += res["n_tokens"]
        report.shards.append(res)
        if res["status"] == "written":
            report.shards_written += 1
            report.windows_written += res["n_windows"]
        else:
            report.shards_skipped += 1
        if on_shard is not None:
            on_shard(res)
    report.wall_s = time.perf_counter() - t0
    return report


def _write_shard(
    tt: TrainedTokenizer,
    store: Store,
    k: int,
    shard_dir: Path,
    name: str,
    digest: str,
    scale: float,
    bits: int,
    n_patches: int,
    dtype: np.dtype,
) -> dict[str, Any]:
    shard = store.shard_names[k]
    first, n = int(store.offsets[k]), int(store.offsets[k + 1] - store.offsets[k])
    levels = tt.config.model.n_codebooks
    chunk = int(array(zarr.open_group(str(shard_dir), mode="r", zarr_format=3), "signals").chunks[0])
    codes = np.empty((n, len(store.channels), n_patches, levels), dtype)
    encode_s = 0.0
    for lo in range(0, n, chunk):  # chunk by chunk: each stored chunk decoded once
        t = time.perf_counter()
        codes[lo : lo + chunk] = encode_windows(tt, store, np.arange(first + lo, first + min(lo + chunk, n)), scale, bits)
        encode_s += time.perf_counter() - t
    if levels == 1:
        codes = codes[..., 0]
    dims = ["window", "channel", "patch", "level"][: codes.ndim]

    def write(group: zarr.Group) -> None:
        group.create_array(
            "codes",
            shape=codes.shape,
            chunks=(max(1, min(chunk, max(n, 1))), *codes.shape[1:]),
            dtype=dtype,
            dimension_names=dims,
            fill_value=-1,
        )[...] = codes
        group.attrs[ATTRS_KEY] = {
            "token_set": name,
            "digest": digest,
            "run": str(Path(tt.run_dir).resolve()),
            "step": tt.step,
            "config": tt.config.model.model_dump(mode="json"),
            "codebook_size": tt.config.model.codebook_size,
            "levels": levels,
            "patch_s": tt.config.model.patch_s,
            "patch_samples": tt.model.patch_samples,
            "dims": dims,
            "missing_code": -1,
            "channels": list(store.channels),
            "n_windows": n,
            "shard": shard,
            "committed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    theirs = commit_set(store.path, shard, group_name(name), write)
    if theirs is not None:  # committed by a concurrent run meanwhile
        return _already(theirs, digest, name, shard) | {"encode_s": encode_s, "n_tokens": 0}
    return {"shard": shard, "status": "written", "n_windows": n, "n_tokens": int((codes >= 0).sum()), "encode_s": encode_s}


def token_sets(store: str | Path | Store) -> dict[str, dict[str, Any]]:
    """Token sets in the store: name -> ``{"digest", "run", "step", "shards", "complete"}``."""
    st = store if isinstance(store, Store) else open_store(store)
    return list_sets(st, PREFIX, ("digest", "run", "step", "dims"))


def read_tokens(store: str | Path | Store, name: str) -> np.ndarray:
    """Token set ``name`` for all windows of the store, shards concatenated."""
    st = store if isinstance(store, Store) else open_store(store)
    groups, missing = set_groups(st, group_name(name))
    parts = [np.asarray(array(groups[shard], "codes")[:]) for shard in groups]
    if missing:
        raise TokenSetError(f"token set {name!r} is missing from {len(missing)} of {len(st.shard_names)} shards; run `biosig tokenize`")
    return np.concatenate(parts) if parts else np.zeros((0, len(st.channels), 0), np.int16)
