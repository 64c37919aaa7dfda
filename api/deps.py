"""FastAPI dependencies shared by routers: the database, the server secret, bearer tokens.

They are `async def` on purpose: they never block, and FastAPI would run a plain `def`
dependency on the thread pool (a thread hop per dependency per request)."""
from __future__ import annotations

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from store.db import Database


async def database(request: Request) -> Database:
    return request.app.state.database


async def server_secret(request: Request) -> bytes:
    return request.app.state.server_secret


# Declared for the OpenAPI contract only (auto_error=False): bearer_token below refuses with the
# service's own error code.
CASE_TOKEN = HTTPBearer(scheme_name="caseToken",
                        description="The case token shown once when the case was created, sent "
                                    "as `Authorization: Bearer <token>`", auto_error=False)


async def bearer_token(request: Request,
                       _declared: HTTPAuthorizationCredentials | None = Security(CASE_TOKEN)
                       ) -> str:
    """The secret from `Authorization: Bearer ...` (never from the URL, which ends up in logs)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "token_required", "send the case token as 'Authorization: Bearer <token>'",
                       headers={"WWW-Authenticate": "Bearer"})
    return token.strip()
