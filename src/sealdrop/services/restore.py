"""``sealdrop restore``: a backup file (``services/backup.py``) back into an instance folder.

What stock tools do (``age -d -i KEY FILE | tar -x``), with the checks they cannot make: the
folder must be new or empty (never mixed with another instance), every member must be one that
a backup holds (an age file to the operator's public key can be made by anyone who knows that
key: nothing in it is trusted to name a path), files and folders get the instance's owner-only
modes and epoch times, the PostgreSQL dump is loaded into an empty database, and then the result
is checked (``restore_check.py``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
import threading
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import delete
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sealdrop.config import CONFIG_FILE, SECRETS_FILE, load_settings
from sealdrop.crypto import envelope
from sealdrop.crypto.keys import Identity, parse_identity
from sealdrop.errors import BackupError, ConfigError, InvalidKeyError, StorageError
from sealdrop.ids import BlobKey
from sealdrop.services.backup import FORMAT, MANIFEST, POSTGRES_MEMBER, SQLITE_MEMBER, STORE
from sealdrop.services.blob_store import open_blob_store, uses_object_store
from sealdrop.services.restore_check import CheckReport, check_instance
from sealdrop.storage.database import SqlDatabase, sqlite_url_for
from sealdrop.storage.models import Reply, Submission
from sealdrop.storage.snapshots import load_postgres_dump, postgres_is_empty

if TYPE_CHECKING:  # imported when a restore meets an object store (boto3 is slow to load)
    from sealdrop.storage.blobs_s3 import S3BlobStore

__all__ = ["RestoreReport", "read_identities", "restore_backup"]

_CHUNK = 1024 * 1024
_EPOCH = (0, 0)
# Every name a backup may hold; anything else is refused before a byte of it is written.
_FILES = re.compile(
    r"sealdrop\.toml|secrets\.toml|sealdrop\.db|database\.sql|sealdrop-backup\.json"
    r"|store/blobs/(?P<shard>[0-9a-f]{2})/(?P=shard)[0-9a-f]{30}"
    r"|tor/(?:source|api)-onion/(?:hostname|hs_ed25519_public_key|hs_ed25519_secret_key)"
    r"|tor/api-onion/authorized_clients/[A-Za-z0-9_-]{1,40}\.auth"
    r"|tor/front-onion/(?:hostname|key\.pem)"
)
_DIRS = re.compile(
    r"store|store/blobs|store/blobs/[0-9a-f]{2}|tor|tor/(?:source|api|front)-onion"
    r"|tor/api-onion/authorized_clients"
)
_KEY = re.compile(r"[0-9a-f]{32}")


@dataclass
class RestoreReport:
    backend: str
    check: CheckReport
    notes: list[str] = field(default_factory=list)


def read_identities(path: Path) -> list[Identity]:
    """The ``AGE-SECRET-KEY-1…`` lines of an identity file as ``age-keygen`` writes it."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        raise ConfigError(f"cannot read the identity file {path}") from None
    lines = [s for line in text.splitlines() if (s := line.strip()) and not s.startswith("#")]
    if not lines:
        raise ConfigError(f"{path} holds no age identity")
    try:
        return [parse_identity(line) for line in lines]
    except InvalidKeyError:
        # Never quote the line: it is (a mangled copy of) a private key.
        raise ConfigError(f"{path} is not an age identity file (AGE-SECRET-KEY-1…)") from None


def restore_backup(
    backup: Path, identities: Sequence[Identity], target: Path, database_url: str | None = None
) -> RestoreReport:
    """Restore ``backup`` into ``target`` (new or empty), load and check it."""
    target = target.absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(f"{target} is not empty: restore into a new or empty folder")
    if database_url is not None:
        _check_postgres_target(database_url)
    if not backup.is_file():
        raise ConfigError(f"no backup file at {backup}")
    created = not target.exists()
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    target.chmod(0o700)  # the instance folder is owner-only, whatever the umask
    blobs = _BlobTarget(target)
    try:
        _extract(backup, identities, target, blobs)
        manifest = _manifest(target)
        url = _database(manifest, target, database_url)
    except BaseException:
        # Nothing half-restored is left to be mistaken for an instance.
        blobs.remove_uploaded()
        _empty(target, remove=created)
        raise
    _settle_store(target / STORE)
    store = blobs.object_store
    report = RestoreReport(manifest["database"], check_instance(url, store or target / STORE))
    notes = _notes(target, database_url)
    if store is not None:
        # storage.blob_dir does not matter: the blobs are in the object store.
        notes = [f"the blobs were restored to {blobs.described}"] + [
            note for note in notes if "blob_dir" not in note
        ]
    report.notes += notes
    return report


class _BlobTarget:
    """Where the backup's blobs go. As stock ``tar -x`` would put them, files under
    ``store/blobs/``; but when the restored settings (sealdrop.toml and secrets.toml, which come
    first in the archive, and the environment's SEALDROP_* overrides) keep blobs in S3, into
    that store under the keys the rows name, streamed, part by part. That store must be empty
    (never mix two instances' blobs); on failure what was put there is removed again."""

    def __init__(self, target: Path) -> None:
        self._target = target
        self._decided = False
        self.object_store: S3BlobStore | None = None
        self.described = ""
        self._uploaded: list[BlobKey] = []
        self._seen: set[str] = set()

    def _decide(self) -> None:
        if self._decided:
            return
        self._decided = True
        settings = load_settings(self._target)
        if not uses_object_store(settings):
            return
        from sealdrop.storage.blobs_s3 import S3BlobStore

        store = open_blob_store(settings)
        assert isinstance(store, S3BlobStore)
        if not store.is_empty():
            raise ConfigError(
                f"the object store {settings.blobs} is not empty: restore into an empty bucket "
                "or prefix (set SEALDROP_STORAGE_BLOBS to choose another)"
            )
        self.object_store = store
        self.described = settings.blobs

    def put(self, key: str, source: IO[bytes]) -> bool:
        """Put the blob into the object store; False if blobs go to files instead."""
        self._decide()
        if self.object_store is None:
            return False
        if key in self._seen:
            # As O_EXCL refuses it for files: a forged archive must not replace a blob it gave.
            raise BackupError(f"not a Sealdrop backup: blob {key} twice")
        self._seen.add(key)
        self._uploaded.append(BlobKey(key))
        self.object_store.put_as(BlobKey(key), source)
        return True

    def remove_uploaded(self) -> None:
        if self.object_store is None:
            return
        try:
            for key in self._uploaded:
                self.object_store.delete(key)
        except StorageError:
            pass  # the restore's own error matters more; the prefix stays non-empty, so visible


def _check_postgres_target(database_url: str) -> None:
    try:
        backend = make_url(database_url).get_backend_name()
    except ArgumentError:
        raise ConfigError("the database URL does not parse") from None
    if backend != "postgresql":
        raise ConfigError("--database-url is for PostgreSQL (postgresql+psycopg://…)")
    if not postgres_is_empty(database_url):
        # Loading into a database that holds tables would mix two instances' rows.
        raise ConfigError("the database given by --database-url is not empty: create a new one")


def _extract(
    backup: Path, identities: Sequence[Identity], target: Path, blobs: _BlobTarget
) -> None:
    """Decrypt in a thread into a pipe and unpack from it: no plaintext copy of the archive."""
    read_fd, write_fd = os.pipe()
    failures: list[BaseException] = []

    def decrypt() -> None:
        try:
            with backup.open("rb") as source, os.fdopen(write_fd, "wb") as sink:
                envelope.decrypt(source, sink, identities)
        except BaseException as exc:
            failures.append(exc)

    worker = threading.Thread(target=decrypt, name="restore-decrypt", daemon=True)
    worker.start()
    unpack_error: BaseException | None = None
    try:
        with os.fdopen(read_fd, "rb") as stream:
            _unpack(stream, target, blobs)
            # Read to the end: age authenticates the last chunk only once it is all read, so a
            # truncated or altered file fails here rather than passing as complete.
            while stream.read(_CHUNK):
                pass
    except BaseException as exc:
        unpack_error = exc  # the pipe is closed now, so the decryptor stops too
    worker.join()
    decrypt_error = failures[0] if failures else None
    if decrypt_error is not None and not isinstance(decrypt_error, BrokenPipeError):
        raise decrypt_error  # wrong identity, damaged file: the cause of any unpack error
    if unpack_error is not None:
        if isinstance(unpack_error, tarfile.TarError):
            raise BackupError(f"not a Sealdrop backup: {unpack_error}") from None
        raise unpack_error


def _unpack(stream: IO[bytes], target: Path, blobs: _BlobTarget) -> None:
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            name = member.name
            if member.isdir() and _DIRS.fullmatch(name):
                _private_dirs(target, name)
                continue
            if not (member.isreg() and _FILES.fullmatch(name)):
                raise BackupError(f"not a Sealdrop backup: unexpected member {name!r}")
            parent = name.rpartition("/")[0]
            if parent:
                _private_dirs(target, parent)
            source = tar.extractfile(member)
            assert source is not None  # a regular file always has one
            if name.startswith(f"{STORE}/blobs/") and blobs.put(name.rpartition("/")[2], source):
                continue
            # O_EXCL: a name given twice is refused, never overwritten; 0600 from the first byte.
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                fd = os.open(target / name, flags, 0o600)
            except FileExistsError:
                raise BackupError(f"not a Sealdrop backup: {name!r} twice") from None
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(source, out, _CHUNK)
                out.flush()
                os.utime(fd, _EPOCH)  # invariant 6: no file tells when it was restored
                os.fsync(fd)


def _private_dirs(target: Path, relative: str) -> None:
    path = target
    for part in relative.split("/"):
        path = path / part
        path.mkdir(mode=0o700, exist_ok=True)
        path.chmod(0o700)


def _manifest(target: Path) -> dict[str, Any]:
    for name in (CONFIG_FILE, SECRETS_FILE, MANIFEST):
        if not (target / name).is_file():
            raise BackupError(f"not a complete Sealdrop backup: no {name}")
    try:
        manifest = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BackupError(f"not a Sealdrop backup: {MANIFEST} does not parse") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("a backup format this version of Sealdrop does not know")
    members = {"sqlite": SQLITE_MEMBER, "postgresql": POSTGRES_MEMBER}
    backend = manifest.get("database")
    if backend not in members or not (target / members[backend]).is_file():
        raise BackupError("not a complete Sealdrop backup: no database")
    withdrawn = manifest.get("withdrawn", [])
    if not isinstance(withdrawn, list) or not all(
        isinstance(k, str) and _KEY.fullmatch(k) for k in withdrawn
    ):
        raise BackupError(f"not a Sealdrop backup: {MANIFEST} lists bad blob keys")
    return manifest


def _database(manifest: dict[str, Any], target: Path, database_url: str | None) -> str:
    """The restored database's URL; for PostgreSQL, after loading the dump into it."""
    if manifest["database"] == "sqlite":
        if database_url is not None:
            raise ConfigError("this backup holds an SQLite database: leave out --database-url")
        # The withdrawn rows were already dropped from the SQLite copy when it was made.
        return sqlite_url_for(target / SQLITE_MEMBER)
    if database_url is None:
        raise ConfigError(
            "this backup holds a PostgreSQL database: give an empty one with --database-url"
        )
    dump = target / POSTGRES_MEMBER
    load_postgres_dump(database_url, dump)
    keys = manifest["withdrawn"]
    if keys:
        # Rows whose blob was deleted while the backup ran (services/backup.py): deleted now,
        # as they were on the server, so that no row is left without its blob.
        database = SqlDatabase(database_url)
        try:
            with database.engine.begin() as connection:
                for table in (Submission, Reply):
                    connection.execute(delete(table).where(table.blob_key.in_(keys)))
        finally:
            database.close()
    # The instance keeps its database on the PostgreSQL server, not a copy in its folder.
    dump.unlink()
    return database_url


def _settle_store(store: Path) -> None:
    blobs = store / "blobs"
    folders = [*(p for p in blobs.iterdir() if p.is_dir()), blobs, store] if blobs.is_dir() else []
    for folder in folders:
        os.utime(folder, _EPOCH)


def _notes(target: Path, database_url: str | None) -> list[str]:
    """What the operator must still do for the restored settings to find what was restored."""
    notes = []
    try:
        raw = tomllib.loads((target / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return ["sealdrop.toml does not parse: check it before `sealdrop serve`"]
    blob_dir = raw.get("storage", {}).get("blob_dir", STORE)
    if blob_dir != STORE:
        notes.append(
            f"the blobs were restored to {target / STORE}, but [storage] blob_dir in "
            f"sealdrop.toml is {blob_dir!r}: move them there or change the setting"
        )
    configured = raw.get("database", {}).get("url", "")
    if database_url is None and configured:
        notes.append(
            f"the database was restored to {target / SQLITE_MEMBER}, but [database] url in "
            "sealdrop.toml names another: point it there, or empty it"
        )
    if database_url is not None and configured != database_url:
        notes.append(
            "point the instance at the restored database: set [database] url in sealdrop.toml "
            "(or SEALDROP_DATABASE_URL) to the URL given with --database-url"
        )
    return notes


def _empty(target: Path, *, remove: bool) -> None:
    for entry in list(target.iterdir()) if target.is_dir() else []:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    if remove:
        target.rmdir()
