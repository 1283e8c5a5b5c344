"""Corpus adapters and their registry (built-ins plus the ``biosig_ingest.corpora`` entry points)."""

from __future__ import annotations

from importlib.metadata import entry_points

from ..errors import UsageError
from .base import CorpusAdapter
from .ptbxl import PtbXlAdapter
from .tuh import TuhAdapter

BUILTIN: dict[str, type[CorpusAdapter]] = {cls.corpus: cls for cls in (PtbXlAdapter, TuhAdapter)}


def registry() -> dict[str, type[CorpusAdapter]]:
    """Corpus id (and aliases) -> adapter class."""
    found: dict[str, type[CorpusAdapter]] = dict(BUILTIN)
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


__all__ = ["CorpusAdapter", "PtbXlAdapter", "TuhAdapter", "get_adapter", "registry"]
