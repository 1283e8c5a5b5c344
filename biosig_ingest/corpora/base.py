"""What a corpus adapter is: discover recordings, open one, label its windows.

Adapters know file formats and corpus conventions; signal processing is the core's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..config import Manifest, ResolvedProfile
from ..dsp.channels import ChannelMatch, find_channels, match_channels
from ..errors import ChannelError, UsageError
from ..manifest import load_manifest
from ..recording import Recording, RecordingRef, SignalSource


class CorpusAdapter:
    """Base class for corpus adapters; subclasses set ``corpus`` and implement two methods.

    Third-party adapters register under the ``biosig_ingest.corpora`` entry-point group.
    """

    corpus: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    # file-name patterns that discovery reads beyond small files (remote sources, io/remote.py)
    remote_eager: ClassVar[tuple[str, ...]] = ()

    def __init__(self, manifest: Manifest | None = None):
        self.manifest = manifest or load_manifest(self.corpus)

    def for_source(self, source: Path, subset: str | None = None) -> CorpusAdapter:
        """The adapter to use for this source tree (a family adapter picks its subset)."""
        if subset is not None and subset != self.corpus:
            raise UsageError(f"{self.corpus} has no subset {subset!r}")
        return self

    def discover(self, source: Path, rp: ResolvedProfile) -> list[RecordingRef]:
        """Every recording under ``source``, sorted by id (file existence is checked at open)."""
        raise NotImplementedError

    def open_source(self, ref: RecordingRef, rp: ResolvedProfile) -> SignalSource:
        raise NotImplementedError

    def window_labels(self, rec: Recording, starts_s: np.ndarray, index: np.ndarray, rp: ResolvedProfile) -> dict[str, Any]:
        """Per-window label values (arrays, one row per window) beyond the recording's labels."""
        return {}

    def open(self, ref: RecordingRef, rp: ResolvedProfile) -> Recording:
        """Open the signals and select the profile's channels (or electrodes) by canonical name."""
        source = self.open_source(ref, rp)
        try:
            matches = match_channels([c.label for c in source.channels], self.manifest)
            selected, derivation, missing = _plan_channels(matches, rp)
        except Exception:
            source.close()
            raise
        used = {m.index for m in selected}
        excluded = [m.label for m in matches if m.index not in used]
        return Recording(ref=ref, source=source, selected=selected, excluded=excluded, derivation=derivation, missing=missing)


def _plan_channels(
    matches: list[ChannelMatch], rp: ResolvedProfile
) -> tuple[list[ChannelMatch], np.ndarray | None, list[int]]:
    """File channels to read, the derivation (outputs x read) if not plain selection, masked outputs."""
    wanted = [e for pair in rp.derivations for e in pair] if rp.derivations else list(rp.channels)
    electrodes = list(dict.fromkeys(wanted))  # unique, in order of first use
    by_name = find_channels(matches, electrodes)
    absent = [n for n in electrodes if n not in by_name]
    if absent and rp.profile.missing_channels == "error":
        raise ChannelError(f"missing channels {', '.join(absent)}")
    present = [n for n in electrodes if n in by_name]
    if not present:
        raise ChannelError(f"none of the profile's channels is in the file (missing {', '.join(absent)})")
    selected = [by_name[n] for n in present]
    column = {n: k for k, n in enumerate(present)}
    if rp.derivations:
        derivation = np.zeros((len(rp.derivations), len(present)), np.float32)
        missing = []
        for row, (anode, cathode) in enumerate(rp.derivations):
            if anode in column and cathode in column:
                derivation[row, column[anode]] = 1.0
                derivation[row, column[cathode]] = -1.0
            else:
                missing.append(row)
        return selected, derivation, missing
    if not absent:
        return selected, None, []
    derivation = np.zeros((len(rp.channels), len(present)), np.float32)
    for row, name in enumerate(rp.channels):
        if name in column:
            derivation[row, column[name]] = 1.0
    return selected, derivation, [r for r, n in enumerate(rp.channels) if n not in column]
