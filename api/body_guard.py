"""Refuses request bodies that could carry an image or video, before anything parses them.

hashguard's promise is that media never leaves the person's device; the server makes that true
on its side too by accepting JSON and nothing else, and by capping body size, so that no code
path (or future bug) could receive, log or store media bytes.

The guard alone decides these refusals, and answers them itself, so that every POST route gets
the same 413 or 415 whichever way its body is read: refused up front when the headers tell
(every Content-Type header is looked at, not only the first or the last; a Content-Length over
the cap), else while the body streams in (a chunked body that outgrows the cap, or turns out
not to be empty though it declared no type). In the streaming case the app is told by an
exception from `receive`, which FastAPI's body reading turns into its own 400; so from that
moment the guard drops whatever the app answers and sends its refusal instead.

A body with no Content-Type at all is refused too: FastAPI versions disagree on whether to read
it as JSON (older ones do; newer ones validate the raw bytes and fail), and which answer a
client gets must not depend on that.
"""
from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_JSON_TYPES = ("application/json",)
_DIGITS = re.compile(rb"[0-9]{1,15}")
_UNSUPPORTED = (415, "unsupported_media_type",
                "only application/json is accepted: send hashes, never images or videos")
_UNTYPED = (415, "unsupported_media_type", "send the body as application/json")


class BodyGuard:
    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app, self.max_body_bytes = app, max_body_bytes
        self.too_large = (413, "body_too_large",
                          f"request bodies are limited to {max_body_bytes} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        types, lengths = [], []
        for name, value in scope["headers"]:
            if name == b"content-type":
                types.append(value.decode("latin-1").split(";")[0].strip().lower())
            elif name == b"content-length":
                lengths.append(value)
        if any(kind not in _JSON_TYPES for kind in types):  # an empty one too
            await _refuse(send, *_UNSUPPORTED)
            return
        if any(not _DIGITS.fullmatch(length) or int(length) > self.max_body_bytes
               for length in lengths):
            await _refuse(send, *self.too_large)
            return
        if not types and any(int(length) > 0 for length in lengths):
            await _refuse(send, *_UNTYPED)
            return
        await _Guarded(self, scope, receive, send, typed=bool(types)).run()


class BodyRefused(Exception):
    """Raised from `receive` once a streamed body is refused; the guard sends the refusal."""


class BodyTooLarge(BodyRefused):
    """The streamed body outgrew the cap (413)."""


class _Guarded:
    """One request whose body is counted as it arrives; a refusal replaces the app's answer."""

    def __init__(self, guard: BodyGuard, scope: Scope, receive: Receive, send: Send, typed: bool):
        self.guard, self.scope, self.receive_next, self.send_next = guard, scope, receive, send
        self.typed, self.seen = typed, 0
        self.refusal: tuple | None = None
        self.app_started = False  # the app's answer began before any refusal: it stands
        self.refused = False  # the refusal went out

    async def run(self) -> None:
        try:
            await self.guard.app(self.scope, self.receive, self.send)
        except Exception:
            if self.refusal is None or self.app_started:
                raise
        if self.refusal is not None and not self.app_started and not self.refused:
            await self._send_refusal()

    async def receive(self) -> Message:
        if self.refusal is not None:
            raise BodyTooLarge() if self.refusal[0] == 413 else BodyRefused()
        message = await self.receive_next()
        if message["type"] == "http.request":
            chunk = len(message.get("body", b""))
            self.seen += chunk
            if self.seen > self.guard.max_body_bytes:
                self.refusal = self.guard.too_large
                raise BodyTooLarge()
            if chunk and not self.typed:
                self.refusal = _UNTYPED
                raise BodyRefused()
        return message

    async def send(self, message: Message) -> None:
        if self.refusal is not None and not self.app_started:
            if not self.refused:
                await self._send_refusal()
            return  # the app's own answer to a refused body is dropped
        if message["type"] == "http.response.start":
            self.app_started = True
        await self.send_next(message)

    async def _send_refusal(self) -> None:
        self.refused = True
        await _refuse(self.send_next, *self.refusal)


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
