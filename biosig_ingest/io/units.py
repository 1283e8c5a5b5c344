"""Physical-unit conversion to the modality's unit (EEG microvolts, ECG millivolts)."""

from __future__ import annotations

from ..errors import UnitError

_TO_VOLT = {
    "v": 1.0,
    "mv": 1e-3,
    "uv": 1e-6,
    "µv": 1e-6,  # micro sign U+00B5
    "μv": 1e-6,  # greek mu U+03BC
    "nv": 1e-9,
}


def unit_scale(physical_unit: str, target_unit: str) -> float:
    """Factor that converts values in ``physical_unit`` to ``target_unit``."""
    src = _TO_VOLT.get(physical_unit.strip().lower())
    dst = _TO_VOLT.get(target_unit.strip().lower())
    if src is None or dst is None:
        raise UnitError(f"cannot convert unit {physical_unit!r} to {target_unit!r}")
    return src / dst
