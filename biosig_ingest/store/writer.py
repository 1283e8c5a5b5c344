"""Write shards: assemble in a staging folder, then commit by one atomic rename.

A shard holds the windows of a fixed list of recordings (ok or failed); re-running
the same ingest finds it committed and skips it.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec
from zarr.errors import ContainsGroupError

from .. import _failpoints as failpoints
from ..config import LabelSpec, ResolvedProfile
from ..errors import ProfileMismatchError, StoreError
from .encoding import encode, storage_dtype
from .layout import (
    ATTRS_KEY,
    SHARD_RE,
    SHARDS,
    fsync_dir,
    label_array,
    remote_staging_root,
    shard_name,
    staging_root,
)
from .location import StoreLocation

CLAIM = "claim.json"  # object stores: who is writing a shard (location.py)
# A shard's recordings table, beside its arrays rather than in its attributes: opening a store
# reads only the small attributes (MIMIC-IV-ECG: 1.4 kB of table per record, 1.1 GB in all)
RECORDINGS = "recordings.json.gz"


def _compressor(encoding: str = "float32", unfiltered: bool = False) -> BloscCodec:
    # lz4 + byte shuffle: fastest of the codecs measured on filtered float32 EEG
    # (see docs/store.md), decompresses at memory speed for the loaders. Signals, measured
    # in docs/loading.md: float16 without shuffle (shuffling gains 1% in size, costs 3x in
    # decompression); int16 of unfiltered digital samples with bit shuffle (3.2x smaller than
    # float32 against 2.8x with byte shuffle, and faster to decompress); filtered int16 uses its
    # whole code range, stays incompressible and is copied at memory speed with byte shuffle.
    if encoding == "float16":
        return BloscCodec(cname="lz4", clevel=1, shuffle="noshuffle")
    if encoding == "int16" and unfiltered:
        return BloscCodec(cname="lz4", clevel=1, shuffle="bitshuffle")
    return BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")


def as_location(store: StoreLocation | str | Path) -> StoreLocation:
    return store if isinstance(store, StoreLocation) else StoreLocation(store)


def open_for_writing(store: StoreLocation | str | Path, rp: ResolvedProfile, root_attrs: dict[str, Any], overwrite: bool) -> None:
    """Create the store, or check that an existing one was built with the same profile."""
    loc = as_location(store)
    if loc.exists("zarr.json"):
        existing: dict[str, Any] | None = loc.read_json("zarr.json").get("attributes", {}).get(ATTRS_KEY)
        if existing is None:
            raise StoreError(f"{loc.url} is a Zarr group but not a biosig-ingest store")
        if existing.get("profile_hash") == root_attrs["profile_hash"] and not overwrite:
            return
        if not overwrite and existing.get("schema_version") != root_attrs["schema_version"]:
            raise ProfileMismatchError(
                f"{loc.url} has store schema {existing.get('schema_version')}, this version writes "
                f"{root_attrs['schema_version']} (docs/store.md); it stays readable, --overwrite rebuilds it"
            )
        if not overwrite:
            raise ProfileMismatchError(
                f"{loc.url} was built with profile {existing.get('profile', {}).get('profile', {}).get('name')!r} "
                f"(hash {existing.get('profile_hash', '')[:12]}), not this one "
                f"(hash {root_attrs['profile_hash'][:12]}); use --overwrite to replace it"
            )
        loc.remove()
        if loc.local is not None:
            shutil.rmtree(staging_root(loc.local), ignore_errors=True)
    elif not loc.is_empty():  # a file, a non-empty folder or prefix
        # never delete something that is not a store, --overwrite or not
        raise StoreError(f"{loc.url} exists and is not a biosig-ingest store; choose an empty or new path")
    try:
        # "w-": create, never clear (mode "w" would delete what a racing command committed);
        # the attributes go into the first zarr.json, so no reader sees a store without them
        root = zarr.open_group(loc.zarr_store(read_only=False), mode="w-", zarr_format=3, attributes={ATTRS_KEY: root_attrs})
    except (ContainsGroupError, FileExistsError):
        if not loc.exists("zarr.json"):
            raise
        return open_for_writing(loc, rp, root_attrs, overwrite=False)  # a racing command created it: check its profile
    with contextlib.suppress(ContainsGroupError):
        root.create_group(SHARDS)


def committed_shards(store: StoreLocation | str | Path, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Committed shard name -> its attributes (read from each shard's zarr.json, the commit
    record): every shard, or only those of ``names`` that are committed."""
    loc = as_location(store)
    if names is None:
        names = [n for n in loc.list_dir(SHARDS) if SHARD_RE.match(n)]
    metas = loc.read_jsons([f"{SHARDS}/{n}/zarr.json" for n in names])
    return {n: metas[f"{SHARDS}/{n}/zarr.json"].get("attributes", {}).get(ATTRS_KEY, {}) for n in names if f"{SHARDS}/{n}/zarr.json" in metas}


def encode_recordings(rows: list[dict[str, Any]]) -> bytes:
    # mtime=0: the same rows give the same bytes (racing writers upload identical objects)
    return gzip.compress(json.dumps(rows, separators=(",", ":")).encode(), compresslevel=6, mtime=0)


def shard_recordings(store: StoreLocation | str | Path, attrs: Mapping[str, Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Shard name -> its recordings table, for the committed shards of ``attrs``."""
    loc = as_location(store)
    inline = {n: list(a["recordings"]) for n, a in attrs.items() if "recordings" in a}  # schema-1 stores
    keys = {n: f"{SHARDS}/{n}/{RECORDINGS}" for n in attrs if n not in inline}
    blobs = loc.read_many(list(keys.values()))
    missing = [n for n, k in keys.items() if k not in blobs]
    if missing:
        raise StoreError(f"{loc.url}: shard {missing[0]} lacks its recordings table {RECORDINGS}")
    return {n: inline[n] if n in inline else json.loads(gzip.decompress(blobs[keys[n]])) for n in attrs}


class ShardWriter:
    """Accumulates windows of one shard, chunk-aligned, and commits them atomically."""

    def __init__(self, store: StoreLocation | str | Path, index: int, rp: ResolvedProfile, labels: list[LabelSpec], plan_digest: str):
        self.location = as_location(store)
        self.index = index
        self.rp = rp
        self.labels = labels
        self.plan_digest = plan_digest
        self.chunk = rp.profile.chunk_windows
        self.encoding = rp.profile.dtype
        f = rp.profile.filters
        # int16 looks for the source's digital lattice only where no filter can have moved samples off it
        self._try_exact = f.highpass_hz is None and f.lowpass_hz is None and rp.notch_hz is None
        # local: beside the store (same filesystem, for the rename); remote: on the worker's
        # disk, uploaded at commit
        stage = staging_root(self.location.local) if self.location.local is not None else remote_staging_root()
        stage.mkdir(parents=True, exist_ok=True)
        self.staging = stage / f"{shard_name(index)}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.group = zarr.open_group(str(self.staging), mode="w", zarr_format=3)
        n_ch, n_t = len(rp.channels), rp.window_samples
        # Signals stream to disk in chunk-aligned batches of about 256 windows (few large
        # Zarr writes); the small per-window columns stay in memory and are written once.
        self.flush_windows = self.chunk * max(1, 64 // self.chunk)
        self.signals = self.group.create_array(
            "signals",
            shape=(0, n_ch, n_t),
            chunks=(self.chunk, n_ch, n_t),
            dtype=storage_dtype(self.encoding),
            dimension_names=["window", "channel", "time"],
            compressors=[_compressor(self.encoding, self._try_exact)],
            fill_value=0.0,
        )
        self._pending: list[np.ndarray] = []  # signals not yet written
        # Compression and file writes release the GIL: one writer thread overlaps them with
        # the signal processing of the next block. Appends stay in order (one in flight).
        self._io = ThreadPoolExecutor(max_workers=1)
        self._inflight: Future | None = None
        self.buffered = 0
        self.written = 0
        self.columns: dict[str, list[np.ndarray]] = {k: [] for k in self._column_specs()}
        self.columns["_encoding_stats"] = []  # per window: exact int16 rows, saturated float16 samples
        self.recordings: list[dict[str, Any]] = []
        self._rec_first = 0

    def _column_specs(self) -> dict[str, tuple[str, list[str], Any]]:
        """Per-window arrays besides signals: name -> (dtype, dimension names, fill value)."""
        specs: dict[str, tuple[str, list[str], Any]] = {
            "recording": ("int32", ["window"], 0),
            "start_s": ("float64", ["window"], 0.0),
            "qc": ("uint8", ["window", "channel"], 0),
        }
        if self.encoding == "int16":  # value = code * scale + offset, per window and channel
            specs["signals_scale"] = ("float32", ["window", "channel"], 1.0)
            specs["signals_offset"] = ("float32", ["window", "channel"], 0.0)
        for spec in self.labels:
            if spec.kind == "categorical":
                specs[label_array(spec.name)] = ("int16", ["window"], -1)
            elif spec.kind == "multilabel":
                specs[label_array(spec.name)] = ("uint8", ["window", f"{spec.name}_class"], 0)
            else:
                specs[label_array(spec.name)] = ("float32", ["window"], float("nan"))
        return specs

    @property
    def n_windows(self) -> int:
        return self.written + self.buffered

    def begin_recording(self) -> None:
        self._rec_first = self.n_windows

    def add_windows(self, signals: np.ndarray, start_s: np.ndarray, qc: np.ndarray, labels: Mapping[str, Any]) -> None:
        n = signals.shape[0]
        enc = encode(signals, self.encoding, self._try_exact)
        self._pending.append(enc.data)
        if enc.scale is not None and enc.offset is not None:
            self.columns["signals_scale"].append(enc.scale)
            self.columns["signals_offset"].append(enc.offset)
        exact = enc.exact.sum(axis=1) if enc.exact is not None else np.zeros(n, np.int64)
        saturated = enc.saturated if enc.saturated is not None else np.zeros(n, np.int64)
        self.columns["_encoding_stats"].append(np.stack([exact, saturated], axis=1).astype(np.int64))
        self.buffered += n
        self.columns["recording"].append(np.full(n, len(self.recordings), np.int32))
        self.columns["start_s"].append(start_s.astype(np.float64))
        self.columns["qc"].append(qc)
        for spec in self.labels:
            self.columns[label_array(spec.name)].append(_label_values(spec, labels.get(spec.name), n))
        if self.buffered >= self.flush_windows:
            self._flush(final=False)

    def end_recording(self, row: dict[str, Any]) -> None:
        """Close the current recording; a failed one has its windows rolled back."""
        if row["status"] != "ok":
            self._rollback(self._rec_first)
        row["window_offset"] = self._rec_first
        row["n_windows"] = self.n_windows - self._rec_first
        self.recordings.append(row)

    def _rollback(self, first: int) -> None:
        for key, parts in self.columns.items():
            self.columns[key] = [np.concatenate(parts)[:first]] if parts and first else []
        if first >= self.written:
            keep = first - self.written
            pending = np.concatenate(self._pending) if self._pending else None
            self._pending = [pending[:keep]] if pending is not None and keep else []
            self.buffered = keep
        else:
            self._wait()
            self.signals.resize((first, *self.signals.shape[1:]))
            self._pending, self.written, self.buffered = [], first, 0

    def _flush(self, final: bool) -> None:
        n = self.buffered if final else (self.buffered // self.chunk) * self.chunk
        if n == 0:
            return
        joined = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._wait()
        self._inflight = self._io.submit(self.signals.append, joined[:n])
        self._pending = [joined[n:]] if joined.shape[0] > n else []
        self.written += n
        self.buffered -= n

    def _wait(self) -> None:
        if self._inflight is not None:
            self._inflight.result()  # re-raises a failed write here
            self._inflight = None

    def _write_columns(self) -> None:
        n_ch = self.signals.shape[1]
        for name, (dtype, dims, fill) in self._column_specs().items():
            parts = self.columns[name]
            if parts:
                data = np.concatenate(parts)
            else:
                k = len(next(s for s in self.labels if label_array(s.name) == name).classes) if name.startswith("label_") and len(dims) == 2 else n_ch
                data = np.zeros((0, k) if len(dims) == 2 else (0,), dtype=dtype)
            self.group.create_array(
                name,
                shape=data.shape,
                chunks=(max(1, min(len(data), 1 << 16)), *data.shape[1:]),
                dtype=dtype,
                dimension_names=dims,
                compressors=[_compressor()],
                fill_value=fill,
            )[...] = data

    def _encoding_stats(self) -> dict[str, Any]:
        parts = self.columns["_encoding_stats"]
        exact, saturated = (int(v) for v in np.concatenate(parts).sum(axis=0)) if parts else (0, 0)
        stats: dict[str, Any] = {"dtype": self.encoding}
        if self.encoding == "int16":  # rows = (window, channel) pairs
            stats.update(rows=self.written * int(self.signals.shape[1]), exact_rows=exact)
        if self.encoding == "float16":
            stats["saturated_samples"] = saturated
        return stats

    def commit(self) -> str:
        """Write the remaining windows and the recordings table, then rename into place."""
        self._flush(final=True)
        self._wait()
        self._io.shutdown()
        self._write_columns()
        (self.staging / RECORDINGS).write_bytes(encode_recordings(self.recordings))
        self.group.attrs[ATTRS_KEY] = {
            "shard": self.index,
            "plan_digest": self.plan_digest,
            "n_windows": self.written,
            "encoding": self._encoding_stats(),
            "n_recordings": len(self.recordings),
            "committed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        if self.location.local is None:
            return self._commit_remote()
        final = self.location.local / SHARDS / shard_name(self.index)
        failpoints.hit("commit-before-rename")
        try:
            # the commit: atomic on one POSIX filesystem, and it fails if the shard exists
            # (rename(2) onto a non-empty directory), so a racing writer cannot clobber it
            os.replace(self.staging, final)
        except OSError:
            if not final.is_dir():
                raise
            self.abort()
            return self._adopt(final.name)
        failpoints.hit("commit-after-rename")
        fsync_dir(final.parent)
        return final.name

    def _adopt(self, name: str) -> str:
        """Optimistic commit lost to a racing writer: adopt its shard if it holds our recordings."""
        theirs = committed_shards(self.location, [name])
        if theirs.get(name, {}).get("plan_digest") != self.plan_digest:
            raise StoreError(f"shard {name} was committed meanwhile from another recording list") from None
        self.recordings = shard_recordings(self.location, theirs)[name]
        return name

    def _commit_remote(self) -> str:
        """Claim, upload, then the commit record (location.py): an object store has no rename."""
        loc, name = self.location, shard_name(self.index)
        prefix = (SHARDS, name)
        claim = json.dumps({"plan_digest": self.plan_digest}).encode()
        claimed = loc.create_exclusive(claim, *prefix, CLAIM)
        if not claimed and loc.read_json(*prefix, CLAIM).get("plan_digest") != self.plan_digest:
            self.abort()
            raise StoreError(f"shard {name} is claimed by a writer of another recording list; use --overwrite to rebuild")
        if loc.exists(*prefix, "zarr.json"):  # a racing writer of the same list committed first
            self.abort()
            return self._adopt(name)
        files = sorted(p for p in self.staging.rglob("*") if p.is_file() and p != self.staging / "zarr.json")
        failpoints.hit("commit-before-rename")
        half = len(files) // 2
        for part in (files[:half], files[half:]):  # two batches: a crash test can stop between them
            if part:
                loc.fs.put([str(p) for p in part], [loc.key(*prefix, p.relative_to(self.staging).as_posix()) for p in part])
            failpoints.hit("commit-mid-upload")
        record = (self.staging / "zarr.json").read_bytes()
        committed = loc.create_exclusive(record, *prefix, "zarr.json")
        self.abort()  # the local staging copy
        if not committed:
            return self._adopt(name)
        failpoints.hit("commit-after-rename")
        return name

    def abort(self) -> None:
        self._io.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.staging, ignore_errors=True)


def _label_values(spec: LabelSpec, value: Any, n: int) -> np.ndarray:
    """Label arrays for ``n`` windows from one value for all, or per-window encoded rows."""
    if isinstance(value, np.ndarray) and value.shape[:1] == (n,):
        dtype = {"categorical": np.int16, "multilabel": np.uint8, "numeric": np.float32}[spec.kind]
        return value.astype(dtype, copy=False)
    if spec.kind == "categorical":
        code = -1 if value is None else spec.classes.index(value)
        return np.full(n, code, np.int16)
    if spec.kind == "multilabel":
        hot = np.zeros((n, len(spec.classes)), np.uint8)
        for cls in value or ():
            hot[:, spec.classes.index(cls)] = 1
        return hot
    return np.full(n, np.nan if value is None else float(value), np.float32)
