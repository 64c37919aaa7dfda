"""Errors are values with stable codes: `{"error": {"code", "message"}}`, rendered in one place."""
from __future__ import annotations

import sqlite3

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sqlalchemy_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from partners.errors import (  # noqa: F401 - the service's one answer to a database it cannot use
    DATABASE_RETRY_AFTER_SECONDS,
    database_unavailable,
    error_responses,  # noqa: F401 - re-exported for api routers
    log_database_error,
)
from partners.errors import (
    ServiceError as ApiError,  # one error type for the whole service
)
from store.db import is_unavailable

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
