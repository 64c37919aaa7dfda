"""Refuses request bodies that could carry an image or video, before anything parses them.

hashguard's promise is that media never leaves the person's device; the server makes that true
on its side too by accepting JSON and nothing else, and by capping body size, so that no code
path (or future bug) could receive, log or store media bytes.
"""
from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Receive, Scope, Send

_JSON_TYPES = ("application/json",)
_DIGITS = re.compile(rb"[0-9]{1,15}")


class BodyGuard:
    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip()
        length = headers.get(b"content-length")
        if content_type and content_type.lower() not in _JSON_TYPES:
            await _refuse(send, 415, "unsupported_media_type",
                          "only application/json is accepted: send hashes, never images or videos")
            return
        if length is not None and (not _DIGITS.fullmatch(length) or int(length) > self.max_body_bytes):
            await _refuse(send, 413, "body_too_large",
                          f"request bodies are limited to {self.max_body_bytes} bytes")
            return
        await self.app(scope, self._counting(receive, send), send)

    def _counting(self, receive: Receive, send: Send) -> Receive:
        """Also enforce the cap on chunked bodies, which announce no length."""
        seen = 0

        async def guarded() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise BodyTooLarge()
            return message

        return guarded


class BodyTooLarge(Exception):
    """Raised while streaming; the app maps it to 413."""


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
