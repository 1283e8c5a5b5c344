"""Window labels from annotated intervals, by overlap.

Adapters turn annotation files into intervals; this module decides which windows
they label, with one rule for every corpus: an interval labels a window when they
overlap by at least ``min_overlap_s`` seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def overlap_s(starts_s: np.ndarray, duration_s: float, iv_start: np.ndarray, iv_stop: np.ndarray) -> np.ndarray:
    """Seconds of overlap, (windows, intervals)."""
    w0 = np.asarray(starts_s, float)[:, None]
    lo = np.maximum(w0, np.asarray(iv_start, float)[None, :])
    hi = np.minimum(w0 + duration_s, np.asarray(iv_stop, float)[None, :])
    return np.clip(hi - lo, 0.0, None)


def categorical_by_overlap(
    starts_s: np.ndarray,
    duration_s: float,
    intervals: Sequence[tuple[float, float, str]],
    classes: list[str],
    min_overlap_s: float,
    default: str | None = None,
    prefer: Sequence[str] = (),
) -> np.ndarray:
    """Class code per window: the label with the most overlap (at least ``min_overlap_s``).

    Labels in ``prefer`` win over others whenever they qualify (a short seizure inside
    a long background interval still makes the window a seizure window). Windows no
    interval qualifies for get ``default`` (or -1, missing).
    """
    n = len(starts_s)
    fallback = classes.index(default) if default is not None else -1
    out = np.full(n, fallback, np.int16)
    if not intervals or n == 0:
        return out
    labels = [label for _, _, label in intervals]
    ov = overlap_s(starts_s, duration_s, np.array([iv[0] for iv in intervals]), np.array([iv[1] for iv in intervals]))
    per_label = {
        lab: ov[:, [i for i, x in enumerate(labels) if x == lab]].sum(axis=1)
        for lab in sorted(set(labels) & set(classes), key=classes.index)
    }
    # two passes: any qualifying preferred label overrides the others
    for tier in ([lab for lab in per_label if lab not in prefer], [lab for lab in per_label if lab in prefer]):
        best = np.zeros(n)
        for lab in tier:
            take = (per_label[lab] >= max(min_overlap_s, 1e-9)) & (per_label[lab] > best)
            out[take] = classes.index(lab)
            best[take] = per_label[lab][take]
    return out


def multilabel_by_overlap(
    starts_s: np.ndarray,
    duration_s: float,
    intervals: Sequence[tuple[float, float, str]],
    classes: list[str],
    min_overlap_s: float,
) -> np.ndarray:
    """Multi-hot (windows, classes): every class with an interval overlapping enough."""
    hot = np.zeros((len(starts_s), len(classes)), np.uint8)
    if not intervals or len(starts_s) == 0:
        return hot
    ov = overlap_s(starts_s, duration_s, np.array([iv[0] for iv in intervals]), np.array([iv[1] for iv in intervals]))
    for k, (_, _, label) in enumerate(intervals):
        if label in classes:
            hot[ov[:, k] >= max(min_overlap_s, 1e-9), classes.index(label)] = 1
    return hot
