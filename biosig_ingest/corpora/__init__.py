"""Corpus adapters and their registry (built-ins plus the ``biosig_ingest.corpora`` entry points).

Built-in adapters are imported on first use, so ``biosig`` starts fast and a corpus
whose optional reader is missing does not break the others.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points

from ..errors import UsageError
from .base import CorpusAdapter

# corpus id -> "module:Class"; aliases are declared on the classes
BUILTIN: dict[str, str] = {
    "ptbxl": "biosig_ingest.corpora.ptbxl:PtbXlAdapter",
    "tuh": "biosig_ingest.corpora.tuh:TuhAdapter",
    "tuab": "biosig_ingest.corpora.tuh:TuabAdapter",
    "tueg": "biosig_ingest.corpora.tuh:TuegAdapter",
    "tuev": "biosig_ingest.corpora.tuh:TuevAdapter",
    "tusz": "biosig_ingest.corpora.tuh:TuszAdapter",
    "tuar": "biosig_ingest.corpora.tuh:TuarAdapter",
    "mimic-iv-ecg": "biosig_ingest.corpora.mimic:MimicAdapter",
    "seed": "biosig_ingest.corpora.seed:SeedAdapter",
    "seed-iv": "biosig_ingest.corpora.seed:SeedIvAdapter",
    "deap": "biosig_ingest.corpora.deap:DeapAdapter",
    "edf": "biosig_ingest.corpora.edf:EdfFolderAdapter",
}


def _load(target: str) -> type[CorpusAdapter]:
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)


def registry() -> dict[str, type[CorpusAdapter]]:
    """Corpus id (and aliases) -> adapter class, for every adapter that imports."""
    found: dict[str, type[CorpusAdapter]] = {}
    for corpus, target in BUILTIN.items():
        try:
            found[corpus] = _load(target)
        except (ImportError, AttributeError):
            continue  # not built yet or its optional reader is missing
    for ep in entry_points(group="biosig_ingest.corpora"):
        if ep.name not in found:
            found[ep.name] = ep.load()
    for cls in list(found.values()):
        for alias in cls.aliases:
            found.setdefault(alias, cls)
    return found


def get_adapter(corpus: str) -> CorpusAdapter:
    table = registry()
    if corpus not in table:
        raise UsageError(f"unknown corpus {corpus!r}; known: {', '.join(sorted(table))}")
    return table[corpus]()


__all__ = ["BUILTIN", "CorpusAdapter", "get_adapter", "registry"]
