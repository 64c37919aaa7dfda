"""An HMA (OpenMediaMatch) hook: `flask hashguard-report`, feedback through HMA's own exchange
configuration and stored credentials.

HMA has no feedback path of its own (its matcher never calls an exchange), so an operator or a
job reports what was done with a match from the command line. Enable it in the OMM_CONFIG:

    from hashguard_pytx import hma
    APP_HOOK = hma.register          # or call hma.register(app) from your own hook
"""
import sys

import click


def register(app) -> None:
    @app.cli.command("hashguard-report")
    @click.argument("exchange")
    @click.argument("signal_type")
    @click.argument("value")
    @click.option("--action", default="matched", show_default=True,
                  type=click.Choice(["matched", "removed", "blocked", "not_violating"]))
    @click.option("--tag", "tags", multiple=True, help="a tag to send along (repeatable)")
    def hashguard_report(exchange: str, signal_type: str, value: str, action: str,
                         tags: tuple) -> None:
        """Report ACTION on a hash to the hashguard EXCHANGE (HMA's exchange name).

        VALUE is the hash, or @FILE to read it from a file, or - for standard input (a TMK
        value, 351 KB, is longer than one command-line argument may be)."""
        from OpenMediaMatch.persistence import get_storage  # only inside HMA

        if value == "-":
            value = sys.stdin.read()
        elif value.startswith("@"):
            with open(value[1:], encoding="ascii") as f:
                value = f.read()
        storage = get_storage()
        collab = storage.exchange_get(exchange)
        if collab is None:
            raise click.UsageError(f"no exchange named {exchange!r}")
        client = storage.exchange_get_client(collab)
        if not hasattr(client, "report_action"):
            raise click.UsageError(f"exchange {exchange!r} is not a hashguard exchange")
        client.report_action(signal_type, value.strip(), action, tags)
        click.echo(f"reported {action} on {signal_type} to {exchange}")
