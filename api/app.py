"""The FastAPI application factory: the one place where routes, errors and storage are wired."""
from __future__ import annotations

from fastapi import FastAPI

from api.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    app = FastAPI(title="hashguard", version="0.1.0")
    app.state.settings = settings

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict:
        """Liveness: the process answers."""
        return {"status": "ok"}

    return app
