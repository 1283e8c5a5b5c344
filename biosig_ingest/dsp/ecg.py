"""The derived-lead check: on a 12-lead file, III and the augmented leads must follow from I and II.

Einthoven and Goldberger: III = II - I, aVR = -(I + II)/2, aVL = I - II/2, aVF = II - I/2. A
file that breaks them has mislabelled, swapped or corrupted limb leads; the count goes in QC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import Manifest
from ..recording import Recording
from .channels import match_channels

LIMB_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF")

# Each identity as coefficients over LIMB_LEADS; the residual sum(c * lead) is 0 for a clean file.
IDENTITIES: dict[str, tuple[float, ...]] = {
    "III": (1.0, -1.0, 1.0, 0.0, 0.0, 0.0),  # III - (II - I)
    "aVR": (0.5, 0.5, 0.0, 1.0, 0.0, 0.0),  # aVR + (I + II)/2
    "aVL": (-1.0, 0.5, 0.0, 0.0, 1.0, 0.0),  # aVL - (I - II/2)
    "aVF": (0.5, -1.0, 0.0, 0.0, 0.0, 1.0),  # aVF - (II - I/2)
}


@dataclass(frozen=True)
class DerivedLeadCheck:
    """Which derived leads could be tested, which break their identity, and by how much."""

    checked: tuple[str, ...]  # derived leads with at least one testable sample
    mismatched: tuple[str, ...]  # derived leads whose residual exceeds the tolerance somewhere
    max_residual: float | None  # largest |residual| over the testable samples, in the signal unit
    mismatch_samples: int  # samples where at least one identity fails
    tolerance: Mapping[str, float]  # per derived lead, in the signal unit

    def columns(self) -> dict[str, Any]:
        """The recording-row columns (recordings table of the store)."""
        return {
            "derived_checked_channels": list(self.checked),
            "derived_mismatch_channels": list(self.mismatched),
            "derived_max_residual": self.max_residual,
            "derived_mismatch_samples": self.mismatch_samples,
        }


def adc_step(x: np.ndarray) -> float | None:
    """The quantization step of one lead: the smallest non-zero change between two samples.

    For integer-coded WFDB leads this is 1/gain (0.005 mV at MIMIC's gain 200, 0.001 mV at
    PTB-XL's 1000): a sampled ECG moves by a single ADC code somewhere in 10 s (baseline, T
    wave). None for a constant lead. Linear in the samples, no sort: it runs on every record.
    """
    step = np.abs(np.diff(x[np.isfinite(x)]))
    step = step[step > 0]
    return float(step.min()) if step.size else None


def tolerances(steps: Mapping[str, float]) -> dict[str, float]:
    """Largest residual quantization alone can cause: one ADC step per lead in the identity.

    Rounding gives at most half a step per lead, but carts derive III and the augmented leads
    at their own stage (real PTB-XL files reach 1.5 steps in aVR/aVL/aVF), so a whole step
    per lead is allowed: III 3q, aVR 2q, aVL 2.5q, aVF 2.5q for a common step q.
    """
    return {
        lead: sum(abs(c) * steps[name] for c, name in zip(coeffs, LIMB_LEADS, strict=True) if c)
        for lead, coeffs in IDENTITIES.items()
    }


def check_derived_leads(
    leads: Mapping[str, np.ndarray],
    *,
    steps: Mapping[str, float] | None = None,
    clip: Mapping[str, tuple[float, float]] | None = None,
) -> DerivedLeadCheck:
    """Test the four identities on ``leads`` (canonical name -> samples, one rate, one unit).

    Samples that are NaN (WFDB invalid) or at a lead's ADC limits (``clip``) in any lead of an
    identity are left out of that identity: they are flagged by the NaN and clipped QC already.
    ``steps`` defaults to :func:`adc_step` of each lead (a constant lead takes the largest
    step of the others).
    """
    if any(name not in leads for name in LIMB_LEADS):
        return DerivedLeadCheck((), (), None, 0, {})
    n = min(len(leads[name]) for name in LIMB_LEADS)
    x = np.stack([np.asarray(leads[name][:n], np.float64) for name in LIMB_LEADS])
    usable = np.isfinite(x)
    if clip is not None:
        lo = np.array([clip.get(name, (-np.inf, np.inf))[0] for name in LIMB_LEADS])[:, None]
        hi = np.array([clip.get(name, (-np.inf, np.inf))[1] for name in LIMB_LEADS])[:, None]
        usable &= (x > lo) & (x < hi)
    if steps is None:
        found = {name: adc_step(x[i][usable[i]]) for i, name in enumerate(LIMB_LEADS)}
        known = [s for s in found.values() if s is not None]
        if not known:
            return DerivedLeadCheck((), (), None, 0, {})
        steps = {name: s if s is not None else max(known) for name, s in found.items()}
    tol = tolerances(steps)
    # float32 samples carry ~6e-8 relative error each: a margin far below one ADC step.
    float_margin = 2.0**-20 * float(np.nanmax(np.abs(np.where(usable, x, 0.0)), initial=0.0))
    x = np.where(usable, x, 0.0)
    checked, mismatched, worst = [], [], 0.0
    failing = np.zeros(n, bool)
    for lead, coeffs in IDENTITIES.items():
        members = [i for i, c in enumerate(coeffs) if c]
        ok = usable[members].all(axis=0)
        if not ok.any():
            continue
        residual = np.abs(np.asarray(coeffs) @ x)[ok]
        checked.append(lead)
        worst = max(worst, float(residual.max()))
        bad = residual > tol[lead] + 4 * float_margin
        if bad.any():
            mismatched.append(lead)
            failing[np.flatnonzero(ok)[bad]] = True
    return DerivedLeadCheck(
        checked=tuple(checked),
        mismatched=tuple(mismatched),
        max_residual=round(worst, 6) if checked else None,  # 1 uV steps: no float noise in the table
        mismatch_samples=int(failing.sum()),
        tolerance=tol,
    )


def derived_lead_columns(rec: Recording, manifest: Manifest) -> dict[str, Any]:
    """Recording-row columns of the derived-lead check on the file's own samples.

    Every limb lead of the file counts, selected by the profile or not; the samples are the
    source's (unit-converted, before any filter or resampling, which would blur the step).
    """
    matches = {m.canonical: m for m in match_channels([c.label for c in rec.source.channels], manifest)}
    if any(name not in matches for name in LIMB_LEADS):
        return DerivedLeadCheck((), (), None, 0, {}).columns()
    chans = [rec.source.channels[matches[name].index] for name in LIMB_LEADS]
    if len({c.fs_hz for c in chans}) != 1:
        return DerivedLeadCheck((), (), None, 0, {}).columns()
    n = min(c.n_samples for c in chans)
    x = rec.source.read([matches[name].index for name in LIMB_LEADS], 0, n)
    clip = {name: (c.clip_low, c.clip_high) for name, c in zip(LIMB_LEADS, chans, strict=True)}
    return check_derived_leads(dict(zip(LIMB_LEADS, x, strict=True)), clip=clip).columns()
