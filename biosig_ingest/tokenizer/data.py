"""Windows for the tokenizer: which ones (splits, held-out fallback), how they are scaled, the
channel vocabulary, and an endless, resumable stream of training batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UsageError
from ..splits import subject_fraction
from ..store.reader import Store

UNKNOWN_CHANNEL = "<unk>"
# Stores without a test split: subjects whose sha256(0:subject) fraction (biosig_ingest.splits)
# falls below this are held out (evaluation) and never streamed for pretraining; at least one
# subject is. Same rule on every machine.
HELDOUT_FRACTION = 0.2
HELDOUT_SEED = 0
SCALE_WINDOWS = 64


# -- which windows ---------------------------------------------------------------------------
def _heldout_mask(store: Store) -> np.ndarray:
    meta = store.metadata
    subjects = meta["subject"].astype(str).where(meta["subject"].astype(str) != "", meta["recording_id"].astype(str))
    fraction = {s: subject_fraction(s, HELDOUT_SEED) for s in subjects.unique()}
    values = subjects.map(fraction).to_numpy()
    held = values < HELDOUT_FRACTION
    if len(values) and not held.any():  # a small store may have no subject below the cut
        held = values == values.min()
    return held


def evaluation_windows(store: Store) -> tuple[np.ndarray, str]:
    """Windows to evaluate on: the store's ``test`` split, else the held-out subjects."""
    split = store.metadata["split"].astype(str).to_numpy()
    if np.any(split == "test"):
        return np.nonzero(split == "test")[0], "split 'test'"
    held = _heldout_mask(store)
    return np.nonzero(held)[0], f"held-out subjects (no test split): sha256 fraction < {HELDOUT_FRACTION}"


def training_windows(store: Store, split: str = "train") -> tuple[np.ndarray, str]:
    """Windows to train on: split ``split`` if the store has it, else every window not held out."""
    names = store.metadata["split"].astype(str).to_numpy()
    if np.any(names == split):
        return np.nonzero(names == split)[0], f"split '{split}'"
    test, how = evaluation_windows(store)
    keep = np.ones(len(store), bool)
    keep[test] = False
    return np.nonzero(keep)[0], f"all windows but the evaluation ones ({how})"


# -- channels and scale --------------------------------------------------------------------------
def channel_vocabulary(stores: Sequence[Store]) -> list[str]:
    """``<unk>`` then every channel name of the stores (case-folded), in order of appearance."""
    vocab = [UNKNOWN_CHANNEL]
    for store in stores:
        for name in store.channels:
            if name.casefold() not in vocab:
                vocab.append(name.casefold())
    return vocab


@dataclass(frozen=True)
class ChannelInfo:
    names: tuple[str, ...]
    ids: np.ndarray  # (C,) int64 into the vocabulary; 0 for channels the run never saw
    positions: np.ndarray  # (C, 3) float32 metres, 0 where unknown
    has_position: np.ndarray  # (C,) bool

    @property
    def unknown(self) -> list[str]:
        return [n for n, i in zip(self.names, self.ids, strict=True) if i == 0]


def _channel_info(names: Sequence[str], positions: np.ndarray, vocab: Sequence[str]) -> ChannelInfo:
    where = {name: i for i, name in enumerate(vocab)}
    pos = np.asarray(positions, np.float32).reshape(len(names), 3)
    has = np.asarray(np.isfinite(pos).all(axis=1), bool)
    ids = np.array([where.get(n.casefold(), 0) for n in names], np.int64)
    return ChannelInfo(tuple(names), ids, np.where(has[:, None], pos, 0.0).astype(np.float32), has)


def channel_info(store: Store, vocab: Sequence[str]) -> ChannelInfo:
    """The store's channels: vocabulary ids and 3-D positions (from its channel table)."""
    rows = store.attrs["channels"]
    pos = np.full((len(rows), 3), np.nan, np.float32)
    for i, row in enumerate(rows):
        p = row.get("position_m")
        if p is not None and len(p) == 3:
            pos[i] = p
    return _channel_info(store.channels, pos, vocab)


def layout_info(layout: Any, vocab: Sequence[str]) -> ChannelInfo:
    """The channels of a loader's layout (``biosig_ingest.torch.ChannelLayout``)."""
    return _channel_info(layout.names, layout.positions, vocab)


def store_scale(store: Store) -> float:
    """The median standard deviation of a channel in a window, over up to 64 windows spread
    evenly over the store: one number per store, so relative amplitudes survive scaling."""
    if len(store) == 0:
        return 1.0
    idx = np.unique(np.linspace(0, len(store) - 1, min(SCALE_WINDOWS, len(store))).round().astype(np.int64))
    std = store.read(idx).std(axis=-1)
    ok = np.isfinite(std) & (std > 0)
    return float(np.median(std[ok])) if ok.any() else 1.0


# -- the stream ------------------------------------------------------------------------------
class EpochStream:
    """Endless batches from a loader over a :class:`biosig_ingest.torch.StoreIterableDataset`,
    epoch after epoch, with a position (epoch, batches drawn in it) that a checkpoint saves.

    The dataset's order is a function of (seed, epoch) only, so resuming replays the epoch's
    first batches without using them (read and decompressed again, not trained on).
    """

    def __init__(self, dataset: Any, loader: Any = None, state: dict[str, Any] | None = None):
        self.dataset = dataset
        self.loader = loader if loader is not None else dataset
        self.epoch = int(state["epoch"]) if state else 0
        self.batches = int(state["batches"]) if state else 0
        self._it: Any = None

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batches": self.batches}

    def _begin(self, skip: int) -> None:
        self.dataset.set_epoch(self.epoch)
        self._it = iter(self.loader)
        for _ in range(skip):
            if next(self._it, None) is None:  # the checkpoint fell on the end of an epoch
                self.epoch, self.batches = self.epoch + 1, 0
                return self._begin(0)
        return None

    def next_batch(self) -> Any:
        if self._it is None:
            self._begin(self.batches)
        batch = next(self._it, None)
        if batch is None:
            self.epoch, self.batches = self.epoch + 1, 0
            self._begin(0)
            batch = next(self._it, None)
            if batch is None:
                raise UsageError("the stores have no window to train on")
        self.batches += 1
        return batch

    def close(self) -> None:
        self._it = None
