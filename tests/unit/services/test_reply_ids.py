"""ReplyService.delete with reply ids a client made up (the source route passes the URL's path
segment straight in): on every backend the answer is NotFound, never a database error."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealdrop.crypto import envelope
from sealdrop.crypto.keys import generate_identity, recipient_of
from sealdrop.errors import NotFound
from sealdrop.ids import SourceId
from sealdrop.services.replies import ReplyService
from sealdrop.services.sessions import SessionService
from sealdrop.storage.blobs_fs import FilesystemBlobStore
from sealdrop.storage.database import SqlDatabase
from sealdrop.testing import FakeClock


@pytest.mark.parametrize(
    "reply_id",
    ["\x00", "abc\x00def", "0" * 31 + "\x00", "x" * 100_000, "é", "\ud800", "", "%00"],
    ids=["nul", "nul-inside", "id-with-nul", "100k", "non-ascii", "surrogate", "empty", "escape"],
)
def test_deleting_a_made_up_reply_id_is_not_found_on_every_backend(
    database: SqlDatabase, tmp_path: Path, reply_id: str
) -> None:
    """Ids with NUL bytes (which PostgreSQL text cannot hold), lone surrogates (which UTF-8
    cannot), 100,000 characters or nothing at all get NotFound, like any unknown id, and the
    source's real reply stays."""
    clock = FakeClock()
    with database.transaction() as repos:
        source_id = SourceId(
            repos.sources.add(b"l" * 32, "age1placeholder", None, "test source", None).id
        )
    identity = generate_identity()
    sessions = SessionService(database, clock, 3600, 14400)
    session = sessions.resolve(sessions.open(source_id, identity))
    replies = ReplyService(database, FilesystemBlobStore(tmp_path / "store"), clock, "day", 10**6)
    kept = replies.store(source_id, envelope.encrypt_bytes(b"reply", [recipient_of(identity)]))
    with pytest.raises(NotFound):
        replies.delete(session, reply_id)
    assert [shown.id for shown in replies.for_session(session)] == [kept.id]
