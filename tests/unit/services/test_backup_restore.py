"""Backup and restore in-process, on SQLite and PostgreSQL: what a backup holds and leaves out,
and how it stays consistent with deletions and uploads that happen while it runs."""

from __future__ import annotations

import hashlib
import io
import json
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from alembic import command

from sealdrop.config import load_settings
from sealdrop.crypto import envelope
from sealdrop.crypto.keys import Identity, generate_identity, recipient_of
from sealdrop.errors import BackupError, ConfigError, DecryptionError
from sealdrop.ids import BlobKey, SourceId, new_id
from sealdrop.services.backup import write_backup
from sealdrop.services.container import Services, build_services
from sealdrop.services.instance import init_instance
from sealdrop.services.restore import restore_backup
from sealdrop.services.restore_check import check_instance
from sealdrop.storage import migrations, models
from sealdrop.storage.blobs_fs import FilesystemBlobStore
from sealdrop.storage.database import SqlDatabase, sqlite_url_for
from sealdrop.storage.snapshots import BLOB_TABLES
from sealdrop.tor.front import front_address, write_onionbalance_config
from sealdrop.tor.layout import TorLayout

# A valid v3 onion address (a worker's, for the front's configuration).
ONION = "speapn2j3z6sqxonugui2to65knbixh4elsqtqkbhnixewo2jgpan6qd.onion"

BACKENDS = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


class Instance:
    """A real instance with one source and two stored messages, and the offline backup key."""

    def __init__(self, root: Path) -> None:
        self.root = init_instance(root / "instance")
        self.settings = load_settings(self.root)
        self.services: Services = build_services(self.settings)
        self.db = SqlDatabase(self.settings.database_url)
        self.blobs = FilesystemBlobStore(self.settings.blob_dir)
        self.journalist = generate_identity()
        self.offline = generate_identity()
        with self.db.transaction() as repos:
            repos.recipients.add(str(recipient_of(self.journalist)), "journalist")
            self.source: SourceId = repos.sources.add(
                new_id().encode(), "age1placeholder", None, "test source", None
            ).id
        for text in (b"first message", b"second message"):
            with self.services.submissions.intake(self.source) as submission:
                submission.add_message(io.BytesIO(text))
                submission.commit()

    def rows(self) -> list[tuple[str, str]]:
        with self.db.transaction() as repos:
            return [(r.id, r.blob_key) for r in repos.submissions.for_source(self.source)]

    def backup(self) -> bytes:
        out = io.BytesIO()
        write_backup(self.settings, out, [recipient_of(self.offline)])
        return out.getvalue()

    def close(self) -> None:
        self.services.close()
        self.db.close()


def members(backup: bytes, identity: Identity) -> dict[str, bytes]:
    plain = envelope.decrypt_bytes(backup, [identity])
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        return {
            m.name: (tar.extractfile(m).read() if m.isreg() else b"")  # type: ignore[union-attr]
            for m in tar.getmembers()
        }


@pytest.fixture
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    name = str(request.param)
    if name == "postgres":
        monkeypatch.setenv("SEALDROP_DATABASE_URL", request.getfixturevalue("fresh_postgres_url"))
    return name


@pytest.fixture
def instance(tmp_path: Path, backend: str) -> Iterator[Instance]:
    made = Instance(tmp_path)
    yield made
    made.close()


@pytest.fixture
def restore_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """Where a restore loads the database: nothing for SQLite (the file comes in the backup), a
    second, empty PostgreSQL database on the session's server otherwise."""
    if backend == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_url")
    admin = url.replace("+psycopg", "").rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS sealdrop_restore WITH (FORCE)")
        conn.execute("CREATE DATABASE sealdrop_restore")
    return url.rsplit("/", 1)[0] + "/sealdrop_restore"


def restored_keys(target: Path, url: str | None) -> set[str]:
    database = SqlDatabase(url or sqlite_url_for(target / "sealdrop.db"))
    try:
        with database.transaction() as repos:
            return set(repos.submissions.blob_keys())
    finally:
        database.close()


@BACKENDS
def test_an_item_deleted_while_the_backup_copies_blobs_is_left_out_of_the_restore(
    instance: Instance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    restore_url: str | None,
) -> None:
    """An item deleted after the database snapshot but before its blob is copied (row deleted,
    then blob, as the inbox does) is left out: the restored instance has neither its row nor its
    blob, passes the restore check, and keeps the other item."""
    (gone_id, gone_key), (_, kept_key) = instance.rows()
    real_open = FilesystemBlobStore.open

    def open_after_a_deletion(store: FilesystemBlobStore, key: BlobKey) -> object:
        if key == gone_key:
            with instance.db.transaction() as repos:
                repos.submissions.delete(gone_id)  # type: ignore[arg-type]
            instance.blobs.delete(gone_key)  # type: ignore[arg-type]
        return real_open(store, key)

    monkeypatch.setattr(FilesystemBlobStore, "open", open_after_a_deletion)
    backup = instance.backup()
    monkeypatch.undo()

    held = members(backup, instance.offline)
    manifest = json.loads(held["sealdrop-backup.json"])
    assert manifest["withdrawn"] == [gone_key]
    assert f"store/blobs/{kept_key[:2]}/{kept_key}" in held
    assert f"store/blobs/{gone_key[:2]}/{gone_key}" not in held
    backup_file = tmp_path / "backup.age"
    backup_file.write_bytes(backup)
    target = tmp_path / "restored"
    report = restore_backup(backup_file, [instance.offline], target, restore_url)
    assert report.check.items == 1
    assert restored_keys(target, restore_url) == {kept_key}


@BACKENDS
def test_a_blob_committed_before_its_row_is_not_in_the_backup(instance: Instance) -> None:
    """An upload between its blob's commit and its row's commit (invariant 9's order) is not in
    the backup: only blobs that the snapshot's rows name are copied, so no partial item and no
    orphan comes back."""
    with instance.blobs.stage() as staged:
        staged.write(envelope.encrypt_bytes(b"in flight", [recipient_of(instance.journalist)]))
        orphan, _ = staged.commit()
    with instance.blobs.stage() as staged:
        staged.write(b"still staging")
        staged.close()
        held = members(instance.backup(), instance.offline)
    blobs = {name for name in held if name.startswith("store/blobs/") and name.count("/") == 3}
    assert blobs == {f"store/blobs/{k[:2]}/{k}" for _, k in instance.rows()}
    assert not any(orphan in name or "staging" in name for name in held)


@BACKENDS
def test_a_backup_holds_settings_secrets_onion_keys_and_nothing_else(instance: Instance) -> None:
    """The members are sealdrop.toml, secrets.toml, the onion keys and authorized clients, the
    blobs, the database and the manifest; tor's state, torrc, the lock and sockets stay out. Every
    member is owner-only and dated at the epoch."""
    tor = instance.root / "tor"
    for onion in ("source-onion", "api-onion"):
        (tor / onion).mkdir(parents=True, exist_ok=True)
        for name in ("hostname", "hs_ed25519_public_key", "hs_ed25519_secret_key"):
            (tor / onion / name).write_bytes(f"{onion}/{name}".encode())
    (tor / "api-onion" / "authorized_clients").mkdir()
    (tor / "api-onion" / "authorized_clients" / "alice-laptop.auth").write_text("descriptor")
    (tor / "data").mkdir()
    (tor / "data" / "cached-consensus").write_text("state")
    (tor / "torrc").write_text("DataDirectory")
    (instance.root / ".lock").write_text("")
    backup = instance.backup()
    plain = envelope.decrypt_bytes(backup, [instance.offline])
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        infos = tar.getmembers()
    files = {i.name for i in infos if i.isreg() and not i.name.startswith("store/blobs/")}
    database = (
        "sealdrop.db" if instance.settings.database_url.startswith("sqlite") else ("database.sql")
    )
    assert files == {
        "sealdrop.toml",
        "secrets.toml",
        database,
        "sealdrop-backup.json",
        "tor/api-onion/authorized_clients/alice-laptop.auth",
        *(
            f"tor/{onion}/{name}"
            for onion in ("source-onion", "api-onion")
            for name in ("hostname", "hs_ed25519_public_key", "hs_ed25519_secret_key")
        ),
    }
    assert all(i.mtime == 0 and i.uname == "" for i in infos)
    assert all(i.mode == (0o700 if i.isdir() else 0o600) for i in infos)
    assert members(backup, instance.offline)["tor/source-onion/hs_ed25519_secret_key"] == (
        b"source-onion/hs_ed25519_secret_key"
    )


def test_every_table_that_names_a_blob_is_in_the_snapshot_list() -> None:
    """The backup copies the blobs of every table with a blob_key column: a new one added to
    models.py without updating snapshots.BLOB_TABLES would be backed up without its blobs."""
    named = {
        table.name for table in models.Base.metadata.sorted_tables if "blob_key" in table.columns
    }
    assert named == set(BLOB_TABLES)


def test_a_backup_with_no_recipient_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """No recipient: refused, and not one byte is written (no backup nobody can open)."""
    root = init_instance(tmp_path / "instance")
    out = io.BytesIO()
    with pytest.raises(Exception, match="at least one --recipient"):
        write_backup(load_settings(root), out, [])
    assert out.getvalue() == b""


def one_backend(name: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("backend", [name], indirect=True)


@pytest.mark.postgres
@one_backend("postgres")
def test_a_postgresql_backup_needs_an_empty_database_given_by_url(
    instance: Instance, tmp_path: Path
) -> None:
    """A PostgreSQL backup without --database-url, or with a database that already holds
    tables, is refused, and no folder is left behind."""
    backup_file = tmp_path / "backup.age"
    backup_file.write_bytes(instance.backup())
    target = tmp_path / "restored"
    with pytest.raises(ConfigError, match="give an empty one with --database-url"):
        restore_backup(backup_file, [instance.offline], target, None)
    assert not target.exists()
    with pytest.raises(ConfigError, match="not empty"):
        # The instance's own database: it holds tables.
        restore_backup(backup_file, [instance.offline], target, instance.settings.database_url)
    assert not target.exists()


@pytest.mark.postgres
@one_backend("sqlite")
def test_an_sqlite_backup_refuses_a_database_url(
    instance: Instance, tmp_path: Path, fresh_postgres_url: str
) -> None:
    """An SQLite backup given --database-url is refused (no silent move between backends), and
    the files already unpacked are removed."""
    backup_file = tmp_path / "backup.age"
    backup_file.write_bytes(instance.backup())
    target = tmp_path / "restored"
    with pytest.raises(ConfigError, match="leave out --database-url"):
        restore_backup(backup_file, [instance.offline], target, fresh_postgres_url)
    assert not target.exists()


def restored_with_first_blob(
    instance: Instance, tmp_path: Path, restore_url: str | None
) -> tuple[str, Path, str, Path]:
    """The instance backed up and restored into ``tmp_path/restored``: the restored database's
    URL, its blob folder, and the key and path of the first submission's blob."""
    backup_file = tmp_path / "backup.age"
    backup_file.write_bytes(instance.backup())
    target = tmp_path / "restored"
    restore_backup(backup_file, [instance.offline], target, restore_url)
    (_, first), _second = instance.rows()
    store = target / "store"
    url = restore_url or sqlite_url_for(target / "sealdrop.db")
    return url, store, first, store / "blobs" / first[:2] / first


@BACKENDS
def test_the_restore_check_finds_a_damaged_blob_and_an_unknown_migration(
    instance: Instance, tmp_path: Path, restore_url: str | None
) -> None:
    """The check refuses a blob altered after the backup (size kept: its BLAKE3 digest catches
    it, and a row's older SHA-256 digest too), one that is not an age file, a missing one, a row
    whose digest is malformed, and a database at a migration this code does not know."""
    url, store, first, path = restored_with_first_blob(instance, tmp_path, restore_url)
    original = path.read_bytes()
    for damaged, reason in (
        (original[:-1] + bytes([original[-1] ^ 1]), "blake3 digest differs from the row's"),
        (b"X" + original[1:], "not an age v1 file"),
        (original[:-1], "bytes where the row says"),
    ):
        path.write_bytes(damaged)
        with pytest.raises(BackupError, match=reason):
            check_instance(url, store)
    path.unlink()
    with pytest.raises(
        BackupError, match=f"1 of 2 items are damaged; first: blob {first}: missing"
    ):
        check_instance(url, store)
    path.write_bytes(original)
    assert check_instance(url, store).items == 2

    def set_digest(digest: str) -> None:  # as migration 0009 leaves a row stored before it
        database = SqlDatabase(url)
        try:
            with database.engine.begin() as connection:
                connection.execute(
                    sa.text("UPDATE submissions SET digest = :digest WHERE blob_key = :key"),
                    {"digest": digest, "key": first},
                )
        finally:
            database.close()

    set_digest("sha256:" + hashlib.sha256(original).hexdigest())
    assert check_instance(url, store).items == 2
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(BackupError, match="sha256 digest differs from the row's"):
        check_instance(url, store)
    path.write_bytes(original)
    set_digest("sha256:short")
    with pytest.raises(BackupError, match="the row's digest is malformed"):
        check_instance(url, store)
    set_digest("")  # a row older than migration 0003: size and age header only
    assert check_instance(url, store).items == 2
    database = SqlDatabase(url)
    try:
        with database.engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    finally:
        database.close()
    with pytest.raises(BackupError, match="9999_future, which this version"):
        check_instance(url, store)


@BACKENDS
def test_the_restore_check_reads_a_database_from_before_named_digests(
    instance: Instance, tmp_path: Path, restore_url: str | None
) -> None:
    """A backup made by a Sealdrop before migration 0009 holds bare hex SHA-256 digests: the
    check reads them as "sha256:HEX" and still catches a changed byte; one from before 0003
    has no digest, and the check still counts every blob and finds a cut one."""
    url, store, first, path = restored_with_first_blob(instance, tmp_path, restore_url)
    original = path.read_bytes()
    database = SqlDatabase(url)
    try:
        with database.engine.begin() as connection:
            command.downgrade(migrations.alembic_config(connection), "0008")
            connection.execute(
                sa.text("UPDATE submissions SET sha256 = :hex WHERE blob_key = :key"),
                {"hex": hashlib.sha256(original).hexdigest(), "key": first},
            )
    finally:
        database.close()
    assert check_instance(url, store).items == 2
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(BackupError, match="sha256 digest differs from the row's"):
        check_instance(url, store)
    database = SqlDatabase(url)
    try:
        with database.engine.begin() as connection:
            command.downgrade(migrations.alembic_config(connection), "0002")
    finally:
        database.close()
    assert check_instance(url, store).items == 2  # no digest to compare any more
    path.write_bytes(original[:-1])
    with pytest.raises(BackupError, match="bytes where the row says"):
        check_instance(url, store)


@one_backend("sqlite")
def test_without_the_age_program_the_backup_is_encrypted_in_process_to_the_same_format(
    instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the stock age program is not installed, pyrage encrypts the same stream: an age
    file to the offline key only (one X25519 stanza), holding the whole archive."""
    monkeypatch.setattr("sealdrop.services.age_child.age_binary", lambda: None)
    backup = instance.backup()
    header = backup.partition(b"\n---")[0]
    assert header.count(b"\n-> X25519 ") == 1
    held = members(backup, instance.offline)
    assert {f"store/blobs/{k[:2]}/{k}" for _, k in instance.rows()} <= set(held)
    assert json.loads(held["sealdrop-backup.json"])["blobs"] == 2
    with pytest.raises(DecryptionError):
        envelope.decrypt_bytes(backup, [instance.journalist])


@one_backend("sqlite")
def test_the_onionbalance_front_key_is_backed_up_and_restored(
    instance: Instance, tmp_path: Path
) -> None:
    """`sealdrop balance`'s front key (the front address) is in the backup, owner-only, and a
    restore gives the same front address; Onionbalance's YAML is not (it is written again)."""
    layout = TorLayout.of_instance(instance.root)
    front = write_onionbalance_config(layout, [ONION])
    backup = instance.backup()
    held = members(backup, instance.offline)
    assert held["tor/front-onion/key.pem"] == (layout.front_onion_dir / "key.pem").read_bytes()
    assert "tor/front-onion/onionbalance.yaml" not in held
    backup_file = tmp_path / "backup.age"
    backup_file.write_bytes(backup)
    target = tmp_path / "restored"
    restore_backup(backup_file, [instance.offline], target, None)
    restored = TorLayout.of_instance(target)
    assert (
        front_address(restored)
        == front_address(layout)
        == front.parent.joinpath("hostname").read_text().strip()
    )
    assert stat.S_IMODE((restored.front_onion_dir / "key.pem").stat().st_mode) == 0o600
