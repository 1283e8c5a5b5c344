"""Several stores in one loader: a common channel layout (union with a mask, or intersection),
compatible rates and window lengths, common label columns, and weighted interleaving.

Needs no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..store.reader import Store

ChannelMode = Literal["union", "intersection"]


def _key(name: str) -> str:
    return name.strip().casefold()


@dataclass(frozen=True)
class ChannelLayout:
    """The channels of a loader's output, in order, with their 3-D positions (NaN: unknown)."""

    names: tuple[str, ...]
    positions: np.ndarray  # (channels, 3) float32, metres, MNE standard_1005 head frame
    units: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.names)

    def channel_map(self, store: Store) -> np.ndarray:
        """For each store channel, its output position, or -1 where the layout drops it."""
        where = {_key(n): i for i, n in enumerate(self.names)}
        return np.array([where.get(_key(n), -1) for n in store.channels], np.int64)

    def present(self, store: Store) -> np.ndarray:
        """(channels,) bool: output channels the store provides."""
        mask = np.zeros(len(self.names), bool)
        cmap = self.channel_map(store)
        mask[cmap[cmap >= 0]] = True
        return mask


def check_compatible(stores: Sequence[Store]) -> None:
    """Stores mixed in one batch must share the sampling rate and the window length."""
    rates = sorted({s.fs_hz for s in stores})
    if len(rates) > 1:
        detail = ", ".join(f"{s.path.name}: {s.fs_hz:g} Hz" for s in stores)
        raise ValueError(
            f"stores have different sampling rates ({detail}); windows of different rates are not "
            "mixed: ingest them with a profile that sets the same target_fs_hz"
        )
    lengths = sorted({s.window_samples for s in stores})
    if len(lengths) > 1:
        detail = ", ".join(f"{s.path.name}: {s.window_samples}" for s in stores)
        raise ValueError(f"stores have different window lengths in samples ({detail}); use the same window duration_s")


def resolve_layout(stores: Sequence[Store], channels: ChannelMode | Sequence[str] | None = None) -> ChannelLayout:
    """The output channel layout of ``stores``.

    ``None`` or ``"union"``: every channel of any store, in order of first appearance (the
    first store's order, then each new channel of the next store in its order); ``"intersection"``:
    the channels every store has, in the first store's order; a list of names: exactly those.
    Names match case-insensitively (``FP1`` is ``Fp1``); the first spelling met is kept.
    """
    names: dict[str, str] = {}
    rows: dict[str, dict[str, Any]] = {}
    for store in stores:
        for row in store.attrs["channels"]:
            key = _key(row["name"])
            names.setdefault(key, row["name"])
            prev = rows.get(key)
            if prev is None or (prev.get("position_m") is None and row.get("position_m") is not None):
                unit_before = prev.get("unit") if prev else None
                rows[key] = {**row, "unit": unit_before or row.get("unit")}
            if prev is not None and prev.get("unit") and row.get("unit") and prev["unit"] != row["unit"]:
                raise ValueError(f"channel {row['name']} is in {prev['unit']} in one store and {row['unit']} in another")
    if channels is None or channels == "union":
        order = list(names)
    elif channels == "intersection":
        common = set.intersection(*({_key(n) for n in s.channels} for s in stores)) if stores else set()
        order = [_key(n) for n in stores[0].channels if _key(n) in common] if stores else []
        if not order:
            raise ValueError("the stores have no channel in common")
    elif isinstance(channels, str):
        raise ValueError(f"channels must be 'union', 'intersection' or a list of names, not {channels!r}")
    else:
        order = [_key(n) for n in channels]
        if len(set(order)) != len(order):
            raise ValueError("the channel list names a channel twice")
        unknown = [n for n, k in zip(channels, order, strict=True) if k not in names]
        if unknown:
            raise ValueError(f"no store has the channels {unknown}")
        names.update({_key(n): n for n in channels})
    positions = np.full((len(order), 3), np.nan, np.float32)
    for i, key in enumerate(order):
        pos = rows[key].get("position_m")
        if pos is not None:
            positions[i] = pos
    units = tuple(str(rows[k].get("unit") or "") for k in order)
    return ChannelLayout(tuple(names[k] for k in order), positions, units)


def resolve_labels(stores: Sequence[Store], labels: Sequence[str] | None) -> list[dict[str, Any]]:
    """Label specs served by a loader: the given names, or (``None``) every label of any store.

    A label present in several stores must have the same kind and classes in each.
    """
    specs: dict[str, dict[str, Any]] = {}
    for store in stores:
        for spec in store.label_specs:
            prev = specs.get(spec["name"])
            if prev is None:
                specs[spec["name"]] = spec
                continue
            differs = (prev["kind"], list(prev.get("classes") or [])) != (spec["kind"], list(spec.get("classes") or []))
            if differs and (labels is None or spec["name"] in labels):
                raise ValueError(
                    f"label {spec['name']!r} differs between stores ({prev['kind']} {prev.get('classes')} vs "
                    f"{spec['kind']} {spec.get('classes')}); pass labels=[...] without it"
                )
    if labels is None:
        return list(specs.values())
    missing = [name for name in labels if name not in specs]
    if missing:
        raise ValueError(f"no store has the labels {missing}")
    return [specs[name] for name in labels]


def draw_sources(
    rng: np.random.Generator,
    weights: np.ndarray,
    remaining: np.ndarray,
    n: int,
    stop: Literal["all", "first"],
) -> np.ndarray:
    """Which source each of the next (up to) ``n`` windows comes from.

    Each window picks a source with probability proportional to its weight among sources with
    windows left (``stop="all"``), or the draw ends as soon as a source with weight runs out
    (``stop="first"``). ``remaining`` is decremented in place.
    """
    out = np.empty(n, np.int64)
    if len(weights) == 1:
        k = int(min(n, remaining[0]))
        out[:k] = 0
        remaining[0] -= k
        return out[:k]
    for i in range(n):
        active = remaining > 0
        if stop == "first" and not np.all(active | (weights <= 0)):
            return out[:i]
        w = np.where(active, weights, 0.0)
        total = w.sum()
        if total <= 0:
            return out[:i]
        s = int(np.searchsorted(np.cumsum(w), rng.random() * total, side="right"))
        s = min(s, len(w) - 1)
        out[i] = s
        remaining[s] -= 1
    return out
