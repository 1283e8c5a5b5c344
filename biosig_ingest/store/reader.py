"""Read a store: random access by global window index, chunk-aware batch reads, tables.

Only committed shards are read; the shard list is fixed when the store is opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from ..dsp.quality import FLAG_NAMES
from ..errors import StoreError
from .chunks import ShardSignals
from .encoding import gather
from .layout import ATTRS_KEY, SHARDS, array, label_array
from .location import StoreLocation
from .writer import as_location, committed_shards, shard_recordings

if TYPE_CHECKING:
    import pandas as pd


class _ShardGroups(dict):
    """Shard name -> its Zarr group, opened on first access."""

    def __init__(self, location: StoreLocation):
        super().__init__()
        self.location = location

    def __missing__(self, name: str) -> zarr.Group:
        group = self[name] = zarr.open_group(self.location.zarr_store(SHARDS, name), mode="r", zarr_format=3)
        return group


@dataclass(frozen=True)
class WindowItem:
    signal: np.ndarray  # (channels, samples) float32
    metadata: dict[str, Any]


class Store:
    """A committed biosig-ingest store. ``len(store)``, ``store[i]``, ``store.read(indices)``."""

    def __init__(self, path: str | Path | StoreLocation):
        self.location = as_location(path)
        self.url = self.location.url  # what reopens it (a worker process, a pickled dataset)
        # local: the folder; remote: the URL's path, for names in messages
        self.path = self.location.local if self.location.local is not None else Path(self.location.path)
        if not self.location.exists("zarr.json"):
            raise StoreError(f"{self.url} is not a Zarr store (no zarr.json)")
        attrs = self.location.read_json("zarr.json").get("attributes", {}).get(ATTRS_KEY)
        if attrs is None:
            raise StoreError(f"{self.url} is a Zarr group but not a biosig-ingest store")
        self.attrs: dict[str, Any] = dict(attrs)
        self.shard_attrs = committed_shards(self.location)
        self.shard_names = list(self.shard_attrs)
        self._groups = _ShardGroups(self.location)  # opened on first use: fast open of big stores
        sizes = [int(self.shard_attrs[n]["n_windows"]) for n in self.shard_names]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    # -- description ---------------------------------------------------------------
    @property
    def channels(self) -> list[str]:
        return [row["name"] for row in self.attrs["channels"]]

    @property
    def fs_hz(self) -> float:
        return float(self.attrs["fs_hz"])

    @property
    def window_samples(self) -> int:
        return int(self.attrs["window_samples"])

    @property
    def label_specs(self) -> list[dict[str, Any]]:
        return list(self.attrs["labels"])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __repr__(self) -> str:
        return (
            f"<biosig Store {self.path.name}: {len(self)} windows x {len(self.channels)} channels x "
            f"{self.window_samples} samples @ {self.fs_hz:g} Hz, {len(self.shard_names)} shards>"
        )

    # -- signals -------------------------------------------------------------------
    def _locate(self, index: int) -> tuple[str, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        index %= len(self)
        k = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return self.shard_names[k], index - int(self.offsets[k])

    def __getitem__(self, index: int) -> WindowItem:
        self._locate(int(index))  # IndexError out of range
        signal = self.read([int(index)])[0]
        return WindowItem(signal=signal, metadata={str(k): v for k, v in self.metadata.iloc[int(index) % len(self)].items()})

    def read(self, indices: Any) -> np.ndarray:
        """float32 signals for global window ``indices`` (any order), each chunk decompressed once
        (int16 and float16 stores decoded, docs/loading.md)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError("window index out of range")
        idx = idx % max(len(self), 1)
        out = np.empty((idx.size, len(self.channels), self.window_samples), np.float32)
        shard_of = np.searchsorted(self.offsets, idx, side="right") - 1
        identity = np.arange(len(self.channels), dtype=np.int64)
        for k in np.unique(shard_of):
            sig = self._signals[self.shard_names[k]]
            scale, offset = sig.scale_offset()
            block, scratch = sig.new_block(), bytearray()
            sel = np.nonzero(shard_of == k)[0]
            local = idx[sel] - self.offsets[k]
            for c in np.unique(local // sig.chunk_windows):
                in_chunk = (local // sig.chunk_windows) == c
                lo = int(c * sig.chunk_windows)
                sig.read_chunk(int(c), block, scratch)
                rows = local[in_chunk] - lo
                zeros = np.zeros(len(rows), np.int64)
                gather(block[None], zeros, rows, out, sel[in_chunk], identity, scale, offset, rows + lo)
        return out

    @property
    def encoding(self) -> str:
        """How ``signals`` is stored: ``float32``, ``float16`` or ``int16`` (+ scale, offset)."""
        return str(self.attrs["profile"]["profile"].get("dtype", "float32"))

    @cached_property
    def _signals(self) -> dict[str, ShardSignals]:
        return {name: ShardSignals(self._groups[name]) for name in self.shard_names}

    def label_array(self, name: str) -> np.ndarray:
        """The raw label array across shards (codes, multi-hot rows or numbers)."""
        return np.concatenate([np.asarray(array(self._groups[s], label_array(name))[:]) for s in self.shard_names]) if self.shard_names else np.empty(0)

    @cached_property
    def qc(self) -> np.ndarray:
        """(windows, channels) uint8 QC bitmask."""
        if not self.shard_names:
            return np.zeros((0, len(self.channels)), np.uint8)
        return np.concatenate([np.asarray(array(self._groups[s], "qc")[:]) for s in self.shard_names])

    # -- tables --------------------------------------------------------------------
    @cached_property
    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """Shard name -> its recordings table as rows (read on first use, in one batch)."""
        return shard_recordings(self.location, self.shard_attrs)

    @cached_property
    def recordings(self) -> pd.DataFrame:
        """One row per recording, ok or failed, with its shard."""
        import pandas as pd  # lazily: ingesting does not need pandas

        rows = []
        for s in self.shard_names:
            for row in self.tables[s]:
                rows.append({"shard": s, **row})
        return pd.DataFrame(rows)

    @cached_property
    def metadata(self) -> pd.DataFrame:
        """One row per window: recording, subject, session, split, start_s, labels, QC flags."""
        import pandas as pd

        parts = []
        for k, s in enumerate(self.shard_names):
            g = self._groups[s]
            n = int(self.shard_attrs[s]["n_windows"])
            if n == 0:
                continue
            recs = pd.DataFrame(self.tables[s])
            row = np.asarray(array(g, "recording")[:])
            frame = pd.DataFrame(
                {
                    "window": np.arange(self.offsets[k], self.offsets[k] + n),
                    "shard": s,
                    "recording_id": recs["recording_id"].to_numpy()[row],
                    "subject": recs["subject"].to_numpy()[row],
                    "session": recs["session"].to_numpy()[row],
                    "split": recs["split"].to_numpy()[row],
                    "start_s": np.asarray(array(g, "start_s")[:]),
                }
            )
            parts.append(frame)
        columns = ["window", "shard", "recording_id", "subject", "session", "split", "start_s"]
        meta = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
        for spec in self.label_specs:
            values = self.label_array(spec["name"]) if len(meta) else np.empty(0)
            if spec["kind"] == "categorical":
                codes = values.astype(int)
                meta[spec["name"]] = pd.Categorical.from_codes(codes, categories=spec["classes"]) if len(meta) else pd.Categorical([])
            elif spec["kind"] == "multilabel":
                classes = np.asarray(spec["classes"], dtype=object)
                meta[spec["name"]] = [tuple(classes[row.astype(bool)]) for row in values]
            else:
                meta[spec["name"]] = values
        qc = self.qc
        for bit, name in FLAG_NAMES.items():
            meta[f"qc_{name}"] = np.any((qc & bit) != 0, axis=1)  # type: ignore[assignment]
        return meta

    def to_xarray(self):  # pragma: no cover - thin wrapper, tested via xarray directly
        """All shards as one xarray Dataset (needs xarray)."""
        import xarray as xr

        parts = [xr.open_zarr(self.location.zarr_store(), group=f"{SHARDS}/{s}", consolidated=False) for s in self.shard_names]
        ds = xr.concat(parts, dim="window") if parts else xr.Dataset()
        return ds.assign_coords(channel=self.channels)

    # -- feature sets (biosig features) ----------------------------------------------
    def features(self, name: str, measure: str = "de", indices: Any = None) -> np.ndarray:
        """Feature ``measure`` of feature set ``name`` (``biosig features``) as (windows,
        channels, bands) float32: every window, or global window ``indices`` (chunk-aware)."""
        from ..features.store import read_features

        return read_features(self, name, measure, indices)


def open_store(path: str | Path) -> Store:
    """Open a biosig-ingest store for reading: a folder or an fsspec URL (``s3://bucket/x.zarr``)."""
    return Store(path)
