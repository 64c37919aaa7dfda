"""Security headers on every response: nothing loads from or sends to other origins, nothing is cached."""
from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

# media-src blob:: the page plays the person's own video from a local object URL to take its vPDQ
# frames (web/js/vpdq.js); nothing is fetched.
CSP = (b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       b"media-src 'self' blob:; "
       b"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       b"form-action 'self'; frame-ancestors 'none'")
# The hashing worker may compile WebAssembly (the HEIC decoder, libheif-js, served from this origin
# under /vendor/libheif/): a worker runs under the policy of its own script's response, so only the
# worker gets 'wasm-unsafe-eval'; JS eval stays forbidden there and everything stays 'self'.
WORKER_PATH = "/js/hash-worker.js"
WORKER_CSP = CSP.replace(b"script-src 'self'", b"script-src 'self' 'wasm-unsafe-eval'")
HEADERS = [
    (b"content-security-policy", CSP),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
    # Case data must not linger in a shared computer's browser cache.
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        headers = HEADERS
        if scope.get("path") == WORKER_PATH:
            headers = [(b"content-security-policy", WORKER_CSP)] + HEADERS[1:]

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                present = {name for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    header for header in headers if header[0] not in present]
            await send(message)

        await self.app(scope, receive, with_headers)
