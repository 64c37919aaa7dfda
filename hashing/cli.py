"""The `hashguard` command. A person's verbs live here (hash, submit, add, status, withdraw); the server
extra adds operator verbs (serve, partners, ...) and the partner extra the partner's verbs
(`transparency verify`) through the `hashguard.cli` entry-point group, so this module imports no
server or partner code, and a person's install needs neither (nor `cryptography`).

What a person reads is in their language (`--lang`, else the locale; hashing/i18n); what a script
reads (`--json`, the `case_ref:` / `token:` / `status:` lines, error codes) is not translated.
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

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.text import Text

from hashing.client import (ApiError, CaseClient, Unreachable, chunks,
                            new_idempotency_key)
from hashing import i18n
from hashing.i18n import width
from hashing.collect import Problem, collect_hashes
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
# The person's language, set by every person's verb before it says anything (_lang_option).
words = i18n.Words()


def t(key: str, **fields) -> str:
    return words.t(key, **fields)


def _choose_language(value: str | None) -> str:
    global words
    lang = i18n.parse(value) if value else i18n.from_environment()
    if lang is None:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(i18n.LANGUAGES)}")
    words = i18n.Words(lang)
    return lang


def _lang_option() -> str | None:
    # Eager: the language is known before any other option's message.
    return typer.Option(None, "--lang", callback=_choose_language, is_eager=True,
                        help=f"Language of the messages: {', '.join(i18n.LANGUAGES)} "
                             "(default: from LC_ALL / LC_MESSAGES / LANG, else en).")


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
    lang: str = _lang_option(),
) -> None:
    """Hash images (PDQ) and videos (MD5, SHA-256, vPDQ, TMK+PDQF) locally. Nothing is sent anywhere."""
    files = list(iter_files(paths))
    failed = False
    with Progress(console=stderr, transient=True, disable=len(files) < 20) as progress:
        task = progress.add_task(t("progress.hashing"), total=len(files))
        for item in files:
            progress.advance(task)
            if isinstance(item, Skipped):
                stderr.print(f"[red]{escape(t('label.error'))}[/red]: {escape(str(item.path))}: "
                             f"{escape(t('reason.missing'))}", highlight=False)
                failed = True
                continue
            kind = media_kind(item)
            if kind is None:
                stderr.print(escape(t("files.skipped_not_media", path=str(item))),
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
        stderr.print(f"{escape(t('label.rejected'))} {escape(record['path'])} "
                     f"({record['signal_type']}): {escape(_reason(record))}", highlight=False)
        return
    quality = f"  quality={record['quality']}" if "quality" in record else ""
    value = record["value"] if len(record["value"]) <= 64 else record["value"][:32] + "..."
    sys.stdout.write(f"{record['path']}  {record['signal_type']}  {value}{quality}\n")


# Case verbs: submit, add, status, withdraw ------------------------------------------------------

DEFAULT_SERVER = "http://127.0.0.1:8000"
# The English texts, named for the tests and for readers of this module (hashing/i18n/en.json).
UNKNOWN_CASE = i18n.Words().t("case.unknown")
NEW_CASE_WARNING = i18n.Words().t("case.warning")
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
    lang: str = _lang_option(),
) -> None:
    """Hash files on this device and open a case with ONLY the hashes; the files are never sent."""
    server = _check_server(server)
    hashes = _hashes_to_send(paths, yes, nothing="submit.nothing")
    _announce(hashes, server)
    first, *rest = chunks(hashes)
    with CaseClient(server) as client:
        created = _call(lambda: client.create_case(pathway.value, first,
                                                   idempotency_key=new_idempotency_key()))
        if not isinstance(created.get("case_ref"), str) or not isinstance(created.get("token"), str):
            _fail(t("case.no_ref_token"))
        _show_new_case(created, as_json)
        client.token = created["token"]
        for index, chunk in enumerate(rest, start=1):
            try:
                client.add_hashes(created["case_ref"], chunk)
            except (ApiError, Unreachable) as failure:
                not_sent = sum(len(c) for c in rest[index - 1:])
                _fail(t("case.created_not_added", ref=created["case_ref"], count=not_sent,
                        reason=_explain(failure)))


@app.command("add")
def add_command(
    ref: str = typer.Argument(..., help="Case reference, e.g. HG-XXXX-XXXX."),
    paths: list[Path] = typer.Argument(..., help="Files or folders to hash (searched recursively)."),
    server: str = _server_option(),
    yes: bool = _yes_option("Send even when some of the files could not be hashed; do not ask."),
    as_json: bool = typer.Option(False, "--json", help="Print the server's answer as JSON."),
    lang: str = _lang_option(),
) -> None:
    """Hash more files on this device and add ONLY their hashes to an existing case (token: env HASHGUARD_TOKEN or prompt)."""
    server = _check_server(server)
    ref = _normal_ref(ref)
    token = _token()
    hashes = _hashes_to_send(paths, yes, nothing="add.nothing")
    _announce(hashes, server)
    added, answer, batches = 0, {}, chunks(hashes)
    with CaseClient(server, token) as client:
        for index, batch in enumerate(batches):
            try:
                answer = client.add_hashes(ref, batch)
            except (ApiError, Unreachable) as failure:
                left = sum(len(b) for b in batches[index:])
                _fail(t("add.failed_after" if index else "add.failed", added=added, count=left,
                        ref=ref, reason=_case_failure(failure, ref)))
            added += int(answer.get("added") or 0)
    summary = {"case_ref": answer.get("case_ref", ref), "added": added,
               "hash_count": answer.get("hash_count")}
    if as_json:
        _print_json(summary)
        return
    already = len(hashes) - added
    stderr.print(escape(words.t("add.done_already" if already else "add.done", added=added,
                                ref=ref, count=already, total=summary["hash_count"])),
                 highlight=False)
    print(f"case_ref: {summary['case_ref']}")
    print(f"added: {added}")
    print(f"hash_count: {summary['hash_count']}")


@app.command("status")
def status_command(
    ref: str = typer.Argument(..., help="Case reference, e.g. HG-XXXX-XXXX."),
    server: str = _server_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the server's answer as JSON."),
    lang: str = _lang_option(),
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
    print(f"  {status_sentence(case.get('status'), words)}")
    if "pathway" in case:
        print(f"pathway: {case['pathway']}")
    for item in case.get("hashes") or []:
        value = str(item.get("value", ""))
        value = value if len(value) <= 64 else value[:32] + "..."
        parts = [str(item.get("signal_type")), value]
        if item.get("quality") is not None:
            parts.append(f"quality={item['quality']}")
        print("  ".join(parts))
        print(f"  {reports_sentence(item.get('reports') or {}, words)}")


@app.command("withdraw")
def withdraw_command(
    ref: str = typer.Argument(..., help="Case reference, e.g. HG-XXXX-XXXX."),
    server: str = _server_option(),
    yes: bool = _yes_option("Do not ask for confirmation."),
    as_json: bool = typer.Option(False, "--json", help="Print the server's answer as JSON."),
    lang: str = _lang_option(),
) -> None:
    """Withdraw a case: partners are told to stop using its hashes (token: env HASHGUARD_TOKEN or prompt)."""
    server = _check_server(server)
    ref = _normal_ref(ref)
    token = _token()
    if not yes:
        answer = _confirm(t("withdraw.question", ref=ref))
        if answer is None:
            _fail(t("withdraw.no_answer"))
        if not answer:  # a choice, not an error
            stderr.print(escape(t("withdraw.declined", ref=ref)), highlight=False)
            raise typer.Exit(0)
    with CaseClient(server, token) as client:
        case = _call(lambda: client.withdraw(ref), case_lookup=True)
    if as_json:
        _print_json(case)
    else:
        print(f"case_ref: {case.get('case_ref', ref)}")
        print(f"status: {case.get('status')}")
        print(f"  {status_sentence(case.get('status'), words)}")


def _hashes_to_send(paths: list[Path], yes: bool, nothing: str) -> list[dict]:
    """The hashes to send, after every file that gives none (or not all) of its hashes was shown
    in one block and the person agreed to go on without it (issue 18: a mistyped name must not
    quietly leave a picture out of the case)."""
    collected = collect_hashes(paths)
    for path in collected.not_media:
        stderr.print(escape(t("files.skipped_not_media", path=str(path))), highlight=False)
    for problem in collected.problems:
        label = t("label.partly_sent" if problem.partly else "label.not_sent")
        stderr.print(f"[yellow]{escape(label)}[/yellow]: {escape(str(problem.path))}: "
                     f"{escape(_problem_reason(problem))}", highlight=False)
    if not collected.hashes:
        _fail(t(nothing))
    if not collected.problems or yes:
        return collected.hashes
    files = len(collected.problems)
    question = t("files.ask_send", files=files, sent=collected.files_sent)
    if not sys.stdin.isatty():
        _fail(t("files.refuse_without_terminal", files=files))
    if not _confirm(question):
        stderr.print(escape(t("files.nothing_sent")), highlight=False)
        raise typer.Exit(0)
    return collected.hashes


def _announce(hashes: list[dict], server: str) -> None:
    counts = Counter(h["signal_type"] for h in hashes)
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    stderr.print(escape(t("files.announce", count=len(hashes), server=server, summary=summary)),
                 highlight=False)


def _reason(record: dict) -> str:
    """Why a file gave no hash of this type, in the person's language. English keeps the
    detailed message (sizes, quality scores); a translation says the same in general words."""
    if words.lang == i18n.ENGLISH or f"reason.{record.get('error_code')}" not in \
            i18n.catalogue(i18n.ENGLISH):
        return record["error"]
    return t(f"reason.{record['error_code']}")


def _problem_reason(problem: Problem) -> str:
    if words.lang == i18n.ENGLISH:
        return problem.reason
    phrases: list[str] = []
    for failure in problem.failures:
        phrase = _reason(failure)
        if problem.partly:
            phrase = t("reason.of_type", signal=failure["signal_type"], reason=phrase)
        if phrase not in phrases:
            phrases.append(phrase)
    return t("reason.separator").join(phrases)


def _confirm(question: str) -> bool | None:
    """The person's yes or no (y/n, or the language's own words: はい/いいえ, sim/não...); no on
    just Enter; None when there is no one to answer (end of input)."""
    while True:
        try:
            typed = click.prompt(f"{question} {t('answer.hint')}", default="",
                                 show_default=False, err=True)
        except click.Abort:
            return None
        answer = words.answer(typed)
        if answer is not None:
            return answer
        stderr.print(escape(t("answer.again")), highlight=False)


def _show_new_case(created: dict, as_json: bool) -> None:
    if as_json:
        _print_json(created)
        _box(t("case.title"), t("case.warning"))
        return
    labels = [t("case.reference") + ":", t("case.token") + ":"]
    column = max(width.width(label) for label in labels) + 1
    ref_label, token_label = (label + " " * (column - width.width(label)) for label in labels)
    _box(t("case.title"), f"{ref_label}{created['case_ref']}\n{token_label}{created['token']}\n\n"
                          f"{t('case.warning')}", bold=(created["case_ref"], created["token"]))
    print(f"case_ref: {created['case_ref']}")
    print(f"token: {created['token']}", flush=True)


def _box(title: str, text: str, bold: tuple[str, ...] = ()) -> None:
    """A yellow box around `text`, wrapped by this module at the terminal's width, never cropped
    (at 80 columns rich's Panel once cut the box at "The tok │", losing that the token is never
    shown again), and measured as the terminal draws it (hashing/i18n/width.py: CJK characters
    two columns, Devanagari vowel signs one, which rich counts as none). At most 100 columns:
    short lines read more easily."""
    outer = max(min(stderr.width, 100), 12)
    inner = outer - 4
    head = f" {title} "
    if width.width(head) > outer - 4:  # a title wider than the box: on its own line above it
        stderr.print(title, soft_wrap=True, highlight=False)
        head = ""
    left = (outer - 2 - width.width(head)) // 2
    right = outer - 2 - width.width(head) - left
    out = [Text.assemble(("╭" + "─" * left, "yellow"), (head, "bold yellow"),
                         ("─" * right + "╮", "yellow"))]
    for line in width.wrap(text, inner):
        body = Text(line + " " * (inner - width.width(line)))
        body.highlight_words([b for b in bold if b], "bold")
        out.append(Text.assemble(("│ ", "yellow"), body, (" │", "yellow")))
    out.append(Text("╰" + "─" * (outer - 2) + "╯", style="yellow"))
    for line in out:
        stderr.print(line, soft_wrap=True, highlight=False)


def _call(request, case_lookup: bool = False) -> dict:
    try:
        return request()
    except (ApiError, Unreachable) as failure:
        if case_lookup and isinstance(failure, ApiError) and failure.status in (401, 403, 404):
            _fail(t("case.unknown"))
        _fail(_explain(failure))


def _case_failure(failure: Exception, ref: str) -> str:
    if isinstance(failure, ApiError) and failure.status in (401, 403, 404):
        return t("case.unknown")
    if isinstance(failure, ApiError) and failure.code == "case_withdrawn":
        return t("add.withdrawn")
    return _explain(failure)


def _explain(failure: Exception) -> str:
    """The server's error in the person's words. English keeps the server's own message (it is
    English); another language shows the page's sentence for that code with the code beside it,
    else the server's message under a translated "server error"."""
    english = words.lang == i18n.ENGLISH
    if isinstance(failure, ApiError):
        if not english and words.has_page(f"errors.{failure.code}"):
            return t("server.known_error", sentence=words.page(f"errors.{failure.code}"),
                     code=failure.code)
        return t("server.error", code=failure.code, message=failure.message)
    if english:
        return str(failure)
    return t("server.unreachable", sentence=words.page("errors.network"), detail=str(failure))


def _token() -> str:
    token = os.environ.get("HASHGUARD_TOKEN", "").strip()
    typed = token or typer.prompt(t("case.token_prompt"), hide_input=True, err=True)
    return _typed_token(typed)


def _typed_token(text: str) -> str:
    """What a person typed, made sendable: full-width characters and keyboard dashes folded (an
    HTTP header carries Latin-1 only; the server folds case, dashes and spaces itself)."""
    token = unicodedata.normalize("NFKC", text).translate(_DASHES).strip()
    if not token.isascii() or not token.isprintable():
        _fail(t("case.token_characters"))
    return token


def _normal_ref(ref: str) -> str:
    return unicodedata.normalize("NFKC", ref).translate(_DASHES).strip().upper()


def _check_server(server: str) -> str:
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        _fail(t("server.bad_url", server=repr(server)))
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        stderr.print(f"[yellow]{escape(t('label.warning'))}[/yellow]: "
                     f"{escape(t('server.not_https', server=server))}", highlight=False)
    return server.rstrip("/")


def _print_json(body: dict) -> None:
    sys.stdout.write(json.dumps(body, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def _fail(message: str):
    stderr.print(f"[red]{escape(t('label.error'))}[/red]: {escape(message)}", highlight=False)
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
