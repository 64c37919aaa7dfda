"""What a process does before it serves: migrate, then check its secret and signing keys
against the database (or record them on a fresh one), all under one lock (store/migrate.py) so
that any number of processes may start at once. A mismatch refuses to start (one line, exit 1:
store/secret_check.StartRefused)."""
from __future__ import annotations

import logging

import psycopg
from sqlalchemy import exc

from api.settings import Settings
from partners import transparency, webhooks
from store import migrate, secret_check
from store.db import Database
from store.secrets import ServerSecret

log = logging.getLogger("hashguard.startup")


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
    try:
        with migrate.startup_lock(url):
            if run_migrations:
                migrate.upgrade_unlocked(url)
            with database.transaction() as session:
                return secret_check.establish(session, settings.configured_secret(),
                                              settings.server_secret,
                                              settings.secret_location(), key_sources(settings))
    except (exc.DBAPIError, psycopg.Error) as unusable:
        if run_migrations:
            raise  # the service's own start: no schema, no serving
        # An app built without migrating (the OpenAPI export, tests of a database that is
        # down): nothing to check against, so the secret and keys come from this process alone.
        log.warning("secret and signing keys not checked against the database (%s)",
                    type(unusable).__name__)
        return _unchecked(settings)


def _unchecked(settings: Settings) -> secret_check.Established:
    from partners.transparency import signing_key

    webhook_seed = settings.key_seed("webhook")
    keys = {"transparency": signing_key(settings.data_dir, settings.transparency_key)}
    keys["webhook"] = (secret_check.Ed25519PrivateKey.from_private_bytes(webhook_seed)
                       if webhook_seed else webhooks.WebhookSigner(settings.data_dir)._key)
    # Version 0: none recorded, so nothing (the log's builder, its key endpoint) asks the database.
    return secret_check.Established(ServerSecret(settings.server_secret()), 0, keys)
