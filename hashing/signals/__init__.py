"""Registry of signal types: one module per type, looked up by python-threatexchange's name.

Adding a type means adding its module here; nothing else branches on the type's name. Each
module names the server-side index that serves it in MATCH_INDEX (a string, so that nothing here
imports server code; partners/match_index.py maps it to a class).
"""
from __future__ import annotations

from types import ModuleType

from hashing.signals import pdq, video_md5, video_sha256, video_tmk_pdqf, vpdq
from hashing.signals.base import InvalidHash, Signal, UnusableMedia

SIGNAL_TYPES: dict[str, ModuleType] = {
    module.NAME: module for module in (pdq, video_md5, video_sha256, video_tmk_pdqf, vpdq)
}

# Which signal types a file of each media kind yields, in output order.
SIGNALS_FOR_MEDIA: dict[str, tuple[ModuleType, ...]] = {
    "image": (pdq,),
    "video": (video_md5, video_sha256, vpdq, video_tmk_pdqf),
}


def get(name: str) -> ModuleType:
    try:
        return SIGNAL_TYPES[name]
    except KeyError:
        known = ", ".join(sorted(SIGNAL_TYPES))
        raise InvalidHash("unknown_signal_type", f"unknown signal type {name!r}; known: {known}")


def parse(name: str, value: str) -> str:
    """Validate `value` as a hash of type `name`; returns its canonical form or raises InvalidHash."""
    return get(name).parse(value)


__all__ = ["SIGNAL_TYPES", "SIGNALS_FOR_MEDIA", "InvalidHash", "Signal", "UnusableMedia", "get", "parse"]
