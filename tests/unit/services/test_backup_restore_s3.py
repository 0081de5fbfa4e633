"""Backup and restore of an instance whose blobs are in S3 (a real SeaweedFS): the backup
streams the blobs from the store into the archive; a restore puts them back into an empty
store under the keys the rows name, and checks them there; a store that holds anything is
refused, leaving nothing behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_backup_restore import Instance, members

from sealdrop.errors import ConfigError
from sealdrop.ids import new_id
from sealdrop.services.blob_store import open_blob_store
from sealdrop.services.restore import restore_backup
from sealdrop.storage.blobs import S3Location
from sealdrop.storage.blobs_s3 import S3BlobStore
from sealdrop.testing_s3 import TEST_BUCKET, SeaweedFS

pytestmark = pytest.mark.s3


def point_at(monkeypatch: pytest.MonkeyPatch, seaweedfs: SeaweedFS, prefix: str) -> None:
    for name, value in seaweedfs.env(TEST_BUCKET, prefix).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seaweedfs: SeaweedFS
) -> Iterator[Instance]:
    point_at(monkeypatch, seaweedfs, f"t{new_id()}")
    made = Instance(tmp_path)
    made.blobs = open_blob_store(made.settings)  # type: ignore[assignment]
    yield made
    made.close()


def contents(store: S3BlobStore) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for key in store.keys():  # noqa: SIM118 - a blob store, not a dict
        with store.open(key) as blob:
            found[key] = blob.read()
    return found


def test_an_s3_instance_backs_up_and_restores_into_another_store(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seaweedfs: SeaweedFS
) -> None:
    """The archive holds each blob (read from S3) under store/blobs/; restored with the blobs
    pointed at a new, empty prefix, the store there holds the same keys with the same bytes, the
    check reads them from it, nothing lands in the folder's store/, and the report says where
    the blobs went."""
    source = open_blob_store(instance.settings)
    assert isinstance(source, S3BlobStore)
    original = contents(source)
    assert len(original) == 2
    backup = instance.backup()
    archived = members(backup, instance.offline)
    for key, data in original.items():
        assert archived[f"store/blobs/{key[:2]}/{key}"] == data
    (tmp_path / "backup.age").write_bytes(backup)

    new_prefix = f"t{new_id()}"
    point_at(monkeypatch, seaweedfs, new_prefix)
    target = tmp_path / "restored"
    report = restore_backup(tmp_path / "backup.age", [instance.offline], target)
    assert report.check.items == 2
    assert report.notes[0] == f"the blobs were restored to s3://{TEST_BUCKET}/{new_prefix}"
    restored = S3BlobStore(seaweedfs.client(), S3Location(TEST_BUCKET, new_prefix + "/"))
    assert contents(restored) == original
    assert not [p for p in (target / "store").rglob("*") if p.is_file()]


def test_a_restore_into_a_store_that_holds_anything_is_refused_and_leaves_nothing(
    instance: Instance, tmp_path: Path
) -> None:
    """Restoring into the instance's own (non-empty) store: refused, the folder is removed, the
    store holds exactly what it held."""
    source = open_blob_store(instance.settings)
    assert isinstance(source, S3BlobStore)
    before = contents(source)
    (tmp_path / "backup.age").write_bytes(instance.backup())
    target = tmp_path / "restored"
    with pytest.raises(ConfigError, match="not empty"):
        restore_backup(tmp_path / "backup.age", [instance.offline], target)
    assert not target.exists()
    assert contents(source) == before


def test_a_failed_restore_removes_the_blobs_it_put_into_the_store(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seaweedfs: SeaweedFS
) -> None:
    """A restore that fails after some blobs went up (here: a PostgreSQL URL given for an
    SQLite backup, refused once the archive is unpacked) takes them out of the store again."""
    (tmp_path / "backup.age").write_bytes(instance.backup())
    new_prefix = f"t{new_id()}"
    point_at(monkeypatch, seaweedfs, new_prefix)
    target = tmp_path / "restored"
    monkeypatch.setattr("sealdrop.services.restore._check_postgres_target", lambda url: None)
    with pytest.raises(ConfigError):
        restore_backup(
            tmp_path / "backup.age", [instance.offline], target, "postgresql://nowhere/x"
        )
    restored = S3BlobStore(seaweedfs.client(), S3Location(TEST_BUCKET, new_prefix + "/"))
    assert list(restored.keys()) == []
