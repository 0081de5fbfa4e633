"""``sealdrop``: create, configure and run an instance.

Command names and options here are stable: documentation, later work and checks rely on them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.text import Text

from sealdrop import __version__
from sealdrop.cli.access import access_app
from sealdrop.cli.backup import backup as backup_command
from sealdrop.cli.backup import restore as restore_command
from sealdrop.cli.balance import balance as balance_command
from sealdrop.cli.common import err, fail, open_services, print_table, whole_table
from sealdrop.cli.housekeeping import housekeeping as housekeeping_command
from sealdrop.cli.keygen import keygen as keygen_command
from sealdrop.cli.kit import kit as kit_command
from sealdrop.cli.migrate import migrate as migrate_command
from sealdrop.cli.reader import reader_app
from sealdrop.cli.serve import serve_instance
from sealdrop.cli.status import status as status_command
from sealdrop.cli.users import OPERATOR, token_app, user_app
from sealdrop.config import SETTINGS
from sealdrop.errors import SealdropError
from sealdrop.services.instance import init_instance
from sealdrop.services.key_kinds import waits_for_switch

app = typer.Typer(
    name="sealdrop",
    help="Sealdrop: an anonymous submission system that encrypts everything as it arrives.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
recipients_app = typer.Typer(
    help="Organisation recipients: age public keys submissions are encrypted to.",
    no_args_is_help=True,
)
submissions_app = typer.Typer(help="Stored submissions (ciphertext only).", no_args_is_help=True)
app.add_typer(recipients_app, name="recipients")
app.add_typer(submissions_app, name="submissions")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(reader_app, name="reader")
app.add_typer(access_app, name="access")
app.command("status")(status_command)
app.command("migrate")(migrate_command)
app.command("backup")(backup_command)
app.command("restore")(restore_command)
app.command("housekeeping")(housekeeping_command)
app.command("kit")(kit_command)
app.command("keygen")(keygen_command)
app.command("balance")(balance_command)

InstanceDir = Annotated[Path, typer.Argument(help="The instance folder.")]


def _show_version(value: bool) -> None:
    if value:
        print(f"sealdrop {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Sealdrop: an anonymous submission system that encrypts everything as it arrives."""


@app.command()
def init(
    directory: InstanceDir,
    host: Annotated[
        str, typer.Option(help="Address the source interface will listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the source interface.")] = 8080,
    org_name: Annotated[
        str | None,
        typer.Option(
            help="Your organisation's name, shown to sources on every page and in "
            "authenticator apps (\\[source] organisation_name)."
        ),
    ] = None,
) -> None:
    """Create a new instance: settings, secrets (0600), database and blob store."""
    try:
        path = init_instance(directory, host, port, org_name)
    except SealdropError as exc:
        raise fail(exc) from None
    err.print(f"Created a Sealdrop instance in {escape(str(path))}")
    if org_name is None:
        default = SETTINGS["source.organisation_name"].default
        err.print(
            f"Sources will see the organisation name {default!r}: set yours with "
            "`organisation_name` under \\[source] in sealdrop.toml (or `init --org-name`).",
            highlight=False,
        )
    err.print("Next: add the public key of each journalist or offline organisation key:")
    err.print(f"  sealdrop recipients add {directory} age1… --name NAME")


@recipients_app.command("add")
def recipients_add(
    directory: InstanceDir,
    age_recipient: Annotated[str, typer.Argument(help="An age public key (age1… or age1pq1…).")],
    name: Annotated[str, typer.Option(help="Who holds the matching private key.")] = "",
) -> None:
    """Register a public key that every new submission is encrypted to."""
    services = open_services(directory)
    try:
        record = services.recipients.add(age_recipient, name)
        post_quantum = services.recipients.post_quantum
    except SealdropError as exc:
        raise fail(exc) from None
    finally:
        services.close()
    err.print(
        f"Added recipient {record.public_key} ({escape(record.name or 'no name')}), id {record.id}",
        soft_wrap=True,
        highlight=False,
    )
    if waits_for_switch(record.public_key, post_quantum):
        err.print(
            "This post-quantum key waits: nothing is encrypted to it until the instance switches "
            "(crypto.post_quantum = true; docs/operator.md, 'Switching to post-quantum keys').",
            soft_wrap=True,
            highlight=False,
        )


@recipients_app.command("list")
def recipients_list(
    directory: InstanceDir,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List the registered recipients."""
    services = open_services(directory)
    try:
        records = services.recipients.list()
        post_quantum = services.recipients.post_quantum
    finally:
        services.close()
    # A key of the other kind than the instance's is registered but not encrypted to.
    in_use = {r.id: not waits_for_switch(r.public_key, post_quantum) for r in records}
    if as_json:
        for r in records:
            entry = {"id": r.id, "public_key": r.public_key, "name": r.name, "in_use": in_use[r.id]}
            print(json.dumps(entry))
        return
    table = whole_table("id", "name", "in use", "public key", wrap=("name",))
    for r in records:
        table.add_row(r.id, Text(r.name), "yes" if in_use[r.id] else "no", r.public_key)
    print_table(table)
    if not records:
        err.print("No recipients: the instance refuses submissions until one is added.")


@recipients_app.command("remove")
def recipients_remove(
    directory: InstanceDir,
    recipient_id: Annotated[str, typer.Argument(help="The recipient's id (recipients list).")],
) -> None:
    """Stop encrypting new submissions to an organisation recipient. What arrived before stays
    encrypted to it too (that key still opens it)."""
    services = open_services(directory)
    try:
        # The same service call as the API's DELETE /recipients/{id} (and so the reader's admin
        # page): one rule, one audit entry (recipient.remove).
        services.recipients.remove_checked(recipient_id, actor=OPERATOR)
        accepting = services.submissions.accepting()
    except SealdropError as exc:
        raise fail(exc) from None
    finally:
        services.close()
    err.print(f"Removed recipient {escape(recipient_id)}.", highlight=False)
    if not accepting:
        err.print(
            "[yellow]No key to encrypt to is left (or intake is off): the instance refuses "
            "submissions until one is added.[/]"
        )


@submissions_app.command("list")
def submissions_list(
    directory: InstanceDir,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List stored items: ids, source, kind, arrival day, ciphertext size and blob path."""
    services = open_services(directory)
    try:
        items = services.submissions.listing()
    except SealdropError as exc:
        raise fail(exc) from None
    finally:
        services.close()
    if as_json:
        for item in items:
            print(
                json.dumps(
                    {
                        "id": item.id,
                        "source": item.source,
                        "pseudonym": item.pseudonym,
                        "seq": item.seq,
                        "kind": item.kind,
                        "arrival_day": item.arrival_day,
                        "size": item.size,
                        "path": item.path,
                    }
                )
            )
        return
    table = whole_table("id", "source", "seq", "kind", "arrival", "bytes", "path")
    for item in items:
        table.add_row(
            item.id,
            item.pseudonym or item.source,
            str(item.seq),
            item.kind,
            item.arrival_day or "-",
            f"{item.size:,}",
            item.path or "-",
        )
    print_table(table)


@app.command()
def serve(
    directory: InstanceDir,
    host: Annotated[str | None, typer.Option(help="Listen on this address instead.")] = None,
    port: Annotated[int | None, typer.Option(help="Listen on this port instead.")] = None,
    api_host: Annotated[str | None, typer.Option(help="Journalist API address instead.")] = None,
    api_port: Annotated[int | None, typer.Option(help="Journalist API port instead.")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes sharing the listeners (PostgreSQL and S3 only; at most "
            "kdf.max_concurrent).",
        ),
    ] = 1,
    inherit: Annotated[str | None, typer.Option(hidden=True)] = None,
) -> None:
    """Serve the source interface and, on its own listener, the journalist API."""
    try:
        serve_instance(directory, host, port, api_host, api_port, workers=workers, inherit=inherit)
    except SealdropError as exc:
        raise fail(exc) from None


@app.command()
def demo(
    directory: Annotated[Path, typer.Argument(help="Folder for the demo.")] = Path("demo"),
    host: Annotated[
        str, typer.Option(help="Address of the source interface (the API stays on \\[api] host).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the source interface.")] = 8080,
    api_port: Annotated[
        int | None, typer.Option(help="Port of the journalist API (default: \\[api] port, 8081).")
    ] = None,
) -> None:
    """Make (once) and serve a demo instance, with a demo journalist key beside it.

    DEMO ONLY: the journalist's private key sits on the same machine as the server, which a real
    deployment must never do (the key belongs on the journalist's own computer).
    """
    from sealdrop.cli.demo import DEMO_API, DEMO_SOURCE, prepare_demo

    try:
        instance = prepare_demo(directory, host, port, err)
        serve_instance(instance, host, port, None, api_port, DEMO_SOURCE, DEMO_API)
    except SealdropError as exc:
        raise fail(exc) from None


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
