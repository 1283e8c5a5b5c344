"""Chunk-level shuffling: chunk plans, their split across ranks and workers, and the shuffle
buffer that reads each chunk once (mapped, or decompressed) and draws windows at random from
the chunks it holds.

Needs no torch: the datasets in :mod:`.dataset` drive these with rank and worker numbers.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from concurrent.futures import Executor, Future
from dataclasses import dataclass

import numba
import numpy as np

from ..store.chunks import RawChunk, ShardSignals
from ..store.encoding import gather_at
from ..store.reader import Store


@dataclass(frozen=True)
class ChunkPlan:
    """The selected windows of one store grouped by stored chunk.

    Chunk ``j`` is chunk ``chunk[j]`` of shard ``shard[j]``; its selected windows are
    ``local[start[j]:start[j+1]]`` (positions in the chunk) and ``window[...]`` (global indices).
    """

    shard: np.ndarray
    chunk: np.ndarray
    start: np.ndarray
    local: np.ndarray
    window: np.ndarray

    @classmethod
    def build(cls, store: Store, indices: np.ndarray) -> ChunkPlan:
        idx = np.unique(np.asarray(indices, np.int64))
        shard_of = np.searchsorted(store.offsets, idx, side="right") - 1
        in_shard = idx - store.offsets[shard_of]
        per_chunk = np.array([store._signals[name].chunk_windows for name in store.shard_names], np.int64)
        chunk_of = in_shard // per_chunk[shard_of] if len(idx) else np.zeros(0, np.int64)
        local = in_shard - chunk_of * per_chunk[shard_of] if len(idx) else np.zeros(0, np.int64)
        # idx is sorted, so windows of one chunk are contiguous and chunks come in store order
        new = np.ones(len(idx), bool)
        if len(idx):
            new[1:] = (shard_of[1:] != shard_of[:-1]) | (chunk_of[1:] != chunk_of[:-1])
        first = np.nonzero(new)[0]
        return cls(
            shard=shard_of[first].astype(np.int64),
            chunk=chunk_of[first].astype(np.int64),
            start=np.append(first, len(idx)).astype(np.int64),
            local=local.astype(np.int64),
            window=idx,
        )

    @property
    def n_chunks(self) -> int:
        return len(self.shard)

    def sizes(self) -> np.ndarray:
        return np.diff(self.start)


def epoch_order(n_chunks: int, seed: int, epoch: int, stream: int, shuffle: bool) -> np.ndarray:
    """The order of a store's chunks in an epoch: a permutation from (seed, epoch, stream),
    the same in every rank and worker, or store order without shuffling."""
    if not shuffle:
        return np.arange(n_chunks, dtype=np.int64)
    return np.random.default_rng([seed, epoch, stream]).permutation(n_chunks).astype(np.int64)


def slot_chunks(order: np.ndarray, slot: int, n_slots: int) -> np.ndarray:
    """The chunks of one (rank, worker) slot: every ``n_slots``-th of the epoch order, so that
    the slots partition the chunks (no duplicates, no gaps) with counts differing by at most one."""
    return order[slot::n_slots]


@numba.njit(cache=True, nogil=True)
def _draw(live, n_live, m, u, shuffle, left, picked, emptied):  # pragma: no cover - compiled
    """Take ``m`` of the ``n_live`` windows in ``live`` (3, capacity) into ``picked``.

    Shuffled: a partial Fisher-Yates (position i swaps with a uniform pick of [i, n_live),
    from the uniforms ``u``), then the tail fills the holes. In order: the first ``m``, the rest
    moves up. Counts down ``left`` per block; returns how many blocks it emptied (``emptied``).
    """
    if shuffle:
        for i in range(m):
            j = i + min(int(u[i] * (n_live - i)), n_live - i - 1)
            for r in range(3):
                a = live[r, i]
                live[r, i] = live[r, j]
                live[r, j] = a
    for i in range(m):
        for r in range(3):
            picked[r, i] = live[r, i]
    if shuffle:
        for i in range(min(m, n_live - m)):
            for r in range(3):
                live[r, i] = live[r, n_live - 1 - i]
    else:
        for i in range(n_live - m):
            for r in range(3):
                live[r, i] = live[r, i + m]
    n_empty = 0
    for i in range(m):
        b = picked[0, i]
        left[b] -= 1
        if left[b] == 0:
            emptied[n_empty] = b
            n_empty += 1
    return n_empty


class ChunkPool:
    """The shuffle buffer of one store in one slot.

    Holds up to ``live_blocks`` chunks whose selected windows are drawn uniformly at random
    (or in order without shuffling); a chunk is replaced by the next one of the slot's order
    as soon as all its windows are drawn. A chunk whose file is uncompressed and in the page
    cache is mapped, and its windows are decoded straight from the page cache (no copy in the
    buffer, whose memory then stays untouched); others are read and decompressed into the
    buffer, with an ``executor`` the next
    ``prefetch`` of them in a thread meanwhile (Blosc and file reads release the GIL). Chunks
    are consumed strictly in order, so the draws depend on the seed only, never on timing.
    """

    def __init__(
        self,
        store: Store,
        plan: ChunkPlan,
        chunks: np.ndarray,
        buffer_windows: int,
        rng: np.random.Generator,
        shuffle: bool,
        executor: Executor | None = None,
        prefetch: int = 2,
        memory: tuple[np.ndarray, np.ndarray | None, np.ndarray | None] | None = None,
    ):
        self.store = store
        self.plan = plan
        self.chunks = chunks
        self.rng = rng
        self.shuffle = shuffle
        self.executor = executor
        self.signals: list[ShardSignals] = [store._signals[name] for name in store.shard_names]
        cw = max((s.chunk_windows for s in self.signals), default=1)
        self.cw = cw
        self.live_blocks = max(1, -(-buffer_windows // cw)) if shuffle else 1
        n_blocks = self.live_blocks + (prefetch if executor is not None else 0)
        dtype = self.signals[0].dtype if self.signals else np.dtype("float32")
        shape = (n_blocks, cw, len(store.channels), store.window_samples)
        self.int16 = dtype == np.int16
        if memory is not None and memory[0].shape == shape and memory[0].dtype == dtype:
            self.blocks, self.scale, self.offset = memory  # a previous epoch's, already paged in
        else:
            self.blocks = np.empty(shape, dtype)
            self.scale = np.empty((n_blocks * cw, len(store.channels)), np.float32) if self.int16 else None
            self.offset = np.empty((n_blocks * cw, len(store.channels)), np.float32) if self.int16 else None
        sizes = plan.sizes()[chunks] if len(chunks) else np.zeros(0, np.int64)
        self.remaining = int(sizes.sum())  # windows not drawn yet
        cap = self.live_blocks * cw
        self.live = np.empty((3, cap), np.int64)  # block, position in the chunk, global window
        self.n_live = 0
        self.left_in_block = np.zeros(n_blocks, np.int64)
        self.free = list(range(n_blocks))[::-1]
        self.loading: deque[tuple[int, int, Future | None]] = deque()  # (chunk position, block, future)
        self.next_chunk = 0
        self.active = 0  # blocks whose windows are in the live arrays
        self._scratch = threading.local()  # compressed bytes, one buffer per loading thread
        # where each block's windows are: its own memory, or the chunk file mapped (uncompressed
        # chunks are read from the page cache, not copied into the buffer)
        self.own = self.blocks.ctypes.data + np.arange(n_blocks, dtype=np.int64) * self.blocks[0].nbytes
        self.addresses = self.own.copy()
        self.mapped: list[RawChunk | None] = [None] * n_blocks

    @property
    def memory(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """The pool's buffers, for the next epoch's pool (fresh memory costs page faults)."""
        return self.blocks, self.scale, self.offset

    # -- loading ---------------------------------------------------------------------------
    def _load(self, j: int, block: int) -> None:
        """Decompress plan chunk ``j`` into ``block`` (runs in the prefetch thread)."""
        k, c = int(self.plan.shard[j]), int(self.plan.chunk[j])
        sig = self.signals[k]
        scratch = getattr(self._scratch, "buf", None)
        if scratch is None:
            scratch = self._scratch.buf = bytearray()
        sig.read_chunk(c, self.blocks[block], scratch)
        self._scale_offset(j, block)

    def _scale_offset(self, j: int, block: int) -> None:
        if self.int16:
            k, c = int(self.plan.shard[j]), int(self.plan.chunk[j])
            sig = self.signals[k]
            assert self.scale is not None and self.offset is not None
            scale, offset = sig.scale_offset()
            assert scale is not None and offset is not None
            lo, hi = sig.bounds(c)
            self.scale[block * self.cw : block * self.cw + hi - lo] = scale[lo:hi]
            self.offset[block * self.cw : block * self.cw + hi - lo] = offset[lo:hi]

    def _pump(self) -> None:
        """Start loads into free blocks, then activate loaded chunks (in order) up to the buffer size."""
        while True:
            while self.free and self.next_chunk < len(self.chunks):
                j = int(self.chunks[self.next_chunk])
                block = self.free.pop()
                raw = self.signals[int(self.plan.shard[j])].map_raw(int(self.plan.chunk[j]))
                fut: Future | None = None
                if raw is not None:  # uncompressed: its windows are decoded from the mapped file
                    self.mapped[block] = raw
                    self.addresses[block] = raw.address
                    self._scale_offset(j, block)
                elif self.executor is not None:
                    fut = self.executor.submit(self._load, j, block)
                else:
                    self._load(j, block)
                self.loading.append((j, block, fut))
                self.next_chunk += 1
            if self.active >= self.live_blocks or not self.loading:
                return
            j, block, fut = self.loading.popleft()
            if fut is not None:
                fut.result()
            a, b = int(self.plan.start[j]), int(self.plan.start[j + 1])
            n = b - a
            s = slice(self.n_live, self.n_live + n)
            self.live[0, s] = block
            self.live[1, s] = self.plan.local[a:b]
            self.live[2, s] = self.plan.window[a:b]
            self.n_live += n
            self.left_in_block[block] = n
            self.active += 1

    # -- drawing ---------------------------------------------------------------------------
    def take(
        self,
        n: int,
        out: np.ndarray,
        out_rows: np.ndarray,
        channel_map: np.ndarray,
        out_scale: np.ndarray | None = None,
        out_offset: np.ndarray | None = None,
    ) -> np.ndarray:
        """Draw ``n`` windows, decode them into ``out[out_rows]`` (via ``channel_map``) and
        return their global indices (fewer if the slot runs out).

        ``out`` in the stored dtype instead of float32 receives the stored values; int16 codes
        then come with their scale and offset in ``out_scale``/``out_offset`` (rows, channels).
        """
        stored = out.dtype != np.float32 or self.blocks.dtype == np.float32
        keep = channel_map >= 0
        got = np.empty(n, np.int64)
        picked = np.empty((3, n), np.int64)
        emptied = np.empty(n, np.int64)
        filled = 0
        while filled < n:
            self._pump()
            if self.n_live == 0:
                break
            m = min(n - filled, self.n_live)
            u = self.rng.random(m) if self.shuffle else np.zeros(0)
            n_empty = _draw(self.live, self.n_live, m, u, self.shuffle, self.left_in_block, picked, emptied)
            self.n_live -= m
            blocks, local = picked[0, :m], picked[1, :m]
            rows = out_rows[filled : filled + m]
            scale_row = blocks * self.cw + local
            gather_at(self.addresses, self.cw, self.blocks.dtype, blocks, local, out, rows, channel_map, self.scale, self.offset, scale_row)
            if stored and self.int16 and out_scale is not None and out_offset is not None:
                assert self.scale is not None and self.offset is not None
                src = scale_row[:, None]
                out_scale[rows[:, None], channel_map[keep][None, :]] = self.scale[src, np.nonzero(keep)[0][None, :]]
                out_offset[rows[:, None], channel_map[keep][None, :]] = self.offset[src, np.nonzero(keep)[0][None, :]]
            got[filled : filled + m] = picked[2, :m]
            filled += m
            for block in emptied[:n_empty]:  # drawn out: they take the next chunks
                self._unmap(int(block))
                self.free.append(int(block))
                self.active -= 1
        self.remaining -= filled
        return got[:filled]

    def _unmap(self, block: int) -> None:
        raw = self.mapped[block]
        if raw is not None:
            self.addresses[block] = self.own[block]
            self.mapped[block] = None
            raw.close()

    def close(self) -> None:
        """Unmap the chunk files still mapped (the pool is done with, or abandoned mid-epoch)."""
        for block in range(len(self.mapped)):
            self._unmap(block)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()
