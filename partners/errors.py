"""The service's typed error (stable code + message + HTTP status), raised by partners/ and api/
alike and rendered in one handler (api/errors.py) as `{"error": {"code", "message"}}`."""
from __future__ import annotations

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
                 503: "Temporarily unavailable"}


def error_responses(*statuses: int) -> dict:
    """OpenAPI `responses` entries for the error shape, for a route's documented failures."""
    return {s: {"model": ErrorResponse, "description": _DESCRIPTIONS.get(s, "Error")}
            for s in statuses}
