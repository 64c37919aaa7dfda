"""One request straight into an ASGI app, with exactly the headers and body chunks given.

The TestClient and httpx tidy requests up (they merge or drop duplicated headers, choose between
Content-Length and chunked, send the body in one piece); the tests of the body guard and of the
submit shortcut need the raw shapes a real client can send: several Content-Type headers,
chunked bodies without a length, a client gone mid-body.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    raised: str | None = None  # what the app let escape (after its 500), by type name

    def header(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key == name]


async def call(app, method: str, path: str, headers: list[tuple[bytes, bytes]],
               chunks: list[bytes], *, leaves: bool = False) -> Answer:
    """`chunks` arrive one message each; `leaves`: the client disconnects instead of ending."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "root_path": "", "query_string": b"", "client": ("127.0.0.1", 50000),
             "server": ("hashguard.test", 80), "headers": [(b"host", b"hashguard.test"), *headers]}
    messages = [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]
    if leaves:
        messages.append({"type": "http.disconnect"})
    else:
        messages.append({"type": "http.request", "body": b"", "more_body": False})
    done = asyncio.Event()

    async def receive() -> dict:
        if messages:
            return messages.pop(0)
        await done.wait()  # as a server does: the disconnect comes once the answer is out
        return {"type": "http.disconnect"}

    answer = Answer(0, [], b"")

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            answer.status, answer.headers = message["status"], list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")
            if not message.get("more_body", False):
                done.set()

    try:
        await app(scope, receive, send)
    except Exception as error:  # the server-error middleware answered 500, then re-raised
        answer.raised = type(error).__name__
    return answer


def chunked(body: bytes, size: int) -> list[bytes]:
    return [body[i:i + size] for i in range(0, len(body), size)] or [b""]
