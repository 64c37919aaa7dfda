"""POST /v1/cases straight to its endpoint, past FastAPI's router and parameter solving.

Why: submitting is the service's hot path, and under load (bench/submit_bench.py, py-spy of both
workers, open loop at 500 cases/s) the layers between our middleware and `cases.submit_case`
took about a quarter of a worker's CPU per submit: matching the path against every route, the
exit-stack and exception middlewares, and FastAPI's request handler (content-type parsing,
`json.loads`, then validating the parsed dict, then the header parameter). Here the body is
validated straight from its bytes (`model_validate_json`, in Rust) and the endpoint is called
with what FastAPI would have passed it.

Nothing else changes: the route stays declared on the router, so `openapi.yaml` describes it as
before; this middleware sits inside the body guard, the security headers and the request log;
errors go to the app's own exception handlers, so they keep their codes and shape; anything
unexpected propagates to the server-error middleware as it would have. tests/test_submit_shortcut.py
checks that answers are the same with and without it.
"""
from __future__ import annotations

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from api import cases, idempotency
from api.schemas import CaseCreate


class SubmitShortcut:
    def __init__(self, app: ASGIApp, route: BaseRoute, exception_handlers: dict):
        self.app, self.route, self.exception_handlers = app, route, exception_handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Anything else, this path under a root_path included, takes the router as before.
        if (scope["type"] != "http" or scope["method"] != "POST"
                or scope["path"] != cases.SUBMIT_PATH):
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route  # the request log names the route template
        request = Request(scope, receive)
        try:
            response = await self._submit(request)
        except Exception as error:
            response = await self._handled(request, error)
        await response(scope, receive, send)

    async def _submit(self, request: Request):
        if not request.headers.get("content-type"):
            # FastAPI reads a body without a content type as bytes, which fails validation.
            raise _invalid(("body",), "send the body as application/json")
        try:
            raw = await request.body()
        except ClientDisconnect:  # gone mid-body: answered as FastAPI would (nobody reads it)
            raise HTTPException(400, "the body could not be read") from None
        try:
            body = CaseCreate.model_validate_json(raw)
        except ValidationError as invalid:
            raise RequestValidationError([{**error, "loc": ("body", *error["loc"])}
                                          for error in invalid.errors(include_url=False)]) from None
        key = request.headers.get("idempotency-key")
        if key is not None and len(key) > idempotency.MAX_KEY_LENGTH:
            raise _invalid(("header", "idempotency-key"),
                           f"String should have at most {idempotency.MAX_KEY_LENGTH} characters")
        return await cases.submit_case(body, request, key)

    async def _handled(self, request: Request, error: Exception):
        """The app's handler for `error`, looked up by class as Starlette's own middleware does."""
        for kind in type(error).__mro__:
            handler = self.exception_handlers.get(kind)
            if handler is not None:
                return await handler(request, error)
        raise error


def _invalid(loc: tuple, message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": message}])
