"""Load untrusted pickles (DEAP's ``.dat`` files) with an unpickler that can only rebuild numpy arrays.

A pickle reaches code only through the globals it names (``find_class``); every global
outside the short list below raises :class:`SecurityError` before anything is called.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import HeaderError, MissingFileError, SecurityError


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as Python 3 pickles bytes at protocol 2, for latin-1 only.

    The real ``_codecs.encode`` reaches every registered codec; array payloads only ever
    need latin-1, so anything else is refused.
    """
    if encoding.lower().replace("_", "-") not in ("latin1", "latin-1", "iso-8859-1", "l1"):
        raise SecurityError(f"pickle asks _codecs.encode for codec {encoding!r}; only latin-1 is allowed")
    return text.encode("latin-1", errors)


_RECONSTRUCT = np.array(0).__reduce__()[0]  # numpy._core.multiarray._reconstruct, any numpy version
_FROMBUFFER = np.array(0).__reduce_ex__(5)[0]  # protocol 5 arrays: numpy._core.numeric._frombuffer

# Everything array reconstruction needs, under every module path numpy has pickled it with:
# Python 2 / numpy 1.x (numpy.core), numpy 2.x (numpy._core). Containers (dict, list, tuple),
# str, bytes, numbers, True/False/None have their own opcodes and need no global.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,  # bytes in Python-3 protocol-2 pickles
}


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose only reachable globals are :data:`ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str) -> Any:
        target = ALLOWED_GLOBALS.get((module, name))
        if target is None:
            raise SecurityError(f"pickle refers to {module}.{name}; only numpy array reconstruction is allowed")
        return target

    def persistent_load(self, pid: Any) -> Any:
        raise SecurityError("pickle uses persistent ids; only numpy array reconstruction is allowed")


def safe_load(source: str | Path | BinaryIO | bytes, *, encoding: str = "latin1") -> Any:
    """Unpickle ``source`` (a path, an open binary file or bytes) allowing only numpy arrays.

    ``encoding='latin1'`` decodes Python-2 ``str`` payloads byte for byte, which is what
    numpy needs for the array data inside Python-2 pickles. Raises :class:`SecurityError`
    for a forbidden global, :class:`HeaderError` for anything that is not a readable pickle.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            with open(path, "rb") as f:
                return _load(f, path.name, encoding)
        except FileNotFoundError:
            raise MissingFileError(f"{path.name} does not exist") from None
    if isinstance(source, bytes):
        return _load(io.BytesIO(source), "pickle", encoding)
    return _load(source, getattr(source, "name", "pickle"), encoding)


def _load(f: BinaryIO, name: str, encoding: str) -> Any:
    try:
        return RestrictedUnpickler(f, encoding=encoding).load()
    except SecurityError:
        raise
    except Exception as exc:  # UnpicklingError, EOFError, UnicodeDecodeError, numpy's ValueError ...
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise HeaderError(f"{Path(str(name)).name}: not a readable pickle ({type(exc).__name__}: {detail})") from None
