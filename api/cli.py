"""Operator verbs added to `hashguard` when the server extra is installed (entry point hashguard.cli)."""
from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    database_url: str = typer.Option(
        None, "--database-url", envvar="HASHGUARD_DATABASE_URL",
        help="SQLAlchemy URL; default: SQLite file hashguard.db in the data dir "
             "(HASHGUARD_DATA_DIR, else ~/.local/share/hashguard).",
    ),
) -> None:
    """Run the hashguard service."""
    import uvicorn

    from api.app import create_app
    from api.settings import Settings

    settings = Settings(database_url=database_url) if database_url else Settings()
    uvicorn.run(create_app(settings), host=host, port=port,
                access_log=False)  # access logs would record client IPs
