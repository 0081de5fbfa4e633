"""``sealdrop migrate``: bring an instance's database to this version's schema, after saying which
migrations that takes (``--dry-run``: only say it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from sealdrop.cli.common import fail
from sealdrop.config import load_settings
from sealdrop.errors import SealdropError, StorageError
from sealdrop.services.instance import instance_lock
from sealdrop.storage.database import MigrationPlan, SqlDatabase

InstanceDir = Annotated[Path, typer.Argument(help="The instance folder.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would run; change nothing.")]


def migrate(directory: InstanceDir, dry_run: DryRun = False) -> None:
    """Migrate the database to this version of Sealdrop: shows the current and target migration
    and each one that runs, in one transaction (a failure changes nothing)."""
    out = Console(highlight=False, soft_wrap=True)
    try:
        settings = load_settings(directory)
        database = SqlDatabase(settings.database_url)
        try:
            plan = database.migration_plan()
            _show(out, plan)
            if dry_run or not plan.pending:
                if plan.pending:
                    out.print("Dry run: nothing was changed.")
                return
            # The instance lock is the one a server holds: migrating under a running server
            # would change tables beneath code that expects the old ones.
            with instance_lock(settings.instance_dir):
                try:
                    database.upgrade()
                except StorageError as exc:
                    # One transaction: the failure rolled every migration of this run back.
                    raise StorageError(
                        f"the migrations did not complete ({exc}); nothing was changed: the "
                        f"database is still at migration {plan.current or 'none'}"
                    ) from exc
            out.print(f"Done: the database is at migration {plan.head}.")
        finally:
            database.close()
    except SealdropError as exc:
        raise fail(exc) from None


def _show(out: Console, plan: MigrationPlan) -> None:
    current = plan.current or "none (an empty database)"
    out.print(f"Database at migration: {current}")
    out.print(f"This version's newest: {plan.head}")
    if not plan.pending:
        out.print("Up to date: no migration to run.")
        return
    out.print(f"Migrations to run ({len(plan.pending)}):")
    for revision, description in plan.pending:
        out.print(f"  {revision}  {escape(description)}")
