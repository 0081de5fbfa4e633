"""``sealdrop user …`` and ``sealdrop token …``: accounts, managed on the server by the operator.

Passphrases and TOTP secrets are printed once, here, to the operator's terminal; they are never
stored in plaintext anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import segno
import typer
from rich.console import Console

from sealdrop.cli.common import fail, open_services, print_table, whole_table
from sealdrop.errors import SealdropError
from sealdrop.services.notifications import Channel

user_app = typer.Typer(help="Journalist and admin accounts.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)

InstanceDir = Annotated[Path, typer.Argument(help="The instance folder.")]
Username = Annotated[str, typer.Argument(help="The account's username.")]
OPERATOR = "operator (cli)"


def _show_enrolment(console: Console, uri: str) -> None:
    console.print("Scan this with an authenticator app (TOTP, 6 digits, 30 s):")
    qr = segno.make(uri, error="m")
    qr.terminal(compact=True)
    console.print(f"or enter this URI by hand: {uri}", soft_wrap=True, highlight=False)


@user_app.command("add")
def add(
    directory: InstanceDir,
    username: Username,
    admin: Annotated[
        bool, typer.Option("--admin", help="Give the account the admin role.")
    ] = False,
) -> None:
    """Create an account; print its passphrase and TOTP enrolment once."""
    console = Console()
    services = open_services(directory)
    try:
        new = services.accounts.create(username, "admin" if admin else "journalist", OPERATOR)
    except SealdropError as exc:
        raise fail(exc) from None
    finally:
        services.close()
    console.print(f"Created {new.user.role} [bold]{new.user.username}[/] (id {new.user.id}).")
    console.print("Passphrase (shown once; hand it over in person):", highlight=False)
    console.print(f"  {new.passphrase}", highlight=False)
    _show_enrolment(console, new.totp_uri)


@user_app.command("list")
def list_users(
    directory: InstanceDir,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List accounts."""
    services = open_services(directory)
    try:
        users = services.accounts.list()
    finally:
        services.close()
    if as_json:
        for u in users:
            print(
                json.dumps(
                    {"id": u.id, "username": u.username, "role": u.role, "disabled": u.disabled}
                )
            )
        return
    table = whole_table("id", "username", "role", "state")
    for u in users:
        table.add_row(u.id, u.username, u.role, "disabled" if u.disabled else "active")
    print_table(table)


def _set_disabled(directory: Path, username: str, disabled: bool) -> None:
    services = open_services(directory)
    try:
        user = services.accounts.by_username(username)
        services.accounts.set_disabled(user.id, disabled, OPERATOR)
    except SealdropError as exc:
        raise fail(exc) from None
    finally:
        services.close()
    Console(stderr=True).print(f"{username}: {'disabled' if disabled else 'enabled'}")


@user_app.command("disable")
def disable(directory: InstanceDir, username: Username) -> None:
    """Disable an account: its tokens stop working at once, and new submissions are no longer
    encrypted to its keys."""
    _set_disabled(directory, username, True)


@user_app.command("enable")
def enable(directory: InstanceDir, username: Username) -> None:
    """Enable a disabled account."""
    _set_disabled(directory, username, False)


@user_app.command("reset-2fa")
def reset_2fa(directory: InstanceDir, username: Username) -> None:
    """Give an account a new TOTP secret (for a lost phone); print its enrolment once."""
    services = open_services(directory)
    try:
        user = services.accounts.by_username(username)
        enrolment = services.accounts.reset_totp(user.id, OPERATOR)
    except SealdropError as exc:
        raise fail(exc) from None
    finally:
        services.close()
    _show_enrolment(Console(), enrolment.totp_uri)


@user_app.command("notify")
def notify(
    directory: InstanceDir,
    username: Username,
    email: Annotated[
        str | None, typer.Option("--email", help="Send the account's notices to this address.")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option("--url", help="Send them to this Apprise URL (ntfy, Matrix, Signal REST, …)."),
    ] = None,
    off: Annotated[bool, typer.Option("--off", help="Send the account no notices.")] = False,
    lang: Annotated[
        str | None,
        typer.Option("--lang", help="Language of the notices (default: the instance's)."),
    ] = None,
) -> None:
    """Where an account's scheduled notices of new activity go (one of --email, --url, --off).
    A notice says only that there is new activity: no source, no count, no content."""
    given = (email is not None) + (url is not None) + off
    if given != 1:
        Console(stderr=True).print("[bold red]error:[/] give one of --email, --url or --off")
        raise typer.Exit(code=2)
    channel: Channel = "email" if email is not None else "apprise" if url is not None else "off"
    services = open_services(directory)
    try:
        user = services.accounts.by_username(username)
        view = services.notifications.set(
            user.id, channel, OPERATOR, address=email or url, language=lang
        )
    except SealdropError as exc:
        raise fail(exc) from None
    finally:
        services.close()
    # Never the URL back: it may hold a token, and terminals are logged and shared.
    where = {"email": f"by e-mail to {view.email}", "apprise": f"to a {view.url_scheme}:// URL"}
    said = (
        f"notices {where[view.channel]}, in {view.language}"
        if view.channel != "off"
        else "no notices"
    )
    console = Console(stderr=True)
    console.print(f"{user.username}: {said}", highlight=False)
    if view.channel == "email" and not services.settings.smtp_url:
        console.print(
            "[yellow]No mail relay is set (\\[notifications] smtp_url): no e-mail goes out until "
            "one is (see docs/operator.md, Notifications).[/]"
        )


@token_app.command("revoke")
def revoke(directory: InstanceDir, username: Username) -> None:
    """Revoke every API token of an account (log it out everywhere)."""
    services = open_services(directory)
    try:
        user = services.accounts.by_username(username)
        count = services.accounts.revoke_tokens(user.id, OPERATOR)
    except SealdropError as exc:
        raise fail(exc) from None
    finally:
        services.close()
    Console(stderr=True).print(f"Revoked {count} token(s) of {username}.")
