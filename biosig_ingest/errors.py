"""Typed errors: one class per way a recording or a command can fail.

Per-recording errors are recorded in the store's recordings table by class name
(``error_type``) with a one-line message; the run goes on.
"""

from __future__ import annotations


class BiosigError(Exception):
    """Base class of every error this package raises on purpose."""

    @property
    def error_type(self) -> str:
        return type(self).__name__

    def one_line(self) -> str:
        return " ".join(str(self).split())


class RecordingError(BiosigError):
    """A single recording cannot be ingested; the run records it and goes on."""


class MissingFileError(RecordingError):
    """A file the recording needs does not exist (e.g. a WFDB .dat next to its .hea)."""


class TruncatedFileError(RecordingError):
    """The file holds fewer bytes than its header declares."""


class HeaderError(RecordingError):
    """The file header cannot be parsed or is inconsistent."""


class ChannelError(RecordingError):
    """Channels the profile needs are missing or ambiguous."""


class UnitError(RecordingError):
    """A channel's physical unit cannot be converted to the modality's unit."""


class RecordTooShortError(RecordingError):
    """The recording is shorter than one window."""


class InvalidSamplesError(RecordingError):
    """The recording has invalid (NaN) samples and the profile's nan_policy is 'drop'."""


class SecurityError(RecordingError):
    """An untrusted file tried something it must not (e.g. a pickle calling code)."""


class UsageError(BiosigError):
    """The command or API call is wrong; exit code 2."""


class ManifestError(UsageError):
    """A manifest or profile does not validate."""


class StoreError(BiosigError):
    """The store is missing, corrupt or incompatible."""


class ProfileMismatchError(StoreError):
    """The store was built with another profile; ingest refuses without --overwrite."""


class ValidationError(StoreError):
    """``biosig validate`` found a problem."""
