"""Corpora at fsspec URLs (``s3://``, ``gs://``, ``https://``...): a local mirror, filled lazily.

The adapters and the C readers under them (pyedflib, wfdb, h5py) read local files, so a
remote source is mirrored into a cache folder with the source's tree:

- :meth:`SourceMirror.sync` (the client, once): lists the source, downloads the small files
  that discovery reads (metadata tables, annotation files, WFDB headers: anything up to
  ``eager_bytes``, plus the adapter's ``remote_eager`` patterns), and stands in for every
  large signal file with a *placeholder*: a sparse file of the right size whose mtime is
  the epoch, so ``glob`` and ``stat`` see the tree as it is without downloading it;
- :meth:`SourceMirror.fetch` (each worker, ahead of the recordings it reads): downloads the
  files the recordings declare (``RecordingRef.all_files``) that are missing or still
  placeholders, in one concurrent batch, to temporary names renamed into place, so
  concurrent workers never see half a file;
- :meth:`SourceMirror.evict` (each worker, after its shard is committed): turns the files that
  only this shard reads back into placeholders, so a worker's disk holds about one shard of
  source at a time, not its share of the corpus. Files that several shards read (a SEED
  ``.mat`` holds 15 trials) are kept: another shard may be about to open them.

The mirror folder is ``$BIOSIG_CACHE/sources/<hash of the URL>`` (default
``~/.cache/biosig-ingest``): workers of a cluster need the same path, e.g. a shared home or
the same ``BIOSIG_CACHE``. Credentials come from the filesystem's standard configuration.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..store.location import split_url

EAGER_BYTES = 1 << 20
PLACEHOLDER_MTIME = 0  # the epoch: no real download has that mtime


def cache_root() -> Path:
    return Path(os.environ.get("BIOSIG_CACHE") or Path.home() / ".cache" / "biosig-ingest")


def is_placeholder(path: Path) -> bool:
    try:
        return path.stat().st_mtime == PLACEHOLDER_MTIME
    except FileNotFoundError:
        return False


@dataclass(frozen=True)
class SourceMirror:
    """A remote corpus ``url`` and its local mirror ``root``."""

    url: str
    root: Path
    shared: frozenset[str] = field(default=frozenset())  # files read by more than one shard: never evicted

    @classmethod
    def for_url(cls, url: str, cache: Path | None = None) -> SourceMirror:
        digest = hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
        name = PurePosixPath(split_url(url)[1].rstrip("/")).name or "source"
        return cls(url.rstrip("/"), (cache or cache_root()) / "sources" / f"{name}-{digest}")

    @property
    def fs(self) -> Any:
        import fsspec

        protocol = split_url(self.url)[0]
        return fsspec.filesystem(protocol)

    @property
    def remote_root(self) -> str:
        return split_url(self.url)[1]

    def sync(self, eager: Sequence[str] = (), eager_bytes: int = EAGER_BYTES) -> int:
        """Mirror the tree: small files and ``eager`` glob patterns downloaded, others as
        placeholders. Returns the number of files listed."""
        fs = self.fs
        listing: dict[str, dict[str, Any]] = fs.find(self.remote_root, detail=True)
        base = self.remote_root.rstrip("/") + "/"
        wanted = []
        for key, info in listing.items():
            if info.get("type") == "directory" or not key.startswith(base):
                continue
            rel = key[len(base) :]
            local = self.root / rel
            size = int(info.get("size") or 0)
            name = PurePosixPath(rel).name
            if size <= eager_bytes or any(fnmatch.fnmatch(name, pat) for pat in eager):
                if not (local.is_file() and local.stat().st_size == size and not is_placeholder(local)):
                    wanted.append(rel)
            elif not local.exists() or (is_placeholder(local) and local.stat().st_size != size):
                local.parent.mkdir(parents=True, exist_ok=True)
                with open(local, "wb") as f:
                    f.truncate(size)  # sparse: no disk used until fetched
                os.utime(local, (PLACEHOLDER_MTIME, PLACEHOLDER_MTIME))
        self._download(wanted)
        return len(listing)

    def fetch(self, paths: Iterable[Path]) -> None:
        """Real content for ``paths`` (inside the mirror) that are missing or placeholders."""
        wanted = []
        for p in paths:
            p = Path(p)
            try:
                rel = p.relative_to(self.root).as_posix()
            except ValueError:
                continue  # not a mirrored file
            if not p.is_file() or is_placeholder(p):
                wanted.append(rel)
        self._download(wanted)

    def evict(self, paths: Iterable[Path]) -> None:
        """Placeholders again for fetched ``paths`` that no other shard reads.

        The placeholder replaces the file by a rename: a reader that has it open keeps reading
        the downloaded data (POSIX keeps the old inode alive)."""
        for p in paths:
            p = Path(p)
            try:
                rel = p.relative_to(self.root).as_posix()
                st = p.stat()
            except (ValueError, FileNotFoundError):
                continue
            if rel in self.shared or st.st_mtime == PLACEHOLDER_MTIME:
                continue
            tmp = p.with_name(f"{p.name}.evict-{os.getpid()}-{uuid.uuid4().hex[:8]}")
            with open(tmp, "wb") as f:
                f.truncate(st.st_size)
            os.utime(tmp, (PLACEHOLDER_MTIME, PLACEHOLDER_MTIME))
            os.replace(tmp, p)

    def _download(self, rels: list[str]) -> None:
        if not rels:
            return
        tag = f".part-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        parts = [self.root / (rel + tag) for rel in rels]
        for p in parts:
            p.parent.mkdir(parents=True, exist_ok=True)
        base = self.remote_root.rstrip("/")
        self.fs.get([f"{base}/{rel}" for rel in rels], [str(p) for p in parts])  # concurrent on async filesystems
        for rel, part in zip(rels, parts, strict=True):
            os.replace(part, self.root / rel)  # whole files only, whoever else is fetching
