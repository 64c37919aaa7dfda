"""Operator verbs added to `hashguard` when the server extra is installed (entry point
hashguard.cli): serve, backup, rotate-secret, partners, review, transparency
public-key|rotate-key, webhooks rotate-key."""
from __future__ import annotations

import sys
from pathlib import Path

import typer

DATABASE_URL_OPTION = typer.Option(
    None, "--database-url", envvar="HASHGUARD_DATABASE_URL",
    help="SQLAlchemy URL; default: SQLite file hashguard.db in the data dir "
         "(HASHGUARD_DATA_DIR, else ~/.local/share/hashguard).",
)

partners_app = typer.Typer(help="Manage partner platforms and their API keys.", no_args_is_help=True)
keys_app = typer.Typer(help="Create and revoke partner API keys.", no_args_is_help=True)
review_app = typer.Typer(help="Review hashes that partners disputed (quarantine queue).",
                         no_args_is_help=True)
partners_app.add_typer(keys_app, name="keys")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("backup")(backup)
    app.command("rotate-secret")(rotate_secret)
    app.add_typer(partners_app, name="partners")
    app.add_typer(review_app, name="review")
    from hashing.cli import verb_group

    # The same group as the partner's `transparency verify` (partner_tools/cli.py).
    group = verb_group(app, "transparency", "The service's signed, append-only transparency log.")
    group.command("public-key")(transparency_public_key)
    group.command("rotate-key")(transparency_rotate_key)

    # The webhook signing key's rotation (issue 23).
    webhooks_app = typer.Typer(help="The key that signs webhook deliveries.",
                               no_args_is_help=True)
    webhooks_app.command("rotate-key")(webhooks_rotate_key)
    app.add_typer(webhooks_app, name="webhooks")


def _settings(database_url: str | None):
    from api.settings import Settings

    return Settings(database_url=database_url) if database_url else Settings()


def _established(settings):
    """Migrated database, and the secret and keys it records (refuses like the service would)."""
    from api.startup import prepare
    from store.db import Database

    db = Database(settings.resolved_database_url())
    return db, prepare(settings, db)


def _database(database_url: str | None):
    """Migrated database + server secret for an operator command."""
    db, established = _established(_settings(database_url))
    return db, established.secret


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    database_url: str = DATABASE_URL_OPTION,
    workers: int = typer.Option(1, "--workers", min=1,
                                help="Worker processes sharing the port (each with the same "
                                     "logging: no access log, no client addresses)."),
    header_timeout: float = typer.Option(None, "--header-timeout", min=0.01,
                                         help="Seconds a request's headers may take "
                                              "(HASHGUARD_HEADER_TIMEOUT_SECONDS, 10)."),
    body_timeout: float = typer.Option(None, "--body-timeout", min=0.01,
                                       help="Seconds a request's body may take after its "
                                            "headers (HASHGUARD_BODY_TIMEOUT_SECONDS, 60)."),
    keep_alive: int = typer.Option(5, "--keep-alive", min=1,
                                   help="Seconds an idle keep-alive connection stays open."),
) -> None:
    """Run the hashguard service."""
    from api import serving
    from api.support_config import SupportConfigError
    from store.secret_check import StartRefused

    overrides = {k: v for k, v in (("database_url", database_url),
                                   ("header_timeout_seconds", header_timeout),
                                   ("body_timeout_seconds", body_timeout)) if v}
    from api.settings import Settings

    try:
        # Access log off and the app's JSON logging in every worker (api/serving.py says why).
        serving.serve(Settings(**overrides), host, port, workers, keep_alive)
    except StartRefused as refused:
        _fail(refused.reason)
    except SupportConfigError as broken:  # the support list: one line naming every problem
        _fail(str(broken))


def backup(
    dest: Path = typer.Argument(..., help="The file to write (must not exist yet)."),
    database_url: str = DATABASE_URL_OPTION,
) -> None:
    """Back up the database while the service runs: SQLite with its online backup API,
    PostgreSQL with `pg_dump --format=custom`. The data folder (server secret) is not in it."""
    from store import backup as backups

    settings = _settings(database_url)
    try:
        written = backups.backup(settings.resolved_database_url(), dest)
    except backups.BackupError as refused:
        _fail(str(refused))
    typer.echo(f"wrote {written.path} ({written.size} bytes): {written.what}")
    typer.echo(backups.reminder(settings.data_dir, settings.secret_location()))


def rotate_secret(
    database_url: str = DATABASE_URL_OPTION,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Replace the server secret. Case tokens and partner keys issued before keep working (each is
    re-keyed to the new secret when next used); every process must then be restarted with the new
    secret: one still holding the old one refuses to start. With HASHGUARD_SECRET the new secret
    is printed once on stdout; with the data dir's file, the file is replaced."""
    from api import secret_rotation

    settings = _settings(database_url)
    if not yes and not typer.confirm("rotate the server secret now?", err=True):
        raise typer.Exit(1)
    db, established = _established(settings)
    try:
        outcome = secret_rotation.rotate(settings, db, established)
    except secret_rotation.RotationError as refused:
        _fail(str(refused))
    finally:
        db.dispose()
    typer.echo(outcome.message, err=True)
    if outcome.printed_secret:
        sys.stdout.write(outcome.printed_secret + "\n")


@partners_app.command("add")
def partners_add(
    name: str = typer.Argument(..., help="Short name of the platform."),
    pathways: str = typer.Option(..., help="Comma-separated: adult,under18_at_capture"),
    database_url: str = DATABASE_URL_OPTION,
) -> None:
    """Register a partner, entitled to the hashes of the given pathways."""
    from partners import admin

    db, _ = _database(database_url)
    try:
        with db.transaction() as session:
            partner = admin.add_partner(session, name, admin.parse_pathways(pathways))
            typer.echo(f"added partner {partner.name} ({partner.pathways})")
    except admin.AdminError as refused:
        _fail(str(refused))


@partners_app.command("list")
def partners_list(database_url: str = DATABASE_URL_OPTION) -> None:
    """List partners, their pathways and how many active keys they have."""
    from partners import admin

    db, _ = _database(database_url)
    with db.transaction() as session:
        for partner, active_keys in admin.list_partners(session):
            typer.echo(f"{partner.name}\t{partner.pathways}\tactive keys: {active_keys}\t"
                       f"acknowledged through: {partner.acknowledged_seq}")


@keys_app.command("create")
def keys_create(name: str = typer.Argument(..., help="Partner name."),
                database_url: str = DATABASE_URL_OPTION) -> None:
    """Create an API key; it is printed once, alone on the last line of stdout."""
    from partners import admin

    db, secret = _database(database_url)
    try:
        with db.transaction() as session:
            key = admin.create_key(session, admin.require_partner(session, name), secret)
    except admin.AdminError as refused:
        _fail(str(refused))
    typer.echo(f"new key for {name} (shown once; store it in your secret manager):", err=True)
    sys.stdout.write(key + "\n")


@keys_app.command("revoke")
def keys_revoke(name: str = typer.Argument(..., help="Partner name."),
                key_id: int = typer.Option(None, "--key-id",
                                           help="Revoke only this key (the number after hgp_)."),
                all_keys: bool = typer.Option(False, "--all", help="Revoke every key."),
                database_url: str = DATABASE_URL_OPTION) -> None:
    """Revoke a partner's key (or all its keys); the next request with it gets 401."""
    from partners import admin

    if key_id is None and not all_keys:
        _fail("say which key: --key-id N, or --all")
    db, _ = _database(database_url)
    try:
        with db.transaction() as session:
            count = admin.revoke(session, admin.require_partner(session, name), key_id)
    except admin.AdminError as refused:
        _fail(str(refused))
    typer.echo(f"revoked {count} key(s) of {name}")
    if count == 0:
        raise typer.Exit(1)


@partners_app.command("webhook")
def partners_webhook(name: str = typer.Argument(..., help="Partner name."),
                     url: str = typer.Argument(None, help="https:// URL to POST wake-ups to."),
                     remove: bool = typer.Option(False, "--remove", help="Stop webhooks."),
                     database_url: str = DATABASE_URL_OPTION) -> None:
    """Set where the partner is woken up when entries commit (signed with Ed25519)."""
    from partners import admin, webhooks

    if remove == bool(url):
        _fail("give a URL, or --remove")
    if url and not url.startswith(("https://", "http://")):
        _fail("the webhook URL must start with https:// (or http:// on a private network)")
    db, _ = _database(database_url)
    try:
        with db.transaction() as session:
            partner = admin.require_partner(session, name)
            webhooks.set_webhook(session, partner.id, None if remove else url)
    except admin.AdminError as refused:
        _fail(str(refused))
    typer.echo(f"webhook of {name}: {'removed' if remove else url}")


@review_app.command("list")
def review_list(database_url: str = DATABASE_URL_OPTION) -> None:
    """Held-back hashes and who disputed them, then each disputing partner's counts.

    One line per hash: id, type, value, how many partners disputed it, the pathways it is held
    from and the partners (names are for the operator only). Then one `summary` line per
    partner: disputes that acted in the last 24 hours, disputes queued past its budget (a burst
    shows here), disputes overruled."""
    from partners import review

    db, _ = _database(database_url)
    with db.transaction() as session:
        for item in review.queue(session):
            typer.echo(f"{item.hash_id}\t{item.signal_type}\t{item.value[:64]}\t"
                       f"disputes: {item.disputes}\tpathways: {','.join(item.pathways)}\t"
                       f"by: {','.join(item.disputed_by)}")
        for row in review.summary(session):
            typer.echo(f"summary\t{row.partner}\tacting today: {row.acting_today}\t"
                       f"queued: {row.queued}\toverruled: {row.overruled}")


@review_app.command("restore")
def review_restore(
    hash_ids: list[int] = typer.Argument(None, help="Ids from `hashguard review list`."),
    partner: str = typer.Option(None, "--partner",
                                help="Restore every hash this partner's disputes hold back."),
    since: int = typer.Option(None, help="With --partner: disputes made at or after (unix s)."),
    until: int = typer.Option(None, help="With --partner: disputes made before (unix s)."),
    database_url: str = DATABASE_URL_OPTION,
) -> None:
    """The disputes were wrong: share the hashes again with every pathway an active case holds
    them under. Their disputes are overruled: the same partners disputing again change nothing."""
    from partners import review

    if not hash_ids and not partner:
        _fail("name hash ids, or --partner")
    db, _ = _database(database_url)
    with db.transaction() as session:
        if partner:
            restored = review.restore_by_partner(session, partner, since, until)
            typer.echo(f"restored {restored} hashes disputed by {partner}")
        for hash_id in hash_ids or []:
            if not review.restore(session, hash_id):
                _fail(f"hash {hash_id} is not held back")
            typer.echo(f"restored hash {hash_id}")


@review_app.command("reject")
def review_reject(
    hash_ids: list[int] = typer.Argument(None, help="Ids from `hashguard review list`."),
    partner: str = typer.Option(None, "--partner",
                                help="Reject every hash this partner's disputes hold back."),
    since: int = typer.Option(None, help="With --partner: disputes made at or after (unix s)."),
    until: int = typer.Option(None, help="With --partner: disputes made before (unix s)."),
    database_url: str = DATABASE_URL_OPTION,
) -> None:
    """The disputes were right: keep the hashes out of the pathways they are held from."""
    from partners import review

    if not hash_ids and not partner:
        _fail("name hash ids, or --partner")
    db, _ = _database(database_url)
    with db.transaction() as session:
        if partner:
            rejected = review.reject_by_partner(session, partner, since, until)
            typer.echo(f"rejected {rejected} hashes disputed by {partner}: they stay out of the "
                       "disputed pathways")
        for hash_id in hash_ids or []:
            if not review.reject(session, hash_id):
                _fail(f"hash {hash_id} is not held back")
            typer.echo(f"rejected hash {hash_id}: it stays out of the disputed pathways")


@review_app.command("accept")
def review_accept(partner: str = typer.Option(..., "--partner"),
                  database_url: str = DATABASE_URL_OPTION) -> None:
    """A partner's disputes queued past its budget were right: let them act now."""
    from partners import review

    settings = _settings(database_url)
    db, _ = _database(database_url)
    with db.transaction() as session:
        held = review.accept_queued(session, partner, settings.dispute_quarantine_threshold)
    typer.echo(f"accepted {partner}'s queued disputes: {held} (hash, pathway) pairs held back")


@review_app.command("dismiss")
def review_dismiss(partner: str = typer.Option(..., "--partner"),
                   database_url: str = DATABASE_URL_OPTION) -> None:
    """A partner's disputes queued past its budget were wrong: they will never count."""
    from partners import review

    db, _ = _database(database_url)
    with db.transaction() as session:
        dismissed = review.dismiss_queued(session, partner)
    typer.echo(f"dismissed {dismissed} queued disputes of {partner}")


@review_app.command("deny")
def review_deny(signal_type: str = typer.Argument(..., help="e.g. pdq, video_md5"),
                value: str = typer.Argument(..., help="The hash value."),
                database_url: str = DATABASE_URL_OPTION) -> None:
    """Known-benign content: keep this hash out of the shared set, whoever submits it."""
    from hashing.signals import InvalidHash
    from partners import review

    db, _ = _database(database_url)
    try:
        with db.transaction() as session:
            hash_id = review.deny(session, signal_type, value)
    except InvalidHash as refused:
        _fail(f"{refused.code}: {refused.message}")
    typer.echo(f"denied hash {hash_id}: it will not be shared")


def transparency_public_key(
    data_dir: Path = typer.Option(None, "--data-dir", envvar="HASHGUARD_DATA_DIR",
                                  help="The service's data dir (HASHGUARD_DATA_DIR, else "
                                       "~/.local/share/hashguard): its secret opens the key."),
    pem: bool = typer.Option(False, "--pem", help="Print the PEM (SubjectPublicKeyInfo) instead."),
    database_url: str = DATABASE_URL_OPTION,
) -> None:
    """Print the public key that signs the transparency log's tree heads (base64 raw Ed25519,
    then its key id on stderr). Give it to partners: `hashguard transparency verify --public-key`."""
    from api.settings import Settings
    from partners.transparency import public_key_pem, public_key_raw
    from txlog.head import b64encode, key_id

    # Settings: the same data dir default, database and HASHGUARD_TRANSPARENCY_KEY as the
    # service's; the key is the one the database records (made there on a fresh one).
    overrides = {k: v for k, v in (("data_dir", data_dir), ("database_url", database_url)) if v}
    settings = Settings(**overrides)
    if not settings.database_url and not (settings.data_dir / "hashguard.db").is_file():
        # Not a new SQLite database with a new key: that would print a key nothing signs with.
        _fail(f"no service database in {settings.data_dir}: pass the service's --database-url "
              "(HASHGUARD_DATABASE_URL)")
    _, established = _established(settings)
    key = established.keys["transparency"]
    raw = public_key_raw(key)
    typer.echo(f"key id: {key_id(raw)}", err=True)
    typer.echo(public_key_pem(key).rstrip("\n") if pem else b64encode(raw))


def transparency_rotate_key(
    database_url: str = DATABASE_URL_OPTION,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Replace the key that signs the transparency log. The old key signs the change, published
    with the public key, so partners' verifiers that trusted the old key follow it (and report
    it); every running process signs with the new key from its builder's next step."""
    from store import secret_check
    from store.secret_models import PURPOSE_TRANSPARENCY
    from txlog.head import b64encode, key_id

    if not yes and not typer.confirm("rotate the transparency signing key now?", err=True):
        raise typer.Exit(1)
    db, established = _established(_settings(database_url))
    try:
        with db.transaction() as session:
            old, new = secret_check.rotate_signing_key(session, established, PURPOSE_TRANSPARENCY)
            old_id, new_id = key_id(bytes(old.public_key)), key_id(bytes(new.public_key))
    finally:
        db.dispose()
    typer.echo(f"transparency key rotated: {old_id[:16]}… -> {new_id[:16]}…; the change is "
               f"signed by the old key and published with the public key", err=True)
    typer.echo(b64encode(bytes(new.public_key)))  # the new public key, as public-key prints it


# --- webhooks rotate-key ------------------------------------------------------------------------

def webhooks_rotate_key(
    overlap_hours: float = typer.Option(
        72.0, "--overlap-hours", min=0.0,
        help="How long the old key keeps signing beside the new one (partners switch meanwhile)."),
    database_url: str = DATABASE_URL_OPTION,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Replace the key that signs webhook deliveries. During the overlap every delivery carries
    both keys' signatures (partners pinned to the old key keep verifying); the old key signs the
    change, published at /.well-known/hashguard-webhook-key; every running process signs with
    the new keys from its next delivery. Prints the new public key (base64url)."""
    import datetime

    from partners import webhooks
    from store.secret_check import StartRefused

    if not yes and not typer.confirm("rotate the webhook signing key now?", err=True):
        raise typer.Exit(1)
    db, established = _established(_settings(database_url))
    try:
        with db.transaction() as session:
            old, new = webhooks.rotate_key(session, established, round(overlap_hours * 3600))
            old_id, new_id, until = old.key_id, new.key_id, old.retired_at
            new_public = bytes(new.public_key)
    except StartRefused as refused:
        _fail(refused.reason)
    finally:
        db.dispose()
    ends = datetime.datetime.fromtimestamp(until, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%SZ")
    typer.echo(f"webhook key rotated: {old_id[:16]}… -> {new_id[:16]}…; both sign until {ends} "
               f"(unix {until}), then only the new one", err=True)
    typer.echo(webhooks.b64url(new_public))
