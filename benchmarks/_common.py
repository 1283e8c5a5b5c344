"""Helpers shared by the benchmark scripts (run as ``python benchmarks/bench_*.py``, so this
module is importable as ``_common``)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


def versions(names: Iterable[str]) -> dict[str, str]:
    """Installed version of each distribution, "unknown" where it is not installed."""
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


def tree_stats(root: Path) -> dict[str, int]:
    """Files, folders, bytes (before block rounding) and JSON documents under ``root``."""
    files = dirs = size = json_docs = 0
    for folder, subdirs, names in os.walk(root):
        dirs += len(subdirs)
        for name in names:
            files += 1
            json_docs += name.endswith(".json")
            size += os.stat(os.path.join(folder, name)).st_size
    return {"files": files, "dirs": dirs, "bytes": size, "json_docs": json_docs}


def tree_bytes(path: Path) -> int:
    """What a store occupies: the sum of its files' sizes."""
    return tree_stats(path)["bytes"]


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"numbers written to {path}")
