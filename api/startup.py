"""What a process does before it serves: migrate, then check its secret and signing keys
against the database (or record them on a fresh one), all under one lock (store/migrate.py) so
that any number of processes may start at once. A mismatch refuses to start (one line, exit 1:
store/secret_check.StartRefused)."""
from __future__ import annotations

from api.settings import Settings
from partners import transparency, webhooks
from store import migrate, secret_check
from store.db import Database


def key_sources(settings: Settings) -> dict[str, secret_check.KeySource]:
    """The environment's keys, else the per-host key files of earlier versions (adopted once)."""
    return {
        "transparency": secret_check.KeySource(settings.key_seed("transparency"),
                                               settings.data_dir / transparency.KEY_FILE),
        "webhook": secret_check.KeySource(settings.key_seed("webhook"),
                                          settings.data_dir / webhooks.KEY_FILE),
    }


def prepare(settings: Settings, database: Database,
            run_migrations: bool = True) -> secret_check.Established:
    url = settings.resolved_database_url()
    with migrate.startup_lock(url):
        if run_migrations:
            migrate.upgrade_unlocked(url)
        with database.transaction() as session:
            return secret_check.establish(session, settings.configured_secret(),
                                          settings.server_secret, settings.secret_location(),
                                          key_sources(settings))
