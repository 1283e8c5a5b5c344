"""Differential entropy and band power features (numba kernels) and feature sets in a store."""

from __future__ import annotations

from .de import (
    DEFAULT_BANDS,
    ESTIMATORS,
    MEASURES,
    BandPower,
    FeatureSpec,
    FeatureSpecError,
    band_power,
    compute,
    differential_entropy,
    lds_smooth,
    moving_average,
    parse_bands,
)
from .store import (
    FeatureSetError,
    FeaturesReport,
    compute_features,
    compute_shard,
    feature_sets,
    read_features,
)

__all__ = [
    "DEFAULT_BANDS",
    "ESTIMATORS",
    "MEASURES",
    "BandPower",
    "FeatureSpec",
    "FeatureSetError",
    "FeatureSpecError",
    "FeaturesReport",
    "band_power",
    "compute",
    "compute_features",
    "compute_shard",
    "differential_entropy",
    "feature_sets",
    "lds_smooth",
    "moving_average",
    "parse_bands",
    "read_features",
]
