"""Resumable uploads on an instance whose blobs are in S3 (a real SeaweedFS): the upload in
progress lives in the object store, not on the worker's disk, so a second worker (its own
instance folder, the same database and store) continues and finishes what the first began; a
crash's leftovers are cut off; an expired upload is swept; no plaintext or name is stored."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_resumable import pieces, session_of
from test_submissions_service import Env

from sealdrop.crypto import age_stream
from sealdrop.errors import ClientDisconnected, NotFound
from sealdrop.ids import new_id
from sealdrop.storage.blobs import S3Location
from sealdrop.testing_s3 import TEST_BUCKET, SeaweedFS

pytestmark = pytest.mark.s3

CHUNK = age_stream.CHUNK


class S3Env(Env):
    def __init__(self, root: Path, seaweedfs: SeaweedFS, prefix: str, **extra: str) -> None:
        self.seaweedfs = seaweedfs
        self.location = S3Location(TEST_BUCKET, prefix + "/")
        super().__init__(root, extra={**seaweedfs.env(TEST_BUCKET, prefix), **extra})
        self.blobs = self.services.submissions._context.blobs  # type: ignore[assignment]

    def objects(self) -> dict[str, bytes]:
        client = self.seaweedfs.client()
        listing = client.list_objects_v2(Bucket=TEST_BUCKET, Prefix=self.location.prefix)
        return {
            e["Key"]: client.get_object(Bucket=TEST_BUCKET, Key=e["Key"])["Body"].read()
            for e in listing.get("Contents", [])
        }

    def every_stored_byte(self) -> bytes:
        return super().every_stored_byte() + b"".join(self.objects().values())


@pytest.fixture
def prefix() -> str:
    return f"t{new_id()}"


@pytest.fixture
def env(tmp_path: Path, seaweedfs: SeaweedFS, prefix: str) -> Iterator[S3Env]:
    e = S3Env(tmp_path / "a", seaweedfs, prefix)
    e.add_recipient()
    yield e
    e.close()


def test_an_upload_begun_on_one_worker_finishes_on_another(
    env: S3Env, tmp_path: Path, seaweedfs: SeaweedFS, prefix: str
) -> None:
    """Worker A stores the header and a chunk and then loses the client; worker B (another
    instance folder on the same database and object store) reports the same offset and takes
    the rest; the item decrypts to the exact bytes, and nothing of the upload is on either
    worker's disk, nor left in the store once finished."""
    other = S3Env(
        tmp_path / "b", seaweedfs, prefix, SEALDROP_DATABASE_URL=env.settings.database_url
    )
    try:
        session = session_of(env)
        data = os.urandom(3 * CHUNK + 123)
        upload_id, _ = env.services.resumable.create(session, len(data), "a.bin", "x/y")
        feed = pieces(data[: CHUNK + 500])

        def then_gone() -> bytes:
            piece = feed()
            if not piece:
                raise ClientDisconnected()
            return piece

        with pytest.raises(ClientDisconnected):
            env.services.resumable.receive(session, upload_id, 0, then_gone)
        for worker in (env, other):
            assert worker.services.resumable.status(session, upload_id).offset == CHUNK
            assert not [p for p in (worker.root / "store").rglob("*") if p.is_file()]
        done = other.services.resumable.receive(session, upload_id, CHUNK, pieces(data[CHUNK:]))
        assert done.finished
        (row,) = env.rows()
        assert env.plaintext(row.blob_key) == data
        assert env.metadata(row) == {"filename": "a.bin", "content_type": "x/y", "size": len(data)}
        assert [name.split("/")[1] for name in env.objects()] == ["blobs"]
        with pytest.raises(NotFound):
            env.services.resumable.status(session, upload_id)
    finally:
        other.close()


def test_a_segment_stored_past_the_durable_length_is_cut_off(env: S3Env) -> None:
    """A segment stored but never checkpointed (a crash between the two) is not part of the
    upload: the next request replaces it and the file is exact."""
    session = session_of(env)
    data = os.urandom(2 * CHUNK)
    upload_id, _ = env.services.resumable.create(session, len(data), "a.bin", "")
    partials = env.services.resumable._partials
    durable = partials.state(upload_id).durable
    partials._put_segment(upload_id, durable, b"garbage a crash left")  # type: ignore[attr-defined]
    assert env.services.resumable.status(session, upload_id).offset == 0
    assert env.services.resumable.receive(session, upload_id, 0, pieces(data)).finished
    (row,) = env.rows()
    assert env.plaintext(row.blob_key) == data


def test_an_expired_upload_is_swept_from_the_store(env: S3Env) -> None:
    """After the expiry the upload's objects are removed and it is 404."""
    session = session_of(env)
    upload_id, _ = env.services.resumable.create(session, 2 * CHUNK, "a.bin", "")
    env.services.resumable.receive(session, upload_id, 0, pieces(os.urandom(CHUNK)))
    assert any("/partial/" in name for name in env.objects())
    env.clock.advance(env.services.resumable.expiry_seconds + 1)
    assert env.services.resumable.sweep() == 1
    assert env.objects() == {}
    with pytest.raises(NotFound):
        env.services.resumable.status(session, upload_id)


def test_the_stored_upload_holds_no_name_and_no_plaintext(env: S3Env) -> None:
    """The file's name and a canary in its content are nowhere in the store while the upload is
    in progress (the state is sealed, the chunks encrypted)."""
    session = session_of(env)
    name = f"secret-{uuid.uuid4().hex}.pdf"
    canary = f"canary-{uuid.uuid4().hex}".encode()
    data = canary * (CHUNK // len(canary) + 1)
    upload_id, _ = env.services.resumable.create(session, 2 * len(data), name, "")
    env.services.resumable.receive(session, upload_id, 0, pieces(data))
    stored = env.every_stored_byte()
    assert name.encode() not in stored
    assert canary not in stored
