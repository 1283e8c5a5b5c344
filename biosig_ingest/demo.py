"""``biosig demo``: build replica corpora, ingest them, validate and summarize the stores.

Every corpus the package reads gets a small, format-exact replica (``samples/``), so the
demo shows each adapter, the error handling (a truncated EDF, missing WFDB files, a
malicious DEAP pickle) and the store, in about a minute, with nothing to download.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import SecurityError, ValidationError
from .store.inspect import validate


def _replicas(sources: Path) -> list[tuple[str, str, Path, Any]]:
    """(corpus id, store name, source root, replica description) for every corpus."""
    from . import samples

    out: list[tuple[str, str, Path, Any]] = [
        ("tuh", "tuab", samples.write_tuab_replica(sources / "tuab").root, None),
        ("tuh", "tusz", samples.write_tusz_replica(sources / "tusz").root, None),
        ("tuh", "tuev", samples.write_tuev_replica(sources / "tuev").root, None),
        ("ptbxl", "ptbxl", samples.write_ptbxl_replica(sources / "ptbxl").root, None),
        ("seed", "seed", samples.write_seed_replica(sources / "seed").root, None),
        ("seed-iv", "seed-iv", samples.write_seed_iv_replica(sources / "seed-iv").root, None),
    ]
    deap = samples.write_deap_replica(sources / "deap", n_subjects=3, n_trials=8)
    out.append(("deap", "deap", deap.root, deap))
    if hasattr(samples, "write_mimic_replica"):
        out.append(("mimic-iv-ecg", "mimic", samples.write_mimic_replica(sources / "mimic").root, None))
    return out


def run_demo(
    out_dir: Path,
    run_ingest: Callable[..., Any],
    print_report: Callable[[Any], None],
    inspect: Callable[..., None],
) -> dict[str, Path]:
    out_dir = Path(out_dir)
    sources = out_dir / "sources"
    if sources.exists():
        shutil.rmtree(sources)
    stores: dict[str, Path] = {}
    for corpus, name, root, replica in _replicas(sources):
        store = out_dir / f"{name}.zarr"
        report = run_ingest(corpus, root, store, "default", None, True)
        print_report(report)
        problems = validate(store)
        if problems:
            raise ValidationError(f"{store}: {problems[0]}")
        if replica is not None and getattr(replica, "marker", None) is not None and replica.marker.exists():
            raise SecurityError("the malicious DEAP replica ran code: the restricted unpickler failed")
        inspect(store, as_json=False)
        stores[name] = store
    return stores
