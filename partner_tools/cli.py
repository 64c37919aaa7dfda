"""The partner's verb `hashguard transparency verify`, added to the `hashguard` command through
the entry-point group hashguard.cli (pyproject: `partner`). Importing this module needs
`cryptography` (the `partner` extra): without it the verb is simply not offered, so a person's
client never lists it.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import typer

from hashing.cli import _check_server, _fail, _print_json, verb_group
from partner_tools import transparency as verifier
from txlog.errors import VerificationError
from txlog.head import b64encode

GROUP_HELP = "The service's signed, append-only transparency log."


def _default_state_file(server: str) -> Path:
    parts = urlsplit(server)
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    name = f"{parts.hostname}-{parts.port or parts.scheme}".replace(":", "_")
    return Path(base) / "hashguard" / f"transparency-{name}.json"


def transparency_getter(http: httpx.Client) -> verifier.Get:
    """`get(path, params) -> dict` over an httpx.Client whose base URL is the server; a failed
    request is a VerificationError (the log could not be checked), never a crash."""
    def get(path: str, params: dict) -> dict:
        try:
            response = http.get(path, params=params)
        except httpx.HTTPError as failure:
            raise VerificationError(f"{path}: {failure.__class__.__name__}: {failure}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success and isinstance(body, dict):
            return body
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and "code" in error:
            detail = f"server error {error['code']}: {error.get('message', '')}"
        else:
            detail = f"HTTP {response.status_code}, not a JSON object"
        raise VerificationError(f"{path}: {detail}")

    return get


NEEDS_KEY = ("the transparency log's trees are visible only to partners, each to those "
             "entitled to its pathway: pass your partner key with --key (or "
             "HASHGUARD_PARTNER_KEY)")


def verify(
    server: str = typer.Option("http://127.0.0.1:8000", "--server", envvar="HASHGUARD_SERVER",
                               help="hashguard service URL (env HASHGUARD_SERVER)."),
    state: Path = typer.Option(None, "--state",
                               help="File keeping the last verified head of each tree (default: "
                                    "~/.local/state/hashguard/transparency-HOST-PORT.json)."),
    key: str = typer.Option(None, "--key", envvar="HASHGUARD_PARTNER_KEY",
                            help="Partner API key (env HASHGUARD_PARTNER_KEY); required: the "
                                 "trees are served to the partners of their pathway only. "
                                 "Every new entry's leaf is recomputed from the entries."),
    pathway: list[str] = typer.Option(None, "--pathway",
                                      help="Verify this pathway's tree (repeatable); default: "
                                           "every pathway the key is entitled to."),
    public_key: str = typer.Option(None, "--public-key",
                                   help="Pin the log's key (base64 raw Ed25519, as "
                                        "`hashguard transparency public-key` prints); default: "
                                        "the key seen on the first run."),
    full: bool = typer.Option(False, "--full", help="Recheck every entry, not only new ones."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Check each tree's new signed head against the last verified one (signature, consistency
    proof) and that the entries hash to it. Exits 1 on any mismatch."""
    server = _check_server(server)
    state_file = state or _default_state_file(server)
    try:
        # Each mistake its own message: a bad key on the command line, an unreadable state file
        # and a log that fails a check need different actions (before, a corrupt state file was
        # reported as a bad --public-key).
        pinned = verifier.parse_public_key(public_key) if public_key else None
        remembered = verifier.VerifierState.load(state_file)
        if not key:
            # Until migration 0011 heads were public and this verified them without a key; a
            # head now tells a pathway's size and time, which is its partners' only.
            _fail(NEEDS_KEY)
        headers = {"Accept": "application/json", "Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server, headers=headers, timeout=60) as http:
            outcome = verifier.Verifier(transparency_getter(http), remembered, pinned_key=pinned,
                                        check_entries=True, full=full,
                                        pathways=pathway or None).run()
    except (verifier.PublicKeyError, verifier.StateFileError) as mistake:
        _fail(str(mistake))
    except VerificationError as failure:
        if as_json:
            _print_json({"ok": False, "error": str(failure), "evidence": failure.evidence()})
        _fail(f"transparency log verification FAILED: {failure}")
    remembered.save(state_file)
    trees = {t.pathway: _tree_result(t) for t in outcome.trees}
    result = {"ok": True, "trees": trees, "entries_checked": outcome.entries_checked,
              "visible_entries": outcome.visible_entries, "state": str(state_file),
              "key_changes": [vars(c) for c in outcome.key_changes]}
    if len(trees) == 1:  # the single tree's fields where they were before per-pathway trees
        result.update({k: v for k, v in next(iter(trees.values())).items()
                       if k not in ("entries_checked", "visible_entries")})
    if as_json:
        _print_json(result)
        return
    for change in outcome.key_changes:  # followed: signed by the key trusted until now
        print(f"key changed: {change.old_key_id[:16]} -> {change.new_key_id[:16]} at "
              f"{change.timestamp}, signed by the old key; the new key is trusted from now on")
    for tree in outcome.trees:
        since = ("first verified head" if tree.previous_size is None
                 else f"consistent with the verified tree of {tree.previous_size} entries")
        print(f"ok: {tree.pathway} tree of {tree.head.tree_size} entries, root "
              f"{trees[tree.pathway]['root_hash']} ({since}); entries recomputed: "
              f"{tree.entries_checked}")


def _tree_result(tree: verifier.TreeOutcome) -> dict:
    head = tree.head
    return {"tree_size": head.tree_size, "previous_tree_size": tree.previous_size,
            "timestamp": head.timestamp, "root_hash": b64encode(head.root_hash),
            "key_id": head.key_id, "entries_checked": tree.entries_checked,
            "visible_entries": tree.visible_entries}


def register(app: typer.Typer) -> None:
    """Entry point (hashguard.cli): add `verify` to the `hashguard transparency` group."""
    verb_group(app, "transparency", GROUP_HELP).command("verify")(verify)

