"""TUH EEG: EDF files named ``<subject>_s<NNN>_t<NNN>.edf``; this release reads TUAB v3.

TUAB tree: ``edf/{train,eval}/{normal,abnormal}/01_tcp_ar/aaaaaaav_s004_t000.edf``
(LAYOUTS.md section 1.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..config import ResolvedProfile
from ..errors import UsageError
from ..io.edf import EdfSource
from ..recording import RecordingRef, SignalSource
from .base import CorpusAdapter

MONTAGE_DIRS = ("01_tcp_ar", "02_tcp_le", "03_tcp_ar_a", "04_tcp_le_a")


@dataclass(frozen=True)
class TuhName:
    """The tokens of a TUH EDF file name, e.g. ``aaaaaaav_s004_t000.edf``.

    Subjects are 8 digits (v1 releases, ``00010194``) or 8 letters (v2, ``aaaaaaav``).
    """

    subject: str
    session: str
    token: str

    PATTERN = re.compile(r"^(?:.+_)?(?P<subject>[0-9]{8}|[a-z]{8})_(?P<session>s\d{3})_(?P<token>t\d{3})$")

    @classmethod
    def parse(cls, path: Path) -> TuhName | None:
        m = cls.PATTERN.match(path.stem)
        return cls(m["subject"], m["session"], m["token"]) if m else None

    @property
    def recording_id(self) -> str:
        return f"{self.subject}_{self.session}_{self.token}"


class TuhAdapter(CorpusAdapter):
    corpus = "tuh"
    aliases = ("tuab",)

    def discover(self, source: Path, rp: ResolvedProfile) -> list[RecordingRef]:
        root = Path(source)
        edf_root = root / "edf" if (root / "edf").is_dir() else root
        split_of = {str(v): split for split, values in self.manifest.splits.assign.items() for v in values}
        refs = []
        for group in ("train", "eval"):
            for label in ("normal", "abnormal"):
                folder = edf_root / group / label
                if not folder.is_dir():
                    continue
                for path in sorted(folder.rglob("*.edf")):
                    name = TuhName.parse(path)
                    if name is None or not any(part in MONTAGE_DIRS for part in path.parts):
                        continue
                    refs.append(
                        RecordingRef(
                            recording_id=name.recording_id,
                            subject=name.subject,
                            session=name.session,
                            split=split_of[group],
                            path=path,
                            relpath=path.relative_to(root).as_posix(),
                            labels={"abnormal": label},
                        )
                    )
        if not refs:
            raise UsageError(f"no TUAB files under {root} (expected edf/{{train,eval}}/{{normal,abnormal}}/01_tcp_ar/*.edf)")
        return sorted(refs, key=lambda r: r.recording_id)

    def open_source(self, ref: RecordingRef, rp: ResolvedProfile) -> SignalSource:
        return EdfSource(ref.path, rp.unit)
