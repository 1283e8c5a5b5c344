"""Bipolar montages defined once as electrode pairs, computed from -REF or -LE files alike."""

from __future__ import annotations

import numpy as np

from biosig_ingest import ingest, open_store
from biosig_ingest.manifest import load_manifest

TCP_TUH_NAMES = [
    "FP1-F7", "F7-T3", "T3-T5", "T5-O1", "FP2-F8", "F8-T4", "T4-T6", "T6-O2", "A1-T3", "T3-C3", "C3-CZ",
    "CZ-C4", "C4-T4", "T4-A2", "FP1-F3", "F3-C3", "C3-P3", "P3-O1", "FP2-F4", "F4-C4", "C4-P4", "P4-O2",
]


def test_tcp_montage_is_the_tuh_channel_table_in_canonical_names():
    m = load_manifest("tuh")
    native = {c.canonical: c.native for c in m.channels}
    assert ["-".join(native[e] for e in pair) for pair in m.montages["tcp22"]] == TCP_TUH_NAMES
    tcp16 = ["-".join(native[e] for e in pair) for pair in m.montages["tcp16"]]
    assert tcp16 == [n for n in TCP_TUH_NAMES if n not in {"A1-T3", "T3-C3", "C3-CZ", "CZ-C4", "C4-T4", "T4-A2"}]


def test_tcp_channels_in_the_store_equal_differences_of_the_referential_channels(tuab, tmp_path):
    ingest("tuab", tuab.root, tmp_path / "ref.zarr", "ref21")
    ingest("tuab", tuab.root, tmp_path / "tcp.zarr", "tcp22")
    ref, tcp = open_store(tmp_path / "ref.zarr"), open_store(tmp_path / "tcp.zarr")
    assert len(ref) == len(tcp) and tcp.channels[0] == "Fp1-F7" and tcp.channels[8] == "A1-T7"
    table = {row["name"]: row for row in tcp.attrs["channels"]}
    assert table["F7-T7"]["original"] == "F7-T3" and table["F7-T7"]["pair"] == ["F7", "T7"]
    pairs = load_manifest("tuh").montages["tcp22"]
    a = ref.read(np.arange(len(ref)))
    b = tcp.read(np.arange(len(tcp)))
    meta = ref.metadata
    references = {f.relpath: f.reference for f in tuab.files}
    seen = set()
    for k, (anode, cathode) in enumerate(pairs):
        expected = a[:, ref.channels.index(anode)] - a[:, ref.channels.index(cathode)]
        # linear filtering and resampling commute with the subtraction: float32 rounding only
        np.testing.assert_allclose(b[:, k], expected, atol=1e-3 * np.abs(expected).max())
    for rid in meta.recording_id.unique():
        relpath = ref.recordings.set_index("recording_id").loc[rid, "relpath"]
        seen.add(references[relpath])
    assert seen == {"REF", "LE"}
