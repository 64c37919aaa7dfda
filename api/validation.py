"""Turns wire hashes into validated, canonical Signals, or a 422 with the failing hash's code."""
from __future__ import annotations

from hashing import signals
from hashing.signals import InvalidHash, Signal, UnusableMedia, pdq

from api.errors import ApiError
from api.schemas import HashIn


def validate_hashes(hashes: list[HashIn], limit: int) -> list[Signal]:
    if len(hashes) > limit:
        raise ApiError(422, "too_many_hashes", f"at most {limit} hashes per request")
    validated: dict[tuple[str, str], Signal] = {}
    for index, item in enumerate(hashes):
        try:
            value = signals.parse(item.signal_type, item.value)
            quality = _checked_quality(item)
        except (InvalidHash, UnusableMedia) as refused:
            raise ApiError(422, refused.code, f"hashes[{index}]: {refused.message}") from None
        validated[(item.signal_type, value)] = Signal(item.signal_type, value, quality)
    return list(validated.values())


def _checked_quality(item: HashIn) -> int | None:
    if item.signal_type != pdq.NAME:
        return None  # quality is a PDQ notion; ignore it elsewhere rather than store noise
    if item.quality is None:
        raise InvalidHash("pdq_quality_missing", "a pdq hash needs its quality (0-100)")
    pdq.check_quality(item.quality)
    return item.quality
