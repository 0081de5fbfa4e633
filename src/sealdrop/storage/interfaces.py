"""The seams between services and persistence.

Services depend only on these Protocols and records; backends are chosen by configuration, and one
shared test suite runs against every backend.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from sealdrop.ids import BlobKey, RecipientId, ReplyId, SourceId, SubmissionId

SubmissionKind = Literal["message", "file"]


@dataclass(frozen=True, slots=True)
class SourceRecord:
    id: SourceId
    lookup_id: bytes  # HKDF output from the codename; unique
    reply_recipient: str  # age1… public key of the source's reply identity
    created_day: dt.date | None  # None when arrival_granularity = "none"
    pseudonym: str  # journalist-facing name, "adjective noun"; not secret, not unique
    # Epoch seconds of creation, kept only until the first submission (then None), so that
    # sources that never sent anything can be purged after 24 h without keeping the creation
    # time of any source that did.
    pending_since: int | None


@dataclass(frozen=True, slots=True)
class SubmissionRecord:
    id: SubmissionId
    source_id: SourceId
    seq: int  # per-source order, 1, 2, 3 …; replaces timestamps
    kind: SubmissionKind
    arrival_day: dt.date | None
    blob_key: BlobKey
    size: int  # ciphertext bytes
    metadata_ciphertext: bytes | None  # age file holding JSON (file name, type, size); files only


@dataclass(frozen=True, slots=True)
class NewSubmission:
    """A submission whose blob is already durable, ready to be recorded."""

    kind: SubmissionKind
    blob_key: BlobKey
    size: int
    metadata_ciphertext: bytes | None


@dataclass(frozen=True, slots=True)
class ReplyRecord:
    id: ReplyId
    source_id: SourceId
    seq: int  # shares the source's sequence with submissions: the conversation's order
    arrival_day: dt.date | None
    blob_key: BlobKey
    size: int  # ciphertext bytes


@dataclass(frozen=True, slots=True)
class RecipientRecord:
    id: RecipientId
    public_key: str  # age1…
    name: str


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id_hash: bytes  # SHA-256 of the random session id held only by the cookie
    source_id: SourceId
    sealed_identity: bytes  # reply identity sealed under the key held only by the cookie
    created_at: int  # epoch seconds; sessions are short-lived and deleted on logout/expiry
    last_seen_at: int
    confirmed: bool = True  # False from "start" until the source has typed the codename back


class SourceRepository(Protocol):
    def add(
        self,
        lookup_id: bytes,
        reply_recipient: str,
        created_day: dt.date | None,
        pseudonym: str,
        pending_since: int | None,
    ) -> SourceRecord:
        """Insert a source. Raises ``sealdrop.errors.StorageError`` on a duplicate lookup id."""
        ...

    def mark_active(self, source_id: SourceId) -> None:
        """Forget ``pending_since`` (called with the first submission)."""
        ...

    def purge_pending(self, created_before: int) -> int:
        """Delete sources still pending since before ``created_before`` that have no submission
        (their sessions and replies go with them); return how many."""
        ...

    def delete(self, source_id: SourceId) -> bool: ...

    def get(self, source_id: SourceId) -> SourceRecord | None: ...

    def by_lookup_id(self, lookup_id: bytes) -> SourceRecord | None: ...

    def reserve_sequence(self, source_id: SourceId, count: int) -> int:
        """Atomically reserve ``count`` consecutive sequence numbers; return the first."""
        ...


class SubmissionRepository(Protocol):
    def add(
        self, source_id: SourceId, seq: int, arrival_day: dt.date | None, new: NewSubmission
    ) -> SubmissionRecord: ...

    def get(self, submission_id: SubmissionId) -> SubmissionRecord | None: ...

    def for_source(self, source_id: SourceId) -> Sequence[SubmissionRecord]:
        """A source's submissions in sequence order."""
        ...

    def all(self) -> Iterator[SubmissionRecord]:
        """Every submission, ordered by source then sequence."""
        ...

    def blob_keys(self) -> set[BlobKey]:
        """The keys of every blob a row refers to (for orphan sweeping)."""
        ...


class ReplyRepository(Protocol):
    def add(
        self,
        source_id: SourceId,
        seq: int,
        arrival_day: dt.date | None,
        blob_key: BlobKey,
        size: int,
    ) -> ReplyRecord: ...

    def get(self, reply_id: ReplyId) -> ReplyRecord | None: ...

    def for_source(self, source_id: SourceId) -> Sequence[ReplyRecord]:
        """A source's replies in sequence order."""
        ...

    def delete(self, reply_id: ReplyId) -> bool: ...

    def blob_keys(self) -> set[BlobKey]: ...


class RecipientRepository(Protocol):
    def add(self, public_key: str, name: str) -> RecipientRecord:
        """Insert an organisation recipient; a duplicate public key raises StorageError."""
        ...

    def list(self) -> Sequence[RecipientRecord]: ...

    def remove(self, recipient_id: RecipientId) -> bool: ...


class SessionRepository(Protocol):
    def add(self, record: SessionRecord) -> None: ...

    def get(self, id_hash: bytes) -> SessionRecord | None: ...

    def touch(self, id_hash: bytes, now: int) -> None: ...

    def confirm(self, id_hash: bytes) -> None:
        """Record that the source typed its codename back."""
        ...

    def delete(self, id_hash: bytes) -> None: ...

    def delete_for_source(self, source_id: SourceId) -> None: ...

    def purge(self, idle_before: int, created_before: int) -> int:
        """Delete sessions idle since before ``idle_before`` or begun before ``created_before``."""
        ...


class Repositories(Protocol):
    """All repositories bound to one transaction."""

    @property
    def sources(self) -> SourceRepository: ...

    @property
    def submissions(self) -> SubmissionRepository: ...

    @property
    def replies(self) -> ReplyRepository: ...

    @property
    def recipients(self) -> RecipientRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...


class Database(Protocol):
    def transaction(self) -> AbstractContextManager[Repositories]:
        """One unit of work: committed when the block ends normally, rolled back on error.

        Connection failures and lock timeouts surface as ``DatabaseUnavailable``.
        """
        ...

    def close(self) -> None: ...


class StagedBlob(Protocol):
    """A blob being written. Nothing is visible until ``commit``; leaving the ``with`` block
    without committing discards it."""

    def write(self, data: bytes) -> int: ...

    def flush(self) -> None: ...

    def commit(self) -> tuple[BlobKey, int]:
        """fsync, atomically move into place, fsync the directory; return (key, size)."""
        ...

    def discard(self) -> None: ...

    def __enter__(self) -> StagedBlob: ...

    def __exit__(self, *exc: object) -> None: ...


class BlobStore(Protocol):
    def stage(self) -> StagedBlob: ...

    def open(self, key: BlobKey) -> BinaryIO:
        """Open a committed blob for reading. Raises BlobNotFound."""
        ...

    def size(self, key: BlobKey) -> int: ...

    def local_path(self, key: BlobKey) -> Path | None:
        """Where the blob lives on this machine's disk, if it does (for operators and tests)."""
        ...

    def delete(self, key: BlobKey) -> None: ...

    def keys(self) -> Iterator[BlobKey]: ...

    def clean_staging(self) -> int:
        """Remove every staged, uncommitted blob (at startup); return how many."""
        ...
