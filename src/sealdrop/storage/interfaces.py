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

from sealdrop.ids import BlobKey, RecipientId, ReplyId, SourceId, SubmissionId, UserId

SubmissionKind = Literal["message", "file"]
Role = Literal["admin", "journalist"]


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
    starred: bool = False
    # A change counter, not a time: bumped (from one instance-wide counter) whenever the source
    # gets a submission or a reply, is starred or unstarred. Readers sync "changes since N".
    version: int = 0
    # Random bytes replaced at every codename login; a session whose sealed copy differs is
    # refused (b"" for a source older than the column that has not logged in since).
    session_epoch: bytes = b""


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
    sha256: str = ""  # hex SHA-256 of the ciphertext blob (the API's ETag)


@dataclass(frozen=True, slots=True)
class NewSubmission:
    """A submission whose blob is already durable, ready to be recorded."""

    kind: SubmissionKind
    blob_key: BlobKey
    size: int
    metadata_ciphertext: bytes | None
    sha256: str = ""


@dataclass(frozen=True, slots=True)
class ReplyRecord:
    id: ReplyId
    source_id: SourceId
    seq: int  # shares the source's sequence with submissions: the conversation's order
    arrival_day: dt.date | None
    blob_key: BlobKey
    size: int  # ciphertext bytes
    sha256: str = ""
    author_id: UserId | None = None  # the journalist who uploaded it


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: UserId
    username: str  # stored as services.accounts normalises it (lower case); unique
    passphrase_hash: str  # Argon2id (PHC string)
    totp_secret: str  # base32; empty until enrolled
    totp_last_step: int | None  # the last accepted TOTP time step: a code is usable once
    role: Role
    disabled: bool
    failed_logins: int
    locked_until: int | None  # epoch seconds; login refused before it (back-off)


@dataclass(frozen=True, slots=True)
class UserRecipientRecord:
    id: RecipientId
    user_id: UserId
    public_key: str  # age1… of one of the journalist's reader devices
    name: str


@dataclass(frozen=True, slots=True)
class TokenRecord:
    token_hash: bytes  # SHA-256 of the bearer token; the token itself is never stored
    user_id: UserId
    created_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    day: dt.date
    username: str  # a snapshot: the log stays readable after a user is renamed or removed
    action: str
    source_pseudonym: str | None


@dataclass(frozen=True, slots=True)
class RecipientRecord:
    id: RecipientId
    public_key: str  # age1…
    name: str


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A source session as stored: it names no source (see ``models.SourceSession``)."""

    id_hash: bytes  # SHA-256 of the random session id held only by the cookie
    # The source id, its session epoch and the reply identity, sealed under the key held only by
    # the cookie.
    sealed_identity: bytes
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
        (their replies go with them; their sessions stop resolving); return how many."""
        ...

    def delete(self, source_id: SourceId) -> bool: ...

    def page(
        self, *, after_version: int, limit: int, starred: bool | None = None
    ) -> Sequence[SourceRecord]:
        """Sources with ``version > after_version`` that have ever submitted (not pending), by
        version, at most ``limit``. Versions are unique, so the last version of a page is the
        cursor of the next: stable under concurrent inserts and changes (a source that changes
        while a reader pages moves to the end instead of being skipped or repeated)."""
        ...

    def bump_version(self, source_id: SourceId) -> int:
        """Give the source the next value of the instance-wide change counter; return it."""
        ...

    def set_starred(self, source_id: SourceId, starred: bool) -> bool: ...

    def get(self, source_id: SourceId) -> SourceRecord | None: ...

    def by_lookup_id(self, lookup_id: bytes) -> SourceRecord | None: ...

    def reserve_sequence(self, source_id: SourceId, count: int) -> int:
        """Atomically reserve ``count`` consecutive sequence numbers; return the first."""
        ...

    def session_epoch(self, source_id: SourceId) -> bytes | None:
        """The source's current session epoch (b"" if it has none yet); None: no such source."""
        ...

    def renew_session_epoch(self, source_id: SourceId) -> bytes | None:
        """Replace the source's session epoch with new random bytes and return them, so that
        every session opened before no longer resolves; None: no such source."""
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

    def delete(self, submission_id: SubmissionId) -> bool: ...

    def count_by_source(self, source_ids: Sequence[SourceId]) -> dict[SourceId, int]:
        """How many submissions each source has, in one query (0 for none)."""
        ...

    def existing(self, ids: Sequence[str]) -> set[str]:
        """Which of these ids are submissions."""
        ...


class ReplyRepository(Protocol):
    def add(
        self,
        source_id: SourceId,
        seq: int,
        arrival_day: dt.date | None,
        blob_key: BlobKey,
        size: int,
        sha256: str = "",
        author_id: UserId | None = None,
    ) -> ReplyRecord: ...

    def get(self, reply_id: ReplyId) -> ReplyRecord | None: ...

    def for_source(self, source_id: SourceId) -> Sequence[ReplyRecord]:
        """A source's replies in sequence order."""
        ...

    def delete(self, reply_id: ReplyId) -> bool: ...

    def existing(self, ids: Sequence[str]) -> set[str]:
        """Which of these ids are replies."""
        ...

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

    def purge(self, idle_before: int, created_before: int) -> int:
        """Delete sessions idle since before ``idle_before`` or begun before ``created_before``."""
        ...


class UserRepository(Protocol):
    def add(self, username: str, passphrase_hash: str, totp_secret: str, role: Role) -> UserRecord:
        """Insert a user under a name already normalised (``services.accounts``: lower case);
        a duplicate username raises StorageError."""
        ...

    def get(self, user_id: UserId) -> UserRecord | None: ...

    def by_username(self, username: str) -> UserRecord | None:
        """Exact lookup of a name already normalised by ``services.accounts``."""
        ...

    def list(self) -> Sequence[UserRecord]: ...

    def set_disabled(self, user_id: UserId, disabled: bool) -> bool: ...

    def set_totp_secret(self, user_id: UserId, secret: str) -> bool:
        """Enrol (or reset) TOTP: new secret, last accepted step forgotten."""
        ...

    def use_totp_step(self, user_id: UserId, step: int) -> bool:
        """Atomically accept a TOTP time step if it is later than the last accepted one; False
        means the code was already used (a replay), even under concurrent requests."""
        ...

    def record_failure(self, user_id: UserId, locked_until: int | None) -> int:
        """Count a failed login; set the back-off deadline; return the new failure count."""
        ...

    def set_locked_until(self, user_id: UserId, locked_until: int | None) -> None: ...

    def clear_failures(self, user_id: UserId) -> None: ...

    def set_passphrase_hash(self, user_id: UserId, passphrase_hash: str) -> bool: ...


class UserRecipientRepository(Protocol):
    def add(self, user_id: UserId, public_key: str, name: str) -> UserRecipientRecord:
        """A duplicate public key (for any user) raises StorageError."""
        ...

    def for_user(self, user_id: UserId) -> Sequence[UserRecipientRecord]: ...

    def remove(self, recipient_id: RecipientId) -> bool: ...

    def active_public_keys(self) -> list[str]:
        """The keys of every user who is not disabled: who new submissions are encrypted to."""
        ...


class TokenRepository(Protocol):
    def add(self, record: TokenRecord) -> None: ...

    def get(self, token_hash: bytes) -> TokenRecord | None: ...

    def delete(self, token_hash: bytes) -> bool: ...

    def delete_for_user(self, user_id: UserId) -> int: ...

    def purge_expired(self, now: int) -> int: ...


class SeenRepository(Protocol):
    def mark(self, user_id: UserId, item_ids: Sequence[str]) -> None:
        """Record that the user has seen these submissions/replies (idempotent)."""
        ...

    def seen_among(self, user_id: UserId, item_ids: Sequence[str]) -> set[str]: ...

    def unread_counts(self, user_id: UserId, source_ids: Sequence[SourceId]) -> dict[SourceId, int]:
        """Per source: submissions the user has not marked seen (one query for all sources)."""
        ...


class AuditRepository(Protocol):
    def add(
        self, day: dt.date, username: str, action: str, source_pseudonym: str | None
    ) -> None: ...

    def page(self, *, before_id: int | None, limit: int) -> Sequence[AuditRecord]:
        """Newest first."""
        ...


class SettingRepository(Protocol):
    """Instance settings changed at run time by admins (they override sealdrop.toml)."""

    def all(self) -> dict[str, str]: ...

    def set(self, key: str, value: str) -> None: ...


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

    @property
    def users(self) -> UserRepository: ...

    @property
    def user_recipients(self) -> UserRecipientRepository: ...

    @property
    def tokens(self) -> TokenRepository: ...

    @property
    def seen(self) -> SeenRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    @property
    def settings(self) -> SettingRepository: ...


class Database(Protocol):
    def transaction(self, *, read_only: bool = False) -> AbstractContextManager[Repositories]:
        """One unit of work: committed when the block ends normally, rolled back on error.

        ``read_only``: the block only reads. On SQLite it then takes no write lock, so it
        neither waits for nor holds up writers (WAL); a write in it fails.
        Connection failures and lock timeouts surface as ``DatabaseUnavailable``.
        """
        ...

    def close(self) -> None: ...


class StagedBlob(Protocol):
    """A blob being written. Nothing is visible until ``commit``; leaving the ``with`` block
    without committing discards it."""

    def write(self, data: bytes) -> int: ...

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of everything written so far (computed while writing)."""
        ...

    def flush(self) -> None: ...

    def close(self) -> None:
        """Writing is done: make it durable (fsync) and release what writing holds (a file
        descriptor), before ``commit``. ``write`` is refused afterwards; ``commit`` and
        ``discard`` still work. A submission closes each part once it is written, so what stays
        held is bounded by the uploads in flight, not by how many parts one body carries."""
        ...

    def commit(self) -> tuple[BlobKey, int]:
        """``close`` if not closed yet (fsync), atomically move into place, fsync the directory;
        return (key, size)."""
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
