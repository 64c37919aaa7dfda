"""Structured JSON logs, and the one request log line: route template, method, status, duration.

What is deliberately never logged: client addresses, user agents, paths with case references,
query strings (cursors), headers (tokens, partner keys) and bodies (hashes).
"""
from __future__ import annotations

import json
import logging
import sys
import time

from starlette.types import ASGIApp, Receive, Scope, Send

request_log = logging.getLogger("hashguard.request")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": round(record.created, 3), "level": record.levelname.lower(),
                 "logger": record.name, "message": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for hashguard's loggers and uvicorn's (whose access log stays off)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("hashguard", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def route_template(scope: Scope) -> str:
    """`/v1/cases/{case_ref}` rather than the path itself (which would carry a case reference)."""
    route = scope.get("route")
    return getattr(route, "path", None) or ("static" if scope.get("path", "/") else "unknown")


class RequestLog:
    def __init__(self, app: ASGIApp, metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope)
            self.metrics.observe(route, scope["method"], status, seconds)
            request_log.info("request", extra={"fields": {
                "route": route, "method": scope["method"], "status": status,
                "ms": round(seconds * 1000, 1)}})
