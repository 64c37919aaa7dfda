"""`hashguard rotate-secret`: a new server secret without invalidating anything issued before.

The database gets the new version's check value and the current secret sealed under the new one
(store/secret_check.rotate_secret), and every stored signing key is re-sealed under it. A process
with the new secret thus opens verifiers made under every earlier one, and re-keys each as it is
used; a process still holding the old secret refuses to start (it would issue tokens that look
valid to nobody else after the next rotation, and cannot open re-keyed verifiers).

Order, so that no crash loses the new secret: for a data-dir secret the new one is written and
fsynced beside the old file first, the database commits, then the file is renamed into place (a
crash in between leaves `server-secret.new` holding the secret the database expects). For
HASHGUARD_SECRET the new secret is printed once after the commit.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from store import secret_check
from store.secret_file import _fsync_dir
from store.secrets import SECRET_BYTES, encode_secret


class RotationError(Exception):
    pass


@dataclass
class Outcome:
    version: int
    message: str
    printed_secret: str | None  # shown once on stdout when the secret lives in the environment


def rotate(settings, database, established: secret_check.Established,
           new_secret: bytes | None = None) -> Outcome:
    new_secret = new_secret or os.urandom(SECRET_BYTES)
    encoded = encode_secret(new_secret)
    if settings.secret:  # HASHGUARD_SECRET: the operator deploys the printed value
        version = _commit(database, established, new_secret)
        return Outcome(version, f"server secret rotated to version {version}: set "
                                f"HASHGUARD_SECRET to the line below on every process and restart "
                                f"them all (a process with the old secret refuses to start); "
                                f"tokens and partner keys issued before keep working",
                       encoded)
    path = settings.data_dir / "server-secret"
    pending = path.with_name("server-secret.new")
    if pending.exists():
        raise RotationError(f"{pending} exists: an earlier rotation was cut short; if the "
                            f"database refuses the current secret, move it over {path.name}")
    fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(encoded.encode())
        f.flush()
        os.fsync(f.fileno())
    try:
        version = _commit(database, established, new_secret)
    except BaseException:
        pending.unlink(missing_ok=True)  # the database kept the old secret: so does the file
        raise
    os.replace(pending, path)
    _fsync_dir(path.parent)
    return Outcome(version, f"server secret rotated to version {version} in {path}: restart "
                            f"every process using this data dir (and copy the file to every "
                            f"other host); tokens and partner keys issued before keep working",
                   None)


def _commit(database, established, new_secret: bytes) -> int:
    with database.transaction() as session:
        return secret_check.rotate_secret(session, established, new_secret)
