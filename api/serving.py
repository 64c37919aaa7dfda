"""`hashguard serve`: uvicorn with the project's logging in every worker, and read timeouts.

Why not `uvicorn --workers N` (the docs' old hint): uvicorn's defaults log every request with the
client's address and the path with its query string, i.e. IP addresses and case references,
which docs/privacy.md promises never to log. Here every worker runs with uvicorn's access log
off and no uvicorn log config, so the app's JSON logging (api/logs.py) is the only one.

Why read timeouts: uvicorn (h11) arms no timer on a new connection until a first response is
complete, so a client that sends half a request line and stops, or headers and then no body,
holds its connection, and a slot of the app, for ever (a slow-loris). TimedH11Protocol closes
a connection whose headers are not complete `header_timeout` seconds after they began (or after
the connection opened), or whose body is not complete `body_timeout` seconds after its headers.
The app then sees the client as gone (http.disconnect).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.supervisors import Multiprocess

from api.settings import Settings

# Env names the workers read (a worker process builds its own Settings from the environment).
_HEADER_ENV, _BODY_ENV = "HASHGUARD_HEADER_TIMEOUT_SECONDS", "HASHGUARD_BODY_TIMEOUT_SECONDS"


@dataclass(frozen=True)
class ReadTimeouts:
    header: float = 10.0
    body: float = 60.0


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on reading each request (see module doc)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        settings_view = getattr(self.config, "hashguard_read_timeouts", None) or ReadTimeouts()
        self._timeouts = settings_view
        self._deadline = None  # asyncio.TimerHandle
        self._phase = None  # "header" | "body" | None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm("header")  # nothing sent yet counts as headers not complete

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()  # a pipelined next request may be part-read already

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _follow(self) -> None:
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            self._arm("body")
        elif state is h11.IDLE and self.conn.trailing_data[0]:
            self._arm("header")  # part of the next request line or headers has arrived
        elif state is not h11.IDLE:
            self._disarm()  # request read (DONE), or closing: the app's own time is its own

    def _arm(self, phase: str) -> None:
        if self._phase == phase:
            return  # a deadline, not an idle timer: trickling bytes does not extend it
        self._disarm()
        self._phase = phase
        seconds = self._timeouts.header if phase == "header" else self._timeouts.body
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline, self._phase = None, None

    def _expired(self) -> None:
        self._deadline, self._phase = None, None
        if not self.transport.is_closing():
            self.transport.close()


def app_factory():
    """What each worker runs (uvicorn factory): the app from the environment's settings."""
    from api.app import create_app

    return create_app(Settings())


def timeouts(settings: Settings) -> ReadTimeouts:
    return ReadTimeouts(settings.header_timeout_seconds, settings.body_timeout_seconds)


def serve(settings: Settings, host: str, port: int, workers: int = 1,
          timeout_keep_alive: int = 5) -> None:
    read_timeouts = timeouts(settings)
    common = dict(host=host, port=port, access_log=False, log_config=None,
                  http=TimedH11Protocol, timeout_keep_alive=timeout_keep_alive,
                  proxy_headers=False, server_header=False)
    if workers <= 1:
        from api.app import create_app

        config = uvicorn.Config(create_app(settings), **common)
        config.hashguard_read_timeouts = read_timeouts
        uvicorn.Server(config).run()
        return
    # The parent migrates and checks the secret first (refusing once, before any worker), then
    # each worker builds its app from the environment, which carries the command's options.
    from api.logs import configure_logging
    from api.startup import prepare
    from store.db import Database

    configure_logging(settings.log_level)  # the parent's own lines, JSON like the workers'
    database = Database(settings.resolved_database_url())
    try:
        prepare(settings, database)
    finally:
        database.dispose()
    os.environ["HASHGUARD_DATABASE_URL"] = settings.resolved_database_url()
    os.environ[_HEADER_ENV] = str(read_timeouts.header)
    os.environ[_BODY_ENV] = str(read_timeouts.body)
    config = uvicorn.Config("api.serving:app_factory", factory=True, workers=workers, **common)
    config.hashguard_read_timeouts = read_timeouts
    sock = config.bind_socket()
    Multiprocess(config, sockets=[sock]).run()
