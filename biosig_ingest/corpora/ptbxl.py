"""PTB-XL: ``ptbxl_database.csv`` + ``scp_statements.csv`` + WFDB records at 100 or 500 Hz.

Example row path: ``records500/00000/00001_hr`` (LAYOUTS.md section 4).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import ResolvedProfile
from ..errors import HeaderError, UsageError
from ..recording import RecordingRef, SignalSource
from .base import CorpusAdapter

if TYPE_CHECKING:
    import pandas as pd


class PtbXlAdapter(CorpusAdapter):
    corpus = "ptbxl"
    aliases = ("ptb-xl",)

    def discover(self, source: Path, rp: ResolvedProfile) -> list[RecordingRef]:
        import pandas as pd

        db_path = Path(source) / "ptbxl_database.csv"
        st_path = Path(source) / "scp_statements.csv"
        for p in (db_path, st_path):
            if not p.is_file():
                raise UsageError(f"{p} not found: --source must be the PTB-XL root folder")
        db = pd.read_csv(db_path, index_col="ecg_id")
        statements = pd.read_csv(st_path, index_col=0)
        fs = rp.profile.source_fs_hz or 500
        if fs not in (100, 500):
            raise UsageError(f"PTB-XL has 100 and 500 Hz records, not {fs:g}")
        column = "filename_lr" if fs == 100 else "filename_hr"
        split_of = {int(v): split for split, values in self.manifest.splits.assign.items() for v in values}
        refs = []
        for ecg_id, row in zip(db.index.astype(int), (r for _, r in db.iterrows()), strict=True):
            rel = str(row[column])
            refs.append(
                RecordingRef(
                    recording_id=f"{int(ecg_id):05d}",
                    subject=str(int(row["patient_id"])),
                    session=str(int(ecg_id)),
                    split=split_of.get(int(row["strat_fold"]), "unassigned"),
                    path=Path(source) / rel,
                    relpath=rel + ".hea",
                    labels=_labels(row, statements),
                    files=(Path(source) / f"{rel}.hea", Path(source) / f"{rel}.dat"),
                )
            )
        return sorted(refs, key=lambda r: r.recording_id)

    def open_source(self, ref: RecordingRef, rp: ResolvedProfile) -> SignalSource:
        from ..io.wfdb_source import WfdbSource  # wfdb imports pandas: only when needed

        src = WfdbSource(ref.path, rp.unit)
        fs = rp.profile.source_fs_hz
        if fs is not None and any(abs(c.fs_hz - fs) > 1e-6 for c in src.channels):
            raise HeaderError(f"{ref.relpath}: {src.channels[0].fs_hz:g} Hz, the profile reads {fs:g} Hz records")
        return src


def _labels(row: pd.Series, statements: pd.DataFrame) -> dict[str, Any]:
    import pandas as pd

    codes = [c for c in ast.literal_eval(row["scp_codes"]) if c in statements.index]
    st = statements.loc[codes] if codes else statements.iloc[:0]
    diag = st[st["diagnostic"] == 1.0]
    sex = row.get("sex")
    age = row.get("age")
    return {
        "scp": codes,
        "superclass": sorted(set(diag["diagnostic_class"].dropna())),
        "subclass": sorted(set(diag["diagnostic_subclass"].dropna())),
        "form": list(st.index[st["form"] == 1.0]),
        "rhythm": list(st.index[st["rhythm"] == 1.0]),
        "sex": None if pd.isna(sex) else ("male", "female")[int(sex)],
        "age": None if pd.isna(age) else float(np.float32(age)),
    }
