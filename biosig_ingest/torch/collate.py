"""Batch memory, the hand-over of batches from DataLoader workers, and collation.

Signal batches are the big arrays (a batch of 64 windows of 23 x 2000 float32 is 12 MB), and
fresh memory is slow: every 4 KiB page faults on first touch (measured on a 2-core VM: about
8 ms per 12 MB batch, slower than decoding it). So batches come from rings of buffers that
are reused once nothing refers to them any more:

- in the main process, a ring of numpy arrays, free when only the ring refers to them;
- in a DataLoader worker, a ring of shared-memory buffers per worker: the worker sends the
  batch as one file descriptor (its small arrays are pickled inline), and the main process
  marks the buffer free in a shared flag array when the last tensor using it is released.
  Without the flags (spawned workers, per-window items) a worker allocates fresh shared memory.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import sys
import uuid
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate, get_worker_info

from ..store.encoding import NAN_CODE, decode

SLOTS_PER_WORKER = 8  # > the DataLoader's prefetch_factor (2) plus batches a training step holds
MAX_WORKERS = 64
_FLAGS: dict[str, Any] = {}  # token -> flag array, in every process that made or inherited one


class SharedSlots:
    """Flags in shared memory, one per recycled worker buffer: 1 while the main process uses it."""

    def __init__(self) -> None:
        self.token = uuid.uuid4().hex
        self.flags: Any = multiprocessing.RawArray("b", MAX_WORKERS * SLOTS_PER_WORKER)
        _FLAGS[self.token] = self.flags

    def __getstate__(self) -> dict[str, Any]:
        # shared memory passes to a process being started, not through plain pickling
        spawning = multiprocessing.context.get_spawning_popen() is not None
        return {"token": self.token, "flags": self.flags if spawning else None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def _release(token: str, slot: int) -> None:
    flags = _FLAGS.get(token)
    if flags is not None:
        flags[slot] = 0


class _Packed:
    """A batch on its way from a worker: the signals tensor (shared memory, one descriptor) and
    the small arrays as numpy (pickled inline). Unpickled in the main process as a plain dict."""

    def __init__(self, arrays: dict[str, Any], signals: dict[str, torch.Tensor], token: str | None, slot: int | None):
        self.arrays, self.signals, self.token, self.slot = arrays, signals, token, slot

    def __reduce__(self) -> tuple[Any, ...]:
        return (_unpack, (self.arrays, self.signals, self.token, self.slot))

    def unpack(self) -> dict[str, Any]:
        return _unpack(self.arrays, self.signals, None, None)


def _unpack(arrays: dict[str, Any], signals: dict[str, torch.Tensor], token: str | None, slot: int | None) -> dict[str, Any]:
    batch = to_tensors(arrays)
    batch.update(signals)
    if token is not None and slot is not None:
        # fires when the last tensor or view of the buffer is gone (storages keep their Python object)
        weakref.finalize(signals["signals"].untyped_storage(), _release, token, slot)
    return batch


class BatchBuffers:
    """Arrays for batches: recycled in the main process, shared and (with ``slots``) recycled in workers."""

    def __init__(self, ring: int = 6, slots: SharedSlots | None = None):
        self.ring = ring
        self.slots = slots
        self._buffers: list[np.ndarray] = []
        self._shared_ring: list[tuple[np.ndarray, torch.Tensor]] = []
        probe = [np.empty(0)]
        self._free_refs = self._refs(probe, 0)  # what an unreferenced buffer counts

    @staticmethod
    def _refs(buffers: list[np.ndarray], i: int) -> int:
        # a tensor from torch.from_numpy, and every view of it, holds one more reference
        return sys.getrefcount(buffers[i])

    @staticmethod
    def _shared(shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, torch.Tensor]:
        t_dtype = torch.from_numpy(np.empty(0, dtype)).dtype
        storage = torch.UntypedStorage._new_shared(int(np.prod(shape)) * dtype.itemsize)
        tensor = torch.empty(0, dtype=t_dtype).set_(storage, 0, shape, torch.empty(shape, device="meta").stride())
        return tensor.numpy(), tensor

    def _worker(self, shape: tuple[int, ...], dtype: np.dtype, worker: int, recycle: bool) -> tuple[np.ndarray, torch.Tensor, int | None]:
        flags = self.slots.flags if self.slots is not None else None
        if flags is None or not recycle or worker >= MAX_WORKERS:
            return (*self._shared(shape, dtype), None)
        base = worker * SLOTS_PER_WORKER
        free = [j for j in range(len(self._shared_ring)) if flags[base + j] == 0]
        for j in free:
            arr, tensor = self._shared_ring[j]
            if arr.shape == shape and arr.dtype == dtype:
                flags[base + j] = 1
                return arr, tensor, base + j
        if len(self._shared_ring) < SLOTS_PER_WORKER:
            self._shared_ring.append(self._shared(shape, dtype))
            j = len(self._shared_ring) - 1
        elif free:  # a free buffer of another shape (a last, partial batch) makes way
            j = free[0]
            self._shared_ring[j] = self._shared(shape, dtype)
        else:  # the main process holds them all
            return (*self._shared(shape, dtype), None)
        flags[base + j] = 1
        return (*self._shared_ring[j], base + j)

    def get(self, shape: tuple[int, ...], dtype: Any = np.float32, recycle: bool = True) -> tuple[np.ndarray, torch.Tensor, int | None]:
        """An uninitialized array of ``shape``, the tensor sharing its memory, and (in a worker)
        the shared slot it occupies until the main process releases it (None: not recycled)."""
        dtype = np.dtype(dtype)
        info = get_worker_info()
        if info is not None:
            return self._worker(shape, dtype, info.id, recycle)
        for i in range(len(self._buffers)):
            fits = self._buffers[i].shape == shape and self._buffers[i].dtype == dtype
            if fits and self._refs(self._buffers, i) <= self._free_refs:
                arr = self._buffers[i]
                return arr, torch.from_numpy(arr), None
        arr = np.empty(shape, dtype)
        if len(self._buffers) < self.ring:
            self._buffers.append(arr)
        else:  # a buffer of another shape (a last, partial batch) makes way
            for i in range(len(self._buffers)):
                if self._buffers[i].shape != shape and self._refs(self._buffers, i) <= self._free_refs:
                    self._buffers[i] = arr
                    break
        return arr, torch.from_numpy(arr), None


def to_tensors(arrays: dict[str, Any]) -> dict[str, Any]:
    """numpy arrays (nested in dicts) -> tensors sharing their memory."""
    out: dict[str, Any] = {}
    for key, value in arrays.items():
        if isinstance(value, dict):
            out[key] = to_tensors(value)
        elif isinstance(value, np.ndarray):
            out[key] = torch.from_numpy(value)
        else:
            out[key] = value
    return out


_DECODED = BatchBuffers()  # decode_signals's output in this process


def decode_signals(batch: dict[str, Any]) -> torch.Tensor:
    """float32 signals of a batch made with ``decode=False``, on the batch's device.

    int16 codes: ``code * signals_scale + signals_offset`` (float32 multiply, then add: the
    same arithmetic as the CPU decoder), code -32768 -> NaN; float16: converted; float32: as is.
    Decoding on the GPU moves half the bytes over PCIe and out of the DataLoader workers.
    """
    x = batch["signals"]
    if x.device.type == "cpu" and x.dtype in (torch.int16, torch.float16):  # one pass, recycled memory
        scale, offset = batch.get("signals_scale"), batch.get("signals_offset")
        arr, tensor, _ = _DECODED.get(tuple(x.shape), recycle=False)
        decode(
            x.numpy(),
            None if scale is None else scale.numpy(),
            None if offset is None else offset.numpy(),
            out=arr,
        )
        return tensor
    if x.dtype == torch.int16:
        y = x.to(torch.float32) * batch["signals_scale"].unsqueeze(-1)
        y = y + batch["signals_offset"].unsqueeze(-1)
        return torch.where(x == NAN_CODE, torch.full_like(y, float("nan")), y)
    return x.to(torch.float32)


def collate_windows(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack per-window dicts (from :class:`~biosig_ingest.torch.StoreDataset`, or from
    :class:`~biosig_ingest.torch.StoreIterableDataset` with ``batch_size=None``) into a batch.

    The same as ``torch.utils.data.default_collate`` (which it calls: in a worker it stacks
    straight into shared memory); named here so the contract is written down: every tensor
    gains a leading batch dimension, ``labels`` stays a dict of tensors.
    """
    return default_collate(list(items))
