"""torch datasets over biosig-ingest stores: shuffled training batches at decompression speed,
one corpus or a mixture (docs/loading.md). Needs PyTorch: ``pip install "biosig-ingest[torch]"``.

    from biosig_ingest.torch import Selection, StoreIterableDataset
    ds = StoreIterableDataset(Selection("tuab.zarr", split="train"), batch_size=64, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2, pin_memory=True)
    for epoch in range(n):
        ds.set_epoch(epoch)
        for batch in loader: ...   # batch["signals"] (64, channels, samples) float32, ...
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "biosig_ingest.torch needs PyTorch; install it first (the CPU build: "
        "pip install torch --index-url https://download.pytorch.org/whl/cpu), or "
        'pip install "biosig-ingest[torch]"'
    ) from exc

from .collate import BatchBuffers, collate_windows, decode_signals
from .dataset import StoreDataset, StoreIterableDataset, distributed_rank
from .mixture import ChannelLayout, check_compatible, resolve_labels, resolve_layout
from .sampling import ChunkPlan, ChunkPool, epoch_order, slot_chunks
from .selection import Selection, label_available, qc_bits, select_windows

__all__ = [
    "BatchBuffers",
    "ChannelLayout",
    "ChunkPlan",
    "ChunkPool",
    "Selection",
    "StoreDataset",
    "StoreIterableDataset",
    "check_compatible",
    "collate_windows",
    "decode_signals",
    "distributed_rank",
    "epoch_order",
    "label_available",
    "qc_bits",
    "resolve_labels",
    "resolve_layout",
    "select_windows",
    "slot_chunks",
]
