"""Feature sets in a store: computed shard by shard, each committed by one atomic rename.

```
shards/s00000/features_<name>/     group; attributes["biosig"]: spec, digest, bands, measures
  de              (window, channel, band) float32   chunked like signals
  log_power       (window, channel, band) float32
  power           (window, channel, band) float32
  relative_power  (window, channel, band) float32
```

``compute_shard`` is a pure task (paths and a spec dict in, a summary dict out), run one per
shard in this process or on Dask (``parallel.run_tasks``); a shard already holding the set is
skipped, so a retried or racing task is harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from ..errors import StoreError, UsageError
from ..parallel import run_tasks, task_key
from ..store.layout import ATTRS_KEY, SHARDS, array
from ..store.reader import Store
from ..store.sets import check_name, commit_set, list_sets, set_attrs, set_groups
from .de import BandPower, FeatureSpec, _as_windows, _band_power, check_spec, measures

PREFIX = "features_"


class FeatureSetError(StoreError):
    """A feature set is missing from shards, or its name is taken by other parameters."""


@dataclass
class FeaturesReport:
    store: str
    name: str
    spec: dict[str, Any]
    shards_written: int = 0
    shards_skipped: int = 0
    windows_written: int = 0
    wall_s: float = 0.0
    shards: list[dict[str, Any]] = field(default_factory=list)

    @property
    def windows_per_s(self) -> float:
        return self.windows_written / self.wall_s if self.wall_s > 0 else 0.0


def group_name(name: str) -> str:
    return PREFIX + name


def _compressor() -> BloscCodec:
    return BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")  # the signals' codec


def _software() -> dict[str, str]:
    out = {}
    for pkg in ("biosig-ingest", "numpy", "scipy", "numba"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def compute_shard(store_path: str, shard: str, spec_dict: dict[str, Any], name: str) -> dict[str, Any]:
    """Compute feature set ``name`` for one committed shard and commit it; pure and idempotent.

    Returns ``{"shard", "status": "written" | "skipped", "n_windows", "seconds"}``.
    """
    t0 = time.perf_counter()
    store = Path(store_path)
    spec = FeatureSpec.from_dict(spec_dict)
    digest = spec.digest()
    shard_dir = store / SHARDS / shard
    existing = set_attrs(shard_dir / group_name(name))
    if existing is not None:
        return _already(existing, digest, name, shard, t0)
    st = Store(store)
    if shard not in st.shard_attrs:
        raise FeatureSetError(f"shard {shard} is not a committed shard of {store}")
    first = int(st.offsets[st.shard_names.index(shard)])
    group = zarr.open_group(str(shard_dir), mode="r", zarr_format=3)
    n = int(st.shard_attrs[shard]["n_windows"])
    n_ch, n_t = len(st.channels), st.window_samples
    chunk = int(array(group, "signals").chunks[0])
    n_b = len(spec.bands)
    power = np.empty((n, n_ch, n_b))
    total = np.empty((n, n_ch))
    for lo in range(0, n, chunk):  # chunk by chunk: bounded memory, each chunk decoded once
        hi = min(lo + chunk, n)
        # Store.read decodes any stored encoding to float32 in the modality's unit
        bp = _band_power(_as_windows(st.read(np.arange(first + lo, first + hi))), st.fs_hz, spec)
        power[lo:hi] = bp.power
        total[lo:hi] = bp.total
    segments = np.asarray(array(group, "recording")[:]) if n else None
    values = measures(BandPower(power, total, spec.estimator), spec, segments)

    def write(out: zarr.Group) -> None:
        for measure, data in values.items():
            out.create_array(
                measure,
                shape=data.shape,
                chunks=(max(1, min(chunk, max(n, 1))), n_ch, n_b),
                dtype="float32",
                dimension_names=["window", "channel", "band"],
                compressors=[_compressor()],
                fill_value=float("nan"),
            )[...] = data
        out.attrs[ATTRS_KEY] = {
            "feature_set": name,
            "digest": digest,
            "spec": spec.to_dict(),
            "bands": [{"name": b, "low_hz": lo, "high_hz": hi} for b, lo, hi in spec.bands],
            "measures": list(spec.measures),
            "fs_hz": st.fs_hz,
            "window_samples": n_t,
            "n_windows": n,
            "shard": shard,
            "software": _software(),
            "committed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    theirs = commit_set(store, shard, group_name(name), write)
    if theirs is not None:  # another worker committed the same set meanwhile
        return _already(theirs, digest, name, shard, t0)
    return {"shard": shard, "status": "written", "n_windows": n, "seconds": time.perf_counter() - t0}


def _already(existing: dict[str, Any], digest: str, name: str, shard: str, t0: float) -> dict[str, Any]:
    if existing.get("digest") != digest:
        raise FeatureSetError(f"feature set {name!r} in shard {shard} was made with other parameters; choose another name")
    return {"shard": shard, "status": "skipped", "n_windows": int(existing.get("n_windows", 0)), "seconds": time.perf_counter() - t0}


def compute_features(
    store: str | Path,
    spec: FeatureSpec | None = None,
    name: str | None = None,
    workers: int | None = 1,
    on_shard: Callable[[dict[str, Any]], None] | None = None,
    *,
    scheduler: str | None = None,
    client: Any = None,
) -> FeaturesReport:
    """Compute feature set ``name`` (default: derived from the spec's digest) in every committed
    shard that lacks it, one task per shard.

    In this process by default; ``workers`` > 1 runs the shards on a local Dask cluster of that
    many processes; ``scheduler`` (an address) or ``client`` (a ``distributed.Client``) uses an
    existing one, whose workers must see the store at the same path. The arrays are the same
    whichever runs them.
    """
    t0 = time.perf_counter()
    spec = spec or FeatureSpec()
    st = Store(store)
    if st.location.local is None:  # the shard task writes and renames folders on a filesystem
        raise UsageError(f"feature sets need a store on a filesystem; {st.url} is not (object storage: not implemented yet)")
    check_spec(spec, st.fs_hz, st.window_samples)
    name = check_name(name or spec.default_name())
    digest = spec.digest()
    todo = []
    report = FeaturesReport(store=str(st.path), name=name, spec=spec.to_dict())
    for shard in st.shard_names:
        existing = set_attrs(st.path / SHARDS / shard / group_name(name))
        if existing is None:
            todo.append(shard)
        else:
            report.shards.append(_already(existing, digest, name, shard, time.perf_counter()))
            report.shards_skipped += 1
    calls = [
        (task_key("features", st.path, shard, name, digest), (str(st.path), shard, spec.to_dict(), name))
        for shard in todo
    ]

    def done(res: dict[str, Any]) -> None:
        report.shards.append(res)
        if res["status"] == "written":
            report.shards_written += 1
            report.windows_written += res["n_windows"]
        else:
            report.shards_skipped += 1
        if on_shard is not None:
            on_shard(res)

    if client is None and scheduler is None and len(calls) <= 1:
        workers = 1  # starting a local cluster for one shard (or none) costs more than it saves
    if calls:
        run_tasks(compute_shard, calls, done, workers=workers, scheduler=scheduler, client=client)
    report.shards.sort(key=lambda r: r["shard"])
    report.wall_s = time.perf_counter() - t0
    return report


def feature_sets(store: str | Path | Store) -> dict[str, dict[str, Any]]:
    """Feature sets found in the store: name -> ``{"spec", "digest", "measures", "bands",
    "shards"}`` (``shards``: how many committed shards hold it; complete if all do)."""
    st = store if isinstance(store, Store) else Store(store)
    return list_sets(st, PREFIX, ("spec", "digest", "measures", "bands"))


def read_features(store: str | Path | Store, name: str, measure: str = "de", indices: Any = None) -> np.ndarray:
    """Feature ``measure`` of set ``name`` as (windows, channels, bands) float32, for all windows
    or for global window ``indices`` (any order; each chunk decompressed once)."""
    st = store if isinstance(store, Store) else Store(store)
    groups, missing = set_groups(st, group_name(name))
    if missing:
        raise FeatureSetError(
            f"feature set {name!r} is missing from {len(missing)} of {len(st.shard_names)} shards "
            f"({', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}); run `biosig features`"
        )
    arrays = []
    for shard in st.shard_names:
        if measure not in groups[shard]:
            raise FeatureSetError(f"feature set {name!r} has no measure {measure!r}")
        arrays.append(array(groups[shard], measure))
    n_ch = len(st.channels)
    n_b = arrays[0].shape[2] if arrays else 0
    if indices is None:
        if not arrays:
            return np.zeros((0, n_ch, n_b), np.float32)
        return np.concatenate([np.asarray(a[:]) for a in arrays])
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < -len(st) or idx.max() >= len(st)):
        raise IndexError("window index out of range")
    idx = idx % max(len(st), 1)
    out = np.empty((idx.size, n_ch, n_b), np.float32)
    shard_of = np.searchsorted(st.offsets, idx, side="right") - 1
    for k in np.unique(shard_of):
        arr = arrays[k]
        chunk = arr.chunks[0]
        sel = np.nonzero(shard_of == k)[0]
        local = idx[sel] - st.offsets[k]
        for c in np.unique(local // chunk):
            in_chunk = (local // chunk) == c
            lo = int(c * chunk)
            block = np.asarray(arr[lo : min(lo + chunk, arr.shape[0])])
            out[sel[in_chunk]] = block[local[in_chunk] - lo]
    return out
