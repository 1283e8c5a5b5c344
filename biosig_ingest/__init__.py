"""biosig-ingest: public EEG and ECG corpora as harmonized, chunked Zarr stores."""

from __future__ import annotations

import os

# numba's OpenMP workers otherwise spin for a while after every parallel kernel,
# starving the Zarr writer and hashing threads on small machines (measured: ingest
# 10% faster on 2 cores). Only a default: an explicit setting wins, and it has no
# effect if another library already started an OpenMP runtime in this process.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .ingest import IngestReport, ingest  # noqa: E402
from .store.reader import Store, WindowItem, open_store  # noqa: E402

__version__ = "0.1.0"
__all__ = ["IngestReport", "Store", "WindowItem", "__version__", "ingest", "open_store"]
