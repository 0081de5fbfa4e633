"""Alembic migrations, runnable from code: no alembic.ini is needed at runtime.

    from sealdrop.storage import migrations
    with engine.begin() as connection:
        migrations.upgrade(connection)          # to head

``SqlDatabase.upgrade()`` does exactly this. To write a new revision against a database that is
at head (autogenerate compares it with ``models.py``)::

    from alembic import command
    command.revision(alembic_config(url="sqlite:////tmp/dev.db"), "what changes", autogenerate=True)
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from alembic.util import CommandError
from sqlalchemy.engine import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic Config built in memory. env.py uses ``connection`` if given, else ``url``."""
    config = Config()
    # ConfigParser interpolates "%": escape it in paths and URLs (a password may contain one).
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate the database behind ``connection``, inside the caller's transaction."""
    command.upgrade(alembic_config(connection), revision)


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at; None when it was never migrated."""
    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this version of Sealdrop."""
    return _scripts().get_current_head()


def is_known(revision: str) -> bool:
    """Whether this version of Sealdrop ships ``revision`` (a newer Sealdrop's is unknown)."""
    try:
        return _scripts().get_revision(revision) is not None
    except (CommandError, ResolutionError):
        return False


def pending(current: str | None) -> list[tuple[str, str]]:
    """The migrations an upgrade from ``current`` to head runs, oldest first, as (revision,
    first line of its docstring). ``current`` must be known (``is_known``) or None."""
    scripts = _scripts()
    head = scripts.get_current_head()
    if head is None or current == head:
        return []
    steps = list(scripts.iterate_revisions(head, current))
    steps.reverse()
    return [(step.revision, (step.doc or "").strip().splitlines()[0]) for step in steps]


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())
