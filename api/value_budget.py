"""Byte budgets on anonymous writes (issue 21, finding 5): what a request, a case and a client
address may make the service store, counted in bytes of hash values.

Why bytes and not only counts: the types differ 10,000-fold in size (a PDQ value is 64
characters, a TMK value 351,128), and every stored byte is paid again by each change-log entry
(add, and remove on withdrawal), each partner's pull and each backup. Counts alone let 11 TMK
values, one header byte apart, ride in one 3.9 MB body. The limits live in api/settings.py;
each answer has its own code (`request_bytes_limit`, `case_bytes_limit`, `rate_limited`).
"""
from __future__ import annotations

from fastapi import Request

from api.client_limits import charge_value_bytes
from api.errors import ApiError
from api.schemas import HashIn
from api.validation import validate_hashes
from hashing.signals import Signal
from store import cases as store_cases


def value_bytes(signals: list[Signal]) -> int:
    return sum(len(s.value) for s in signals)


def _refuse_over(size: int, limit: int, code: str, what: str) -> None:
    if limit > 0 and size > limit:
        raise ApiError(422, code, f"{what} holds at most {limit} bytes of hash values "
                                  f"(this would be {size}); a TMK value is 351,128 bytes")


def budgeted_hashes(request: Request, hashes: list[HashIn]) -> list[Signal]:
    """validate_hashes, then the request's bytes against the per-request and per-case limits
    (a new case holds just this request), then charged to the client's hourly budget."""
    settings = request.app.state.settings
    signals = validate_hashes(hashes, settings.max_hashes_per_request)
    size = value_bytes(signals)
    _refuse_over(size, settings.max_value_bytes_per_request, "request_bytes_limit", "a request")
    _refuse_over(size, settings.max_value_bytes_per_case, "case_bytes_limit", "a case")
    charge_value_bytes(request, size)
    return signals


def check_case_bytes(request: Request, session, case, signals: list[Signal]) -> None:
    """Adding `signals` to `case` keeps it within the per-case limit (values it already holds
    count again if re-sent: a second link costs little, but the bound stays simple)."""
    limit = request.app.state.settings.max_value_bytes_per_case
    if limit > 0:
        held = store_cases.value_bytes(session, case)
        _refuse_over(held + value_bytes(signals), limit, "case_bytes_limit", "a case")
