"""biosig-ingest: public EEG and ECG corpora as harmonized, chunked Zarr stores."""

from __future__ import annotations

from .ingest import IngestReport, ingest
from .store.reader import Store, WindowItem, open_store

__version__ = "0.1.0"
__all__ = ["IngestReport", "Store", "WindowItem", "__version__", "ingest", "open_store"]
