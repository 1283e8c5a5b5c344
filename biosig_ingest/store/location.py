"""Where a store lives: a local folder, or any fsspec URL (``s3://``, ``gs://``, ``memory://``).

A local store commits a shard by renaming its staging folder into place (atomic on POSIX).
Object stores have no rename, so a remote shard is assembled in a local temporary folder and
committed by a record (docs/scale-out.md):

1. *claim*: ``shards/sNNNNN/claim.json`` holding the shard's recording-list digest, created
   only if absent (a conditional PUT where the filesystem has one). A claim with another
   digest means another recording list owns the shard: the writer stops before uploading.
2. upload every array object of the shard under ``shards/sNNNNN/``;
3. *commit record*: the shard group's ``zarr.json`` (with the recordings table), uploaded
   last and only if absent. Readers list a shard only once this object exists, so a
   killed upload leaves nothing visible; a re-run of the same command re-uploads the same
   bytes (the writer is deterministic) and commits.

Credentials come from each filesystem's standard environment and config files (for S3:
``AWS_*`` variables, ``~/.aws``, instance roles); nothing is read from the command line or
written into the store.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

LOCAL_PROTOCOLS = ("file", "local")


def split_url(target: str | Path) -> tuple[str | None, str]:
    """(protocol, path) of ``target``; protocol None for a plain or ``file://`` local path."""
    text = str(target)
    if "://" not in text:
        return None, text
    protocol, rest = text.split("://", 1)
    if protocol in LOCAL_PROTOCOLS:
        return None, rest
    return protocol, rest


def is_remote(target: str | Path) -> bool:
    return split_url(target)[0] is not None


class StoreLocation:
    """A store's address. ``local`` is its folder, or None for a remote URL."""

    def __init__(self, target: str | Path):
        protocol, path = split_url(target)
        self.protocol = protocol
        if protocol is None:
            self.local: Path | None = Path(path)
            self.path = str(self.local)
            self.url = str(self.local)
        else:
            self.local = None
            self.path = path.rstrip("/")
            self.url = f"{protocol}://{self.path}"

    def __repr__(self) -> str:
        return f"StoreLocation({self.url!r})"

    def __reduce__(self) -> tuple[Any, ...]:  # to Dask workers: the address, never a live filesystem
        return (StoreLocation, (self.url,))

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @cached_property
    def fs(self) -> Any:
        """The fsspec filesystem (remote only); credentials from its standard configuration."""
        import fsspec

        if self.protocol is None:
            return fsspec.filesystem("file")
        return fsspec.filesystem(self.protocol)

    def key(self, *parts: str) -> str:
        """The filesystem path of ``parts`` under the store."""
        return "/".join([self.path, *parts])

    def child_url(self, *parts: str) -> str:
        return "/".join([self.url, *parts])

    # -- small objects ----------------------------------------------------------------
    def exists(self, *parts: str) -> bool:
        if self.local is not None:
            return self.local.joinpath(*parts).exists()
        return bool(self.fs.exists(self.key(*parts)))

    def read_json(self, *parts: str) -> Any:
        if self.local is not None:
            return json.loads(self.local.joinpath(*parts).read_text())
        return json.loads(self.fs.cat_file(self.key(*parts)))

    def read_many(self, keys: list[str]) -> dict[str, bytes]:
        """Many small objects in one batch (concurrent requests on object stores); absent ones left out."""
        if not keys:
            return {}
        if self.local is not None:
            out = {}
            for k in keys:
                try:
                    out[k] = Path(self.local, k).read_bytes()
                except FileNotFoundError:
                    continue
            return out
        got = self.fs.cat([self.key(k) for k in keys], on_error="omit")
        return {k: got[self.key(k)] for k in keys if self.key(k) in got}

    def read_jsons(self, keys: list[str]) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.read_many(keys).items()}

    def list_dir(self, *parts: str) -> list[str]:
        """Names directly under ``parts`` (empty if absent)."""
        if self.local is not None:
            folder = self.local.joinpath(*parts)
            return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        try:
            entries = self.fs.ls(self.key(*parts), detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(PurePosixPath(str(e).rstrip("/")).name for e in entries)

    def is_empty(self) -> bool:
        if self.local is not None:
            return not self.local.exists() or (self.local.is_dir() and not any(self.local.iterdir()))
        return not self.fs.exists(self.path) or not self.fs.ls(self.path, detail=False, refresh=True)

    def remove(self) -> None:
        if self.local is not None:
            import shutil

            shutil.rmtree(self.local)
        else:
            self.fs.rm(self.path, recursive=True)

    def create_exclusive(self, data: bytes, *parts: str) -> bool:
        """Write an object only if absent; False if it exists. A conditional PUT where the
        filesystem has one (S3 ``If-None-Match``); otherwise check-then-write."""
        key = self.key(*parts)
        try:
            self.fs.pipe_file(key, data, mode="create")
            return True
        except FileExistsError:
            return False
        except (TypeError, NotImplementedError, ValueError):  # no conditional writes here
            if self.fs.exists(key):
                return False
            self.fs.pipe_file(key, data)
            return True

    # -- Zarr ---------------------------------------------------------------------------
    def zarr_store(self, *parts: str, read_only: bool = True) -> Any:
        """A Zarr store object rooted at ``parts`` under the store."""
        from zarr.storage import FsspecStore, LocalStore

        if self.local is not None:
            return LocalStore(str(self.local.joinpath(*parts)), read_only=read_only)
        return FsspecStore.from_url(self.child_url(*parts), read_only=read_only)
