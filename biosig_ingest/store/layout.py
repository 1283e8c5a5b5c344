"""Names and array layout of a biosig-ingest Zarr v3 store (schema version 1).

```
STORE/                      root group; attrs["biosig"]: profile, hash, channels, labels, versions
  shards/                   group
    s00000/                 one committed shard (renamed into place when complete)
      recordings.json.gz    the shard's recordings table (gzip JSON rows; schema 1: in attrs)
      signals   (window, channel, time)  float32
      recording (window,)                int32   row of recordings.json.gz
      start_s   (window,)                float64 seconds from the recording start
      qc        (window, channel)        uint8   bitmask, see biosig_ingest.dsp.quality
      label_<name> (window,) int16 class code, -1 missing   [categorical]
                   (window, <name>_class) uint8 multi-hot     [multilabel]
                   (window,) float32, NaN missing             [numeric]
```
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import zarr

ATTRS_KEY = "biosig"
SHARDS = "shards"
SHARD_RE = re.compile(r"^s(\d{5,})$")


def array(group: zarr.Group, name: str) -> zarr.Array:
    """The array ``name`` of ``group`` (a typed lookup: groups hold arrays and groups)."""
    node = group[name]
    if not isinstance(node, zarr.Array):
        raise KeyError(f"{name} is not an array")
    return node


def shard_name(index: int) -> str:
    return f"s{index:05d}"


def label_array(name: str) -> str:
    return f"label_{name}"


def staging_root(store: Path) -> Path:
    """Where shards are assembled before the atomic rename: beside the store, same filesystem.

    Outside the Zarr hierarchy, so nothing partial is ever listed as part of the store.
    """
    return store.parent / f".{store.name}.staging"


def remote_staging_root() -> Path:
    """Where shards bound for an object store are assembled: this machine's temporary folder."""
    return Path(tempfile.gettempdir()) / "biosig-ingest-staging"


def fsync_dir(path: Path) -> None:
    """Persist a rename into ``path`` (best effort: not every filesystem opens folders)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
