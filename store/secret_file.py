"""Creating a secret file once, safely, when several processes start at the same moment.

The server secret (api/settings.py) and the signing keys (partners/transparency.py,
partners/webhooks.py) are made on first start when no environment variable provides them. With
several workers starting together, "if missing: open(O_EXCL) and write" lets one worker crash on
FileExistsError and another read the file while it is still empty, then issue tokens that no
other worker can verify. Here the content is written and fsynced under a private scratch name
and then hard-linked into place: link() refuses an existing name, so exactly one content wins,
and a reader only ever sees the name once the whole content is behind it.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def read_or_create(path: Path, make: Callable[[], bytes]) -> tuple[bytes, bool]:
    """The content of `path` (mode 0600), made with `make()` if no process has made it yet.
    Returns (content, created by this call)."""
    path = Path(path)
    try:
        return path.read_bytes(), False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(make())
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(scratch, path)
            created = True
        except FileExistsError:
            created = False  # another process won: everyone uses its content
    finally:
        scratch.unlink(missing_ok=True)
    if created:
        _fsync_dir(path.parent)  # the new name survives a crash, not only the scratch's data
    return path.read_bytes(), created


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # a platform without directory fds: nothing more to do
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
