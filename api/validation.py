"""Turns wire hashes into validated, canonical Signals, or a 422 with the failing hash's code.

Nothing here branches on a signal type's name: the type's module (hashing/signals) parses the
value, and a type with a quality notion (PDQ) is the one whose module has `check_quality`."""
from __future__ import annotations

from hashing import signals
from hashing.signals import InvalidHash, Signal, UnusableMedia

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
    check_quality = getattr(signals.get(item.signal_type), "check_quality", None)
    if check_quality is None:
        return None  # a type without a quality notion: ignore one sent rather than store noise
    if item.quality is None:
        raise InvalidHash(f"{item.signal_type}_quality_missing",
                          f"a {item.signal_type} hash needs its quality (0-100)")
    check_quality(item.quality)
    return item.quality
