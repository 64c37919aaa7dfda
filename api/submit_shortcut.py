"""POST /v1/cases straight to its endpoint, past FastAPI's router, when the request is well formed.

Why: submitting is the service's hot path, and under load (bench/submit_bench.py, py-spy of both
workers, open loop at 500 cases/s) the layers between our middleware and `cases.submit_case`
took about a quarter of a worker's CPU per submit: matching the path against every route, the
exit-stack and exception middlewares, and FastAPI's request handler (content-type parsing,
`json.loads`, then validating the parsed dict, then the header parameter). Here the body is
validated straight from its bytes (`model_validate_json`, in Rust) and the endpoint is called
with what FastAPI would have passed it.

Only the well-formed request takes the shortcut: a JSON body that validates, and an
Idempotency-Key (if any) within its limit. Anything else (no body, invalid JSON, bytes pydantic's
parser refuses but Python's `json` would read such as UTF-16 or a BOM, fields that fail, a key
too long, a client gone mid-body) is handed to the router with the body bytes already read, so
FastAPI itself answers it, word for word, in whichever version is installed. What the router and
the shortcut could still disagree on is therefore only the well-formed case, and there both
call the same endpoint with the same arguments: tests/test_submit_equivalence.py sends both
hundreds of generated requests and compares whole answers.

The route stays declared on the router, so `openapi.yaml` describes it as before; this
middleware sits inside the body guard (which owns 413/415 for every route), the security
headers and the request log. An error raised by the endpoint goes to the app's handler for it,
looked up as Starlette does (by status code for an HTTPException, then by class); anything
unhandled propagates to the server-error middleware as it would have.
"""
from __future__ import annotations

import functools
import inspect

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import cases, idempotency
from api.schemas import CaseCreate


class SubmitShortcut:
    def __init__(self, app: ASGIApp, route: BaseRoute, exception_handlers: dict):
        self.app, self.route = app, route
        # The live dict (handlers added after the middleware stack is built still count).
        self.exception_handlers = exception_handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Anything else, this path under a root_path included, takes the router as before.
        if (scope["type"] != "http" or scope["method"] != "POST"
                or scope["path"] != cases.SUBMIT_PATH):
            await self.app(scope, receive, send)
            return
        chunks, complete = await _read_body(receive)
        raw = b"".join(chunks)
        body = _well_formed(scope, raw) if complete else None
        if body is None:
            await self.app(scope, _replay(raw, complete, receive), send)
            return
        scope["route"] = self.route  # the request log names the route template
        request = Request(scope, _replay(raw, True, receive))
        try:
            key = request.headers.get("idempotency-key")
            response = await cases.submit_case(body, request, key)
        except Exception as error:
            response = await self._handled(request, error)
        await response(scope, receive, send)

    async def _handled(self, request: Request, error: Exception):
        """The app's handler for `error`, chosen as Starlette's ExceptionMiddleware chooses (a
        handler for 500 or Exception belongs to the server-error middleware, outside us)."""
        handlers = self.exception_handlers
        handler = (handlers.get(error.status_code)
                   if isinstance(error, HTTPException) and error.status_code != 500 else None)
        for kind in type(error).__mro__:
            if handler is not None or kind is Exception:
                break
            handler = handlers.get(kind)
        if handler is None:
            raise error
        if _is_async(handler):
            return await handler(request, error)
        return await run_in_threadpool(handler, request, error)


def _well_formed(scope: Scope, raw: bytes) -> CaseCreate | None:
    """The validated body if the router would accept this request as it stands, else None.

    The body guard has refused every Content-Type but application/json, so a declared type is
    JSON here. Pydantic's JSON parser accepts a subset of what `json.loads` does, and from the
    same text builds the same model (tests/test_submit_equivalence.py generates the cases where
    they differ: those fail here and go to the router)."""
    typed, key = False, None
    for name, value in scope["headers"]:
        if name == b"content-type":
            typed = True
        elif name == b"idempotency-key" and key is None:
            key = value  # the router reads the first; it counts characters (latin-1: bytes)
    key_ok = key is None or len(key) <= idempotency.MAX_KEY_LENGTH
    if not typed or not raw or not key_ok:
        return None
    try:
        return CaseCreate.model_validate_json(raw)
    except ValidationError:
        return None


async def _read_body(receive: Receive) -> tuple[list[bytes], bool]:
    """The body's chunks, and whether it came whole (False: the client left mid-body)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return chunks, False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks, True


def _replay(raw: bytes, complete: bool, receive: Receive) -> Receive:
    """`receive` as if nothing had been read yet: the body in one message, then what follows
    (the disconnect, if the client left before the end)."""
    replayed = False

    async def replaying() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": raw, "more_body": not complete}
        if not complete:
            return {"type": "http.disconnect"}
        return await receive()

    return replaying


def _is_async(handler) -> bool:
    while isinstance(handler, functools.partial):
        handler = handler.func
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None))
