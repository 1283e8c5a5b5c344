"""Sample encodings of the ``signals`` array: float32, float16, or int16 with a scale and offset
per window and channel. Readers always get float32 in the modality's unit (docs/loading.md).

int16: ``value = code * signals_scale + signals_offset`` (float32 arithmetic), code -32768 = NaN.
Each (window, channel) row is encoded exactly when its samples lie on a lattice (the source's
digital values, untouched by filtering or resampling), else quantized over its range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numba.core import cgutils, types
from numba.extending import intrinsic

ENCODINGS = ("float32", "float16", "int16")
NAN_CODE = -32768  # int16 code of a NaN sample
CODE_MAX = 32767  # codes of samples span [-CODE_MAX, CODE_MAX]
FLOAT16_MAX = 65504.0
EXACT_ULPS = 4  # an exact row decodes within this many float32 ulps of its largest magnitude
PRETEST = 256  # samples of a row tried for a lattice before the whole row


@dataclass(frozen=True)
class Encoded:
    """Windows as stored: ``data`` (windows, channels, samples) in the encoding's dtype."""

    data: np.ndarray
    scale: np.ndarray | None = None  # int16: (windows, channels) float32
    offset: np.ndarray | None = None
    exact: np.ndarray | None = None  # int16: (windows, channels) rows stored losslessly
    saturated: np.ndarray | None = None  # float16: (windows,) samples clipped to +-65504


def storage_dtype(encoding: str) -> np.dtype:
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown signal encoding {encoding!r} (known: {', '.join(ENCODINGS)})")
    return np.dtype(encoding)


def encode(signals: np.ndarray, encoding: str, try_exact: bool = True) -> Encoded:
    """Encode float32 windows (windows, channels, samples) for storage.

    ``try_exact`` (int16): look for the source's digital lattice in each row first; worth it
    only when the profile applies no filter (resampled rows fail the check and are quantized).
    """
    dtype = storage_dtype(encoding)
    x = np.ascontiguousarray(signals, dtype=np.float32)
    if encoding == "float32":
        return Encoded(x)
    if encoding == "float16":
        big = np.abs(x) > FLOAT16_MAX  # NaN compares False and stays NaN
        saturated = big.reshape(len(x), -1).sum(axis=1)
        if saturated.any():
            x = np.clip(x, -FLOAT16_MAX, FLOAT16_MAX)
        return Encoded(x.astype(dtype), saturated=saturated)
    n, c, t = x.shape
    codes = np.empty((n, c, t), np.int16)
    scale = np.empty((n, c), np.float32)
    offset = np.empty((n, c), np.float32)
    exact = np.zeros((n, c), np.bool_)
    if n and c:
        _encode_int16(x.reshape(n * c, t), codes.reshape(n * c, t), scale.reshape(-1), offset.reshape(-1), exact.reshape(-1), try_exact)
    return Encoded(codes, scale, offset, exact=exact)


def decode(data: np.ndarray, scale: np.ndarray | None, offset: np.ndarray | None, out: np.ndarray | None = None) -> np.ndarray:
    """Stored windows (windows, channels, samples) -> float32 physical values."""
    if out is None:
        out = np.empty(data.shape, np.float32)
    if data.dtype == np.int16:
        assert scale is not None and offset is not None
        n, c, t = data.shape
        if n and c:
            _decode_int16(data.reshape(n * c, t), scale.reshape(-1), offset.reshape(-1), out.reshape(n * c, t))
    elif data.dtype == np.float16 and data.size:
        n_t = data.shape[-1]
        rows = data.reshape(1, 1, -1, n_t)
        idx = np.zeros(1, np.int64)
        _gather_float16(rows.view(np.uint16), idx, idx, out.reshape(1, -1, n_t).view(np.uint32), out.reshape(1, -1, n_t), idx, np.arange(rows.shape[2], dtype=np.int64))
    else:
        np.copyto(out, data, casting="unsafe")
    return out


def error_bound(scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Upper bound of |decoded - original| per (window, channel) row of an int16 encoding.

    Half a quantization step, plus float32 rounding of the decode (2 ulps of the row's
    largest magnitude, which is at most ``|offset| + CODE_MAX * scale``).
    """
    s = scale.astype(np.float64)
    peak = np.abs(offset.astype(np.float64)) + CODE_MAX * s
    return s / 2 + 2 * np.spacing(peak.astype(np.float32)).astype(np.float64)


# --- kernels ---------------------------------------------------------------------------------
# The decoders are not parallel on purpose: they run in DataLoader worker processes, which fork,
# and numba's OpenMP layer is not fork-safe once started. The loader overlaps work with threads.


@numba.njit(cache=True, nogil=True)
def _ulp32(a):  # pragma: no cover - compiled
    """Spacing of float32 numbers at magnitude ``a`` (>= the smallest normal's spacing)."""
    a = max(abs(a), 1.1754944e-38)
    e = np.floor(np.log2(a))
    return 2.0 ** (e - 23)


@numba.njit(cache=True, nogil=True)
def _lattice(v, lo, hi):  # pragma: no cover - compiled
    """Find (ok, c, g) with every finite v[t] = c + k_t * g within float32 rounding.

    The gaps between the row's sorted distinct values are whole multiples of the step g, each
    known to about 2 float32 ulps. The smallest gap is g or a small multiple of it (a
    remainder that does not fit reveals the step, as in Euclid's algorithm); the mean over
    gaps of up to 16 steps refines g; each distinct value's lattice index is then the sum of
    the rounded gaps below it (exact, since gaps are short), and a least-squares line through
    (index, value) gives c and g. Fails where float32 cannot resolve the step and where no
    lattice fits (filtered or resampled rows); the caller verifies every sample anyway.
    """
    eps = _ulp32(max(abs(lo), abs(hi)))
    u = np.sort(v[~np.isnan(v)].astype(np.float64))
    m = 1
    for i in range(1, u.shape[0]):  # distinct values, in place
        if u[i] > u[m - 1]:
            u[m] = u[i]
            m += 1
    if m < 2:
        return False, lo, 1.0
    gaps = u[1:m] - u[: m - 1]
    g = gaps.min()
    err = 2 * eps  # bound on |g - its true value|: each value is within an ulp
    for _ in range(4):  # Euclid on the gaps: a remainder that is not noise is a finer step
        if g < 32 * eps:
            return False, lo, g
        finer = np.inf
        finer_err = np.inf
        for d in gaps:
            n = np.rint(d / g)
            r = abs(d - n * g)
            noise = 2 * eps + n * err
            if r > 2 * noise and noise < finer_err:  # keep the best-known remainder
                finer = r
                finer_err = noise
        if finer == np.inf:
            break
        g = finer
        err = finer_err
    else:
        return False, lo, g
    if g < 32 * eps:
        return False, lo, g
    total = 0.0
    steps = 0.0
    for d in gaps:
        n = np.rint(d / g)
        if n <= 16:
            total += d
            steps += n
    if steps > 0:
        g = total / steps
    k = np.zeros(m)
    for i in range(1, m):
        n = np.rint(gaps[i - 1] / g)
        if n < 1:
            return False, lo, g
        k[i] = k[i - 1] + n
    if k[m - 1] > 2 * CODE_MAX:
        return False, lo, g
    km = k.mean()
    um = u[:m].mean()
    g = ((k - km) * (u[:m] - um)).sum() / ((k - km) ** 2).sum()
    c = um - g * km  # the value of index 0, i.e. of u[0] = the row's minimum
    return True, c, g


@numba.njit(cache=True, nogil=True)
def _extend(v, c, g, lo, hi):  # pragma: no cover - compiled
    """Fit the lattice (c, g) found on a prefix to the whole row: O(n), no sort.

    Each sample's index is rounded with the prefix's g (accurate to a small fraction of a step
    over a 16-bit span), then a least-squares line through (index, value) refines c and g;
    (ok, c, g) with ok when every sample lies within 3 ulps of it.
    """
    eps = _ulp32(max(abs(lo), abs(hi)))
    n = 0
    sk = 0.0
    su = 0.0
    skk = 0.0
    sku = 0.0
    for t in range(v.shape[0]):
        a = np.float64(v[t])
        if a == a:
            k = np.rint((a - c) / g)
            n += 1
            sk += k
            su += a - c
            skk += k * k
            sku += k * (a - c)
    var = skk - sk * sk / n
    if var <= 0:
        return False, c, g
    g2 = (sku - sk * su / n) / var
    c2 = c + (su - g2 * sk) / n
    for t in range(v.shape[0]):
        a = np.float64(v[t])
        if a == a:
            k = np.rint((a - c) / g)
            if abs(a - c2 - k * g2) > 3 * eps:
                return False, c, g
    return True, c2, g2


@numba.njit(cache=True, nogil=True)
def _encode_row(v, q, try_exact):  # pragma: no cover - compiled
    """Codes of one row into ``q``; returns (scale, offset, exact)."""
    n = v.shape[0]
    lo = np.inf
    hi = -np.inf
    for t in range(n):
        a = v[t]
        if a == a and abs(a) < np.inf:
            lo = min(lo, np.float64(a))
            hi = max(hi, np.float64(a))
    if lo > hi:  # no finite sample
        for t in range(n):
            q[t] = NAN_CODE
        return np.float32(1.0), np.float32(0.0), True
    if try_exact and hi > lo:
        # A short prefix rejects most off-lattice rows cheaply, and its lattice usually
        # extends to the whole row in O(n); the full search sorts the row.
        head = v[:PRETEST]
        h_lo = np.nanmin(head)
        h_hi = np.nanmax(head)
        if n > 2 * PRETEST and h_hi > h_lo:
            ok, c, g = _lattice(head, np.float64(h_lo), np.float64(h_hi))
            if ok:
                ok, c, g = _extend(v, c, g, lo, hi)
                if not ok:
                    ok, c, g = _lattice(v, lo, hi)
        else:
            ok, c, g = _lattice(v, lo, hi)
        if ok:
            kmin = np.rint((lo - c) / g)
            kmax = np.rint((hi - c) / g)
            if kmax - kmin <= 2 * CODE_MAX:
                k0 = np.floor((kmin + kmax) / 2)
                s32 = np.float32(g)
                o32 = np.float32(c + k0 * g)
                tol = EXACT_ULPS * _ulp32(max(abs(lo), abs(hi)))
                done = True
                for t in range(n):
                    a = v[t]
                    if a == a and abs(a) < np.inf:
                        k = np.rint((np.float64(a) - c) / g) - k0
                        q[t] = np.int16(k)
                        if abs(np.float64(np.float32(np.float32(k) * s32 + o32)) - a) > tol:
                            done = False
                            break
                    else:
                        q[t] = NAN_CODE
                if done:
                    return s32, o32, True
    # Range quantization: lo -> -CODE_MAX, hi -> +CODE_MAX (constant rows: code 0).
    s = (hi - lo) / (2 * CODE_MAX)
    s32 = np.float32(s)
    if s32 < s:
        s32 = np.nextafter(s32, np.float32(np.inf))
    if s32 == 0:
        s32 = np.float32(1.0)
    o32 = np.float32((hi + lo) / 2)
    sf = np.float64(s32)
    of = np.float64(o32)
    for t in range(n):
        a = v[t]
        if a == a and abs(a) < np.inf:
            k = np.rint((np.float64(a) - of) / sf)
            q[t] = np.int16(min(max(k, -CODE_MAX), CODE_MAX))
        else:
            q[t] = NAN_CODE
    return s32, o32, s == 0


@numba.njit(cache=True, nogil=True, parallel=True)
def _encode_int16(x, codes, scale, offset, exact, try_exact):  # pragma: no cover - compiled
    # Parallel: encoding runs where ingest runs (its other kernels are parallel too), never
    # in a DataLoader worker.
    for r in numba.prange(x.shape[0]):
        s, o, e = _encode_row(x[r], codes[r], try_exact)
        scale[r] = s
        offset[r] = o
        exact[r] = e


@numba.njit(cache=True, nogil=True)
def _decode_int16(codes, scale, offset, out):  # pragma: no cover - compiled
    rows, n = codes.shape
    for r in range(rows):
        s = scale[r]
        o = offset[r]
        q = codes[r]
        y = out[r]
        for t in range(n):
            y[t] = np.float32(np.nan) if q[t] == NAN_CODE else np.float32(q[t]) * s + o


@numba.njit(cache=True, nogil=True)
def _gather_int16(blocks, block_of, local_of, scale, offset, scale_row, out, out_rows, channel_map):  # pragma: no cover - compiled
    n_t = blocks.shape[3]
    for i in range(block_of.shape[0]):
        b = block_of[i]
        w = local_of[i]
        row = scale_row[i]
        for c in range(blocks.shape[2]):
            dst = channel_map[c]
            if dst < 0:
                continue
            s = scale[row, c]
            o = offset[row, c]
            src = blocks[b, w, c]
            y = out[out_rows[i], dst]
            for t in range(n_t):
                q = src[t]
                y[t] = np.float32(np.nan) if q == NAN_CODE else np.float32(q) * s + o


@numba.njit(cache=True, nogil=True)
def _gather_copy(blocks, block_of, local_of, out, out_rows, channel_map):  # pragma: no cover - compiled
    """As the decoders, for values kept as they are (float32, or any dtype undecoded)."""
    for i in range(block_of.shape[0]):
        b = block_of[i]
        w = local_of[i]
        for c in range(blocks.shape[2]):
            dst = channel_map[c]
            if dst >= 0:
                out[out_rows[i], dst, :] = blocks[b, w, c, :]


@numba.njit(cache=True, nogil=True)
def _gather_float16(blocks, block_of, local_of, out_bits, out, out_rows, channel_map):  # pragma: no cover - compiled
    """float16 -> float32 by bit manipulation (numba has no CPU float16): ``blocks`` as uint16,
    ``out_bits`` the uint32 view of ``out``. Normal numbers, infinities and NaN re-bias the
    exponent in a vectorizable pass; zeros and subnormals are fixed up in a second one."""
    n_t = blocks.shape[3]
    for i in range(block_of.shape[0]):
        b = block_of[i]
        w = local_of[i]
        for c in range(blocks.shape[2]):
            dst = channel_map[c]
            if dst < 0:
                continue
            src = blocks[b, w, c]
            y = out_bits[out_rows[i], dst]
            tiny = 0
            for t in range(n_t):
                h = np.uint32(src[t])
                em = h & np.uint32(0x7FFF)
                u = (em << np.uint32(13)) + np.uint32(112 << 23)
                if em >= np.uint32(0x7C00):
                    u += np.uint32(112 << 23)
                y[t] = u | ((h & np.uint32(0x8000)) << np.uint32(16))
                tiny += em < np.uint32(0x0400)
            if tiny:
                f = out[out_rows[i], dst]
                for t in range(n_t):
                    h = np.uint32(src[t])
                    if (h & np.uint32(0x7C00)) == 0:
                        v = np.float32(h & np.uint32(0x3FF)) * np.float32(5.9604645e-08)
                        f[t] = -v if h & np.uint32(0x8000) else v


def gather(
    blocks: np.ndarray,
    block_of: np.ndarray,
    local_of: np.ndarray,
    out: np.ndarray,
    out_rows: np.ndarray,
    channel_map: np.ndarray,
    scale: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    scale_row: np.ndarray | None = None,
) -> None:
    """Decode stored windows into float32: ``out[out_rows[i], channel_map[c]] =
    blocks[block_of[i], local_of[i], c]`` for every i and every c with ``channel_map[c] >= 0``.

    ``blocks`` (blocks, windows, channels, samples) hold chunks as stored; for int16 the
    window's scale and offset are rows ``scale_row[i]`` of ``scale``/``offset`` (rows, channels).
    Output channels nothing maps to are left as they are.
    """
    i64 = np.int64
    block_of, local_of, out_rows = (np.asarray(a, i64) for a in (block_of, local_of, out_rows))
    channel_map = np.asarray(channel_map, i64)
    if blocks.dtype == np.int16:
        if scale is None or offset is None or scale_row is None:
            raise ValueError("int16 windows need their scale and offset")
        _gather_int16(blocks, block_of, local_of, scale, offset, np.asarray(scale_row, i64), out, out_rows, channel_map)
    elif blocks.dtype == np.float32:
        _gather_copy(blocks, block_of, local_of, out, out_rows, channel_map)
    else:
        _gather_float16(blocks.view(np.uint16), block_of, local_of, out.view(np.uint32), out, out_rows, channel_map)


def gather_stored(
    blocks: np.ndarray,
    block_of: np.ndarray,
    local_of: np.ndarray,
    out: np.ndarray,
    out_rows: np.ndarray,
    channel_map: np.ndarray,
) -> None:
    """As :func:`gather`, copying the stored values (int16 codes, float16) without decoding."""
    i64 = np.int64
    args = (np.asarray(block_of, i64), np.asarray(local_of, i64))
    rows, cmap = np.asarray(out_rows, i64), np.asarray(channel_map, i64)
    if blocks.dtype == np.float16:  # numba has no CPU float16: copy the bits
        _gather_copy(blocks.view(np.uint16), *args, out.view(np.uint16), rows, cmap)
    else:
        _gather_copy(blocks, *args, out, rows, cmap)


# --- blocks anywhere in memory (the shuffle buffer's own blocks and memory-mapped chunk files) ---


@intrinsic
def _pointer(typingctx, address):  # pragma: no cover - compiled
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(types.int64), codegen


@numba.njit(cache=True, nogil=True)
def _at_int16(addresses, cw, block_of, local_of, scale, offset, scale_row, out, out_rows, channel_map):  # pragma: no cover - compiled
    shape = (1, cw, channel_map.shape[0], out.shape[2])
    one = np.zeros(1, np.int64)
    for i in range(block_of.shape[0]):
        block = numba.carray(_pointer(addresses[block_of[i]]), shape, np.int16)
        _gather_int16(block, one, local_of[i : i + 1], scale, offset, scale_row[i : i + 1], out, out_rows[i : i + 1], channel_map)


@numba.njit(cache=True, nogil=True)
def _at_float16(addresses, cw, block_of, local_of, out_bits, out, out_rows, channel_map):  # pragma: no cover - compiled
    shape = (1, cw, channel_map.shape[0], out.shape[2])
    one = np.zeros(1, np.int64)
    for i in range(block_of.shape[0]):
        block = numba.carray(_pointer(addresses[block_of[i]]), shape, np.uint16)
        _gather_float16(block, one, local_of[i : i + 1], out_bits, out, out_rows[i : i + 1], channel_map)


@numba.njit(cache=True, nogil=True)
def _at_copy32(addresses, cw, block_of, local_of, out, out_rows, channel_map):  # pragma: no cover - compiled
    shape = (1, cw, channel_map.shape[0], out.shape[2])
    one = np.zeros(1, np.int64)
    for i in range(block_of.shape[0]):
        block = numba.carray(_pointer(addresses[block_of[i]]), shape, np.float32)
        _gather_copy(block, one, local_of[i : i + 1], out, out_rows[i : i + 1], channel_map)


@numba.njit(cache=True, nogil=True)
def _at_copy16(addresses, cw, block_of, local_of, out, out_rows, channel_map):  # pragma: no cover - compiled
    shape = (1, cw, channel_map.shape[0], out.shape[2])
    one = np.zeros(1, np.int64)
    for i in range(block_of.shape[0]):
        block = numba.carray(_pointer(addresses[block_of[i]]), shape, np.uint16)
        _gather_copy(block, one, local_of[i : i + 1], out, out_rows[i : i + 1], channel_map)


def gather_at(
    addresses: np.ndarray,
    chunk_windows: int,
    dtype: np.dtype,
    block_of: np.ndarray,
    local_of: np.ndarray,
    out: np.ndarray,
    out_rows: np.ndarray,
    channel_map: np.ndarray,
    scale: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    scale_row: np.ndarray | None = None,
) -> None:
    """:func:`gather` (``out`` float32) or :func:`gather_stored` (``out`` in the stored dtype)
    for blocks that need not be one array: block ``b`` is ``chunk_windows`` C-contiguous
    (channels, samples) windows of ``dtype`` starting at memory address ``addresses[b]``
    (``len(channel_map)`` channels, ``out.shape[2]`` samples). The caller keeps that memory
    alive and readable (an array's ``ctypes.data``, a mapped file) during the call.
    """
    i64 = np.int64
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.int16), np.dtype(np.float16), np.dtype(np.float32)) or out.dtype not in (dtype, np.float32):
        raise ValueError(f"cannot gather {dtype} blocks into {out.dtype}")
    if not out.flags.c_contiguous or out.shape[2] <= 0:
        raise ValueError("out must be C-contiguous (batch, channels, samples)")
    args = (np.asarray(addresses, i64), int(chunk_windows), np.asarray(block_of, i64), np.asarray(local_of, i64))
    rows, cmap = np.asarray(out_rows, i64), np.asarray(channel_map, i64)
    if out.dtype == dtype and dtype == np.float32:
        _at_copy32(*args, out, rows, cmap)
    elif out.dtype == dtype:  # stored 16-bit values, copied as bits
        _at_copy16(*args, out.view(np.uint16), rows, cmap)
    elif dtype == np.int16:
        if scale is None or offset is None or scale_row is None:
            raise ValueError("int16 windows need their scale and offset")
        _at_int16(*args, scale, offset, np.asarray(scale_row, i64), out, rows, cmap)
    else:
        _at_float16(*args, out.view(np.uint32), out, rows, cmap)
