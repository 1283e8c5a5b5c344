"""The generic `edf` corpus: any folder of EDF/EDF+/BDF files, channels named canonically."""

from __future__ import annotations

import numpy as np
import pyedflib
import pytest

from biosig_ingest import ingest, open_store
from biosig_ingest.io.edf import EdfSource, read_header
from biosig_ingest.store.inspect import validate


@pytest.mark.real
def test_real_physionet_edf_plus_ingests_with_its_64_channels_named_canonically(real_dir, tmp_path):
    src = real_dir / "eegmmidb"
    report = ingest("edf", src, tmp_path / "e.zarr")
    assert report.recordings_ok == 1 and report.recordings_failed == 0
    store = open_store(tmp_path / "e.zarr")
    assert len(store.channels) == 64
    assert store.channels[:3] == ["FC5", "FC3", "FC1"] and {"Fp1", "AFz", "Cz", "Iz", "T9"} <= set(store.channels)
    assert all(row["position_m"] is not None for row in store.attrs["channels"])
    assert store.window_samples == 2000 and len(store) == 12  # 125 s at 200 Hz, 10 s windows
    notes = store.recordings.loc[0, "annotations"]
    with pyedflib.EdfReader(str(src / "S001R04.edf")) as ref:
        onsets, durations, texts = ref.readAnnotations()
    assert [(round(a[0], 4), a[2]) for a in notes] == [(round(o, 4), t) for o, t in zip(onsets, texts, strict=True)]
    assert len(notes) == 30
    assert validate(tmp_path / "e.zarr") == []


def test_bdf_24_bit_files_read_like_pyedflib_and_ingest(tmp_path):
    folder = tmp_path / "bdf" / "sub01"
    folder.mkdir(parents=True)
    path = folder / "rest.bdf"
    fs, n = 256, 256 * 30
    rng = np.random.default_rng(0)
    names = ["Fp1", "Fp2", "Cz", "Oz", "Status"]
    writer = pyedflib.EdfWriter(str(path), len(names), file_type=pyedflib.FILETYPE_BDFPLUS)
    try:
        writer.setSignalHeaders(
            [
                {"label": name, "dimension": "uV", "sample_frequency": fs, "physical_max": 50000.0,
                 "physical_min": -50000.0, "digital_max": 8388607, "digital_min": -8388608}
                for name in names
            ]
        )
        writer.writeSamples([rng.standard_normal(n) * 40 for _ in names])
        writer.writeAnnotation(3.0, 1.0, "eyes closed")
    finally:
        writer.close()
    assert read_header(path).sample_bytes == 3
    src = EdfSource(path, "uV")
    with pyedflib.EdfReader(str(path)) as ref:
        for i in range(len(names)):
            np.testing.assert_allclose(src.read([i], 0, n)[0], ref.readSignal(i), atol=0.01)
    assert ("eyes closed" in [t for _, _, t in src.annotations()])
    report = ingest("edf", tmp_path / "bdf", tmp_path / "b.zarr")
    store = open_store(tmp_path / "b.zarr")
    assert report.recordings_ok == 1 and store.channels == ["Fp1", "Fp2", "Cz", "Oz"]
    assert store.recordings.loc[0, "subject"] == "sub01"
