"""What ``sealdrop status --json`` reports of an instance for an operator's monitor: the
database's schema revision, the free space of the storage folders, and where notices stand.

Read from the instance itself (the database and the folders), so it works whether or not a
server runs; a running server's own counts are on its metrics listener (services/monitoring.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from sealdrop.config import Settings
from sealdrop.services.monitoring import FolderSpace, folder_space, storage_folders
from sealdrop.storage import migrations
from sealdrop.storage.database import SqlDatabase
from sealdrop.storage.sqlerrors import translated_errors


@dataclass(frozen=True, slots=True)
class NoticeState:
    """Notices to journalists, as the database records them (no account is named)."""

    targets: int  # enabled accounts that get notices
    # The latest scheduled time (Unix time) a notice was claimed at; None: none yet.
    last_scheduled: int | None
    # Targets whose last delivered notice does not cover the latest activity: its delivery
    # failed, or something arrived after the last scheduled time (the next one will tell).
    behind: int


@dataclass(frozen=True, slots=True)
class InstanceState:
    schema_revision: str | None  # None: never migrated
    schema_head: str | None  # the newest revision this version of Sealdrop knows
    storage: dict[str, FolderSpace | None]  # by role: "blobs", "database" (SQLite only)
    notices: NoticeState


def read_instance_state(settings: Settings) -> InstanceState:
    """Raises StorageError when the database cannot be read."""
    folders = storage_folders(settings.blob_dir, settings.database_url, bool(settings.blobs))
    database = SqlDatabase(settings.database_url)
    try:
        with translated_errors(), database.engine.connect() as connection:
            revision = migrations.current_revision(connection)
        notices = _notices(database, settings.notify_interval_seconds)
    finally:
        database.close()
    return InstanceState(
        schema_revision=revision,
        schema_head=migrations.head_revision(),
        storage={role: folder_space(path) for role, path in folders.items()},
        notices=notices,
    )


def _notices(database: SqlDatabase, interval: int) -> NoticeState:
    with database.transaction(read_only=True) as repos:
        activity = repos.notifications.activity()
        targets = [
            target
            for user in repos.users.list()
            if not user.disabled and (target := repos.notifications.get(user.id)) is not None
        ]
    slots = [t.last_slot for t in targets if t.last_slot is not None]
    return NoticeState(
        targets=len(targets),
        last_scheduled=max(slots) * interval if slots else None,
        behind=sum(t.watermark < activity for t in targets),
    )
