"""The PostgreSQL write rules as versioned source: the SQL functions the postgres backend calls.

Why functions in the database: a submit is one statement and one round trip (a batch of them,
store/submit_batcher.py), so the rules must run inside the server. Why here and not in a
migration: a migration is history; a newcomer looking for "what a submit does" should find it
next to the code that calls it. This follows Alembic's "replaceable objects" recipe: each
released version is a named constant that never changes; a migration installs one by name
(migrations/versions/0010 installs v0010.WRITE_RULES) and its downgrade installs the previous
one. To change a rule: copy the live version to a new module, change it, point `live()` at it,
and add a migration that drops the old functions and installs the new ones.
tests/test_store_backends_agree.py checks that a migrated database runs exactly the live source,
and that these rules leave the same rows and log as the SQLite backend's (sqlite.py).

Each rule is written once (store/backends/__init__.py states them in words):
- hashguard_upsert_hashes   one row per distinct hash, the best quality any submitter reported;
                            rows locked in digest order (concurrent submits cannot deadlock)
- hashguard_share           only hashes in state 'ok', and not held back from the pathway by
                            disputes, enter the shared set; each new (hash, pathway) logs an
                            `add`, with `also_shared`
- hashguard_unshare         each (hash, pathway) leaving the shared set logs a `remove`
- hashguard_append          the change-log insert: positioned now under the append lock, or
                            left to the commit-time trigger (store/changelog.py)
- hashguard_link_and_share  the submit: upsert, link to cases, share per pathway
- hashguard_create_cases    a batch of new cases, each drawing a tick of the event clock, then
                            hashguard_link_and_share
- change_log_assign_position  the commit trigger: both positions of an entry, and its time

Why the functions pass rows as arrays instead of re-reading `hashes`: PL/pgSQL keeps one plan
per statement for the life of a connection, and a plan made while a table is small scans it
whole; migration 0005 measured a batch growing from <1 ms to 56 ms that way. So hash rows are
read once, by the upsert (or, for the other writers, by the caller's row-locking SELECT), and
everything after works on those arrays. Each share/unshare is a statement of its own, so its
snapshot, taken while the transaction holds the hashes' row locks, sees every earlier writer
(and the pathways shared earlier in the same batch).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReplaceableFunctions:
    revision: str
    create: str
    drop: str
    names: tuple[str, ...]  # every function `create` defines, in order


def live() -> ReplaceableFunctions:
    """The version the code calls (imported late: the versions import this module)."""
    from store.backends.pg_functions import v0010
    return v0010.WRITE_RULES
