"""torch datasets over stores: random access (:class:`StoreDataset`) and shuffled streaming for
training (:class:`StoreIterableDataset`), one store or a mixture. See docs/loading.md.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from ..store.encoding import gather
from ..store.reader import Store
from .collate import BatchBuffers, SharedSlots, _Packed, to_tensors
from .mixture import (
    ChannelLayout,
    ChannelMode,
    check_compatible,
    draw_sources,
    resolve_labels,
    resolve_layout,
)
from .sampling import ChunkPlan, ChunkPool, epoch_order, slot_chunks
from .selection import Selection, as_selection, qc_bits

SourceLike = Selection | Store | str | Path
FeatureSource = str | tuple[str, str] | Callable[[Store, np.ndarray], Any] | None


def _selections(sources: SourceLike | Sequence[SourceLike]) -> list[Selection]:
    if isinstance(sources, (Selection, Store, str, Path)):
        return [as_selection(sources)]
    return [as_selection(s) for s in sources]


def distributed_rank() -> tuple[int, int]:
    """(rank, world size) of ``torch.distributed`` if it is initialized, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _Output:
    """Everything in a batch besides the signals, looked up from the stores' tables."""

    def __init__(
        self,
        stores: list[Store],
        layout: ChannelLayout,
        labels: Sequence[str] | None,
        mask_qc: Any,
        features: FeatureSource,
    ):
        self.stores = stores
        self.layout = layout
        self.label_specs = resolve_labels(stores, labels)
        self.mask_bits = qc_bits(mask_qc)
        self.features = features
        self.channel_maps = [layout.channel_map(s) for s in stores]
        self.present = [layout.present(s) for s in stores]
        self._labels: list[dict[str, np.ndarray]] = [{} for _ in stores]
        self._feature_arrays: list[Any] = [None for _ in stores]

    @property
    def complete(self) -> list[bool]:
        """Per store: it provides every output channel (nothing to zero-fill)."""
        return [bool(p.all()) for p in self.present]

    def _label(self, s: int, name: str) -> np.ndarray | None:
        store = self.stores[s]
        if name not in self._labels[s]:
            if not any(spec["name"] == name for spec in store.label_specs):
                return None
            self._labels[s][name] = store.label_array(name)
        return self._labels[s][name]

    def _feature_rows(self, s: int, windows: np.ndarray) -> np.ndarray:
        store = self.stores[s]
        if callable(self.features):
            return np.asarray(self.features(store, windows), np.float32)
        if self._feature_arrays[s] is None:
            get = getattr(store, "features", None)
            if get is None:
                raise NotImplementedError(
                    f"features={self.features!r} needs Store.features(name), which this version of "
                    "biosig-ingest does not have; pass a function (store, windows) -> array instead"
                )
            name, measure = (self.features, "de") if isinstance(self.features, str) else tuple(self.features or ("", "de"))
            # (windows, channels, bands) for the whole store, once per process: a few hundred
            # times smaller than the signals, and random batches would touch every chunk anyway
            self._feature_arrays[s] = np.asarray(get(name, measure), np.float32)
        return self._feature_arrays[s][windows]

    def assemble(self, source: np.ndarray, window: np.ndarray) -> dict[str, Any]:
        """Per-window arrays of a batch whose row i is window ``window[i]`` of store ``source[i]``."""
        n, c = len(window), len(self.layout)
        mask = np.zeros((n, c), bool)
        labels: dict[str, np.ndarray] = {}
        for spec in self.label_specs:
            if spec["kind"] == "categorical":
                labels[spec["name"]] = np.full(n, -1, np.int64)
            elif spec["kind"] == "multilabel":
                labels[spec["name"]] = np.zeros((n, len(spec["classes"])), np.float32)
            else:
                labels[spec["name"]] = np.full(n, np.nan, np.float32)
        feats: np.ndarray | None = None
        for s in range(len(self.stores)):
            rows = np.nonzero(source == s)[0] if len(self.stores) > 1 else np.arange(n)
            if not len(rows):
                continue
            w = window[rows]
            cmap = self.channel_maps[s]
            keep = cmap >= 0
            ok = np.ones((len(rows), len(cmap)), bool)
            if self.mask_bits:
                ok = (self.stores[s].qc[w] & self.mask_bits) == 0
            sub = np.zeros((len(rows), c), bool)
            sub[:, cmap[keep]] = ok[:, keep]
            mask[rows] = sub
            for spec in self.label_specs:
                values = self._label(s, spec["name"])
                if values is not None:
                    labels[spec["name"]][rows] = values[w]
            if self.features is not None:
                f = self._feature_rows(s, w)
                if feats is None:
                    feats = np.full((n, c, *f.shape[2:]), np.nan, np.float32)
                feats[np.ix_(rows, cmap[keep])] = f[:, keep]
        out: dict[str, Any] = {
            "channel_mask": mask,
            "channel_positions": np.broadcast_to(self.layout.positions, (n, c, 3)).copy(),
            "labels": labels,
            "window": window.astype(np.int64),
            "store": source.astype(np.int64),
        }
        if feats is not None:
            out["features"] = feats
        return out


def _unbatch(batch: dict[str, Any], n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {k: ({kk: vv[i] for kk, vv in v.items()} if isinstance(v, dict) else v[i]) for k, v in batch.items()}


class _Base:
    """What both datasets share: the stores, the selection, the output layout."""

    def _setup(
        self,
        sources: SourceLike | Sequence[SourceLike],
        channels: ChannelMode | Sequence[str] | None,
        labels: Sequence[str] | None,
        mask_qc: Any,
        features: FeatureSource,
    ) -> None:
        self.selections = _selections(sources)
        if not self.selections:
            raise ValueError("no store given")
        stores = [sel.open() for sel in self.selections]
        check_compatible(stores)
        self.indices = [sel.resolve() for sel in self.selections]
        self.layout = resolve_layout(stores, channels)
        self._args = (labels, mask_qc, features)
        self._output: _Output | None = None
        self._stores: list[Store] | None = stores
        self.output  # noqa: B018 - validates labels and features now, in the main process

    @property
    def stores(self) -> list[Store]:
        if self._stores is None:  # reopened after pickling (spawned workers)
            self._stores = [sel.open() for sel in self.selections]
        return self._stores

    @property
    def output(self) -> _Output:
        if self._output is None:
            self._output = _Output(self.stores, self.layout, *self._args)
        return self._output

    @property
    def channels(self) -> list[str]:
        """Output channel names, in order (the rows of ``signals`` and ``channel_mask``)."""
        return list(self.layout.names)

    @property
    def label_specs(self) -> list[dict[str, Any]]:
        return self.output.label_specs

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_stores"] = None  # zarr handles and caches are rebuilt where unpickled
        state["_output"] = None
        state["selections"] = [Selection(**{**sel.__dict__, "store": sel.open().url}) for sel in self.selections]
        return state


class StoreDataset(_Base, Dataset):
    """Map-style dataset: item ``i`` is the ``i``-th selected window (store order), as a dict.

    For evaluation and small stores. Each item decompresses its chunk; the last chunk of each
    shard is kept, so reading in order decompresses every chunk once, and a DataLoader with
    ``batch_size`` fetches a batch through ``__getitems__``, one decompression per chunk.
    Item keys: ``signals`` (channels, samples) float32, ``channel_mask`` (channels,) bool,
    ``channel_positions`` (channels, 3), ``labels`` {name: tensor}, ``window``, ``store``
    (and ``features``); see docs/loading.md.
    """

    def __init__(
        self,
        sources: SourceLike | Sequence[SourceLike],
        *,
        channels: ChannelMode | Sequence[str] | None = None,
        labels: Sequence[str] | None = None,
        mask_qc: Any = ("missing",),
        features: FeatureSource = None,
    ):
        self._setup(sources, channels, labels, mask_qc, features)
        self._ends = np.cumsum([len(i) for i in self.indices])
        self._cache: dict[tuple[int, int], tuple[int, np.ndarray]] = {}

    def __len__(self) -> int:
        return int(self._ends[-1])

    def _locate(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(self)
        if items.size and (items.min() < -n or items.max() >= n):
            raise IndexError(f"item out of range for {n} windows")
        items = items % max(n, 1)
        source = np.searchsorted(self._ends, items, side="right")
        first = np.concatenate([[0], self._ends[:-1]])
        window = np.array([self.indices[s][i - first[s]] for s, i in zip(source, items, strict=True)], np.int64)
        return source.astype(np.int64), window

    def _read(self, source: np.ndarray, window: np.ndarray, out: np.ndarray) -> None:
        out_rows = np.arange(len(window))
        for s in np.unique(source):
            store = self.stores[s]
            cmap = self.output.channel_maps[s]
            rows = out_rows[source == s]
            w = window[rows]
            k_of = np.searchsorted(store.offsets, w, side="right") - 1
            if not self.output.complete[s]:
                out[np.ix_(rows, np.nonzero(~self.output.present[s])[0])] = 0.0
            for k in np.unique(k_of):
                sig = store._signals[store.shard_names[k]]
                scale, offset = sig.scale_offset()
                in_k = rows[k_of == k]
                local = window[in_k] - store.offsets[k]
                for c in np.unique(local // sig.chunk_windows):
                    hit = in_k[local // sig.chunk_windows == c]
                    lo = int(c) * sig.chunk_windows
                    block = self._chunk(s, int(k), int(c))
                    pos = window[hit] - store.offsets[k] - lo
                    gather(block[None], np.zeros(len(hit), np.int64), pos, out, hit, cmap, scale, offset, pos + lo)

    def _chunk(self, s: int, k: int, c: int) -> np.ndarray:
        key = (s, k)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == c:
            return cached[1]
        store = self.stores[s]
        sig = store._signals[store.shard_names[k]]
        block = cached[1] if cached is not None else sig.new_block()
        sig.read_chunk(c, block)
        self._cache[key] = (c, block)
        return block

    def _items(self, items: np.ndarray) -> dict[str, Any]:
        source, window = self._locate(items)
        out = np.empty((len(window), len(self.layout), self.stores[0].window_samples), np.float32)
        self._read(source, window, out)
        batch = self.output.assemble(source, window)
        batch["signals"] = out
        return to_tensors(batch)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return next(_unbatch(self._items(np.array([int(i)], np.int64)), 1))

    def __getitems__(self, items: Sequence[int]) -> list[dict[str, Any]]:
        idx = np.asarray(list(items), np.int64)
        return list(_unbatch(self._items(idx), len(idx)))

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_cache"] = {}
        return state


class StoreIterableDataset(_Base, IterableDataset):
    """Shuffled batches for training, from one store or a mixture of stores.

    Chunks are shuffled (a permutation per epoch from ``seed`` and the epoch number), split
    across ``torch.distributed`` ranks and DataLoader workers without duplicates or gaps, and
    decompressed once each; windows are drawn at random from a buffer of about
    ``shuffle_buffer`` windows per store (whole chunks). Call :meth:`set_epoch` before each
    epoch. Use with ``DataLoader(dataset, batch_size=None, num_workers=..., pin_memory=...)``:
    the dataset yields whole batches (``batch_size``), or single windows with
    ``batch_size=None`` for a DataLoader that batches them (:func:`collate_windows`).

    A mixture maps every store onto one channel layout (``channels``: ``"union"`` with a
    mask, ``"intersection"``, or a list) and draws each window's store with probability
    proportional to ``weights`` (default: the stores' selected window counts) among stores with
    windows left (``stop="all"``: the epoch ends when every store is exhausted), or until the
    first store runs out (``stop="first"``). Stores must share the rate and window length.

    ``even=True`` gives every (rank, worker) the same number of full batches, as
    DistributedDataParallel needs; it drops the few windows beyond that each epoch.

    ``decode=False`` yields ``signals`` as stored (int16 codes with ``signals_scale`` and
    ``signals_offset`` (batch, channels), or float16), half the bytes through DataLoader
    workers and to the GPU; :func:`decode_signals` makes float32 of them on any device.
    """

    def __init__(
        self,
        sources: SourceLike | Sequence[SourceLike],
        *,
        batch_size: int | None = 64,
        shuffle: bool = True,
        seed: int = 0,
        shuffle_buffer: int = 1024,
        weights: Sequence[float] | None = None,
        stop: Literal["all", "first"] = "all",
        channels: ChannelMode | Sequence[str] | None = None,
        labels: Sequence[str] | None = None,
        mask_qc: Any = ("missing",),
        features: FeatureSource = None,
        drop_last: bool = False,
        even: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
        prefetch: int = 2,
        decode: bool = True,
    ):
        self._setup(sources, channels, labels, mask_qc, features)
        if batch_size is not None and batch_size < 1:
            raise ValueError("batch_size must be positive or None")
        if stop not in ("all", "first"):
            raise ValueError("stop must be 'all' or 'first'")
        if even and stop != "all":
            raise ValueError("even=True needs stop='all'")
        if (rank is None) != (world_size is None):
            raise ValueError("give both rank and world_size, or neither")
        if rank is not None and world_size is not None and not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = int(seed)
        self.shuffle_buffer = max(1, int(shuffle_buffer))
        self.stop = stop
        self.drop_last = drop_last
        self.even = even
        self.prefetch = max(0, int(prefetch))
        self.decode = decode
        dtypes = {s._signals[n].dtype for s in self.stores for n in s.shard_names} or {np.dtype("float32")}
        if not decode and len(dtypes) > 1:
            raise ValueError(f"decode=False needs stores of one encoding, not {sorted(d.name for d in dtypes)}")
        self.out_dtype = np.dtype("float32") if decode else dtypes.pop()
        if weights is None:
            weights = [sel.weight if sel.weight is not None else float(len(i)) for sel, i in zip(self.selections, self.indices, strict=True)]
        self.weights = np.asarray(weights, np.float64)
        if self.weights.shape != (len(self.selections),) or (self.weights < 0).any():
            raise ValueError("weights: one non-negative number per store")
        self._rank: tuple[int, int] | None = (
            (rank, world_size) if rank is not None and world_size is not None else (distributed_rank() if _dist_ready() else None)
        )
        self.plans = [ChunkPlan.build(store, idx) for store, idx in zip(self.stores, self.indices, strict=True)]
        self._epoch = multiprocessing.RawValue("q", 0)
        self._slots = SharedSlots()
        self._buffers = BatchBuffers(slots=self._slots)
        self._memory: dict[int, Any] = {}  # chunk buffers kept from one epoch to the next

    # -- epochs and placement ------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s order from the next iteration on (also in persistent workers)."""
        self._epoch.value = int(epoch)

    @property
    def epoch(self) -> int:
        return int(self._epoch.value)

    def placement(self) -> tuple[int, int]:
        """(slot, number of slots): this process's share among ranks x workers."""
        rank, world = self._rank if self._rank is not None else distributed_rank()
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        return rank * nw + wid, world * nw

    @property
    def num_windows(self) -> int:
        """Selected windows over all stores (one epoch with stop='all', all ranks together)."""
        return int(sum(len(i) for i in self.indices))

    # -- iteration -----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:  # dicts; in a DataLoader worker, batches packed for the trip
        epoch = self.epoch
        slot, n_slots = self.placement()
        batch = self.batch_size or 64
        executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="biosig-chunks") if self.prefetch else None
        memory = self._memory
        self._memory = {}  # a second iterator running meanwhile gets its own buffers
        orders = [epoch_order(p.n_chunks, self.seed, epoch, s, self.shuffle) for s, p in enumerate(self.plans)]
        pools = [
            ChunkPool(
                store,
                plan,
                slot_chunks(order, slot, n_slots),
                self.shuffle_buffer,
                np.random.default_rng([self.seed, epoch, s, slot, 1]),
                self.shuffle,
                executor,
                self.prefetch,
                memory.get(s),
            )
            for s, (store, plan, order) in enumerate(zip(self.stores, self.plans, orders, strict=True))
        ]
        limit = self._even_batches(orders, n_slots, batch) if self.even else None
        rng = np.random.default_rng([self.seed, epoch, slot, 2])
        remaining = np.array([p.remaining for p in pools], np.int64)
        output = self.output
        n_ch, n_t = len(self.layout), self.stores[0].window_samples
        absent = [np.nonzero(~p)[0] for p in output.present]
        in_worker = get_worker_info() is not None
        done = 0
        try:
            while limit is None or done < limit:
                source = draw_sources(rng, self.weights, remaining, batch, self.stop)
                n = len(source)
                if n == 0 or (n < batch and (self.drop_last or self.even)):
                    break
                signals, tensor, buffer_slot = self._buffers.get((n, n_ch, n_t), self.out_dtype, recycle=self.batch_size is not None)
                codes = self.out_dtype == np.int16  # decode=False on int16 stores
                scale = np.zeros((n, n_ch), np.float32) if codes else None
                offset = np.zeros((n, n_ch), np.float32) if codes else None
                window = np.empty(n, np.int64)
                for s, pool in enumerate(pools):
                    rows = np.nonzero(source == s)[0] if len(pools) > 1 else np.arange(n)
                    if len(rows):
                        window[rows] = pool.take(len(rows), signals, rows, output.channel_maps[s], scale, offset)
                        if len(absent[s]):
                            signals[np.ix_(rows, absent[s])] = 0
                arrays = output.assemble(source, window)
                if codes:
                    arrays["signals_scale"], arrays["signals_offset"] = scale, offset
                done += 1
                if self.batch_size is not None and in_worker:  # one descriptor, inline small arrays
                    yield _Packed(arrays, {"signals": tensor}, self._slots.token, buffer_slot)
                    del signals, tensor
                    continue
                meta = to_tensors(arrays)
                meta["signals"] = tensor
                del signals, tensor, arrays
                if self.batch_size is None:
                    yield from _unbatch(meta, n)
                else:
                    yield meta
                del meta  # so that its buffer can be reused once the consumer lets go of it
        finally:
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
            for pool in pools:
                pool.close()
            self._memory = {s: pool.memory for s, pool in enumerate(pools)}

    def _even_batches(self, orders: list[np.ndarray], n_slots: int, batch: int) -> int:
        totals = np.zeros(n_slots, np.int64)
        for plan, order in zip(self.plans, orders, strict=True):
            sizes = plan.sizes()[order]
            totals += np.bincount(np.arange(len(order)) % n_slots, weights=sizes, minlength=n_slots).astype(np.int64)
        return int(totals.min() // batch)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_buffers"] = BatchBuffers(slots=self._slots)
        state["_memory"] = {}
        if multiprocessing.context.get_spawning_popen() is None:  # plain pickling: a private epoch
            state["_epoch"] = int(self._epoch.value)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state["_epoch"], int):
            state["_epoch"] = multiprocessing.RawValue("q", state["_epoch"])
        self.__dict__.update(state)


def _dist_ready() -> bool:
    import torch.distributed as dist

    return bool(dist.is_available() and dist.is_initialized())


__all__ = ["StoreDataset", "StoreIterableDataset", "distributed_rank"]
