"""Signal encodings of a store: int16 (+ scale and offset), float16, float32 (docs/loading.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyedflib
import pytest
import yaml

from biosig_ingest import ingest, open_store
from biosig_ingest.config import Profile
from biosig_ingest.store.chunks import ShardSignals
from biosig_ingest.store.encoding import (
    CODE_MAX,
    NAN_CODE,
    decode,
    encode,
    error_bound,
    gather,
    gather_at,
)
from biosig_ingest.store.inspect import validate

FS = 200
NAMES = ["Fp1", "Fp2", "C3", "C4", "O1", "O2"]


def write_edf(path: Path, seconds: int = 60, seed: int = 0, digital_range: tuple[int, int] = (-32768, 32767)) -> np.ndarray:
    """An EDF+ of random-walk EEG; returns its digital samples (channels, samples)."""
    rng = np.random.default_rng(seed)
    n = FS * seconds
    lo, hi = digital_range
    walk = np.cumsum(rng.integers(-60, 61, size=(len(NAMES), n)), axis=1) + rng.integers(-2000, 2000, size=(len(NAMES), 1))
    digital = np.clip(walk, lo, hi).astype(np.int32)
    digital[2, 5 * FS : 7 * FS] = hi  # a clipped stretch
    digital[3, 20 * FS : 30 * FS] = 17  # a flat stretch
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = pyedflib.EdfWriter(str(path), len(NAMES), file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        writer.setSignalHeaders(
            [
                {"label": f"EEG {name}", "dimension": "uV", "sample_frequency": FS, "physical_max": 3276.7,
                 "physical_min": -3276.8, "digital_max": hi, "digital_min": lo}
                for name in NAMES
            ]
        )
        writer.writeSamples([row for row in digital], digital=True)
    finally:
        writer.close()
    return digital


def profile(tmp: Path, dtype: str, filtered: bool, chunk_windows: int = 4) -> Path:
    body = {
        "target_fs_hz": FS,
        "channel_set": "auto",
        "missing_channels": "mask",
        "filters": {"highpass_hz": 0.5, "lowpass_hz": 70.0, "notch": 50} if filtered else {"highpass_hz": None, "lowpass_hz": None, "notch": None},
        "window": {"mode": "fixed", "duration_s": 5.0},
        "chunk_windows": chunk_windows,
        "dtype": dtype,
    }
    path = tmp / f"{dtype}-{'f' if filtered else 'raw'}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.fixture(scope="module")
def edf_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("edf-enc")
    digital = write_edf(root / "sub01" / "rest.edf")
    return root, digital


@pytest.fixture(scope="module")
def stores(edf_folder, tmp_path_factory):
    root, _ = edf_folder
    tmp = tmp_path_factory.mktemp("enc-stores")
    out = {}
    for dtype in ("float32", "float16", "int16"):
        for filtered in (False, True):
            path = tmp / f"{dtype}-{filtered}.zarr"
            report = ingest("edf", root, path, profile(tmp, dtype, filtered))
            assert report.recordings_ok == 1
            out[dtype, filtered] = open_store(path)
    return out


def test_an_unfiltered_edf_stored_as_int16_keeps_its_digital_samples_exactly(stores, edf_folder):
    _, digital = edf_folder
    ref, st = stores["float32", False], stores["int16", False]
    assert st.encoding == "int16" and st.shard_attrs[st.shard_names[0]]["encoding"] == {
        "dtype": "int16", "rows": len(st) * len(NAMES), "exact_rows": len(st) * len(NAMES)
    }
    x, y = ref.read(np.arange(len(ref))), st.read(np.arange(len(st)))
    ulp = np.spacing(np.abs(x).max(axis=2, keepdims=True))
    assert np.all(np.abs(y - x) <= 4 * ulp)  # the float32 pipeline's values, within 4 ulps
    # the stored codes are the EDF's digital values minus one constant per window and channel
    codes = np.asarray(st._groups[st.shard_names[0]]["signals"][:]).astype(np.int64)
    w = st.window_samples
    src = digital[:, : len(st) * w].reshape(len(NAMES), len(st), w).transpose(1, 0, 2)
    diff = src - codes
    assert np.all(diff.max(axis=2) == diff.min(axis=2))
    assert np.abs(codes).max() <= CODE_MAX


def test_a_filtered_int16_store_reads_back_within_its_stated_bound(stores):
    ref, st = stores["float32", True], stores["int16", True]
    x, y = ref.read(np.arange(len(ref))), st.read(np.arange(len(st)))
    g = st._groups[st.shard_names[0]]
    scale, offset = np.asarray(g["signals_scale"][:]), np.asarray(g["signals_offset"][:])
    bound = error_bound(scale, offset)
    err = np.abs(y - x).max(axis=2)
    assert np.all(err <= bound)
    # half a step of the row's own range: (max - min) / 131068, plus float32 rounding
    span = x.max(axis=2) - x.min(axis=2)
    assert np.all(err <= span / (4 * CODE_MAX) + 2 * np.spacing(np.abs(x).max(axis=2)))
    assert st.shard_attrs[st.shard_names[0]]["encoding"]["exact_rows"] == 0  # filtered: quantized
    assert validate(st.path) == []


def test_float16_stores_half_the_bytes_within_float16_precision(stores):
    ref, st = stores["float32", True], stores["float16", True]
    x, y = ref.read(np.arange(len(ref))), st.read(np.arange(len(st)))
    np.testing.assert_allclose(y, x, rtol=2.0**-11, atol=2.0**-24)
    assert st.shard_attrs[st.shard_names[0]]["encoding"] == {"dtype": "float16", "saturated_samples": 0}
    assert np.asarray(st._groups[st.shard_names[0]]["signals"][:1]).dtype == np.float16
    assert validate(st.path) == []


def test_store_api_is_the_same_whatever_the_encoding(stores):
    ref = stores["float32", True]
    for dtype in ("float16", "int16"):
        st = stores[dtype, True]
        assert len(st) == len(ref) and st.channels == ref.channels
        item = st[3]
        assert item.signal.dtype == np.float32 and item.signal.shape == (len(NAMES), st.window_samples)
        np.testing.assert_allclose(item.signal, ref[3].signal, rtol=1e-3, atol=0.02)
        picked = st.read([5, -1, 0, 5])  # any order, repeats, negative indices
        assert picked.dtype == np.float32 and np.array_equal(picked[0], picked[3])
        assert item.metadata["recording_id"] == ref[3].metadata["recording_id"]


def test_an_int16_shard_opens_in_xarray_and_decodes_with_scale_and_offset(stores):
    xr = pytest.importorskip("xarray")
    st = stores["int16", True]
    ds = xr.open_zarr(str(st.path), group=f"shards/{st.shard_names[0]}", consolidated=False)
    assert ds["signals"].dtype == np.int16 and ds["signals_scale"].dims == ("window", "channel")
    physical = ds["signals"].astype("float32") * ds["signals_scale"] + ds["signals_offset"]
    np.testing.assert_array_equal(physical.transpose("window", "channel", "time").values, st.read(np.arange(len(st))))


def test_chunk_files_decompressed_directly_equal_zarr_reads(stores):
    for (dtype, _), st in stores.items():
        for name in st.shard_names:
            fast = ShardSignals(st._groups[name])
            slow = ShardSignals(st._groups[name])
            slow._dir = None  # the Zarr path
            assert fast._dir is not None, dtype
            a, b = fast.new_block(), slow.new_block()
            for k in range(fast.n_chunks):
                n = fast.read_chunk(k, a)
                assert slow.read_chunk(k, b) == n
                assert np.array_equal(a[:n], b[:n])



def test_mapped_uncompressed_chunk_files_gather_as_the_decompressed_chunks(stores, monkeypatch):

    from biosig_ingest.store import chunks

    some_raw = None
    for (dtype, filtered), st in stores.items():
        sig = ShardSignals(st._groups[st.shard_names[0]])
        scale, offset = sig.scale_offset()
        block = sig.new_block()
        raw = 0
        for k in range(sig.n_chunks):
            mapped = sig.map_raw(k)
            if mapped is None:
                continue
            raw += 1
            some_raw = (sig, k)
            try:
                n = sig.read_chunk(k, block)
                lo = k * sig.chunk_windows
                pos = np.arange(n)[::-1].copy()
                rows = np.arange(n)
                cmap = np.arange(sig.n_channels)[::-1].copy()  # channels reversed too
                addresses = np.array([mapped.address])
                want = np.empty((n, sig.n_channels, sig.n_samples), np.float32)
                got = np.empty_like(want)
                gather(block[None], np.zeros(n, np.int64), pos, want, rows, cmap, scale, offset, pos + lo)
                gather_at(addresses, sig.chunk_windows, sig.dtype, np.zeros(n, np.int64), pos, got, rows, cmap, scale, offset, pos + lo)
                assert np.array_equal(got, want, equal_nan=True)
                kept = np.empty((n, sig.n_channels, sig.n_samples), sig.dtype)  # stored values, undecoded
                gather_at(addresses, sig.chunk_windows, sig.dtype, np.zeros(n, np.int64), pos, kept, rows, cmap)
                assert np.array_equal(kept.view(np.uint16), block[pos][:, cmap].view(np.uint16))
            finally:
                mapped.close()
        # filtered int16 and float16 fill 16 bits and are kept uncompressed (but for chunks with
        # a flat stretch: constant rows); float32 (byte shuffle), unfiltered int16 (bit shuffle) compress
        if filtered and dtype != "float32":
            assert raw > 0, dtype
        elif dtype == "float32" or dtype == "int16":
            assert raw == 0, (dtype, filtered)
    assert some_raw is not None
    sig, k = some_raw
    mapped = sig.map_raw(k)
    assert mapped is not None
    mapped.close()
    mapped.close()  # twice is harmless

    def not_cached(*args):
        raise BlockingIOError("not in the page cache")

    monkeypatch.setattr(chunks.os, "preadv", not_cached)  # a cold file is read whole instead
    assert sig.map_raw(k) is None


def test_int16_rows_with_nan_keep_nan_where_it_was():
    x = np.random.default_rng(1).normal(0, 30, (3, 2, 500)).astype(np.float32)
    x[0, 1, 10:20] = np.nan
    x[2, 0] = np.nan  # a whole row
    e = encode(x, "int16")
    assert e.data[0, 1, 10] == NAN_CODE and np.all(e.data[2, 0] == NAN_CODE)
    y = decode(e.data, e.scale, e.offset)
    assert np.array_equal(np.isnan(y), np.isnan(x))
    ok = ~np.isnan(x)
    assert np.all(np.abs(y - x)[ok] <= np.broadcast_to(error_bound(e.scale, e.offset)[..., None], x.shape)[ok])


@pytest.mark.parametrize(
    "phys, dig",
    [
        ((-3276.8, 3276.7), (-32768, 32767)),  # 0.1 uV steps, full 16-bit range
        ((-1000.0, 1000.0), (-32767, 32767)),  # 0.0305 uV steps
        ((-5.0, 5.0), (-2048, 2047)),  # 12-bit ECG-like
        ((-262144.0, 262143.0), (-8388608, 8388607)),  # 24-bit BDF: windows span few steps
    ],
)
def test_digital_lattices_of_common_adc_ranges_are_found(phys, dig):
    rng = np.random.default_rng(2)
    gain = np.float32((phys[1] - phys[0]) / (dig[1] - dig[0]))
    off = np.float32(phys[0] - float(gain) * dig[0])
    d = np.clip(np.cumsum(rng.integers(-40, 41, (16, 8, 2000)), axis=2) + rng.integers(-3000, 3000, (16, 8, 1)), *dig)
    x = d.astype(np.float32) * gain + off  # as the EDF reader computes physical values
    e = encode(x, "int16")
    assert e.exact is not None and e.exact.all()
    y = decode(e.data, e.scale, e.offset)
    assert np.all(np.abs(y - x) <= 4 * np.spacing(np.abs(x).max(axis=2, keepdims=True)))


def test_off_lattice_rows_are_quantized_over_their_range():
    x = np.random.default_rng(3).normal(0, 50, (4, 3, 1000)).astype(np.float32)
    e = encode(x, "int16")
    assert e.exact is not None and not e.exact.any()
    assert e.data.min() == -CODE_MAX and e.data.max() == CODE_MAX  # the full code range is used
    const = np.full((1, 1, 100), 7.25, np.float32)
    c = encode(const, "int16")
    assert c.exact is not None and c.exact.all() and np.array_equal(decode(c.data, c.scale, c.offset), const)


def test_float16_saturates_beyond_its_range_and_counts_it():
    x = np.zeros((2, 1, 10), np.float32)
    x[1, 0, :3] = [1e5, -7e4, 65504.0]
    e = encode(x, "float16")
    assert e.saturated is not None and e.saturated.tolist() == [0, 2]
    assert decode(e.data, None, None)[1, 0, :3].tolist() == [65504.0, -65504.0, 65504.0]


def test_unfiltered_wfdb_records_stored_as_int16_are_exact_on_every_row(ptbxl, tmp_path):
    from biosig_ingest.manifest import load_manifest

    base = dict(load_manifest("ptbxl").profiles["raw500"])
    stores = {}
    for dtype in ("float32", "int16"):
        prof = Profile(name=f"raw500-{dtype}", **{**base, "dtype": dtype})
        ingest("ptbxl", ptbxl.root, tmp_path / f"{dtype}.zarr", prof)
        stores[dtype] = open_store(tmp_path / f"{dtype}.zarr")
    st = stores["int16"]
    stats = [st.shard_attrs[s]["encoding"] for s in st.shard_names]
    assert all(s["exact_rows"] == s["rows"] > 0 for s in stats)
    x, y = stores["float32"].read(np.arange(len(st))), st.read(np.arange(len(st)))
    assert np.array_equal(np.isnan(x), np.isnan(y))
    ulp = np.spacing(np.nanmax(np.abs(x), axis=2, keepdims=True))
    ok = ~np.isnan(x)
    assert np.all((np.abs(y - x) <= 4 * ulp)[ok])
