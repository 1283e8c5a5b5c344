"""PTB-XL: replica and real records ingest with wfdb-identical signals, labels and folds."""

from __future__ import annotations

import ast

import numpy as np
import pandas as pd
import pytest
import wfdb

from biosig_ingest import ingest, open_store
from biosig_ingest.store.inspect import validate

ECG12 = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
SPLIT = {**{f: "train" for f in range(1, 9)}, 9: "val", 10: "test"}


def _lead_index(name: str) -> int:
    return [n.upper() for n in ECG12].index(name.upper())


def test_replica_records_with_shuffled_or_lowercase_leads_come_out_in_canonical_order(ptbxl, tmp_path):
    out = tmp_path / "raw.zarr"
    ingest("ptbxl", ptbxl.root, out, "raw500")
    store = open_store(out)
    assert store.channels == ECG12
    meta = store.metadata.set_index("recording_id")
    shuffled = [r for r in ptbxl.records if r.files == "ok" and list(r.lead_names) != ["I", "II", "III", "AVR", "AVL", "AVF", *ECG12[6:]]]
    assert len(shuffled) >= 2
    for r in shuffled:
        signal, fields = wfdb.rdsamp(str(ptbxl.root / r.filename_hr))
        stored = store[int(meta.loc[f"{r.ecg_id:05d}", "window"])].signal
        for j, lead in enumerate(fields["sig_name"]):
            np.testing.assert_allclose(stored[_lead_index(lead)], signal[:, j], atol=1e-6)


def test_database_rows_without_files_are_reported_not_fatal(ptbxl, ptbxl_store):
    path, report = ptbxl_store
    recs = open_store(path).recordings.set_index("recording_id")
    bad = [r for r in ptbxl.records if r.files != "ok"]
    assert {r.files for r in bad} == {"missing", "no_dat"}
    for r in bad:
        row = recs.loc[f"{r.ecg_id:05d}"]
        assert row["status"] == "failed" and row["error_type"] == "MissingFileError"
    assert report.recordings_ok == len(ptbxl.records) - len(bad)
    assert validate(path) == []


def test_labels_folds_and_subjects_follow_the_database(ptbxl, ptbxl_store):
    store = open_store(ptbxl_store[0])
    meta = store.metadata.set_index("recording_id")
    codes = store.attrs["labels"][0]["classes"]
    hot = store.label_array("scp")
    for r in [r for r in ptbxl.records if r.files == "ok"]:
        row = meta.loc[f"{r.ecg_id:05d}"]
        assert row["split"] == SPLIT[r.strat_fold]
        assert row["subject"] == str(r.patient_id)
        assert set(row["scp"]) == set(r.scp_codes)  # keys count, whatever their likelihood
        assert set(np.asarray(codes)[hot[int(row["window"])].astype(bool)]) == set(r.scp_codes)


def test_no_wfdb_comment_reaches_the_store(ptbxl, ptbxl_store):
    comments = []
    for r in ptbxl.records:
        hea = ptbxl.root / f"{r.filename_hr}.hea"
        if hea.is_file():
            comments += [line[1:].strip().encode() for line in hea.read_text().splitlines() if line.startswith("#")]
    assert comments, "the replica must carry header comments for this test to mean anything"
    for file in ptbxl_store[0].rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            assert not any(c in data for c in comments if len(c) > 6), file


# -- real PTB-XL records (byte-identical to PhysioNet's) ---------------------------------


@pytest.fixture(scope="module")
def real_ptbxl_stores(real_dir, tmp_path_factory):
    root = real_dir / "ptb-xl"
    out = tmp_path_factory.mktemp("real-ptbxl")
    stores = {}
    for profile in ("raw100", "raw500"):
        report = ingest("ptbxl", root, out / f"{profile}.zarr", profile)
        stores[profile] = (open_store(out / f"{profile}.zarr"), report)
    return root, stores


@pytest.mark.real
@pytest.mark.parametrize("profile,column", [("raw100", "filename_lr"), ("raw500", "filename_hr")])
def test_real_ptbxl_records_equal_wfdb_rdsamp_at_the_native_rate(real_ptbxl_stores, profile, column):
    root, stores = real_ptbxl_stores
    store, report = stores[profile]
    db = pd.read_csv(root / "ptbxl_database.csv", index_col="ecg_id")
    meta = store.metadata.set_index("recording_id")
    present = [i for i in db.index if (root / f"{db.loc[i, column]}.dat").is_file()]
    assert len(present) == 6 and report.recordings_ok == 6
    for ecg_id in present:
        signal, fields = wfdb.rdsamp(str(root / db.loc[ecg_id, column]))
        stored = store[int(meta.loc[f"{ecg_id:05d}", "window"])].signal
        expected = signal.T[[[n.upper() for n in fields["sig_name"]].index(c.upper()) for c in ECG12]]
        np.testing.assert_allclose(stored, expected.astype(np.float32), rtol=0, atol=np.abs(expected).max() * 2**-23)


@pytest.mark.real
def test_real_ptbxl_labels_and_folds_match_the_database(real_ptbxl_stores):
    root, stores = real_ptbxl_stores
    store, report = stores["raw500"]
    db = pd.read_csv(root / "ptbxl_database.csv", index_col="ecg_id")
    statements = pd.read_csv(root / "scp_statements.csv", index_col=0)
    meta = store.metadata.set_index("recording_id")
    assert report.recordings_failed == len(db) - 6  # rows beyond the shipped files: reported
    assert set(store.recordings.query("status == 'failed'")["error_type"]) == {"MissingFileError"}
    for rid, row in meta.iterrows():
        truth = db.loc[int(rid)]
        codes = set(ast.literal_eval(truth["scp_codes"]))
        assert set(row["scp"]) == codes
        assert row["split"] == SPLIT[int(truth["strat_fold"])]
        assert row["subject"] == str(int(truth["patient_id"]))
        diag = statements.loc[sorted(codes)].query("diagnostic == 1.0")
        assert set(row["superclass"]) == set(diag["diagnostic_class"])
        assert set(row["subclass"]) == set(diag["diagnostic_subclass"])
        assert set(row["rhythm"]) == {c for c in codes if statements.loc[c, "rhythm"] == 1.0}
    first = meta.loc["00001"]
    assert set(first["scp"]) == {"NORM", "LVOLT", "SR"} and first["superclass"] == ("NORM",)
