"""The seams between services and persistence: the sources' side (sources, submissions, replies,
instance recipients, source sessions, settings) and the ``Repositories`` bundle of one transaction.

Services depend only on these Protocols and records; backends are chosen by configuration, and one
shared test suite runs against every backend. Accounts' repositories are in
``interfaces_accounts.py``, the blob store's in ``blobs.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal, Protocol

from sealdrop.ids import BlobKey, RecipientId, ReplyId, SourceId, SubmissionId, UserId
from sealdrop.storage.interfaces_accounts import (
    AuditRepository,
    NotificationRepository,
    SeenRepository,
    TokenRepository,
    UserRecipientRepository,
    UserRepository,
)

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
    # The ciphertext blob's content digest (sealdrop.digests: "blake3:HEX", or "sha256:HEX" for
    # blobs stored before BLAKE3): the API's ETag. "" for rows older than the digests.
    digest: str = ""


@dataclass(frozen=True, slots=True)
class NewSubmission:
    """A submission whose blob is already durable, ready to be recorded."""

    kind: SubmissionKind
    blob_key: BlobKey
    size: int
    metadata_ciphertext: bytes | None
    digest: str = ""


@dataclass(frozen=True, slots=True)
class ReplyRecord:
    id: ReplyId
    source_id: SourceId
    seq: int  # shares the source's sequence with submissions: the conversation's order
    arrival_day: dt.date | None
    blob_key: BlobKey
    size: int  # ciphertext bytes
    digest: str = ""
    author_id: UserId | None = None  # the journalist who uploaded it


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


@dataclass(frozen=True, slots=True)
class DatedItem:
    """A submission or a reply as retention sees it."""

    id: str
    source_id: SourceId
    arrival_day: dt.date
    blob_key: BlobKey


@dataclass(frozen=True, slots=True)
class SourceActivity:
    """The stored facts that date a source's own activity (retention.idle_source_days)."""

    id: SourceId
    created_day: dt.date | None
    has_submissions: bool
    newest_submission_day: dt.date | None  # of the newest by sequence; None if it has no day

    @property
    def last_day(self) -> dt.date | None:
        """The day of the source's last activity that the server stores; None: undated."""
        if self.has_submissions:
            return self.newest_submission_day
        return self.created_day


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

    def set_reply_recipient(self, source_id: SourceId, reply_recipient: str) -> bool:
        """Replace the public key replies to the source are encrypted to (its hybrid reply key,
        at its first login after an instance switched to post-quantum keys); False: no such
        source."""
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
        digest: str = "",
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


class SettingRepository(Protocol):
    """Instance settings changed at run time by admins (they override sealdrop.toml)."""

    def all(self) -> dict[str, str]: ...

    def set(self, key: str, value: str) -> None: ...


class TriageRepository(Protocol):
    """Sources' assignees, labels and holds (``models.SourceAssignee``, ``models.SourceLabel``,
    ``models.SourceHold``). The callers bump the source's version, once per change."""

    def assignees(self, source_ids: Sequence[SourceId]) -> dict[SourceId, UserId]:
        """The assignee of each of these sources that has one, in one query."""
        ...

    def assign(self, source_id: SourceId, user_id: UserId | None) -> None:
        """Assign the source to this account, or to nobody (None)."""
        ...

    def labels(self, source_ids: Sequence[SourceId]) -> dict[SourceId, list[str]]:
        """Each source's labels, sorted case-insensitively, in one query ([] for none)."""
        ...

    def replace_labels(self, source_id: SourceId, labels: Sequence[str]) -> None:
        """Make ``labels`` (already normalised, unique ignoring case) the source's whole set."""
        ...

    def held(self, source_ids: Sequence[SourceId]) -> set[SourceId]:
        """Which of these sources are on hold (exempt from retention), in one query per 1,000."""
        ...

    def all_held(self) -> set[SourceId]:
        """Every source on hold."""
        ...

    def set_hold(self, source_id: SourceId, hold: bool) -> None:
        """Put the source on hold, or take it off."""
        ...


class RetentionRepository(Protocol):
    """What the retention rules read (see services/retention.py)."""

    def submissions_on_or_before(self, day: dt.date) -> list[DatedItem]: ...

    def replies_on_or_before(self, day: dt.date) -> list[DatedItem]: ...

    def undated_items(self) -> int:
        """How many submissions and replies have no arrival day."""
        ...

    def activity(self, source_ids: Sequence[SourceId] | None = None) -> list[SourceActivity]:
        """Every source's (or these sources') activity facts."""
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

    @property
    def triage(self) -> TriageRepository: ...

    @property
    def notifications(self) -> NotificationRepository: ...

    @property
    def retention(self) -> RetentionRepository: ...


class Database(Protocol):
    def transaction(self, *, read_only: bool = False) -> AbstractContextManager[Repositories]:
        """One unit of work: committed when the block ends normally, rolled back on error.

        ``read_only``: the block only reads. On SQLite it then takes no write lock, so it
        neither waits for nor holds up writers (WAL); a write in it fails.
        Connection failures and lock timeouts surface as ``DatabaseUnavailable``.
        """
        ...

    def close(self) -> None: ...
