"""Summaries and validation of a store (what ``biosig inspect`` and ``biosig validate`` print)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..config import READABLE_SCHEMAS, ResolvedProfile
from ..errors import StoreError
from .encoding import storage_dtype
from .layout import ATTRS_KEY, SHARDS, array, label_array
from .reader import Store
from .writer import CLAIM

REQUIRED_ROOT = (
    "schema_version", "corpus", "modality", "fs_hz", "window_samples", "stride_samples",
    "channels", "labels", "profile", "profile_hash", "software",
)


def _recordings_flagged(recs: Any) -> dict[str, int]:
    """Ok recordings with at least one channel in each per-recording QC list column."""
    if not len(recs):
        return {}
    ok = recs[recs["status"] == "ok"]
    skip = {"source_channels", "excluded_channels", "derived_checked_channels"}
    return {
        col.removesuffix("_channels"): int(ok[col].map(lambda v: isinstance(v, list) and len(v) > 0).sum())
        for col in ok.columns
        if col.endswith("_channels") and col not in skip
    }


def summary(store: Store) -> dict[str, Any]:
    """The stable JSON summary of ``biosig inspect --json``."""
    recs = store.recordings
    meta = store.metadata
    failed = recs[recs["status"] != "ok"] if len(recs) else recs
    labels: dict[str, Any] = {}
    for spec in store.label_specs:
        name = spec["name"]
        if spec["kind"] == "categorical":
            counts = meta[name].value_counts(dropna=True)
            labels[name] = {str(k): int(v) for k, v in counts.items() if v}
        elif spec["kind"] == "multilabel":
            hot = store.label_array(name) if len(meta) else np.zeros((0, len(spec["classes"])))
            col_sums = hot.sum(axis=0) if len(hot) else np.zeros(len(spec["classes"]))
            labels[name] = {c: int(n) for c, n in zip(spec["classes"], col_sums, strict=True) if n}
        else:
            values = meta[name].to_numpy(dtype=float) if len(meta) else np.zeros(0)
            finite = values[np.isfinite(values)]
            labels[name] = {
                "count": int(finite.size),
                "missing": int(values.size - finite.size),
                "mean": float(finite.mean()) if finite.size else None,
                "min": float(finite.min()) if finite.size else None,
                "max": float(finite.max()) if finite.size else None,
            }
    qc = {c: int(meta[c].sum()) for c in meta.columns if c.startswith("qc_")}
    return {
        "path": store.url,
        "schema_version": store.attrs["schema_version"],
        "corpus": store.attrs["corpus"],
        "modality": store.attrs["modality"],
        "profile": store.attrs["profile"]["profile"]["name"],
        "profile_hash": store.attrs["profile_hash"],
        "n_windows": len(store),
        "n_shards": len(store.shard_names),
        "recordings": {
            "ok": int((recs["status"] == "ok").sum()) if len(recs) else 0,
            "failed": int(len(failed)),
            "errors": {str(k): int(v) for k, v in failed["error_type"].value_counts().items()} if len(failed) else {},
        },
        "channels": store.channels,
        "fs_hz": store.fs_hz,
        "unit": store.attrs["unit"],
        "window_samples": store.window_samples,
        "stride_samples": store.attrs["stride_samples"],
        "labels": labels,
        "splits": {str(k): int(v) for k, v in meta["split"].value_counts().items()} if len(meta) else {},
        "subjects": int(meta["subject"].nunique()) if len(meta) else 0,
        "qc_windows_flagged": qc,
        "qc_recordings_flagged": _recordings_flagged(recs),
    }


def validate(path: str | Path) -> list[str]:
    """Problems found in the store at ``path``; an empty list means valid."""
    import pandas as pd

    problems: list[str] = []
    try:
        store = Store(path)
    except Exception as exc:
        return [f"cannot open: {exc}"]
    attrs = store.attrs
    problems += [f"root attribute {k!r} missing" for k in REQUIRED_ROOT if k not in attrs]
    if problems:
        return problems
    if attrs["schema_version"] not in READABLE_SCHEMAS:
        problems.append(f"schema_version {attrs['schema_version']} is not one of {READABLE_SCHEMAS}")
    try:
        rp = ResolvedProfile.model_validate(attrs["profile"])
        if rp.digest() != attrs["profile_hash"]:
            problems.append("profile_hash does not match the stored profile")
    except Exception as exc:
        problems.append(f"stored profile does not validate: {exc}")
    n_ch, n_t = len(store.channels), store.window_samples
    try:
        store.tables  # noqa: B018 - loads every shard's recordings table
    except StoreError as exc:
        return [*problems, str(exc)]
    for name in store.shard_names:
        g = store._groups[name]
        sa = store.shard_attrs[name]
        n = int(sa["n_windows"])
        expected = {"signals": (n, n_ch, n_t), "recording": (n,), "start_s": (n,), "qc": (n, n_ch)}
        if store.encoding == "int16":
            expected.update(signals_scale=(n, n_ch), signals_offset=(n, n_ch))
        for spec in store.label_specs:
            k = len(spec["classes"])
            expected[label_array(spec["name"])] = (n, k) if spec["kind"] == "multilabel" else (n,)
        for arr_name, shape in expected.items():
            if arr_name not in g:
                problems.append(f"{name}: array {arr_name} missing")
                continue
            arr = array(g, arr_name)
            if tuple(arr.shape) != shape:
                problems.append(f"{name}/{arr_name}: shape {tuple(arr.shape)}, expected {shape}")
            dims = getattr(arr.metadata, "dimension_names", None)
            if not dims or len(dims) != len(shape):
                problems.append(f"{name}/{arr_name}: dimension_names missing")
        recs = store.tables[name]
        if sum(r.get("n_windows", 0) for r in recs) != n:
            problems.append(f"{name}: recordings table counts differ from n_windows {n}")
        if any(r["status"] != "ok" and r.get("n_windows") for r in recs):
            problems.append(f"{name}: a failed recording has windows")
        if n and "recording" in g:
            rows = np.asarray(array(g, "recording")[:])
            if rows.min() < 0 or rows.max() >= len(recs):
                problems.append(f"{name}: window recording index out of range")
            elif any(recs[i]["status"] != "ok" for i in np.unique(rows)):
                problems.append(f"{name}: windows point at a failed recording")
        if "signals" in g and np.dtype(array(g, "signals").dtype) != storage_dtype(store.encoding):
            problems.append(f"{name}/signals: dtype {array(g, 'signals').dtype}, the profile says {store.encoding}")
        elif n and "signals" in g and all(k in g for k in expected):
            first = int(store.offsets[store.shard_names.index(name)])
            try:  # decoded as a reader sees them (int16: code * scale + offset)
                sig = store.read(np.arange(first, first + min(n, 64)))
            except Exception as exc:
                problems.append(f"{name}/signals: cannot be read: {exc}")
                continue
            nan_flag = np.asarray(array(g, "qc")[: min(n, 64)]) & 4
            if not np.isfinite(sig[nan_flag == 0]).all() if nan_flag.any() else not np.isfinite(sig).all():
                problems.append(f"{name}: non-finite samples in windows not flagged NaN")
    ids = store.recordings["recording_id"] if len(store.recordings) else pd.Series([], dtype=object)
    if ids.duplicated().any():
        problems.append(f"recording ids appear in more than one shard: {sorted(set(ids[ids.duplicated()]))[:5]}")
    loc = store.location
    # on object stores a claimed, uncommitted shard (killed upload) is invisible and allowed
    pending = {n for n in loc.list_dir(SHARDS) if loc.local is None and loc.exists(SHARDS, n, CLAIM)}
    unknown = [n for n in loc.list_dir(SHARDS) if n not in store.shard_names and n != "zarr.json" and n not in pending]
    if unknown:
        problems.append(f"unexpected entries in shards/: {unknown[:5]}")
    root_json = loc.read_json("zarr.json")
    if ATTRS_KEY not in root_json.get("attributes", {}):
        problems.append("root zarr.json lacks the biosig attributes")
    return problems
