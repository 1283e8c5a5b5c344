"""Ingest a corpus into a store: plan shards, run one task per shard, report.

``ingest_shard`` is the unit of work: a pure function of (task, profile, store)
that a Dask worker or a plain loop can run; committed shards are skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import platform
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import lru_cache, partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from . import _failpoints as failpoints
from .config import SCHEMA_VERSION, Profile, ResolvedProfile, resolve_profile
from .corpora import CorpusAdapter, get_adapter
from .dsp.channels import channel_table
from .dsp.ecg import derived_lead_columns
from .dsp.pipeline import window_recording
from .dsp.quality import FLAG_NAMES
from .errors import RecordingError, StoreError
from .io.remote import SourceMirror
from .manifest import load_profile
from .parallel import cleanup_staging, run_shards
from .recording import RecordingRef
from .store.layout import remote_staging_root, staging_root
from .store.location import StoreLocation, is_remote
from .store.writer import ShardWriter, committed_shards, open_for_writing, shard_recordings

MAX_ANNOTATIONS = 10_000  # per recording, in the recordings table
SOFTWARE = ("biosig-ingest", "numpy", "scipy", "numba", "zarr", "pyedflib", "wfdb", "mne", "h5py", "pydantic")


@dataclass(frozen=True)
class ShardTask:
    index: int
    refs: tuple[RecordingRef, ...]

    @property
    def digest(self) -> str:
        """Identifies the recording list, so a re-run can tell its own shard from another's."""
        body = "\n".join(f"{r.recording_id}\t{r.relpath}" for r in self.refs)
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass
class IngestReport:
    store: str  # folder or URL
    corpus: str
    profile: str
    profile_hash: str
    shards_written: int = 0
    shards_skipped: int = 0
    recordings_ok: int = 0
    recordings_failed: int = 0
    windows_written: int = 0
    recording_seconds: float = 0.0
    wall_s: float = 0.0
    errors: Counter = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)  # recording_id, message

    @property
    def realtime_factor(self) -> float:
        return self.recording_seconds / self.wall_s if self.wall_s else 0.0


RecordingCallback = Callable[[dict[str, Any]], None]


def plan_shards(refs: Sequence[RecordingRef], per_shard: int) -> list[ShardTask]:
    """Consecutive groups of the sorted recordings: the same list always gives the same shards."""
    ordered = sorted(refs, key=lambda r: r.recording_id)
    return [ShardTask(k, tuple(ordered[i : i + per_shard])) for k, i in enumerate(range(0, len(ordered), per_shard))]


def _sha256_and_size(paths: Sequence[Path]) -> tuple[str | None, int | None]:
    """Memoized on (path, mtime, size): the trials of one SEED/DEAP file are separate recordings."""
    try:
        stamps = tuple((st.st_mtime_ns, st.st_size) for st in (Path(p).stat() for p in paths))
    except OSError:
        return None, None
    return _sha256_and_size_of(tuple(Path(p) for p in paths), stamps)


@lru_cache(maxsize=8)
def _sha256_and_size_of(paths: tuple[Path, ...], stamps: tuple[tuple[int, int], ...]) -> tuple[str | None, int | None]:
    digest, size = hashlib.sha256(), 0
    try:
        for p in paths:
            with open(p, "rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
                    size += len(block)
    except OSError:
        return None, None
    return digest.hexdigest(), size


def ingest_shard(
    task: ShardTask,
    adapter: CorpusAdapter,
    rp: ResolvedProfile,
    store: StoreLocation | str | Path,
    on_recording: RecordingCallback | None = None,
    mirror: SourceMirror | None = None,
) -> list[dict[str, Any]]:
    """Ingest the recordings of one shard and commit it; returns its recordings table.

    Idempotent: a shard already committed from the same recording list is returned as is.
    ``mirror``: the source is remote; each recording's files are fetched before it is read
    (the next recording's while this one is processed).
    """
    name = f"s{task.index:05d}"
    existing = committed_shards(store, [name])  # this shard only: one request, not a listing
    if name in existing and existing[name].get("plan_digest") == task.digest:
        adopted = shard_recordings(store, existing)[name]
        if on_recording is not None:
            for done_row in adopted:
                on_recording(done_row)
        return adopted
    labels = list(adapter.manifest.labels)
    writer = ShardWriter(store, task.index, rp, labels, task.digest)
    hasher = ThreadPoolExecutor(max_workers=1)  # hashing overlaps with signal processing
    fetcher = _Prefetch(mirror, task.refs) if mirror is not None else None
    try:
        for i, ref in enumerate(task.refs):
            if fetcher is not None:
                fetcher.wait_for(i)  # a failed download fails the shard: Dask retries it
            hashed: Future = hasher.submit(_sha256_and_size, ref.all_files)
            row: dict[str, Any] = {
                **ref.columns,  # adapter metadata first: the core's columns win a name clash
                "recording_id": ref.recording_id,
                "subject": ref.subject,
                "session": ref.session,
                "split": ref.split,
                "relpath": ref.relpath,
                "status": "ok",
                "error_type": None,
                "error": None,
            }
            writer.begin_recording()
            rec = None
            try:
                rec = adapter.open(ref, rp)
                row.update(
                    duration_s=rec.duration_s,
                    native_fs_hz=sorted({rec.source.channels[m.index].fs_hz for m in rec.selected}),
                    source_channels=[m.label for m in rec.selected],
                    excluded_channels=rec.excluded,
                )
                if rp.modality == "ecg":  # limb-lead identities on the file's own samples (dsp/ecg.py)
                    row.update(derived_lead_columns(rec, adapter.manifest))
                totals: dict[str, np.ndarray] = {}
                flags = np.zeros(len(rp.channels), np.uint8)
                for batch in window_recording(rec, rp, totals=totals):
                    per_window = adapter.window_labels(rec, batch.start_s, batch.index, rp)
                    writer.add_windows(batch.signals, batch.start_s, batch.qc, {**ref.labels, **per_window})
                    flags |= np.bitwise_or.reduce(batch.qc, axis=0)
                row.update(_qc_summary(rp.channels, flags, totals))
                row["missing_channels"] = [rp.channels[i] for i in rec.missing]
                row["annotations"] = [
                    [a.start_s, round(a.stop_s - a.start_s, 6), a.label, a.channel] for a in rec.annotations[:MAX_ANNOTATIONS]
                ]
                if len(rec.annotations) > MAX_ANNOTATIONS:
                    rec.warnings.append(f"{len(rec.annotations)} annotations, only the first {MAX_ANNOTATIONS} kept in the table")
            except RecordingError as exc:
                row.update(status="failed", error_type=exc.error_type, error=exc.one_line())
            except Exception as exc:  # a malformed file can break a third-party reader anywhere
                row.update(status="failed", error_type=type(exc).__name__, error=" ".join(str(exc).split())[:300])
            finally:
                if rec is not None:
                    rec.source.close()
                    row["warnings"] = list(rec.warnings)
            row["sha256"], row["size_bytes"] = hashed.result()
            writer.end_recording(row)
            failpoints.hit("after-recording")
            if on_recording is not None:
                on_recording(row)
        writer.commit()
        if fetcher is not None:
            fetcher.evict()
    except BaseException:
        writer.abort()
        raise
    finally:
        hasher.shutdown()
        if fetcher is not None:
            fetcher.close()
    return writer.recordings


class _Prefetch:
    """A remote source's files fetched ahead of the recordings, in batches of up to
    FETCH_RECORDINGS recordings or FETCH_BYTES (one concurrent request batch each: per-request
    latency, not bandwidth, bounds small files such as MIMIC's; docs/scale-out.md)."""

    FETCH_RECORDINGS = 32
    FETCH_BYTES = 256 << 20

    def __init__(self, mirror: SourceMirror, refs: Sequence[RecordingRef]):
        self.mirror = mirror
        self.files = [tuple(Path(p) for p in r.all_files) for r in refs]
        self.batches: list[range] = []
        start, size = 0, 0
        for i, files in enumerate(self.files):
            size += sum(_size(p) for p in files)
            if i + 1 - start >= self.FETCH_RECORDINGS or size >= self.FETCH_BYTES or i + 1 == len(self.files):
                self.batches.append(range(start, i + 1))
                start, size = i + 1, 0
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.pending: dict[int, Future] = {}
        self._submit(0)

    def _submit(self, b: int) -> None:
        if b < len(self.batches):
            paths = [p for i in self.batches[b] for p in self.files[i]]
            self.pending[b] = self.pool.submit(self.mirror.fetch, paths)

    def wait_for(self, i: int) -> None:
        b = next(k for k, r in enumerate(self.batches) if i in r)
        if b in self.pending:
            self.pending.pop(b).result()
            self._submit(b + 1)  # the next batch downloads while this one is processed

    def evict(self) -> None:
        self.mirror.evict(p for files in self.files for p in files)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _shared_files(root: Path, tasks: Sequence[ShardTask]) -> frozenset[str]:
    """Source files (relative to ``root``) that recordings of more than one shard read."""
    owner: dict[Path, int] = {}
    shared = set()
    for task in tasks:
        for ref in task.refs:
            for p in ref.all_files:
                if owner.setdefault(Path(p), task.index) != task.index:
                    shared.add(Path(p))
    return frozenset(p.relative_to(root).as_posix() for p in shared if p.is_relative_to(root))


def _qc_summary(channels: list[str], flags: np.ndarray, totals: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per-recording QC columns: which channels were ever flagged, raw-sample counts."""
    out: dict[str, Any] = {
        f"{name}_channels": [c for c, f in zip(channels, flags, strict=True) if f & bit]
        for bit, name in FLAG_NAMES.items()
    }
    for key in ("nan", "clipped"):
        out[f"{key}_samples"] = int(np.sum(totals.get(key, 0)))
    return out


@lru_cache(maxsize=1)
def software_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in SOFTWARE:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


def root_attributes(adapter: CorpusAdapter, rp: ResolvedProfile) -> dict[str, Any]:
    m = adapter.manifest
    return {
        "schema_version": SCHEMA_VERSION,
        "corpus": m.corpus,
        "modality": m.modality,
        "unit": rp.unit,
        "fs_hz": rp.profile.target_fs_hz,
        "window_samples": rp.window_samples,
        "stride_samples": rp.stride_samples,
        "window_mode": rp.profile.window.mode,
        "channels": channel_table(rp.channels, m.modality, rp.unit, m, rp.derivations),
        "labels": [spec.model_dump(mode="json") for spec in m.labels],
        "splits": m.splits.model_dump(mode="json"),
        "profile": rp.model_dump(mode="json"),
        "profile_hash": rp.digest(),
        "manifest": {k: getattr(m, k) for k in ("name", "version", "homepage", "licence", "citation", "mains_hz")},
        "software": software_versions(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def ingest(
    corpus: str,
    source: str | Path,
    out: str | Path,
    profile: str | Path | Profile = "default",
    *,
    limit: int | None = None,
    overwrite: bool = False,
    subset: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
    on_plan: Callable[[int, int], None] | None = None,
    on_recording: RecordingCallback | None = None,
) -> IngestReport:
    """Ingest ``corpus`` from ``source`` into the store at ``out``; see ``biosig ingest --help``.

    ``workers`` > 1 runs shards on a local Dask cluster of that many processes;
    ``scheduler`` (an address) or ``client`` (a ``distributed.Client``) uses an existing one.
    The store is the same whichever runs it.
    """
    t0 = time.perf_counter()
    base = get_adapter(corpus)
    mirror = None
    if is_remote(source):  # mirrored lazily: listing and small files now, signals per shard
        mirror = SourceMirror.for_url(str(source))
        mirror.sync(eager=base.remote_eager)
        source = mirror.root
    source = Path(str(source).removeprefix("file://"))
    adapter = base.for_source(source, subset)
    prof = profile if isinstance(profile, Profile) else load_profile(adapter.manifest, profile)
    rp = resolve_profile(adapter.manifest, prof)
    refs = adapter.discover(source, rp)
    if limit is not None:
        refs = refs[:limit]
    store = StoreLocation(out)
    attrs = root_attributes(adapter, rp)
    open_for_writing(store, rp, attrs, overwrite)
    # leftovers of killed runs on this machine
    cleanup_staging(staging_root(store.local) if store.local is not None else remote_staging_root())
    report = IngestReport(store=store.url, corpus=adapter.corpus, profile=prof.name, profile_hash=attrs["profile_hash"])
    tasks = plan_shards(refs, prof.recordings_per_shard)
    if mirror is not None:
        mirror = replace(mirror, shared=_shared_files(mirror.root, tasks))
    done = committed_shards(store)
    todo = []
    for task in tasks:
        name = f"s{task.index:05d}"
        if name in done:
            if done[name].get("plan_digest") != task.digest:
                raise StoreError(
                    f"shard {name} in {store.url} holds another recording list (a different --limit or source?); "
                    "use --overwrite to rebuild"
                )
            report.shards_skipped += 1
        else:
            todo.append(task)
    if on_plan is not None:
        on_plan(sum(len(t.refs) for t in todo), len(todo))

    def tally(row: dict[str, Any]) -> None:
        if row["status"] == "ok":
            report.recordings_ok += 1
            report.windows_written += row["n_windows"]
            report.recording_seconds += row.get("duration_s") or 0.0
        else:
            report.recordings_failed += 1
            report.errors[row["error_type"]] += 1
            report.failures.append({k: row[k] for k in ("recording_id", "relpath", "error_type", "error")})
        for message in row.get("warnings") or ():
            report.warnings.append({"recording_id": row["recording_id"], "warning": message})
        if on_recording is not None:
            on_recording(row)

    def tally_shard(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            tally(row)

    run_shards(
        todo,
        partial(ingest_shard, mirror=mirror) if mirror is not None else ingest_shard,
        (adapter, rp, store),
        on_rows=tally_shard,
        on_recording=tally,
        workers=workers,
        scheduler=scheduler,
        client=client,
    )
    report.shards_written = len(todo)
    with contextlib.suppress(OSError):
        if store.local is not None:
            staging_root(store.local).rmdir()  # only if empty: a crashed run's leftovers stay for inspection
    report.wall_s = time.perf_counter() - t0
    return report
