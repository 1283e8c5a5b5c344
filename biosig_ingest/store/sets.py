"""Derived sets in committed shards (feature sets, token sets): one group per shard,
``shards/sNNNNN/<prefix><name>/``, assembled in the store's staging folder and committed by
one atomic rename, like a shard. Local stores only (an object store has no rename).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zarr

from ..errors import UsageError
from .layout import ATTRS_KEY, SHARDS, fsync_dir, staging_root

if TYPE_CHECKING:
    from .reader import Store

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_name(name: str, kind: str = "feature set") -> str:
    if not _NAME_RE.match(name):
        raise UsageError(f"{kind} name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    return name


def set_attrs(path: Path) -> dict[str, Any] | None:
    """The biosig attributes of the committed set group at ``path``; None if not committed."""
    meta = path / "zarr.json"
    if not meta.is_file():
        return None
    attrs: dict[str, Any] = json.loads(meta.read_text()).get("attributes", {}).get(ATTRS_KEY, {})
    return attrs


def commit_set(store: Path, shard: str, group: str, write: Callable[[zarr.Group], None]) -> dict[str, Any] | None:
    """Build set ``group`` of ``shard`` with ``write`` (arrays and attributes) in staging, then
    rename it into place. Returns None once committed, or the attributes of the set another
    writer committed meanwhile (the rename onto a non-empty folder fails: nothing is replaced)."""
    shard_dir = Path(store) / SHARDS / shard
    final = shard_dir / group
    stage_root = staging_root(Path(store))
    stage_root.mkdir(parents=True, exist_ok=True)
    stage = stage_root / f"{shard}.{group}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        write(zarr.open_group(str(stage), mode="w", zarr_format=3))
        try:
            os.rename(stage, final)  # the commit: atomic on one POSIX filesystem
        except OSError:
            existing = set_attrs(final)
            if existing is None:
                raise
            return existing
        fsync_dir(shard_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return None


def list_sets(store: Store, prefix: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Sets named ``<prefix><name>`` in the store: name -> the attributes ``keys`` of its first
    shard, plus ``shards`` (how many committed shards hold it) and ``complete`` (all do)."""
    keys = tuple(keys)
    found: dict[str, dict[str, Any]] = {}
    for shard in store.shard_names:
        for entry in sorted((store.path / SHARDS / shard).glob(prefix + "*")):
            attrs = set_attrs(entry)
            if attrs is None:
                continue
            info = found.setdefault(entry.name[len(prefix) :], {k: attrs.get(k) for k in keys} | {"shards": 0})
            info["shards"] += 1
    for info in found.values():
        info["complete"] = info["shards"] == len(store.shard_names)
    return found


def set_groups(store: Store, group: str) -> tuple[dict[str, zarr.Group], list[str]]:
    """The committed groups ``group`` per shard (store order), and the shards that lack it."""
    groups, missing = {}, []
    for shard in store.shard_names:
        path = store.path / SHARDS / shard / group
        if (path / "zarr.json").is_file():
            groups[shard] = zarr.open_group(str(path), mode="r", zarr_format=3)
        else:
            missing.append(shard)
    return groups, missing
