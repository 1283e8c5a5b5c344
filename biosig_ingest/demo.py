"""``biosig demo``: build replica corpora, ingest them, validate and summarize the stores."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ValidationError
from .store.inspect import validate


def run_demo(
    out_dir: Path,
    run_ingest: Callable[..., Any],
    print_report: Callable[[Any], None],
    inspect: Callable[..., None],
) -> dict[str, Path]:
    from .samples import write_ptbxl_replica, write_tuab_replica

    out_dir = Path(out_dir)
    sources = out_dir / "sources"
    if sources.exists():
        shutil.rmtree(sources)
    tuab = write_tuab_replica(sources / "tuab")
    ptbxl = write_ptbxl_replica(sources / "ptbxl")
    stores = {"tuh": out_dir / "tuab.zarr", "ptbxl": out_dir / "ptbxl.zarr"}
    for corpus, root in (("tuh", tuab.root), ("ptbxl", ptbxl.root)):
        report = run_ingest(corpus, root, stores[corpus], "default", None, True)
        print_report(report)
        problems = validate(stores[corpus])
        if problems:
            raise ValidationError(f"{stores[corpus]}: {problems[0]}")
        inspect(stores[corpus], as_json=False)
    return stores
