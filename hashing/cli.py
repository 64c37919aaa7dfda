"""The `hashguard` command. A person's verbs live here (hash, submit, add, status, withdraw); the server
extra adds operator verbs (serve, partners, ...) and the partner extra the partner's verbs
(`transparency verify`) through the `hashguard.cli` entry-point group, so this module imports no
server or partner code, and a person's install needs neither (nor `cryptography`).
"""
from __future__ import annotations

import json
import os
import sys
import unicodedata
from collections import Counter
from enum import Enum
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import Progress

from hashing.client import (ApiError, CaseClient, Unreachable, chunks,
                            new_idempotency_key)
from hashing.collect import collect_hashes
from hashing.media import media_kind
from hashing.plain_words import reports_sentence, status_sentence
from hashing.scan import Skipped, hash_media_file, iter_files

app = typer.Typer(
    help="hashguard: hash intimate images and videos on your own device; only hashes ever leave it.",
    no_args_is_help=True,
    add_completion=False,
)
# soft_wrap: a line naming a file is never broken at the terminal width (paths stay copyable and
# greppable; a test caught "no such file" split across two lines on a narrow terminal).
stderr = Console(stderr=True, soft_wrap=True)


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
    """Hash images (PDQ) and videos (MD5, SHA-256, vPDQ, TMK+PDQF) locally. Nothing is sent anywhere."""
    files = list(iter_files(paths))
    failed = False
    with Progress(console=stderr, transient=True, disable=len(files) < 20) as progress:
        task = progress.add_task("hashing", total=len(files))
        for item in files:
            progress.advance(task)
            if isinstance(item, Skipped):
                stderr.print(f"[red]error[/red]: {escape(str(item.path))}: {item.reason}",
                             highlight=False)
                failed = True
                continue
            kind = media_kind(item)
            if kind is None:
                stderr.print(f"skipped (not an image or video): {escape(str(item))}",
                             highlight=False)
                continue
            for record in hash_media_file(item, kind, dihedral=dihedral):
                failed |= record.get("error_code") in ("unreadable", "too_large")
                _print_record(record, as_json)
    raise typer.Exit(1 if failed else 0)


def _print_record(record: dict, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    if "error" in record:
        stderr.print(f"rejected {escape(record['path'])} ({record['signal_type']}): "
                     f"{escape(record['error'])}", highlight=False)
        return
    quality = f"  quality={record['quality']}" if "quality" in record else ""
    value = record["value"] if len(record["value"]) <= 64 else record["value"][:32] + "..."
    sys.stdout.write(f"{record['path']}  {record['signal_type']}  {value}{quality}\n")


# Case verbs: submit, add, status, withdraw ------------------------------------------------------

DEFAULT_SERVER = "http://127.0.0.1:8000"
UNKNOWN_CASE = "unknown case reference or wrong token"
NEW_CASE_WARNING = (
    "Keep the case reference and token safe: write them down, or keep them in a password "
    "manager. The token is shown only now and never again, and cannot be recovered: without it "
    "you cannot check, add to or withdraw this case. Do not share it. When you type it back, "
    "capitals, dashes and spaces do not matter.")
# Dashes a phone or a Japanese keyboard may give for "-"; NFKC folds full-width forms.
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\uff70"), "-")


class Pathway(str, Enum):
    adult = "adult"
    under18_at_capture = "under18_at_capture"


def _server_option() -> str:
    return typer.Option(DEFAULT_SERVER, "--server", envvar="HASHGUARD_SERVER",
                        help="hashguard service URL (env HASHGUARD_SERVER).")


def _yes_option(help: str) -> bool:
    return typer.Option(False, "--yes", "-y", help=help)


@app.command("submit")
def submit_command(
    paths: list[Path] = typer.Argument(..., help="Files or folders to hash (searched recursively)."),
    pathway: Pathway = typer.Option(..., "--pathway",
                                    help="adult, or under18_at_capture if you were under 18 in it."),
    server: str = _server_option(),
    yes: bool = _yes_option("Send even when some of the files could not be hashed; do not ask."),
    as_json: bool = typer.Option(False, "--json", help="Print the server's answer as JSON."),
) -> None:
    """Hash files on this device and open a case with ONLY the hashes; the files are never sent."""
    server = _check_server(server)
    hashes = _hashes_to_send(paths, yes, nothing="nothing to submit")
    _announce(hashes, server)
    first, *rest = chunks(hashes)
    with CaseClient(server) as client:
        created = _call(lambda: client.create_case(pathway.value, first,
                                                   idempotency_key=new_idempotency_key()))
        if not isinstance(created.get("case_ref"), str) or not isinstance(created.get("token"), str):
            _fail("the server's answer has no case reference and token")
        _show_new_case(created, as_json)
        client.token = created["token"]
        for index, chunk in enumerate(rest, start=1):
            try:
                client.add_hashes(created["case_ref"], chunk)
            except (ApiError, Unreachable) as failure:
                not_sent = sum(len(c) for c in rest[index - 1:])
                _fail(f"case {created['case_ref']} was created, but {not_sent} hash(es) could "
                      f"not be added: {_explain(failure)}. Add the files again later with "
                      f"`hashguard add {created['case_ref']} FILE...`")


@app.command("add")
def add_command(
    ref: str = typer.Argument(..., help="Case reference, e.g. HG-XXXX-XXXX."),
    paths: list[Path] = typer.Argument(..., help="Files or folders to hash (searched recursively)."),
    server: str = _server_option(),
    yes: bool = _yes_option("Send even when some of the files could not be hashed; do not ask."),
    as_json: bool = typer.Option(False, "--json", help="Print the server's answer as JSON."),
) -> None:
    """Hash more files on this device and add ONLY their hashes to an existing case (token: env HASHGUARD_TOKEN or prompt)."""
    server = _check_server(server)
    ref = _normal_ref(ref)
    token = _token()
    hashes = _hashes_to_send(paths, yes, nothing="nothing to add")
    _announce(hashes, server)
    added, answer, batches = 0, {}, chunks(hashes)
    with CaseClient(server, token) as client:
        for index, batch in enumerate(batches):
            try:
                answer = client.add_hashes(ref, batch)
            except (ApiError, Unreachable) as failure:
                left = sum(len(b) for b in batches[index:])
                done = f"{added} hash(es) were added, but " if index else ""
                _fail(f"{done}{left} hash(es) could not be added to case {ref}: "
                      f"{_case_failure(failure, ref)}")
            added += int(answer.get("added") or 0)
    summary = {"case_ref": answer.get("case_ref", ref), "added": added,
               "hash_count": answer.get("hash_count")}
    if as_json:
        _print_json(summary)
        return
    already = len(hashes) - added
    stderr.print(f"Added {added} hash(es) to case {escape(ref)}"
                 + (f" ({already} {'was' if already == 1 else 'were'} already in it)"
                    if already else "")
                 + f"; it now holds {summary['hash_count']}.", highlight=False)
    print(f"case_ref: {summary['case_ref']}")
    print(f"added: {added}")
    print(f"hash_count: {summary['hash_count']}")


@app.command("status")
def status_command(
    ref: str = typer.Argument(..., help="Case reference, e.g. HG-XXXX-XXXX."),
    server: str = _server_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the server's answer as JSON."),
) -> None:
    """Show a case's status and what partners did with its hashes (token: env HASHGUARD_TOKEN or prompt)."""
    server = _check_server(server)
    with CaseClient(server, _token()) as client:
        case = _call(lambda: client.get_case(_normal_ref(ref)), case_lookup=True)
    if as_json:
        _print_json(case)
        return
    print(f"case_ref: {case.get('case_ref', _normal_ref(ref))}")
    print(f"status: {case.get('status')}")
    print(f"  {status_sentence(case.get('status'))}")
    if "pathway" in case:
        print(f"pathway: {case['pathway']}")
    for item in case.get("hashes") or []:
        value = str(item.get("value", ""))
        value = value if len(value) <= 64 else value[:32] + "..."
        parts = [str(item.get("signal_type")), value]
        if item.get("quality") is not None:
            parts.append(f"quality={item['quality']}")
        print("  ".join(parts))
        print(f"  {reports_sentence(item.get('reports') or {})}")


@app.command("withdraw")
def withdraw_command(
    ref: str = typer.Argument(..., help="Case reference, e.g. HG-XXXX-XXXX."),
    server: str = _server_option(),
    yes: bool = _yes_option("Do not ask for confirmation."),
    as_json: bool = typer.Option(False, "--json", help="Print the server's answer as JSON."),
) -> None:
    """Withdraw a case: partners are told to stop using its hashes (token: env HASHGUARD_TOKEN or prompt)."""
    server = _check_server(server)
    ref = _normal_ref(ref)
    token = _token()
    if not yes:
        answer = _confirm(f"Withdraw case {ref}? Partners will stop matching its hashes.")
        if answer is None:
            _fail("not withdrawn: no answer to the question (use --yes to withdraw without it)")
        if not answer:  # a choice, not an error
            stderr.print(f"Not withdrawn: case {escape(ref)} is unchanged.", highlight=False)
            raise typer.Exit(0)
    with CaseClient(server, token) as client:
        case = _call(lambda: client.withdraw(ref), case_lookup=True)
    if as_json:
        _print_json(case)
    else:
        print(f"case_ref: {case.get('case_ref', ref)}")
        print(f"status: {case.get('status')}")
        print(f"  {status_sentence(case.get('status'))}")


def _hashes_to_send(paths: list[Path], yes: bool, nothing: str) -> list[dict]:
    """The hashes to send, after every file that gives none (or not all) of its hashes was shown
    in one block and the person agreed to go on without it (issue 18: a mistyped name must not
    quietly leave a picture out of the case)."""
    collected = collect_hashes(paths)
    for path in collected.not_media:
        stderr.print(f"skipped (not an image or video): {escape(str(path))}", highlight=False)
    for problem in collected.problems:
        label = "partly sent" if problem.partly else "not sent"
        stderr.print(f"[yellow]{label}[/yellow]: {escape(str(problem.path))}: "
                     f"{escape(problem.reason)}", highlight=False)
    if not collected.hashes:
        _fail(f"{nothing}: no file gave a usable hash")
    if not collected.problems or yes:
        return collected.hashes
    files = len(collected.problems)
    question = (f"{files} of the files you gave could not be hashed (listed above). Send the "
                f"hashes of the other {collected.files_sent} file(s) without them?")
    if not sys.stdin.isatty():
        _fail(f"nothing was sent: {files} file(s) could not be hashed (listed above). Check the "
              "names and run again, or add --yes to send the hashes of the other files.")
    if not _confirm(question):
        stderr.print("Nothing was sent.", highlight=False)
        raise typer.Exit(0)
    return collected.hashes


def _announce(hashes: list[dict], server: str) -> None:
    counts = Counter(h["signal_type"] for h in hashes)
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    stderr.print(f"Sending {len(hashes)} hash(es) to {escape(server)}: {summary}. "
                 "Only these hashes are sent, no image or video data.", highlight=False)


def _confirm(question: str) -> bool | None:
    """The person's yes or no; None when there is no one to answer (end of input)."""
    try:
        return typer.confirm(question, default=False, err=True)
    except typer.Abort:
        return None


def _show_new_case(created: dict, as_json: bool) -> None:
    # The panel wraps, never crops (soft_wrap=False): at 80 columns the console's soft_wrap cut
    # the box at "The tok │", losing that the token is never shown again.
    if as_json:
        _print_json(created)
        stderr.print(Panel(NEW_CASE_WARNING, title="case created", border_style="yellow"),
                     soft_wrap=False)
        return
    stderr.print(Panel(f"case reference: [bold]{escape(created['case_ref'])}[/bold]\n"
                       f"token:          [bold]{escape(created['token'])}[/bold]\n\n"
                       f"{NEW_CASE_WARNING}",
                       title="case created", border_style="yellow"),
                 highlight=False, soft_wrap=False)
    print(f"case_ref: {created['case_ref']}")
    print(f"token: {created['token']}", flush=True)


def _call(request, case_lookup: bool = False) -> dict:
    try:
        return request()
    except (ApiError, Unreachable) as failure:
        if case_lookup and isinstance(failure, ApiError) and failure.status in (401, 403, 404):
            _fail(UNKNOWN_CASE)
        _fail(_explain(failure))


def _case_failure(failure: Exception, ref: str) -> str:
    if isinstance(failure, ApiError) and failure.status in (401, 403, 404):
        return UNKNOWN_CASE
    if isinstance(failure, ApiError) and failure.code == "case_withdrawn":
        return ("the case was withdrawn, so nothing can be added to it; open a new case with "
                "`hashguard submit`")
    return _explain(failure)


def _explain(failure: Exception) -> str:
    if isinstance(failure, ApiError):
        return f"server error {failure.code}: {failure.message}"
    return str(failure)


def _token() -> str:
    token = os.environ.get("HASHGUARD_TOKEN", "").strip()
    typed = token or typer.prompt("Case token", hide_input=True, err=True)
    return _typed_token(typed)


def _typed_token(text: str) -> str:
    """What a person typed, made sendable: full-width characters and keyboard dashes folded (an
    HTTP header carries Latin-1 only; the server folds case, dashes and spaces itself)."""
    token = unicodedata.normalize("NFKC", text).translate(_DASHES).strip()
    if not token.isascii() or not token.isprintable():
        _fail(f"{UNKNOWN_CASE} (the token has characters no token has)")
    return token


def _normal_ref(ref: str) -> str:
    return unicodedata.normalize("NFKC", ref).translate(_DASHES).strip().upper()


def _check_server(server: str) -> str:
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        _fail(f"--server must be an http:// or https:// URL, not {server!r}")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        stderr.print(f"[yellow]warning[/yellow]: {server} is not https; the token travels unencrypted",
                     highlight=False)
    return server.rstrip("/")


def _print_json(body: dict) -> None:
    sys.stdout.write(json.dumps(body, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def _fail(message: str):
    stderr.print(f"[red]error[/red]: {message}", highlight=False)
    raise typer.Exit(1)


# Plugins: the server extra (operator verbs) and the partner extra (partner_tools/) -------------

def verb_group(parent: typer.Typer, name: str, help: str) -> typer.Typer:
    """The sub-command group `name` of `parent`, added with `help` if no plugin added it yet: two
    plugins share one group (`hashguard transparency`: the operator's `public-key`, the
    partner's `verify`) without importing each other."""
    for group in parent.registered_groups:
        if group.name == name and group.typer_instance is not None:
            return group.typer_instance
    group = typer.Typer(help=help, no_args_is_help=True)
    parent.add_typer(group, name=name)
    return group


def _load_plugins() -> None:
    """Let installed extras add their verbs (entry-point group hashguard.cli: the server's
    operator verbs, the partner tools' `transparency verify`); a person's client-only install has
    none, and an extra whose dependencies are missing is skipped."""
    for entry in entry_points(group="hashguard.cli"):
        try:
            register = entry.load()
        except ImportError:  # the extra's dependencies are not installed
            continue
        register(app)


def main() -> None:
    _load_plugins()
    app()
