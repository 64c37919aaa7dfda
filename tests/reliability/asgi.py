"""Requests straight into the ASGI app (httpx.ASGITransport), concurrently, with the server's
exceptions turned into 500 answers.

Used instead of a uvicorn thread by the tests that pin 500s: there, the server thread formats
the exception's traceback while pytest formats the test's failure, and CPython 3.11's
traceback carets (ast.parse) are not thread-safe ("SystemError: AST constructor recursion
depth mismatch", an INTERNALERROR). Headers keep their raw bytes, unlike the TestClient's.
"""
from __future__ import annotations

import asyncio

import httpx


def send_concurrently(app, requests: list[tuple[str, str, dict]]) -> list[httpx.Response]:
    """(method, path, httpx keyword arguments) each; all in flight at once; answers in order."""
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://hashguard.test",
                                     timeout=120) as http:
            return list(await asyncio.gather(*(http.request(method, path, **kwargs)
                                               for method, path, kwargs in requests)))

    return asyncio.run(run())
