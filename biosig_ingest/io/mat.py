"""MAT files behind one interface: v4/v5/v7 through ``scipy.io``, v7.3 (HDF5) through ``h5py``.

Arrays come back in MATLAB's orientation (rows x columns) whatever the version: MATLAB
writes HDF5 datasets column-major, so h5py sees a 62 x T matrix as T x 62.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import HeaderError, MissingFileError

MatVersion = Literal["4", "5", "7.3"]

# MATLAB_class values of numeric and logical arrays in v7.3 files
_NUMERIC_CLASSES = {
    "double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "logical",
}  # fmt: skip


def _fail(path: Path, exc: BaseException) -> HeaderError:
    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    return HeaderError(f"{path.name}: not a readable MAT file ({detail})")


def mat_version(path: str | Path) -> MatVersion:
    """``"4"``, ``"5"`` (v5, v6 and v7, compressed or not) or ``"7.3"`` (HDF5)."""
    from scipy.io.matlab import matfile_version

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path.name} does not exist")
    try:
        major, _ = matfile_version(str(path))
    except Exception as exc:  # empty, truncated header, not a MAT file
        raise _fail(path, exc) from None
    return {0: "4", 1: "5", 2: "7.3"}[major]  # type: ignore[return-value]


def list_variables(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Variable name -> shape (MATLAB orientation), from the headers only: no data is read."""
    path = Path(path)
    version = mat_version(path)
    try:
        if version == "7.3":
            import h5py

            with h5py.File(path, "r") as f:
                return {
                    name: tuple(reversed(node.shape))
                    for name, node in f.items()
                    if isinstance(node, h5py.Dataset) and _matlab_class(node) in _NUMERIC_CLASSES
                }
        from scipy.io import whosmat

        return {name: tuple(shape) for name, shape, _ in whosmat(str(path))}
    except HeaderError:
        raise
    except Exception as exc:
        raise _fail(path, exc) from None


def load_variables(path: str | Path, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The numeric arrays ``names`` (all when None), MATLAB orientation, as stored (no squeeze).

    Only the named variables are decoded: scipy skips the others by their byte counts,
    compressed or not, and h5py reads datasets one by one.
    """
    path = Path(path)
    wanted = None if names is None else list(names)
    version = mat_version(path)
    try:
        out = _load_hdf5(path, wanted) if version == "7.3" else _load_scipy(path, wanted)
    except HeaderError:
        raise
    except Exception as exc:  # zlib errors, truncation, unsupported element types ...
        raise _fail(path, exc) from None
    missing = [n for n in wanted or () if n not in out]
    if missing:
        raise HeaderError(f"{path.name}: no variable {', '.join(missing)}")
    return out


def _load_scipy(path: Path, wanted: list[str] | None) -> dict[str, np.ndarray]:
    from scipy.io import loadmat

    # torcheeg reads SEED with verify_compressed_data_integrity=False (LAYOUTS.md 2.3); a
    # really damaged stream still fails while decoding the array.
    raw = loadmat(str(path), variable_names=wanted, squeeze_me=False, verify_compressed_data_integrity=False)
    out = {}
    for name, value in raw.items():
        if name.startswith("__"):
            continue  # __header__, __version__, __globals__
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise HeaderError(f"{path.name}: variable {name} is {arr.dtype}, not a numeric array")
        out[name] = arr
    return out


def _load_hdf5(path: Path, wanted: list[str] | None) -> dict[str, np.ndarray]:
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        for name in wanted if wanted is not None else list(f.keys()):
            node = f.get(name)
            if node is None:
                continue
            if not isinstance(node, h5py.Dataset) or _matlab_class(node) not in _NUMERIC_CLASSES:
                if wanted is None:
                    continue  # cells, structs, #refs#: not numeric arrays
                raise HeaderError(f"{path.name}: variable {name} is not a numeric array")
            if node.attrs.get("MATLAB_empty"):
                # empty arrays are stored as their dimensions, not as data
                out[name] = np.zeros(tuple(int(d) for d in np.asarray(node[()]).ravel()), np.float64)
                continue
            out[name] = np.asarray(node[()]).T  # back to MATLAB's row x column orientation
    return out


def _matlab_class(node: object) -> str:
    value = getattr(node, "attrs", {}).get("MATLAB_class", b"")
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
