"""The EDF reader: equal to pyedflib, bounded reads, typed errors, no identification fields."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyedflib
import pytest

from biosig_ingest.errors import MissingFileError, TruncatedFileError
from biosig_ingest.io.edf import EdfHeader, EdfSource, read_header


def _assert_equals_pyedflib(path, unit="uV"):
    src = EdfSource(path, unit)
    with pyedflib.EdfReader(str(path)) as ref:
        for i in range(ref.signals_in_file):
            if src.channels[i].physical_unit.lower() not in ("uv", "mv", "v"):
                continue  # junk channels (IBI, BURSTS) carry no voltage unit
            expected = ref.readSignal(i)
            got = src.read([i], 0, expected.size)[0]
            np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-3)
            part = src.read([i], 37, min(expected.size, 937))[0]  # a range inside records
            np.testing.assert_allclose(part, expected[37:937], rtol=1e-6, atol=1e-3)
    src.close()


def test_edf_samples_equal_pyedflib_on_replica_files(tuab):
    for f in [f for f in tuab.files if f.broken is None][:3]:
        _assert_equals_pyedflib(f.path)


@pytest.mark.real
def test_edf_samples_equal_pyedflib_on_the_real_physionet_edf_plus(real_dir):
    path = real_dir / "eegmmidb" / "S001R04.edf"
    header = read_header(path)
    assert header.is_edf_plus and not header.discontinuous
    assert len(header.labels) == 65 and header.labels[-1] == "EDF Annotations"
    with pyedflib.EdfReader(str(path)) as ref:
        for i in (0, 21, 63):
            np.testing.assert_allclose(EdfSource(path, "uV").read([i], 0, 20000)[0], ref.readSignal(i), atol=1e-3)


def test_truncated_and_missing_edf_files_raise_typed_errors(tuab, tmp_path):
    broken = next(f for f in tuab.files if f.broken == "truncated")
    with pytest.raises(TruncatedFileError, match="declares"):
        EdfSource(broken.path, "uV")
    with pytest.raises(MissingFileError):
        EdfSource(tmp_path / "nope.edf", "uV")
    stub = tmp_path / "stub.edf"
    stub.write_bytes(b"0       " + b" " * 100)
    with pytest.raises(TruncatedFileError):
        read_header(stub)


def test_header_object_has_no_patient_or_recording_identification():
    names = {f.name for f in dataclasses.fields(EdfHeader)}
    assert not names & {"patient", "patient_name", "birthdate", "recording", "startdate", "patientname"}
