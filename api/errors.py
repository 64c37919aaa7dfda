"""Errors are values with stable codes: `{"error": {"code", "message"}}`, rendered in one place."""
from __future__ import annotations

import logging
import sqlite3

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sqlalchemy_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from partners.errors import (
    ServiceError as ApiError,  # one error type for the whole service
)
from partners.errors import error_responses  # noqa: F401 - re-exported for api routers
from store.db import is_unavailable

log = logging.getLogger("hashguard.database")

# How long a client should wait before retrying a request the database could not take.
DATABASE_RETRY_AFTER_SECONDS = 5


def database_unavailable() -> ApiError:
    """The answer to any request the database cannot take now (down, read-only, unreachable):
    503 with Retry-After, never a 500. Retrying is safe: writes are idempotent per hash, and a
    submit retried with its Idempotency-Key answers as the first one did if it did commit."""
    return ApiError(503, "database_unavailable",
                    "the service cannot reach or write its database right now; retry later",
                    headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)})


def log_database_error(error: BaseException) -> None:
    """One line for the operator: the error's class and SQLSTATE, never its message (which
    could quote a value) nor the statement's parameters."""
    orig = getattr(error, "orig", None) or error
    log.warning("database unavailable", extra={"fields": {
        "error": type(orig).__name__, "sqlstate": getattr(orig, "sqlstate", None)}})


# The database errors that can mean "unavailable"; anything else stays a 500 (a bug).
DATABASE_ERRORS = (sqlalchemy_exc.DBAPIError, sqlalchemy_exc.TimeoutError, psycopg.Error,
                   sqlite3.Error)


def error_response(status: int, code: str, message: str, headers: dict | None = None):
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large",
               415: "unsupported_media_type", 401: "unauthorized", 429: "rate_limited"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def on_api_error(_request: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    async def on_database_error(_request: Request, exc: Exception):
        if not is_unavailable(exc):
            raise exc
        log_database_error(exc)
        failure = database_unavailable()
        return error_response(failure.status, failure.code, failure.message, failure.headers)

    for kind in DATABASE_ERRORS:
        app.add_exception_handler(kind, on_database_error)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg', 'invalid')}" if where else first.get("msg", "invalid")
        return error_response(422, "invalid_request", message)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(_request: Request, exc: StarletteHTTPException):
        if exc.status_code == 400:
            # FastAPI's only 400: a body it could not decode (e.g. not UTF-8). Same answer as
            # any other malformed body, as the contract documents.
            return error_response(422, "invalid_request", "the body is not valid JSON")
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return error_response(exc.status_code, code, str(exc.detail))
