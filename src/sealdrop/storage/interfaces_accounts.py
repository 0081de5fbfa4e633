"""The seams between services and persistence for accounts: journalists and admins, their device
keys, API tokens, what each has seen, and the audit log (``interfaces.py`` has the sources' side and
the ``Repositories`` bundle; ``repositories_accounts.py`` implements these).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from sealdrop.ids import RecipientId, SourceId, UserId

Role = Literal["admin", "journalist"]


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
class NotificationTargetRecord:
    user_id: UserId
    channel: Literal["email", "apprise"]
    address: str  # an e-mail address or an Apprise URL (may hold a token): never log it
    language: str
    watermark: int  # the submission_activity value the last notice covered
    last_slot: int | None  # the last scheduled time (its number) a notice was claimed at


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


class NotificationRepository(Protocol):
    def get(self, user_id: UserId) -> NotificationTargetRecord | None: ...

    def set(
        self, user_id: UserId, channel: Literal["email", "apprise"], address: str, language: str
    ) -> None:
        """Insert or replace where the account's notices go. A new row starts at the current
        activity (no notice for what arrived before it); an existing one keeps its watermark
        and last slot, so a change of address loses no pending notice."""
        ...

    def remove(self, user_id: UserId) -> bool: ...

    def note_activity(self) -> int:
        """Advance the submission_activity counter (in the submission's transaction)."""
        ...

    def activity(self) -> int:
        """The current submission_activity value."""
        ...

    def claim_due(self, slot: int) -> Sequence[NotificationTargetRecord]:
        """The targets of enabled accounts not yet claimed for ``slot``, each now marked as
        claimed for it (so that no account gets two notices for one scheduled time)."""
        ...

    def advance_watermark(self, user_id: UserId, watermark: int) -> None:
        """After a delivered notice: it covered activity up to ``watermark``."""
        ...
