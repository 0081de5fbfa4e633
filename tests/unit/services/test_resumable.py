"""ResumableUploads on a real instance (SQLite, filesystem store): the sealed state needs the
session's cookie-held key, quota counts bytes as they arrive, only whole durable chunks count,
expired uploads are swept, and a finished upload is the same item as a form upload."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from test_submissions_service import Env

from sealdrop.crypto import age_stream
from sealdrop.errors import ClientDisconnected, Conflict, NotFound, UploadQuotaExceeded
from sealdrop.services.resumable import ResumableUploads
from sealdrop.services.sessions import SourceSession
from sealdrop.storage.database import SqlDatabase
from sealdrop.storage.shared_limits import UploadLeases

CHUNK = age_stream.CHUNK


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    e.add_recipient()
    yield e
    e.close()


def session_of(env: Env, key: bytes | None = None) -> SourceSession:
    return SourceSession(env.source, env.identity, "token", b"h" * 32, True, key or os.urandom(32))


def pieces(data: bytes, size: int = 10_000) -> Callable[[], bytes]:
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    return lambda: chunks.pop(0) if chunks else b""


def uploads(env: Env) -> ResumableUploads:
    return env.services.resumable


def test_state_on_disk_holds_no_name_and_opens_only_with_the_session_key(env: Env) -> None:
    """The file name is only in the sealed state; another key (another session, or the server
    alone) finds no upload: 404, not a readable state."""
    session = session_of(env)
    name = f"secret-{uuid.uuid4().hex}.pdf"
    upload_id, _ = uploads(env).create(session, 3 * CHUNK, name, "application/pdf")
    assert name.encode() not in env.every_stored_byte()
    assert uploads(env).status(session, upload_id).offset == 0
    stranger = replace(session, upload_key=os.urandom(32))
    with pytest.raises(NotFound):
        uploads(env).status(stranger, upload_id)
    with pytest.raises(NotFound):
        uploads(env).receive(stranger, upload_id, 0, pieces(b"x" * CHUNK))
    keyless = replace(session, upload_key=b"")
    with pytest.raises(NotFound):
        uploads(env).status(keyless, upload_id)


def test_a_body_ending_mid_chunk_counts_whole_chunks_and_keeps_no_plaintext(env: Env) -> None:
    """1.5 chunks, the client gone mid-chunk: offset is one chunk; the half chunk's plaintext is
    nowhere on disk; resuming from there finishes to the exact bytes."""
    session = session_of(env)
    data = os.urandom(2 * CHUNK + 100)
    marker = f"canary-{uuid.uuid4().hex}".encode()
    data = data[: CHUNK + 10] + marker + data[CHUNK + 10 + len(marker) :]
    upload_id, _ = uploads(env).create(session, len(data), "a.bin", "")
    feed = pieces(data[: CHUNK + CHUNK // 2])

    def then_gone() -> bytes:
        piece = feed()
        if not piece:
            raise ClientDisconnected()
        return piece

    with pytest.raises(ClientDisconnected):
        uploads(env).receive(session, upload_id, 0, then_gone)
    assert uploads(env).status(session, upload_id).offset == CHUNK
    assert marker not in env.every_stored_byte()
    with pytest.raises(Conflict):
        uploads(env).receive(session, upload_id, 0, pieces(data))
    done = uploads(env).receive(session, upload_id, CHUNK, pieces(data[CHUNK:]))
    assert done.finished
    (row,) = env.rows()
    assert env.plaintext(row.blob_key) == data
    assert env.metadata(row) == {"filename": "a.bin", "content_type": "", "size": len(data)}
    with pytest.raises(NotFound):
        uploads(env).status(session, upload_id)


def test_quota_counts_bytes_as_they_arrive(env: Env) -> None:
    """What a PATCH stored counts against the source's daily quota at once, finished or not."""
    session = session_of(env)
    quota = env.services.upload_quota
    before, _ = quota.remaining(env.source)
    upload_id, _ = uploads(env).create(session, 4 * CHUNK, "a.bin", "")
    assert quota.remaining(env.source)[0] == before  # creating sets nothing aside
    uploads(env).receive(session, upload_id, 0, pieces(os.urandom(2 * CHUNK)))
    assert quota.remaining(env.source)[0] == before - 2 * CHUNK


def test_an_upload_larger_than_the_quota_left_is_refused_at_creation(env: Env) -> None:
    """Upload-Length beyond what the source may still upload today: refused before any byte."""
    quota = env.services.upload_quota
    quota.record(env.source, quota.daily_bytes - CHUNK)
    with pytest.raises(UploadQuotaExceeded):
        uploads(env).create(session_of(env), 2 * CHUNK, "a.bin", "")


def test_expired_uploads_are_swept_with_their_ciphertext(env: Env) -> None:
    """After the expiry (24 h), the upload is gone (404) and its files are removed by the sweep."""
    session = session_of(env)
    upload_id, _ = uploads(env).create(session, 2 * CHUNK, "a.bin", "")
    uploads(env).receive(session, upload_id, 0, pieces(os.urandom(CHUNK)))
    partial = env.root / "store" / "partial"
    assert any(partial.iterdir())
    env.clock.advance(uploads(env).expiry_seconds + 1)
    assert uploads(env).sweep() == 1
    assert list(partial.iterdir()) == []
    with pytest.raises(NotFound):
        uploads(env).status(session, upload_id)


def test_termination_is_for_the_owner_only_and_removes_the_ciphertext(env: Env) -> None:
    """tus termination: another session's DELETE is 404 and removes nothing; the owner's removes
    the upload's files."""
    session = session_of(env)
    upload_id, _ = uploads(env).create(session, 2 * CHUNK, "a.bin", "")
    uploads(env).receive(session, upload_id, 0, pieces(os.urandom(CHUNK)))
    partial = env.root / "store" / "partial"
    with pytest.raises(NotFound):
        uploads(env).delete(replace(session, upload_key=os.urandom(32)), upload_id)
    assert [p.name for p in partial.iterdir()] == [upload_id]
    uploads(env).delete(session, upload_id)
    assert list(partial.iterdir()) == []


def test_the_sweep_removes_an_upload_whose_data_was_already_moved(env: Env) -> None:
    """A crash between moving the finished data into the blob store and removing the upload's
    folder leaves a state without data; the sweep removes it, so HEAD cannot report a finished
    upload that has no item."""
    session = session_of(env)
    upload_id, _ = uploads(env).create(session, CHUNK, "a.bin", "")
    partial = env.root / "store" / "partial"
    (partial / upload_id / "data").unlink()
    assert uploads(env).sweep() == 1
    assert list(partial.iterdir()) == []


@pytest.mark.postgres
def test_a_request_of_another_worker_writing_the_upload_gets_conflict(
    env: Env, fresh_postgres_url: str
) -> None:
    """Several workers (the leases in PostgreSQL): while another worker's request holds an
    upload, a PATCH here gets Conflict and writes nothing; a request here holds the lease while
    its body arrives and gives it back when it ends."""
    database = SqlDatabase(fresh_postgres_url)
    database.upgrade()
    leases = UploadLeases(database.engine)
    service = uploads(env)
    service._leases = leases  # the seam build_services sets on PostgreSQL
    try:
        session = session_of(env)
        upload_id, _ = service.create(session, 2 * CHUNK, "f.bin", "x/y")
        assert leases.claim(upload_id, "elsewhere".ljust(32, "0"))
        with pytest.raises(Conflict):
            service.receive(session, upload_id, 0, pieces(b"x" * CHUNK))
        assert service.status(session, upload_id).offset == 0
        leases.release(upload_id, "elsewhere".ljust(32, "0"))
        held: list[bool] = []
        body = pieces(b"x" * CHUNK)

        def read() -> bytes:
            held.append(not leases.claim(upload_id, "probe".ljust(32, "0")))
            return body()

        assert service.receive(session, upload_id, 0, read).offset == CHUNK
        assert held
        assert all(held)
        assert leases.claim(upload_id, "after".ljust(32, "0"))  # given back at the end
    finally:
        database.close()
