"""Shared fixtures: replica corpora written once per session, stores ingested from them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from biosig_ingest import ingest
from biosig_ingest.samples import write_ptbxl_replica, write_tuab_replica

# ../shared/real next to the repository (CI clones main with shared/ beside it).
REAL = Path(os.environ.get("BIOSIG_REAL_DIR", Path(__file__).resolve().parents[2] / "shared" / "real"))


@pytest.fixture(scope="session")
def real_dir() -> Path:
    if not REAL.is_dir():
        pytest.skip(f"real open-licence files not found at {REAL} (set BIOSIG_REAL_DIR); skipping conformance test")
    return REAL


@pytest.fixture(scope="session")
def tuab(tmp_path_factory):
    return write_tuab_replica(tmp_path_factory.mktemp("tuab-src"))


@pytest.fixture(scope="session")
def ptbxl(tmp_path_factory):
    return write_ptbxl_replica(tmp_path_factory.mktemp("ptbxl-src"))


@pytest.fixture(scope="session")
def tuab_store(tuab, tmp_path_factory):
    out = tmp_path_factory.mktemp("stores") / "tuab.zarr"
    report = ingest("tuh", tuab.root, out)
    return out, report


@pytest.fixture(scope="session")
def ptbxl_store(ptbxl, tmp_path_factory):
    out = tmp_path_factory.mktemp("stores") / "ptbxl.zarr"
    report = ingest("ptbxl", ptbxl.root, out)
    return out, report
