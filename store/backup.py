"""`hashguard backup DEST`: one consistent copy of the database, taken while the service runs.

SQLite: the sqlite3 online backup API, which copies a consistent snapshot page by page while
other connections keep reading and writing (a plain `cp` of a WAL-mode file can copy a torn
database). PostgreSQL: `pg_dump --format=custom` (one snapshot; `pg_restore` reads it back).

What it never holds: the data folder (the server secret, unless HASHGUARD_SECRET is used, and the
log's high-water mark). A database restored without its secret refuses to start
(store/secret_check.py), and every case token and partner key is lost with the secret, so the
operator is reminded to keep that folder (or the secret) safe separately.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from store.db import libpq_conninfo


class BackupError(Exception):
    """Why no backup was written (one line for the operator)."""


@dataclass(frozen=True)
class Written:
    path: Path
    size: int
    what: str  # one line: what the file is and how it is restored


def backup(database_url: str, dest: Path) -> Written:
    """Writes the backup to `dest` (never over an existing file; a failed run leaves no `dest`)."""
    dest = Path(dest)
    if dest.exists():
        raise BackupError(f"{dest} exists already; give a new file name")
    if not dest.parent.is_dir():
        raise BackupError(f"folder {dest.parent} does not exist")
    scratch = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    try:
        if make_url(database_url).get_backend_name() == "sqlite":
            what = _sqlite(database_url, scratch)
        else:
            what = _postgres(database_url, scratch)
        os.replace(scratch, dest)
    finally:
        scratch.unlink(missing_ok=True)
    return Written(dest, dest.stat().st_size, what)


def _sqlite(database_url: str, scratch: Path) -> str:
    source_path = make_url(database_url).database
    if not source_path or source_path == ":memory:" or not Path(source_path).is_file():
        raise BackupError(f"no SQLite database at {source_path}")
    # Read-only: a backup must never create or change the database it copies.
    source = sqlite3.connect(f"file:{Path(source_path).resolve()}?mode=ro", uri=True,
                             timeout=30)
    target = sqlite3.connect(scratch)
    try:
        source.backup(target)
        # One self-contained file (the copy inherits WAL mode, whose readers need a -wal file).
        target.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as failed:
        raise BackupError(f"SQLite backup failed: {failed}") from None
    finally:
        target.close()
        source.close()
    return (f"SQLite online backup of {source_path}; to restore, stop the service and copy it "
            "over that file")


def _postgres(database_url: str, scratch: Path) -> str:
    program = shutil.which("pg_dump")
    if program is None:
        raise BackupError("pg_dump not found: install PostgreSQL's client programs (Debian: "
                          "apt-get install postgresql-client, the server's major version or "
                          "newer)")
    url = make_url(libpq_conninfo(database_url))
    env = dict(os.environ)
    if url.password:  # not on the command line, where every user's `ps` would show it
        env["PGPASSWORD"] = str(url.password)
    conninfo = url.set(password=None).render_as_string(hide_password=False)
    done = subprocess.run([program, "--format=custom", "--file", str(scratch),
                           "--dbname", conninfo], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise BackupError("pg_dump failed: " + (lines[-1] if lines else f"exit {done.returncode}"))
    return (f"PostgreSQL custom-format dump of database {url.database!r}; to restore, "
            "pg_restore it into an empty database, then run deploy/after-restore.sql before "
            "starting the service (docs/operations.md \"Restoring\")")


def reminder(data_dir: Path, secret_location: str) -> str:
    return (f"NOT in this backup: the server secret ({secret_location}) and the data folder "
            f"{data_dir}. Keep them safe separately: without the secret the restored service "
            "refuses to start, and every case token and partner key is lost with it.")
