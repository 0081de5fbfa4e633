"""What ``sealdrop reader``'s commands take: their options, the secrets they prompt for (or read
from files), and the data folder they work in."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from sealdrop.cli.common import fail
from sealdrop.crypto.keys import Identity
from sealdrop.errors import SealdropError
from sealdrop.reader.keystore import load_identity
from sealdrop.reader.profile import DEFAULT_DATA_DIR, Profile

GroupDataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="The reader's data folder (created with mode 0700), for every command "
        "[default: $SEALDROP_READER_DIR, or ~/.local/share/sealdrop-reader].",
        show_default=False,
    ),
]
# Also accepted after the command (`reader show X --data-dir DIR`). Without it a command uses the
# group's folder: --data-dir before the command, $SEALDROP_READER_DIR, or the default. Ignoring
# the group's option once put a journalist's key in their home folder instead of the encrypted
# volume they had pointed the reader at.
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="The reader's data folder (default: --data-dir before the command, "
        "$SEALDROP_READER_DIR, or ~/.local/share/sealdrop-reader).",
        show_default=False,
    ),
]
IdentityPassphraseFile = Annotated[
    Path | None,
    typer.Option(
        envvar="SEALDROP_READER_IDENTITY_PASSPHRASE_FILE",
        help="Read the identity passphrase from this file instead of prompting.",
    ),
]
PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        envvar="SEALDROP_READER_PASSPHRASE_FILE",
        help="Read the account passphrase from this file instead of prompting.",
    ),
]
Totp = Annotated[
    str | None,
    typer.Option(envvar="SEALDROP_READER_TOTP", help="The TOTP code (prompted if not given)."),
]
SourceArg = Annotated[str, typer.Argument(help="A source: its id, or its pseudonym.")]
Proxy = Annotated[
    str | None,
    typer.Option(
        help="Reach the server through this Tor SOCKS port, e.g. socks5h://127.0.0.1:9050 "
        "(needed for an .onion server; remembered for later commands)."
    ),
]
OpenBrowser = Annotated[
    bool, typer.Option("--open", help="Also open the address in the default web browser.")
]


# -- secrets -----------------------------------------------------------------------------------


def read_secret(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}") from None
    return text.rstrip("\r\n")


def hidden_prompt(label: str, option: str, *, confirm: bool = False) -> str:
    """Ask for a secret on the terminal, without echo. With no terminal (a script, a pipe), refuse
    and name the option that gives it from a file: getpass would warn that it cannot turn echo
    off and read the secret from stdin in the clear."""
    if not sys.stdin.isatty():
        raise typer.BadParameter(
            f"no terminal to ask for the {label.lower()} on: give it in a file", param_hint=option
        )
    return str(typer.prompt(label, hide_input=True, confirmation_prompt=confirm, err=True))


def ask_identity_passphrase(path: Path | None, *, new: bool = False) -> str:
    if path is not None:
        return read_secret(path)
    label = "New identity passphrase" if new else "Identity passphrase"
    return hidden_prompt(label, "--identity-passphrase-file", confirm=new)


def credentials(passphrase_file: Path | None, totp: str | None) -> tuple[str, str]:
    if passphrase_file is not None:
        passphrase = read_secret(passphrase_file)
    else:
        passphrase = hidden_prompt("Account passphrase", "--passphrase-file")
    code = totp if totp is not None else str(typer.prompt("TOTP code", err=True))
    return passphrase, code.strip()


def open_identity(profile: Profile, passphrase_file: Path | None) -> Identity:
    return load_identity(profile.identity_path, ask_identity_passphrase(passphrase_file))


# -- plumbing ----------------------------------------------------------------------------------


def data_folder(ctx: typer.Context, given: Path | None) -> Path:
    """The data folder a command uses: its own --data-dir, else the group's (``ctx.obj``, set by
    ``reader_main``), else $SEALDROP_READER_DIR, else the default. Two different folders, one
    before and one after the command, are refused rather than one of them silently ignored."""
    group: Path | None = ctx.obj
    if given is not None and group is not None and given.expanduser() != group.expanduser():
        raise typer.BadParameter(
            f"given twice, as {group} and as {given}: give one", param_hint="--data-dir"
        )
    chosen = given or group
    if chosen is None:
        from_env = os.environ.get("SEALDROP_READER_DIR")
        chosen = Path(from_env) if from_env else DEFAULT_DATA_DIR
    return chosen


def profile_of(ctx: typer.Context, data_dir: Path | None) -> Profile:
    try:
        return Profile(data_folder(ctx, data_dir)).ensure()
    except SealdropError as exc:
        raise fail(exc) from None
