"""Chunk-level reads of a shard's signals, each chunk decompressed once into a reusable buffer.

Local stores written by :mod:`.writer` (bytes + Blosc codecs, regular chunks) are read by
decompressing the chunk file straight into the caller's buffer, skipping Zarr's per-call
machinery (about twice as fast on 10-s windows, docs/loading.md); anything else goes through
Zarr. Both give the same arrays (tests/test_encodings.py).

A chunk file that Blosc kept uncompressed (incompressible bytes, e.g. quantized int16) can also
be opened for reading windows one by one (:meth:`ShardSignals.open_chunk`, :func:`read_windows`):
the page cache is then the decompressed chunk, and the shuffle buffer need not copy it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numba
import numcodecs.blosc
import numpy as np
import zarr
from zarr.codecs import BloscCodec, BytesCodec

from .encoding import _gather_copy, _gather_float16, _gather_int16, gather, gather_stored
from .layout import array

BLOSC_HEADER = 16  # c-blosc 1 frame: version, versionlz, flags, typesize, nbytes, blocksize, cbytes
BLOSC_MEMCPYED = 0x02


def _stored_raw(head: bytes, nbytes: int) -> bool:
    """A c-blosc 1 frame (format version 2) holding ``nbytes`` uncompressed after its header."""
    if len(head) < BLOSC_HEADER or head[0] != 2 or not head[2] & BLOSC_MEMCPYED:
        return False
    size = int.from_bytes(head[4:8], "little")
    cbytes = int.from_bytes(head[12:16], "little")
    return size == nbytes and cbytes == BLOSC_HEADER + nbytes


class ShardSignals:
    """The ``signals`` array of one shard, read chunk by chunk in its stored encoding."""

    def __init__(self, group: zarr.Group):
        self.array = array(group, "signals")
        self.n_windows, self.n_channels, self.n_samples = (int(n) for n in self.array.shape)
        self.chunk_windows = int(self.array.chunks[0])
        self.n_chunks = -(-self.n_windows // self.chunk_windows)
        self.dtype = np.dtype(self.array.dtype)
        self.encoding = self.dtype.name
        self._group = group
        self._scale: np.ndarray | None = None
        self._offset: np.ndarray | None = None
        self._dir = self._direct_path()

    def _direct_path(self) -> Path | None:
        """The folder of chunk files when a chunk file can be decompressed directly."""
        arr = self.array
        codecs = arr.metadata.codecs if hasattr(arr.metadata, "codecs") else ()
        store = arr.store
        root = getattr(store, "root", None)
        if (
            len(codecs) == 2
            and isinstance(codecs[0], BytesCodec)
            and isinstance(codecs[1], BloscCodec)
            and (codecs[0].endian is None or codecs[0].endian.value == sys.byteorder)
            and self.array.chunks[1:] == self.array.shape[1:]
            and type(store).__name__ == "LocalStore"
            and root is not None
        ):
            return Path(root) / arr.path
        return None

    def bounds(self, k: int) -> tuple[int, int]:
        """Windows ``[lo, hi)`` of the shard held by chunk ``k``."""
        lo = k * self.chunk_windows
        return lo, min(lo + self.chunk_windows, self.n_windows)

    def new_block(self) -> np.ndarray:
        return np.empty((self.chunk_windows, self.n_channels, self.n_samples), self.dtype)

    def _chunk_path(self, k: int) -> Path:
        assert self._dir is not None
        return self._dir / self.array.metadata.encode_chunk_key((k, 0, 0))

    @property
    def window_bytes(self) -> int:
        return self.n_channels * self.n_samples * self.dtype.itemsize

    def open_raw(self, k: int) -> int | None:
        """An open file descriptor of chunk ``k`` when its file holds the chunk uncompressed
        (Blosc kept the bytes as they are), else None (read it with :meth:`read_chunk`).

        Only the 16-byte header is read. Read the windows with :func:`read_windows`, then
        ``os.close`` the descriptor. A chunk not in the page cache is read ahead
        (``POSIX_FADV_WILLNEED``), so that the window reads do not each wait for the disk.
        """
        if self._dir is None or not _PREAD:
            return None
        try:
            fd = os.open(self._chunk_path(k), os.O_RDONLY)
        except FileNotFoundError:
            return None
        size = self.chunk_windows * self.window_bytes
        try:
            if _stored_raw(os.pread(fd, BLOSC_HEADER, 0), size):
                if not _cached(fd, BLOSC_HEADER + size):
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        return None

    def read_chunk(self, k: int, out: np.ndarray, scratch: bytearray | None = None) -> int:
        """Decompress chunk ``k`` into ``out`` (``new_block()``'s shape); returns its window count.

        ``scratch`` (grown as needed) receives the compressed bytes, so a loop reuses memory.
        """
        lo, hi = self.bounds(k)
        if self._dir is not None:
            path = self._chunk_path(k)
            try:
                with open(path, "rb", buffering=0) as f:
                    head = f.read(BLOSC_HEADER)
                    if _stored_raw(head, out.nbytes):
                        # Blosc kept the chunk as it is (incompressible, e.g. quantized int16):
                        # read it straight into the block, one copy instead of two
                        got = f.readinto(out.reshape(-1).view(np.uint8).data)
                        if got != out.nbytes:
                            raise OSError(f"short read of {path}")
                        return hi - lo
                    size = f.seek(0, 2)
                    f.seek(0)
                    buf = scratch if scratch is not None else bytearray(size)
                    if len(buf) < size:
                        buf.extend(bytes(size - len(buf)))
                    view = memoryview(buf)[:size]
                    got = f.readinto(view)
            except FileNotFoundError:  # never written: Zarr's fill value
                out[: hi - lo] = self.array.fill_value
                return hi - lo
            if got != size:
                raise OSError(f"short read of {path}")
            numcodecs.blosc.decompress(view, out)
            return hi - lo
        out[: hi - lo] = self.array[lo:hi]
        return hi - lo

    def scale_offset(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """int16: the shard's (windows, channels) float32 scale and offset; else (None, None)."""
        if self.encoding != "int16":
            return None, None
        if self._scale is None or self._offset is None:
            self._scale = np.asarray(array(self._group, "signals_scale")[:], np.float32)
            self._offset = np.asarray(array(self._group, "signals_offset")[:], np.float32)
        return self._scale, self._offset


_PREAD = all(hasattr(os, name) for name in ("pread", "preadv", "posix_fadvise"))
_NOWAIT = getattr(os, "RWF_NOWAIT", None)


def _cached(fd: int, size: int) -> bool:
    """Whether the middle and the last byte of the file are in the page cache (a probe read
    with ``RWF_NOWAIT``, which fails instead of waiting for the disk); False if unknown. Asking
    for read-ahead of a cached 3 MB file costs about 0.1 ms, ten times this probe."""
    if _NOWAIT is None:
        return False
    probe = bytearray(1)
    try:
        return all(os.preadv(fd, [probe], at, _NOWAIT) == 1 for at in (size // 2, size - 1))
    except OSError:  # BlockingIOError: not cached; EOPNOTSUPP: the file system cannot tell
        return False


def read_windows(fds: np.ndarray, positions: np.ndarray, window_bytes: int, out: np.ndarray) -> None:
    """``out[i]`` = window ``positions[i]`` of the uncompressed chunk file open as ``fds[i]``
    (:meth:`ShardSignals.open_raw`); ``out`` (n, ...) C-contiguous in the stored dtype."""
    rows = out.reshape(len(out), -1).view(np.uint8)
    for i in range(len(fds)):
        offset = BLOSC_HEADER + int(positions[i]) * window_bytes
        if os.preadv(int(fds[i]), [rows[i]], offset) != window_bytes:
            raise OSError(f"short read of a chunk file (descriptor {int(fds[i])})")


def read_gather(
    fds: np.ndarray,
    positions: np.ndarray,
    out: np.ndarray,
    out_rows: np.ndarray,
    channel_map: np.ndarray,
    staging: np.ndarray,
    scale: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    scale_row: np.ndarray | None = None,
) -> None:
    """:func:`~.encoding.gather` (``out`` float32) or :func:`~.encoding.gather_stored` (``out``
    in the stored dtype) for windows ``positions[i]`` of the uncompressed chunk files open as
    ``fds[i]`` (:meth:`ShardSignals.open_raw`).

    Each window is read (``pread``: the kernel copies it from the page cache) into ``staging``,
    one window of the stored dtype that stays in the CPU cache, and decoded from there: the
    file's bytes are copied once before decoding, as a chunk decompressed in order would be.
    Reads and decoding run in one compiled loop that releases the GIL.
    """
    i64 = np.int64
    fds, out_rows, channel_map = np.asarray(fds, i64), np.asarray(out_rows, i64), np.asarray(channel_map, i64)
    window_bytes = staging.nbytes
    offsets = BLOSC_HEADER + np.asarray(positions, i64) * window_bytes
    stage = staging.reshape(1, 1, *staging.shape[-2:])
    flat = staging.reshape(-1).view(np.uint8)
    one = np.zeros(1, i64)
    decoded = out.dtype == np.float32 and staging.dtype != np.float32
    if decoded and staging.dtype == np.int16 and (scale is None or offset is None or scale_row is None):
        raise ValueError("int16 windows need their scale and offset")
    start = 0
    while start < len(fds):
        sl = slice(start, None)
        if not decoded:
            to, src = (out.view(np.uint16), stage.view(np.uint16)) if out.dtype == np.float16 else (out, stage)
            failed = _read_copy(fds[sl], offsets[sl], flat, src, one, to, out_rows[sl], channel_map)
        elif staging.dtype == np.int16:
            assert scale is not None and offset is not None and scale_row is not None
            rows = np.asarray(scale_row, i64)[sl]
            failed = _read_int16(fds[sl], offsets[sl], flat, stage, one, scale, offset, rows, out, out_rows[sl], channel_map)
        else:
            failed = _read_float16(fds[sl], offsets[sl], flat, stage.view(np.uint16), one, out.view(np.uint32), out, out_rows[sl], channel_map)
        if failed < 0:
            return
        # an interrupted or short read: once more through Python, which retries or raises
        i = start + int(failed)
        read_windows(fds[i : i + 1], np.asarray(positions, i64)[i : i + 1], window_bytes, staging[None])
        if not decoded:
            gather_stored(stage, one, one, out, out_rows[i : i + 1], channel_map)
        else:
            gather(stage, one, one, out, out_rows[i : i + 1], channel_map, scale, offset, None if scale_row is None else np.asarray(scale_row, i64)[i : i + 1])
        start = i + 1


# libc's pread, called from compiled code (resolved by name; POSIX systems only)
_pread = numba.types.ExternalFunction("pread", numba.types.intp(numba.types.intc, numba.types.voidptr, numba.types.uintp, numba.types.int64))


@numba.njit(cache=True, nogil=True)
def _read_one(fd, dst, at):  # pragma: no cover - compiled
    """Read ``dst.size`` bytes at ``at`` into ``dst`` (uint8); False on an error or end of file."""
    got = 0
    n = dst.size
    while got < n:
        r = _pread(np.int32(fd), dst[got:].ctypes.data, n - got, at + got)
        if r <= 0:
            return False
        got += r
    return True


@numba.njit(cache=True, nogil=True)
def _read_int16(fds, offsets, flat, stage, one, scale, offset, scale_row, out, out_rows, channel_map):  # pragma: no cover - compiled
    for i in range(fds.shape[0]):
        if not _read_one(fds[i], flat, offsets[i]):
            return i
        _gather_int16(stage, one, one, scale, offset, scale_row[i : i + 1], out, out_rows[i : i + 1], channel_map)
    return -1


@numba.njit(cache=True, nogil=True)
def _read_float16(fds, offsets, flat, stage_bits, one, out_bits, out, out_rows, channel_map):  # pragma: no cover - compiled
    for i in range(fds.shape[0]):
        if not _read_one(fds[i], flat, offsets[i]):
            return i
        _gather_float16(stage_bits, one, one, out_bits, out, out_rows[i : i + 1], channel_map)
    return -1


@numba.njit(cache=True, nogil=True)
def _read_copy(fds, offsets, flat, stage, one, out, out_rows, channel_map):  # pragma: no cover - compiled
    for i in range(fds.shape[0]):
        if not _read_one(fds[i], flat, offsets[i]):
            return i
        _gather_copy(stage, one, one, out, out_rows[i : i + 1], channel_map)
    return -1
