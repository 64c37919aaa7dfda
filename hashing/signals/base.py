"""The small surface every signal type shares: the Signal record and the typed parse error."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Signal:
    """One hash of one file, in python-threatexchange's naming (`pdq`, `video_md5`, ...)."""

    signal_type: str
    value: str
    quality: int | None = None

    def as_record(self) -> dict:
        record = {"signal_type": self.signal_type, "value": self.value}
        if self.quality is not None:
            record["quality"] = self.quality
        return record


class InvalidHash(ValueError):
    """A hash value that fails validation; `code` is stable and machine-readable (the API maps it)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class UnusableMedia(ValueError):
    """A file that decodes but cannot give a trustworthy hash (e.g. PDQ quality below the gate)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
