"""The service's typed error (stable code + message + HTTP status), raised by partners/ and api/
alike and rendered in one handler (api/errors.py) as `{"error": {"code", "message"}}`."""
from __future__ import annotations

import logging

from pydantic import BaseModel


class ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


_DESCRIPTIONS = {400: "Bad request", 401: "Missing or invalid credentials", 404: "Not found",
                 409: "Conflict", 413: "Body too large",
                 415: "Unsupported media type (no image/video/multipart bodies)",
                 422: "Invalid input", 429: "Rate limited",
                 503: "The database cannot be reached or written now (`database_unavailable`, "
                      "with Retry-After): retry later"}


def error_responses(*statuses: int) -> dict:
    """OpenAPI `responses` entries for the error shape, for a route's documented failures."""
    return {s: {"model": ErrorResponse, "description": _DESCRIPTIONS.get(s, "Error")}
            for s in statuses}


# --- A database the service cannot use now (api/errors.py renders it for every route) ---------
log = logging.getLogger("hashguard.database")

# How long a client should wait before retrying a request the database could not take.
DATABASE_RETRY_AFTER_SECONDS = 5


def database_unavailable() -> ServiceError:
    """The answer to any request the database cannot take now (down, read-only, unreachable):
    503 with Retry-After, never a 500. Retrying is safe: writes are idempotent per hash, and a
    submit retried with its Idempotency-Key answers as the first one did if it did commit."""
    return ServiceError(503, "database_unavailable",
                        "the service cannot reach or write its database right now; retry later",
                        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)})


def log_database_error(error: BaseException) -> None:
    """One line for the operator: the error's class and SQLSTATE, never its message (which
    could quote a value) nor the statement's parameters."""
    orig = getattr(error, "orig", None) or error
    log.warning("database unavailable", extra={"fields": {
        "error": type(orig).__name__, "sqlstate": getattr(orig, "sqlstate", None)}})
