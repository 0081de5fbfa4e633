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
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
