"""Inbox.add_reply on every backend: the reply row, its author's seen mark and its audit entry
are written in one transaction after the blob is stored, so a failure in any of them leaves
none of them, and no blob."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from sealdrop.crypto import envelope
from sealdrop.crypto.keys import generate_identity, recipient_of
from sealdrop.errors import NotFound
from sealdrop.services.accounts import UserView
from sealdrop.services.audit import AuditTrail
from sealdrop.services.auth import Principal
from sealdrop.services.inbox import Inbox
from sealdrop.services.replies import ReplyService
from sealdrop.storage.blobs_fs import FilesystemBlobStore
from sealdrop.storage.database import SqlDatabase
from sealdrop.storage.interfaces import Repositories, SourceRecord
from sealdrop.testing import FakeClock


class AuditFault(Exception):
    """The fault injected into the audit insert."""


class FailingAuditTrail(AuditTrail):
    """An audit trail whose insert fails, as a full disk or a lost connection would."""

    def record(
        self, repos: Repositories, actor: str, action: str, source_pseudonym: str | None
    ) -> None:
        raise AuditFault()


def setup(
    database: SqlDatabase, tmp_path: Path, audit: AuditTrail
) -> tuple[Inbox, FilesystemBlobStore, Principal, SourceRecord, bytes]:
    clock = FakeClock()
    blobs = FilesystemBlobStore(tmp_path / "store")
    replies = ReplyService(database, blobs, clock, "day", 10**6)
    with database.transaction() as repos:
        user = repos.users.add("ann", "$argon2id$hash", "", "journalist")
        # Not pending (pending_since None): a source that has sent something.
        source = repos.sources.add(b"l" * 32, "age1placeholder", None, "calm lynx", None)
    ciphertext = envelope.encrypt_bytes(b"reply", [recipient_of(generate_identity())])
    inbox = Inbox(database, blobs, replies, audit)
    return inbox, blobs, Principal(UserView.of(user), b"token-hash"), source, ciphertext


def test_a_failing_audit_entry_leaves_no_reply_no_seen_mark_and_no_blob(
    database: SqlDatabase, tmp_path: Path
) -> None:
    """The audit insert raising after the row and the seen mark were written: afterwards there
    is no reply row, no seen mark, no version bump, and the stored blob is deleted."""
    clock = FakeClock()
    inbox, blobs, principal, source, ciphertext = setup(
        database, tmp_path, FailingAuditTrail(database, clock)
    )

    with pytest.raises(AuditFault):
        inbox.add_reply(principal, source.id, ciphertext)

    with database.transaction() as repos:
        assert repos.replies.for_source(source.id) == []
        assert repos.replies.blob_keys() == set()
        assert repos.audit.page(before_id=None, limit=10) == []
        after = repos.sources.get(source.id)
    assert after is not None
    assert after.version == source.version
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM seen")).scalar_one() == 0
    assert list(blobs.keys()) == []
    assert list((tmp_path / "store").rglob("staging/*")) == []


def test_a_reply_is_stored_with_its_seen_mark_and_audit_entry(
    database: SqlDatabase, tmp_path: Path
) -> None:
    """Without a fault, the row, the author's seen mark, the audit entry and the blob are all
    there; a reply to a source that does not exist leaves no blob either."""
    clock = FakeClock()
    inbox, blobs, principal, source, ciphertext = setup(
        database, tmp_path, AuditTrail(database, clock)
    )

    view = inbox.add_reply(principal, source.id, ciphertext)

    assert view.seen is True
    with database.transaction() as repos:
        [reply] = repos.replies.for_source(source.id)
        assert reply.id == view.id
        assert repos.seen.seen_among(principal.user.id, [reply.id]) == {reply.id}
        [entry] = repos.audit.page(before_id=None, limit=10)
        assert (entry.username, entry.action, entry.source_pseudonym) == (
            "ann",
            "reply.create",
            "calm lynx",
        )
    assert list(blobs.keys()) == [reply.blob_key]

    with pytest.raises(NotFound):
        inbox.add_reply(principal, "0" * 32, ciphertext)
    assert list(blobs.keys()) == [reply.blob_key]
