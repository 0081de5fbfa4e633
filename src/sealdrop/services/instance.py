"""Creating an instance folder, and holding it while a server runs."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sealdrop.config import (
    CONFIG_FILE,
    Settings,
    default_config_text,
    load_settings,
    write_new_secrets,
)
from sealdrop.errors import ConfigError
from sealdrop.services.blob_store import uses_object_store
from sealdrop.storage.blobs_fs import FilesystemBlobStore
from sealdrop.storage.database import SqlDatabase

LOCK_FILE = ".lock"


MAX_ORGANISATION_NAME = 100


def init_instance(
    directory: Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    organisation_name: str | None = None,
) -> Path:
    """Create a new instance: settings, secrets (0600), database schema, blob store.

    Refuses to touch a folder that already holds an instance, so a mistyped command can never
    replace the KDF salt (which would lock every source out).
    """
    if organisation_name is not None:
        organisation_name = _organisation_name(organisation_name)
    directory = directory.resolve()
    if (directory / CONFIG_FILE).exists():
        raise ConfigError(f"{directory} already holds a Sealdrop instance")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        # Never take over (and chmod 700) a folder that holds something else, such as a home.
        raise ConfigError(f"{directory} exists and is not empty; choose a new folder")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    config = directory / CONFIG_FILE
    write_new_secrets(directory)
    config.write_text(default_config_text(host, port, organisation_name), encoding="utf-8")
    os.chmod(config, 0o600)
    settings = load_settings(directory)
    database = SqlDatabase(settings.database_url)
    try:
        database.upgrade()
    finally:
        database.close()
    FilesystemBlobStore(settings.blob_dir)
    return directory


def _organisation_name(name: str) -> str:
    """The name as every source page shows it; refused rather than silently changed."""
    name = " ".join(name.split())
    if not name or len(name) > MAX_ORGANISATION_NAME:
        raise ConfigError(
            f"the organisation name must have 1 to {MAX_ORGANISATION_NAME} characters"
        )
    if not name.isprintable():
        # Control and bidirectional-override characters would garble or disguise the pages.
        raise ConfigError("the organisation name must not contain control or formatting characters")
    return name


def upgrade_database(directory: Path) -> None:
    settings = load_settings(directory)
    database = SqlDatabase(settings.database_url)
    try:
        database.upgrade()
    finally:
        database.close()


def single_server_reasons(settings: Settings) -> list[str]:
    """Why only one server process may serve this instance (empty: any number may).

    Several processes, on one host or several, can share an instance only through engines made
    for it: PostgreSQL for the rows and S3 object storage for the blobs. An SQLite file or a
    local blob folder is one machine's, and the start-up recovery of one process would remove
    the staged uploads of another."""
    reasons = []
    if settings.database_url.startswith("sqlite"):
        reasons.append("the database is SQLite")
    if not uses_object_store(settings):
        reasons.append("the blob store is a local folder")
    return reasons


@contextmanager
def serving(settings: Settings, workers: int = 1) -> Iterator[None]:
    """What a server holds while it runs. Refuses ``workers`` > 1 where only one process may
    serve the instance (SQLite or the filesystem store), naming why, and more workers than
    ``kdf.max_concurrent`` (each would still run a derivation of its own).

    The folder's lock is taken either way: on SQLite or the filesystem store it keeps a second
    server off the instance's data; on PostgreSQL + S3 the data is shared, but the folder still
    holds this server's own tor (its keys, its sockets), which two servers must not both run.
    More servers on one machine are `--workers N` or another folder with the same settings."""
    reasons = single_server_reasons(settings)
    if reasons and workers > 1:
        raise ConfigError(
            f"several workers need PostgreSQL and S3 object storage, and {' and '.join(reasons)}; "
            "serve with one worker, or see docs/operator.md, 'Several workers'"
        )
    if workers > settings.kdf_max_concurrent:
        # Each worker runs at least one derivation process (cli/workers.per_worker): more workers
        # than the pool would take more memory than the operator allowed for derivations.
        raise ConfigError(
            f"{workers} workers need [kdf] max_concurrent of at least {workers} (it is "
            f"{settings.kdf_max_concurrent}): each worker runs at least one codename derivation "
            "(64 MiB), and max_concurrent bounds the memory for all of them; raise it or serve "
            "with fewer workers"
        )
    with instance_lock(settings.instance_dir):
        yield


@contextmanager
def instance_lock(directory: Path) -> Iterator[None]:
    """Hold the instance exclusively: one server per instance folder, so start-up recovery never
    removes another live process's staged upload (SQLite or the filesystem store), and two
    servers never run the folder's tor (any store)."""
    path = directory / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"another Sealdrop server is already running on {directory} (more servers: "
                "`serve --workers N`, or another folder on PostgreSQL and S3 object storage; "
                "docs/operator.md, 'Several workers')"
            ) from None
        yield
    finally:
        os.close(fd)
