"""The `hashguard` command. Client verbs live here; the server extra adds operator verbs (serve,
partners, ...) through the `hashguard.cli` entry-point group, so this module imports no server code.
"""
from __future__ import annotations

import json
import sys
from importlib.metadata import entry_points
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress

from hashing.media import media_kind
from hashing.scan import Skipped, hash_media_file, iter_files

app = typer.Typer(
    help="hashguard: hash intimate images and videos on your own device; only hashes ever leave it.",
    no_args_is_help=True,
    add_completion=False,
)
stderr = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Keeps `hashguard` a group of verbs even when only `hash` is installed."""


@app.command("hash")
def hash_command(
    paths: list[Path] = typer.Argument(..., help="Files or folders (searched recursively)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line on stdout."),
    dihedral: bool = typer.Option(
        False, "--dihedral", help="Also output the PDQ hashes of the 7 rotations/mirrors."
    ),
) -> None:
    """Hash images (PDQ) and videos (MD5, SHA-256, TMK+PDQF) locally. Nothing is sent anywhere."""
    files = list(iter_files(paths))
    failed = False
    with Progress(console=stderr, transient=True, disable=len(files) < 20) as progress:
        task = progress.add_task("hashing", total=len(files))
        for item in files:
            progress.advance(task)
            if isinstance(item, Skipped):
                stderr.print(f"[red]error[/red]: {item.path}: {item.reason}")
                failed = True
                continue
            kind = media_kind(item)
            if kind is None:
                stderr.print(f"skipped (not an image or video): {item}", highlight=False)
                continue
            for record in hash_media_file(item, kind, dihedral=dihedral):
                failed |= record.get("error_code") == "unreadable"
                _print_record(record, as_json)
    raise typer.Exit(1 if failed else 0)


def _print_record(record: dict, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    if "error" in record:
        stderr.print(f"rejected {record['path']} ({record['signal_type']}): {record['error']}",
                     highlight=False)
        return
    quality = f"  quality={record['quality']}" if "quality" in record else ""
    value = record["value"] if len(record["value"]) <= 64 else record["value"][:32] + "..."
    sys.stdout.write(f"{record['path']}  {record['signal_type']}  {value}{quality}\n")


def _load_plugins() -> None:
    """Let installed extras (the server) add their verbs; a client-only install simply has none."""
    for entry in entry_points(group="hashguard.cli"):
        try:
            register = entry.load()
        except ImportError:  # the extra's dependencies are not installed
            continue
        register(app)


def main() -> None:
    _load_plugins()
    app()
