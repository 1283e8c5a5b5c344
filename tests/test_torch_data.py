"""Training loaders over stores: shuffled, sharded, mixed, with labels, masks and positions."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="biosig_ingest.torch needs PyTorch (pip install torch)")

from torch.utils.data import DataLoader  # noqa: E402

from biosig_ingest import ingest, open_store  # noqa: E402
from biosig_ingest.config import DEFAULT_QC, SCHEMA_VERSION, LabelSpec, Profile, ResolvedProfile  # noqa: E402
from biosig_ingest.dsp.channels import _standard_positions  # noqa: E402
from biosig_ingest.dsp.quality import FLAT, MISSING  # noqa: E402
from biosig_ingest.store.chunks import ShardSignals  # noqa: E402
from biosig_ingest.store.writer import ShardWriter, open_for_writing  # noqa: E402
from biosig_ingest.torch import (  # noqa: E402
    ChunkPlan,
    Selection,
    StoreDataset,
    StoreIterableDataset,
    collate_windows,
    decode_signals,
    epoch_order,
    select_windows,
    slot_chunks,
)

LABELS = [
    LabelSpec(name="abnormal", kind="categorical", classes=["normal", "abnormal"]),
    LabelSpec(name="events", kind="multilabel", classes=["spike", "sharp", "slow"]),
    LabelSpec(name="age", kind="numeric", unit="years"),
]
EEG10 = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2"]


def synthetic_store(
    path: Path,
    channels: list[str],
    *,
    recordings: int = 6,
    per_recording: int = 25,
    per_shard: int = 3,
    chunk_windows: int = 8,
    dtype: str = "int16",
    fs_hz: float = 100.0,
    samples: int = 200,
    seed: int = 0,
    missing: bool = True,
) -> Path:
    """A store written with the shard writer from synthetic windows (no source files)."""
    prof = Profile(
        name="synthetic", channel_set=list(channels), target_fs_hz=fs_hz, window={"duration_s": samples / fs_hz},
        chunk_windows=chunk_windows, recordings_per_shard=per_shard, dtype=dtype,
    )
    rp = ResolvedProfile(corpus="synthetic", modality="eeg", unit="uV", channels=list(channels), profile=prof, notch_hz=None, qc=DEFAULT_QC["eeg"])
    pos = _standard_positions()
    attrs = {
        "schema_version": SCHEMA_VERSION, "corpus": "synthetic", "modality": "eeg", "unit": "uV",
        "fs_hz": fs_hz, "window_samples": samples, "stride_samples": samples, "window_mode": "fixed",
        "channels": [
            {"name": c, "type": "eeg", "unit": "uV", "original": c, "pair": None,
             "position_m": list(pos[c]) if c in pos else None, "position_frame": "MNE standard_1005 (head)" if c in pos else None}
            for c in channels
        ],
        "labels": [s.model_dump(mode="json") for s in LABELS],
        "splits": {"rule": "synthetic", "column": "subject", "assign": {}, "fractions": None, "seed": 0},
        "profile": rp.model_dump(mode="json"), "profile_hash": rp.digest(), "software": {}, "created_at": "2026-01-01T00:00:00+00:00",
    }
    open_for_writing(path, rp, attrs, overwrite=False)
    rng = np.random.default_rng(seed)
    splits = ["train", "train", "val", "train", "test", "train"]
    for k, first in enumerate(range(0, recordings, per_shard)):
        writer = ShardWriter(path, k, rp, LABELS, f"synthetic-{k}")
        for r in range(first, min(recordings, first + per_shard)):
            writer.begin_recording()
            n = per_recording
            sig = rng.normal(0, 20, (n, len(channels), samples)).astype(np.float32)
            qc = np.zeros((n, len(channels)), np.uint8)
            if missing:  # zero rows make every chunk compressible
                qc[::7, 1] |= MISSING
                sig[::7, 1] = 0.0
            qc[3::11, 0] |= FLAT
            events = (rng.random((n, 3)) < 0.3).astype(np.uint8)
            abnormal = np.where(np.arange(n) % 5 == 0, -1, r % 2).astype(np.int16)
            age = np.where(np.arange(n) % 6 == 0, np.nan, 20.0 + r).astype(np.float32)
            writer.add_windows(sig, np.arange(n) * samples / fs_hz, qc, {"abnormal": abnormal, "events": events, "age": age})
            writer.end_recording(
                {"recording_id": f"rec{r:02d}", "subject": f"subj{r // 2}", "session": "s1", "split": splits[r % 6],
                 "relpath": f"rec{r:02d}.edf", "status": "ok", "error_type": None, "error": None}
            )
        writer.commit()
    return path


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return open_store(synthetic_store(tmp_path_factory.mktemp("synth") / "s.zarr", EEG10))


def epoch_windows(ds, workers: int = 0, **loader) -> list[np.ndarray]:
    out = []
    for b in DataLoader(ds, batch_size=None, num_workers=workers, **loader):
        out.append(b["window"].numpy())
    return out


def test_one_epoch_over_2_workers_and_2_ranks_yields_every_selected_window_exactly_once(synth):
    sel = dict(split="train", exclude_qc=("flat",))
    expected = select_windows(synth, **sel)
    assert 0 < len(expected) < len(synth)
    seen = []
    for rank in range(2):
        ds = StoreIterableDataset(Selection(synth.path, **sel), batch_size=16, seed=7, rank=rank, world_size=2)
        ds.set_epoch(3)
        batches = []
        for b in DataLoader(ds, batch_size=None, num_workers=2):
            batches.append(b)
            np.testing.assert_array_equal(b["signals"].numpy(), synth.read(b["window"].numpy()))
        assert len(batches) >= 2  # both workers contributed
        seen += [b["window"].numpy() for b in batches]
    got = np.concatenate(seen)
    assert len(got) == len(expected)
    np.testing.assert_array_equal(np.sort(got), expected)


def test_chunks_are_partitioned_across_slots_without_duplicates_or_gaps(synth):
    plan = ChunkPlan.build(synth, np.arange(len(synth)))
    assert plan.n_chunks == sum(s.n_chunks for s in synth._signals.values())
    order = epoch_order(plan.n_chunks, seed=1, epoch=2, stream=0, shuffle=True)
    parts = [slot_chunks(order, s, 6) for s in range(6)]
    assert sorted(np.concatenate(parts).tolist()) == list(range(plan.n_chunks))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_same_seed_and_epoch_give_the_same_order_and_another_epoch_another(synth):
    def order(epoch: int, seed: int = 0, workers: int = 0) -> np.ndarray:
        ds = StoreIterableDataset(synth.path, batch_size=10, seed=seed)
        ds.set_epoch(epoch)
        return np.concatenate(epoch_windows(ds, workers))

    a = order(1)
    np.testing.assert_array_equal(a, order(1))
    np.testing.assert_array_equal(np.sort(a), np.arange(len(synth)))
    b = order(2)
    assert not np.array_equal(a, b) and np.array_equal(np.sort(b), np.arange(len(synth)))
    assert not np.array_equal(a, order(1, seed=5))
    np.testing.assert_array_equal(order(4, workers=2), order(4, workers=2))


def test_set_epoch_reaches_persistent_workers(synth):
    ds = StoreIterableDataset(synth.path, batch_size=10, seed=0)
    loader = DataLoader(ds, batch_size=None, num_workers=2, persistent_workers=True)
    orders = []
    for epoch in range(2):
        ds.set_epoch(epoch)
        orders.append(np.concatenate([b["window"].numpy() for b in loader]))
    assert not np.array_equal(orders[0], orders[1])
    fresh = StoreIterableDataset(synth.path, batch_size=10, seed=0)
    fresh.set_epoch(1)
    np.testing.assert_array_equal(orders[1], np.concatenate(epoch_windows(fresh, 2)))


def test_shuffling_mixes_windows_from_many_chunks_in_each_batch(synth):
    ds = StoreIterableDataset(synth.path, batch_size=16, seed=0, shuffle_buffer=64)
    batches = [b["window"].numpy() for b in ds]
    chunks_per_batch = [len(np.unique(w // 8)) for w in batches[:-1]]
    assert np.mean(chunks_per_batch) > 5  # 16 windows from 8-window chunks
    seq = [b["window"].numpy() for b in StoreIterableDataset(synth.path, batch_size=16, shuffle=False)]
    np.testing.assert_array_equal(np.concatenate(seq), np.arange(len(synth)))


def test_batches_carry_labels_masks_and_positions_as_tensors(synth):
    ds = StoreIterableDataset(synth.path, batch_size=32, seed=0)
    batch = next(iter(ds))
    w = batch["window"].numpy()
    assert batch["signals"].dtype == torch.float32 and batch["signals"].shape == (32, 10, 200)
    lab = batch["labels"]
    assert lab["abnormal"].dtype == torch.int64 and set(lab["abnormal"].tolist()) <= {-1, 0, 1}
    np.testing.assert_array_equal(lab["abnormal"].numpy(), synth.label_array("abnormal")[w])
    assert lab["events"].dtype == torch.float32 and lab["events"].shape == (32, 3)
    np.testing.assert_array_equal(lab["events"].numpy(), synth.label_array("events")[w])
    assert lab["age"].dtype == torch.float32
    np.testing.assert_array_equal(lab["age"].numpy(), synth.label_array("age")[w])
    mask = batch["channel_mask"].numpy()
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, (synth.qc[w] & MISSING) == 0)  # default: 'missing' masks
    pos = batch["channel_positions"].numpy()
    table = np.array([row["position_m"] for row in synth.attrs["channels"]], np.float32)
    assert pos.shape == (32, 10, 3) and np.allclose(pos, table[None])
    assert batch["store"].tolist() == [0] * 32
    masked = StoreIterableDataset(synth.path, batch_size=32, seed=0, mask_qc=("missing", "flat"))
    mb = next(iter(masked))
    np.testing.assert_array_equal(mb["channel_mask"].numpy(), (synth.qc[mb["window"].numpy()] & (MISSING | FLAT)) == 0)


def test_selection_uses_the_tables_and_never_reads_signals(synth, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("a signal chunk was read")

    monkeypatch.setattr(ShardSignals, "read_chunk", boom)
    meta = synth.metadata
    train = select_windows(synth, split="train")
    assert np.array_equal(train, np.nonzero(meta["split"].to_numpy() == "train")[0])
    two = select_windows(synth, subjects=["subj0", "subj2"], split=["train", "val", "test"])
    assert set(meta.loc[two, "subject"]) == {"subj0", "subj2"}
    labelled = select_windows(synth, require_labels=["abnormal", "age"])
    assert (synth.label_array("abnormal")[labelled] >= 0).all() and np.isfinite(synth.label_array("age")[labelled]).all()
    clean = select_windows(synth, exclude_qc=["flat", "missing"])
    assert not (synth.qc[clean] & (FLAT | MISSING)).any()
    one_bad = select_windows(synth, exclude_qc=["flat", "missing"], max_flagged_channels=1)
    assert len(clean) < len(one_bad) <= len(synth)
    late = select_windows(synth, where=lambda m: m["start_s"] >= 10.0)
    assert (meta.loc[late, "start_s"] >= 10.0).all()
    ds = StoreIterableDataset(Selection(synth.path, split="val", require_labels="abnormal"), batch_size=8)
    assert ds.num_windows == len(select_windows(synth, split="val", require_labels="abnormal"))


def test_map_style_dataset_in_a_dataloader_gives_the_store_windows(synth):
    ds = StoreDataset(Selection(synth.path, split="train"), labels=["abnormal"])
    idx = select_windows(synth, split="train")
    assert len(ds) == len(idx)
    item = ds[3]
    assert item["signals"].shape == (10, 200) and int(item["window"]) == idx[3]
    np.testing.assert_array_equal(ds[-1]["signals"].numpy(), synth.read([idx[-1]])[0])
    got, windows = [], []
    for b in DataLoader(ds, batch_size=12, shuffle=False, collate_fn=collate_windows, num_workers=2):
        assert set(b) >= {"signals", "channel_mask", "channel_positions", "labels", "window", "store"}
        assert list(b["labels"]) == ["abnormal"]
        got.append(b["signals"].numpy())
        windows.append(b["window"].numpy())
    np.testing.assert_array_equal(np.concatenate(windows), idx)
    np.testing.assert_array_equal(np.concatenate(got), synth.read(idx))
    with pytest.raises(IndexError):
        ds[len(ds)]


@pytest.fixture(scope="module")
def eeg62_store(tmp_path_factory):
    """A 62-channel EEG store from an EDF written with pyedflib, via the generic edf corpus."""
    import pyedflib

    names = [n for n in _standard_positions() if n[-1].isdigit() or n[-1] == "z"][:62]
    assert len(names) == 62
    root = tmp_path_factory.mktemp("eeg62")
    path = root / "sub01" / "task.edf"
    path.parent.mkdir(parents=True)
    fs, seconds = 200, 40
    rng = np.random.default_rng(5)
    writer = pyedflib.EdfWriter(str(path), len(names), file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        writer.setSignalHeaders(
            [{"label": f"EEG {n}", "dimension": "uV", "sample_frequency": fs, "physical_max": 500.0,
              "physical_min": -500.0, "digital_max": 32767, "digital_min": -32768} for n in names]
        )
        writer.writeSamples([rng.normal(0, 20, fs * seconds) for _ in names])
    finally:
        writer.close()
    out = root / "eeg62.zarr"
    ingest("edf", root, out)
    store = open_store(out)
    assert len(store.channels) == 62 and store.fs_hz == 200 and store.window_samples == 2000
    return store, names


def test_a_mixture_of_19_and_62_channel_eeg_stores_gives_a_union_layout_and_a_correct_mask(tuab_store, eeg62_store):
    tuab = open_store(tuab_store[0])
    e62, _ = eeg62_store
    assert len(tuab.channels) == 19 and tuab.window_samples == e62.window_samples
    ds = StoreIterableDataset([tuab.path, e62.path], channels="union", batch_size=8, seed=0, labels=["abnormal"])
    union = ds.channels
    lower = [c.casefold() for c in union]
    assert union[:19] == tuab.channels  # the first store's order, then new channels in order of appearance
    assert len(set(lower)) == len(lower) and set(lower) == {c.casefold() for c in tuab.channels + e62.channels}
    assert lower[19:] == [c.casefold() for c in e62.channels if c.casefold() not in {t.casefold() for t in tuab.channels}]
    where = {c.casefold(): i for i, c in enumerate(union)}
    stores = [tuab, e62]
    counts = [0, 0]
    for batch in ds:
        x = batch["signals"].numpy()
        mask = batch["channel_mask"].numpy()
        assert x.shape[1:] == (len(union), 2000) and batch["channel_positions"].shape[1:] == (len(union), 3)
        for row, (s, w) in enumerate(zip(batch["store"].tolist(), batch["window"].tolist(), strict=True)):
            counts[s] += 1
            store = stores[s]
            cols = [where[c.casefold()] for c in store.channels]
            expected_mask = np.zeros(len(union), bool)
            expected_mask[cols] = (store.qc[w] & MISSING) == 0
            np.testing.assert_array_equal(mask[row], expected_mask)
            np.testing.assert_array_equal(x[row, cols], store.read([w])[0])
            assert not x[row, ~np.isin(np.arange(len(union)), cols)].any()  # absent channels are zeros
        labels = batch["labels"]["abnormal"].numpy()
        assert (labels[batch["store"].numpy() == 1] == -1).all()  # the 62-channel store has no such label
    assert counts == [len(tuab), len(e62)]
    pos = next(iter(ds))["channel_positions"][0].numpy()
    assert np.isfinite(pos).all()  # every channel of both stores has a standard position
    inter = StoreIterableDataset([tuab.path, e62.path], channels="intersection", batch_size=8)
    assert [c.casefold() for c in inter.channels] == [c.casefold() for c in tuab.channels if c.casefold() in {e.casefold() for e in e62.channels}]
    assert next(iter(inter))["channel_mask"].shape[1] == len(inter.channels)


def test_stores_of_different_rates_are_refused(tmp_path, synth):
    other = open_store(synthetic_store(tmp_path / "fast.zarr", EEG10, fs_hz=200.0, samples=200, recordings=1))
    with pytest.raises(ValueError, match="different sampling rates"):
        StoreIterableDataset([synth.path, other.path])
    longer = open_store(synthetic_store(tmp_path / "long.zarr", EEG10, samples=300, recordings=1))
    with pytest.raises(ValueError, match="window lengths"):
        StoreIterableDataset([synth.path, longer.path])


def test_mixture_weights_set_the_share_of_each_store(synth, tmp_path):
    other = open_store(synthetic_store(tmp_path / "b.zarr", ["Cz", "Pz", "Fz", "C3"], recordings=12, seed=1))
    ds = StoreIterableDataset([synth.path, other.path], weights=[3.0, 1.0], stop="first", batch_size=20, seed=0)
    src = np.concatenate([b["store"].numpy() for b in ds])
    assert (src == 0).sum() <= len(synth) and abs((src == 0).mean() - 0.75) < 0.05
    assert ds.channels[:10] == EEG10 and ds.channels[10:] == ["Cz", "Pz", "Fz"]  # C3 is already there
    full = StoreIterableDataset([synth.path, other.path], batch_size=20, seed=0)  # stop='all': every window once
    both = [(b["store"].numpy(), b["window"].numpy()) for b in full]
    s = np.concatenate([a for a, _ in both])
    w = np.concatenate([b for _, b in both])
    assert sorted(w[s == 0].tolist()) == list(range(len(synth))) and sorted(w[s == 1].tolist()) == list(range(len(other)))


def test_even_batches_give_every_rank_the_same_number_of_full_batches(synth):
    per_rank = []
    for rank in range(2):
        ds = StoreIterableDataset(Selection(synth.path, split="train"), batch_size=8, rank=rank, world_size=2, even=True)
        sizes = [len(b["window"]) for b in DataLoader(ds, batch_size=None, num_workers=2)]
        assert set(sizes) == {8}
        per_rank.append(len(sizes))
    assert per_rank[0] == per_rank[1] > 0


def test_undecoded_int16_batches_decode_to_the_same_signals(synth):
    raw = next(iter(StoreIterableDataset(synth.path, batch_size=16, seed=3, decode=False)))
    dec = next(iter(StoreIterableDataset(synth.path, batch_size=16, seed=3)))
    assert raw["signals"].dtype == torch.int16 and raw["signals_scale"].shape == (16, 10)
    np.testing.assert_array_equal(decode_signals(raw).numpy(), dec["signals"].numpy())
    torch_side = decode_signals({**raw, "signals": raw["signals"].clone()}, )
    np.testing.assert_array_equal(torch_side.numpy(), dec["signals"].numpy())


def test_single_windows_and_pin_memory_work_with_a_batching_dataloader(synth):
    ds = StoreIterableDataset(synth.path, batch_size=None, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CPU-only torch warns that there is nothing to pin to
        loader = DataLoader(ds, batch_size=10, collate_fn=collate_windows, pin_memory=True, num_workers=2)
        batches = list(loader)
    assert batches[0]["signals"].shape == (10, 10, 200) and batches[0]["labels"]["events"].shape == (10, 3)
    if torch.cuda.is_available():
        assert batches[0]["signals"].is_pinned()
    assert sorted(np.concatenate([b["window"].numpy() for b in batches]).tolist()) == list(range(len(synth)))


def test_a_dataset_pickles_for_spawned_workers(synth):
    import pickle

    ds = StoreIterableDataset(Selection(synth.path, split="train"), batch_size=16, seed=0)
    ds.set_epoch(2)
    clone = pickle.loads(pickle.dumps(ds))
    assert clone.epoch == 2
    np.testing.assert_array_equal(np.concatenate([b["window"].numpy() for b in clone]), np.concatenate([b["window"].numpy() for b in ds]))
    m = pickle.loads(pickle.dumps(StoreDataset(synth.path)))
    np.testing.assert_array_equal(m[5]["signals"].numpy(), synth.read([5])[0])


def test_de_features_of_a_feature_set_come_with_the_batches(tmp_path):
    from biosig_ingest.features.store import compute_features

    st = open_store(synthetic_store(tmp_path / "f.zarr", EEG10, recordings=2))
    compute_features(st.path, name="de5")
    ds = StoreIterableDataset([st.path], batch_size=8, seed=0, features="de5")
    b = next(iter(ds))
    w = b["window"].numpy()
    assert b["features"].shape == (8, 10, 5) and b["features"].dtype == torch.float32
    np.testing.assert_array_equal(b["features"].numpy(), st.features("de5", indices=w))
    item = StoreDataset(st.path, features="de5")[3]
    np.testing.assert_array_equal(item["features"].numpy(), st.features("de5", indices=[3])[0])
    custom = StoreIterableDataset(st.path, batch_size=4, features=lambda store, w: np.stack([w.astype(np.float32)] * 10, axis=1)[..., None])
    c = next(iter(custom))
    np.testing.assert_array_equal(c["features"][:, 0, 0].numpy(), c["window"].numpy().astype(np.float32))


def test_batches_a_training_loop_keeps_are_never_overwritten_by_later_ones(synth):
    ds = StoreIterableDataset(synth.path, batch_size=4, seed=1)  # 38 batches, more than the recycled buffers
    loader = DataLoader(ds, batch_size=None, num_workers=2, persistent_workers=True)
    kept = list(loader)  # the workers' buffers are all in use: they allocate more
    views = [(b["signals"][1:3], b["window"][1:3].numpy()) for b in kept[:5]]  # views hold buffers too
    kept = kept[5:]
    for epoch in (1, 2):  # the same workers, reusing only what was released
        ds.set_epoch(epoch)
        for b in loader:
            np.testing.assert_array_equal(b["signals"].numpy(), synth.read(b["window"].numpy()))
    for b in kept:
        np.testing.assert_array_equal(b["signals"].numpy(), synth.read(b["window"].numpy()))
    for v, w in views:
        np.testing.assert_array_equal(v.numpy(), synth.read(w))
    del kept, views, v, b
    import gc

    gc.collect()
    assert not any(ds._slots.flags)  # every buffer given back to the workers once released


def _mapped(path: Path) -> int:
    """Chunk files of the store at ``path`` mapped in this process."""
    return sum(str(path) in line for line in Path("/proc/self/maps").read_text().splitlines())


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="counts mapped files in /proc")
def test_chunks_kept_in_their_files_and_decompressed_ones_mix_in_one_epoch(tmp_path, monkeypatch):
    # without zero rows, full int16 chunks do not compress: Blosc keeps them as they are and the
    # loader decodes their windows from the mapped files; each shard's last, partial chunk compresses
    st = open_store(synthetic_store(tmp_path / "raw.zarr", EEG10, missing=False))
    real = ShardSignals.map_raw
    opened: list[bool] = []

    def watch(self, k):
        raw = real(self, k)
        opened.append(raw is not None)
        return raw

    def epoch(**kw):
        ds = StoreIterableDataset(st.path, batch_size=16, seed=2, **kw)
        ds.set_epoch(1)
        out = [(b["window"].numpy(), b["signals"].numpy()) for b in ds]
        assert _mapped(st.path) == 0  # every chunk file unmapped at the end of the epoch
        return out

    monkeypatch.setattr(ShardSignals, "map_raw", watch)
    natural = epoch()
    assert 0 < sum(opened) < len(opened)
    monkeypatch.setattr(ShardSignals, "map_raw", lambda self, k: real(self, k) if k % 2 else None)
    every_other = epoch(prefetch=0)
    monkeypatch.setattr(ShardSignals, "map_raw", lambda self, k: None)
    decompressed = epoch()
    for a, b, c in zip(natural, every_other, decompressed, strict=True):  # the same draws whatever the path
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[0], c[0])
        np.testing.assert_array_equal(a[1], st.read(a[0]))
        np.testing.assert_array_equal(b[1], a[1])
        np.testing.assert_array_equal(c[1], a[1])
    assert len(natural) * 16 >= len(st) > (len(natural) - 1) * 16
    ds = StoreIterableDataset(st.path, batch_size=16, seed=2)
    got = [(b["window"].numpy(), b["signals"].numpy()) for b in DataLoader(ds, batch_size=None, num_workers=2)]
    np.testing.assert_array_equal(np.sort(np.concatenate([w for w, _ in got])), np.arange(len(st)))
    for w, x in got:
        np.testing.assert_array_equal(x, st.read(w))
    monkeypatch.setattr(ShardSignals, "map_raw", real)
    raw = next(iter(StoreIterableDataset(st.path, batch_size=16, seed=2, decode=False)))
    np.testing.assert_array_equal(decode_signals(raw).numpy(), st.read(raw["window"].numpy()))
    half = open_store(synthetic_store(tmp_path / "half.zarr", EEG10, missing=False, dtype="float16"))
    opened.clear()
    monkeypatch.setattr(ShardSignals, "map_raw", watch)
    for b in StoreIterableDataset(half.path, batch_size=16, seed=2):
        np.testing.assert_array_equal(b["signals"].numpy(), half.read(b["window"].numpy()))
    assert any(opened)  # float16 chunks mapped too
    monkeypatch.setattr(ShardSignals, "map_raw", real)
    it = iter(StoreIterableDataset(st.path, batch_size=16, seed=2))
    next(it)
    assert _mapped(st.path) > 0
    it.close()  # an epoch abandoned midway unmaps its files too
    assert _mapped(st.path) == 0
