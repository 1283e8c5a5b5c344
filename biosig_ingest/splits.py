"""Deterministic subject-wise splits for corpora without official ones.

A subject's split depends only on (seed, subject id): sha256 maps it to a number in
[0, 1) that falls into the cumulative fractions. The same subject lands in the same
split on every run and machine, whatever else is in the corpus.
"""

from __future__ import annotations

import hashlib

from .config import SplitSpec


def subject_fraction(subject: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def subject_split(subject: str, spec: SplitSpec) -> str:
    """The split of ``subject`` under ``spec.fractions`` (ordered as written)."""
    if not spec.fractions:
        raise ValueError("subject_split needs a SplitSpec with fractions")
    x = subject_fraction(subject, spec.seed)
    edge = 0.0
    for name, share in spec.fractions.items():
        edge += share
        if x < edge:
            return name
    return list(spec.fractions)[-1]
