"""What a corpus adapter is: discover recordings, open one. Nothing about signals."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from ..config import Manifest, ResolvedProfile
from ..dsp.channels import match_channels, select_channels
from ..manifest import load_manifest
from ..recording import Recording, RecordingRef, SignalSource


class CorpusAdapter:
    """Base class for corpus adapters; subclasses set ``corpus`` and implement two methods.

    Third-party adapters register under the ``biosig_ingest.corpora`` entry-point group.
    """

    corpus: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()

    def __init__(self, manifest: Manifest | None = None):
        self.manifest = manifest or load_manifest(self.corpus)

    def discover(self, source: Path, rp: ResolvedProfile) -> list[RecordingRef]:
        """Every recording under ``source``, sorted by id (file existence is checked at open)."""
        raise NotImplementedError

    def open_source(self, ref: RecordingRef, rp: ResolvedProfile) -> SignalSource:
        raise NotImplementedError

    def open(self, ref: RecordingRef, rp: ResolvedProfile) -> Recording:
        """Open the signals and select the profile's channels by canonical name."""
        source = self.open_source(ref, rp)
        try:
            matches = match_channels([c.label for c in source.channels], self.manifest)
            selected = select_channels(matches, rp.channels)
        except Exception:
            source.close()
            raise
        used = {m.index for m in selected}
        excluded = [m.label for m in matches if m.index not in used]
        return Recording(ref=ref, source=source, selected=selected, excluded=excluded)
