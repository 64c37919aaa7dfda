"""Operator verb `hashguard transparency public-key`: the key partners pin to check signed tree
heads (the client verb `hashguard transparency verify` lives in hashing/cli.py)."""
from __future__ import annotations

import os
from pathlib import Path

import typer


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "hashguard"


def public_key(
    data_dir: Path = typer.Option(None, "--data-dir", envvar="HASHGUARD_DATA_DIR",
                                  help="The service's data dir (HASHGUARD_DATA_DIR, else "
                                       "~/.local/share/hashguard); the key is made there if new."),
    pem: bool = typer.Option(False, "--pem", help="Print the PEM (SubjectPublicKeyInfo) instead."),
) -> None:
    """Print the public key that signs the transparency log's tree heads (base64 raw Ed25519,
    then its key id on stderr). Give it to partners: `hashguard transparency verify --public-key`."""
    from hashing import transparency as tlog
    from partners.transparency import public_key_pem, public_key_raw, signing_key

    key = signing_key(data_dir or _default_data_dir())
    raw = public_key_raw(key)
    typer.echo(f"key id: {tlog.key_id(raw)}", err=True)
    typer.echo(public_key_pem(key).rstrip("\n") if pem else tlog.b64encode(raw))


def register(app: typer.Typer) -> None:
    """Add `public-key` to the client's `hashguard transparency` group (hashing/cli.py)."""
    from hashing.cli import transparency_app

    transparency_app.command("public-key")(public_key)
