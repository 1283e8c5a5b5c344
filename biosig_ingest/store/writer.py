"""Write shards: assemble in a staging folder, then commit by one atomic rename.

A shard holds the windows of a fixed list of recordings (ok or failed); re-running
the same ingest finds it committed and skips it.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from ..config import LabelSpec, ResolvedProfile
from ..errors import ProfileMismatchError, StoreError
from .layout import ATTRS_KEY, SHARD_RE, SHARDS, label_array, shard_name, staging_root


def _compressor() -> BloscCodec:
    # lz4 + byte shuffle: fastest of the codecs measured on filtered float32 EEG
    # (see docs/store.md), decompresses at memory speed for the loaders.
    return BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")


def open_for_writing(path: Path, rp: ResolvedProfile, root_attrs: dict[str, Any], overwrite: bool) -> None:
    """Create the store, or check that an existing one was built with the same profile."""
    path = Path(path)
    if (path / "zarr.json").exists():
        existing: dict[str, Any] | None = zarr.open_group(str(path), mode="r", zarr_format=3).attrs.get(ATTRS_KEY)  # type: ignore[assignment]
        if existing is None:
            raise StoreError(f"{path} is a Zarr group but not a biosig-ingest store")
        if existing.get("profile_hash") == root_attrs["profile_hash"] and not overwrite:
            return
        if not overwrite:
            raise ProfileMismatchError(
                f"{path} was built with profile {existing.get('profile', {}).get('profile', {}).get('name')!r} "
                f"(hash {existing.get('profile_hash', '')[:12]}), not this one "
                f"(hash {root_attrs['profile_hash'][:12]}); use --overwrite to replace it"
            )
        shutil.rmtree(path)
        shutil.rmtree(staging_root(path), ignore_errors=True)
    elif path.exists() and (not path.is_dir() or any(path.iterdir())):
        # never delete something that is not a store, --overwrite or not
        raise StoreError(f"{path} exists and is not a biosig-ingest store; choose an empty or new path")
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    root.attrs[ATTRS_KEY] = root_attrs
    root.create_group(SHARDS)


def committed_shards(path: Path) -> dict[str, dict[str, Any]]:
    """Committed shard name -> its attributes (read from each shard's zarr.json)."""
    shards = Path(path) / SHARDS
    out = {}
    if shards.is_dir():
        for entry in sorted(shards.iterdir()):
            if SHARD_RE.match(entry.name) and (entry / "zarr.json").is_file():
                meta = json.loads((entry / "zarr.json").read_text())
                out[entry.name] = meta.get("attributes", {}).get(ATTRS_KEY, {})
    return out


class ShardWriter:
    """Accumulates windows of one shard, chunk-aligned, and commits them atomically."""

    def __init__(self, store: Path, index: int, rp: ResolvedProfile, labels: list[LabelSpec], plan_digest: str):
        self.store = Path(store)
        self.index = index
        self.rp = rp
        self.labels = labels
        self.plan_digest = plan_digest
        self.chunk = rp.profile.chunk_windows
        stage = staging_root(self.store)
        stage.mkdir(parents=True, exist_ok=True)
        self.staging = stage / f"{shard_name(index)}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.group = zarr.open_group(str(self.staging), mode="w", zarr_format=3)
        n_ch, n_t = len(rp.channels), rp.window_samples
        c = self.chunk
        self.arrays = {
            "signals": self._array("signals", (n_ch, n_t), "float32", ["window", "channel", "time"], (c, n_ch, n_t)),
            "recording": self._array("recording", (), "int32", ["window"], (c * 64,)),
            "start_s": self._array("start_s", (), "float64", ["window"], (c * 64,)),
            "qc": self._array("qc", (n_ch,), "uint8", ["window", "channel"], (c * 64, n_ch)),
        }
        for spec in labels:
            name = label_array(spec.name)
            if spec.kind == "categorical":
                self.arrays[name] = self._array(name, (), "int16", ["window"], (c * 64,), fill=-1)
            elif spec.kind == "multilabel":
                k = len(spec.classes)
                self.arrays[name] = self._array(name, (k,), "uint8", ["window", f"{spec.name}_class"], (c * 64, k))
            else:
                self.arrays[name] = self._array(name, (), "float32", ["window"], (c * 64,), fill=float("nan"))
        self.buffers: dict[str, list[np.ndarray]] = {k: [] for k in self.arrays}
        self.buffered = 0
        self.written = 0
        self.recordings: list[dict[str, Any]] = []
        self._rec_first = 0

    def _array(self, name, tail, dtype, dims, chunks, fill=0):
        return self.group.create_array(
            name,
            shape=(0, *tail),
            chunks=chunks,
            dtype=dtype,
            dimension_names=dims,
            compressors=[_compressor()],
            fill_value=fill,
        )

    @property
    def n_windows(self) -> int:
        return self.written + self.buffered

    def begin_recording(self) -> None:
        self._rec_first = self.n_windows

    def add_windows(self, signals: np.ndarray, start_s: np.ndarray, qc: np.ndarray, labels: Mapping[str, Any]) -> None:
        n = signals.shape[0]
        row = len(self.recordings)
        self.buffers["signals"].append(signals)
        self.buffers["recording"].append(np.full(n, row, np.int32))
        self.buffers["start_s"].append(start_s.astype(np.float64))
        self.buffers["qc"].append(qc)
        for spec in self.labels:
            self.buffers[label_array(spec.name)].append(_label_values(spec, labels.get(spec.name), n))
        self.buffered += n
        if self.buffered >= self.chunk:
            self._flush(final=False)

    def end_recording(self, row: dict[str, Any]) -> None:
        """Close the current recording; a failed one has its windows rolled back."""
        if row["status"] != "ok":
            self._rollback(self._rec_first)
        row["window_offset"] = self._rec_first
        row["n_windows"] = self.n_windows - self._rec_first
        self.recordings.append(row)

    def _rollback(self, first: int) -> None:
        if first >= self.written:
            keep = first - self.written
            for key, parts in self.buffers.items():
                joined = np.concatenate(parts) if parts else None
                self.buffers[key] = [joined[:keep]] if joined is not None and keep else []
            self.buffered = keep
        else:
            for key, arr in self.arrays.items():
                arr.resize((first, *arr.shape[1:]))
                self.buffers[key] = []
            self.written, self.buffered = first, 0

    def _flush(self, final: bool) -> None:
        n = self.buffered if final else (self.buffered // self.chunk) * self.chunk
        if n == 0:
            return
        for key, parts in self.buffers.items():
            joined = np.concatenate(parts)
            self.arrays[key].append(joined[:n])
            self.buffers[key] = [joined[n:]] if joined.shape[0] > n else []
        self.written += n
        self.buffered -= n

    def commit(self) -> str:
        """Write the remaining windows and the recordings table, then rename into place."""
        self._flush(final=True)
        self.group.attrs[ATTRS_KEY] = {
            "shard": self.index,
            "plan_digest": self.plan_digest,
            "n_windows": self.written,
            "recordings": self.recordings,
            "committed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        final = self.store / SHARDS / shard_name(self.index)
        if final.exists():
            raise StoreError(f"shard {final.name} was committed by another writer meanwhile")
        os.replace(self.staging, final)  # the commit: atomic on one POSIX filesystem
        _fsync_dir(final.parent)
        return final.name

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _label_values(spec: LabelSpec, value: Any, n: int) -> np.ndarray:
    if spec.kind == "categorical":
        code = -1 if value is None else spec.classes.index(value)
        return np.full(n, code, np.int16)
    if spec.kind == "multilabel":
        hot = np.zeros((n, len(spec.classes)), np.uint8)
        for cls in value or ():
            hot[:, spec.classes.index(cls)] = 1
        return hot
    return np.full(n, np.nan if value is None else float(value), np.float32)
