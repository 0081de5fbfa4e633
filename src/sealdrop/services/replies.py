"""Replies from the organisation to a source.

A reply arrives already encrypted (age) on the journalist's machine, to the source's reply key
and the journalists' own keys; the server only checks its shape and size and stores it. The
source's page decrypts it with the reply identity that the session holds, sealed, in the database
and whose key only the cookie carries (invariant 4).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sealdrop.crypto import envelope
from sealdrop.errors import CryptoError, InvalidReply, NotFound
from sealdrop.ids import BlobKey, ReplyId, SourceId, UserId, is_id
from sealdrop.services.clock import Clock, Granularity, arrival_day
from sealdrop.services.sessions import SourceSession
from sealdrop.storage.blobs import BlobStore
from sealdrop.storage.interfaces import Database, ReplyRecord, Repositories


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """A reply's ciphertext, committed to the blob store but not yet recorded."""

    key: BlobKey
    size: int
    digest: str


@dataclass(frozen=True, slots=True)
class ShownReply:
    id: ReplyId
    day: dt.date | None
    text: str | None  # None: this reply could not be decrypted with the source's key


class ReplyService:
    def __init__(
        self,
        database: Database,
        blobs: BlobStore,
        clock: Clock,
        granularity: Granularity,
        max_bytes: int,
    ) -> None:
        self._db = database
        self._blobs = blobs
        self._clock = clock
        self._granularity = granularity
        self._max_bytes = max_bytes

    def store(
        self, source_id: SourceId, ciphertext: bytes, author_id: UserId | None = None
    ) -> ReplyRecord:
        """Store a reply given as an age file. Raises InvalidReply, NotFound (no such source)."""
        with self.staged(ciphertext) as blob, self._db.transaction() as repos:
            if repos.sources.get(source_id) is None:
                raise NotFound("no such source")
            return self.add(repos, source_id, blob, author_id)

    @contextmanager
    def staged(self, ciphertext: bytes) -> Iterator[StoredBlob]:
        """Check a reply's size and shape, write it to the blob store, and delete it again if
        the block raises: open the transaction that records it inside this block, so that a
        reply whose row (or anything written with it) fails leaves no blob behind.

        Raises InvalidReply before anything is written.
        """
        if len(ciphertext) > self._max_bytes:
            raise InvalidReply(f"reply larger than {self._max_bytes} bytes")
        problem = envelope.check_age_structure(ciphertext)
        if problem is not None:
            raise InvalidReply(problem)
        with self._blobs.stage() as staging:
            staging.write(ciphertext)
            digest = staging.digest
            key, size = staging.commit()
        try:
            yield StoredBlob(key, size, digest)
        except BaseException:
            self._blobs.delete(key)
            raise

    def add(
        self,
        repos: Repositories,
        source_id: SourceId,
        blob: StoredBlob,
        author_id: UserId | None = None,
    ) -> ReplyRecord:
        """Record a reply whose blob is durable, in the caller's transaction (which has checked
        that the source exists)."""
        seq = repos.sources.reserve_sequence(source_id, 1)
        repos.sources.bump_version(source_id)
        day = arrival_day(self._clock, self._granularity)
        return repos.replies.add(source_id, seq, day, blob.key, blob.size, blob.digest, author_id)

    def for_session(self, session: SourceSession) -> list[ShownReply]:
        """The session's source's replies, decrypted, in order."""
        with self._db.transaction(read_only=True) as repos:
            records = list(repos.replies.for_source(session.source_id))
        return [self._decrypt(record, session) for record in records]

    def delete(self, session: SourceSession, reply_id: str) -> None:
        """Delete one of the session's own replies. Another source's reply, a deleted one and a
        made-up id get the same NotFound."""
        with self._db.transaction() as repos:
            # The id comes from the URL: anything that is not an id's shape (NUL bytes, which
            # PostgreSQL refuses with an error, megabytes) never reaches the database.
            record = repos.replies.get(ReplyId(reply_id)) if is_id(reply_id) else None
            if record is None or record.source_id != session.source_id:
                raise NotFound("no such reply")
            repos.replies.delete(record.id)
            # Readers syncing by version learn that the conversation changed.
            repos.sources.bump_version(record.source_id)
        self._blobs.delete(record.blob_key)

    def _decrypt(self, record: ReplyRecord, session: SourceSession) -> ShownReply:
        out = io.BytesIO()
        try:
            with self._blobs.open(record.blob_key) as blob:
                envelope.decrypt(blob, out, session.reply_identities)
            text: str | None = out.getvalue().decode("utf-8")
        except (CryptoError, UnicodeDecodeError):
            text = None
        return ShownReply(record.id, record.arrival_day, text)
