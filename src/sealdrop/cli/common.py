"""What every ``sealdrop`` command shares: opening an instance, reporting an error."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from sealdrop.config import load_settings
from sealdrop.errors import SealdropError
from sealdrop.services.container import Services, build_services
from sealdrop.services.instance import upgrade_database

err = Console(stderr=True)


def fail(exc: SealdropError) -> typer.Exit:
    # One line, however narrow the terminal or log: a wrapped error is harder to read and grep.
    err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True, highlight=False)
    return typer.Exit(code=1)


def open_services(directory: Path) -> Services:
    try:
        # Migrate first, so that a command run before the first `serve` (say, adding recipients
        # to a fresh PostgreSQL database) finds its tables.
        upgrade_database(directory)
        return build_services(load_settings(directory))
    except SealdropError as exc:
        raise fail(exc) from None
