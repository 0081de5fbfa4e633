"""What every ``sealdrop`` command shares: opening an instance, reporting an error, tables."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

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


WRAP_WIDTH = 30


def whole_table(*columns: str, wrap: Collection[str] = ()) -> Table:
    """A table whose cells (ids, keys, paths: made to be copied into other commands) are never
    wrapped or cut, except in the free-text columns named in ``wrap``, which wrap at
    ``WRAP_WIDTH`` characters."""
    table = Table(*columns)
    for column in table.columns:
        if column.header in wrap:
            column.max_width = WRAP_WIDTH
            column.overflow = "fold"  # a long word is folded, never hidden
        else:
            column.no_wrap = True
    return table


def print_table(table: Table) -> None:
    """Print a table as wide as its cells need: rich would otherwise cut them with an ellipsis
    to fit the terminal (or 80 columns when piped). A wider table is left for the terminal to
    wrap; its cells stay whole for copying."""
    console = Console(highlight=False)
    needed = Measurement.get(console, console.options.update_width(100_000), table).maximum
    if needed > console.width:
        console = Console(highlight=False, width=needed)
    console.print(table)
