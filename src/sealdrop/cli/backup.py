"""``sealdrop backup`` and ``sealdrop restore`` (the work is in services/backup.py, restore.py)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from rich.markup import escape

from sealdrop.cli.common import err, fail
from sealdrop.config import load_settings
from sealdrop.errors import ConfigError, SealdropError
from sealdrop.services.backup import BackupSummary, recipients_from, write_backup
from sealdrop.services.demo import demo_recipient
from sealdrop.services.restore import read_identities, restore_backup

InstanceDir = Annotated[Path, typer.Argument(help="The instance folder.")]


def backup(
    directory: InstanceDir,
    to: Annotated[Path, typer.Option("--to", help="The backup file to write (must not exist).")],
    recipient: Annotated[
        list[str] | None,
        typer.Option(
            "--recipient",
            "-r",
            help="An offline age1… public key the backup is encrypted to (repeatable).",
        ),
    ] = None,
    recipients_file: Annotated[
        list[Path] | None,
        typer.Option(
            "--recipients-file", "-R", help="A file of age1… keys, one per line (repeatable)."
        ),
    ] = None,
) -> None:
    """Write one age file, to offline keys only, holding a consistent copy of the instance:
    database, blobs, onion keys, secrets.toml and sealdrop.toml. Safe while the server runs."""
    try:
        settings = load_settings(directory)
        recipients = recipients_from(recipient or [], recipients_file or [])
        if not recipients:
            raise ConfigError(
                "give at least one --recipient age1… (an offline key, never one kept on "
                "this server)"
            )
        demo = demo_recipient(settings.instance_dir)
        if demo is not None and demo in {str(r) for r in recipients}:
            # Its private half sits beside the instance: whoever takes the server opens it.
            raise ConfigError(
                "the demo key lives on this server: encrypt the backup to an offline key"
            )
        summary = _write_new_file(to, lambda out: write_backup(settings, out, recipients))
    except SealdropError as exc:
        raise fail(exc) from None
    withdrawn = (
        f"; {len(summary.withdrawn)} item(s) deleted while it ran left out"
        if summary.withdrawn
        else ""
    )
    err.print(
        f"Wrote {escape(str(to))}: {summary.backend} database, {summary.blobs} blob(s) "
        f"({summary.blob_bytes:,} bytes), encrypted to {len(recipients)} key(s){withdrawn}.",
        soft_wrap=True,
        highlight=False,
    )


def _write_new_file(path: Path, write: Callable[[BinaryIO], BackupSummary]) -> BackupSummary:
    try:
        # O_EXCL: never overwrite an earlier backup (it may be the only good one).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists: choose a new file name") from None
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            result = write(out)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        # An incomplete backup must never be mistaken for one.
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    return result


def restore(
    backup_file: Annotated[Path, typer.Argument(help="The backup file (sealdrop backup).")],
    identity: Annotated[
        Path, typer.Option("--identity", "-i", help="The age identity file of a recipient key.")
    ],
    to: Annotated[Path, typer.Option("--to", help="A new or empty folder for the instance.")],
    database_url: Annotated[
        str | None,
        typer.Option(
            help="For a PostgreSQL backup: the new, empty database to load it into "
            "(postgresql+psycopg://user@host/db)."
        ),
    ] = None,
) -> None:
    """Restore a backup into a new instance folder and check it: every item's blob present and
    an age file, the database at a migration this version knows. Refuses a non-empty folder."""
    try:
        identities = read_identities(identity)
        report = restore_backup(backup_file, identities, to, database_url)
    except SealdropError as exc:
        raise fail(exc) from None
    check = report.check
    err.print(
        f"Restored a {report.backend} instance into {escape(str(to))}: {check.items} item(s), "
        f"{check.blob_bytes:,} bytes of ciphertext, all present and well-formed; database at "
        f"migration {check.migration}.",
        soft_wrap=True,
        highlight=False,
    )
    for note in report.notes:
        err.print(f"[yellow]Note: {escape(note)}[/]", soft_wrap=True, highlight=False)
    err.print(f"Next: sealdrop serve {escape(str(to))}", highlight=False)
