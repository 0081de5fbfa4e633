"""SQLAlchemy repositories for journalist accounts and what hangs off them: users, their reader
keys, API tokens, seen marks, the audit log, and instance settings.

Like ``repositories``, every method returns frozen records, never ORM objects. Deleting a user
row cascades in the database to its keys, tokens and seen marks; replies keep their blob and lose
only their author (ON DELETE SET NULL).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import cast

from sqlalchemy import delete, exists, false, func, or_, select, update
from sqlalchemy.orm import Session

from sealdrop.errors import StorageError
from sealdrop.ids import RecipientId, SourceId, UserId, new_id
from sealdrop.storage.interfaces_accounts import (
    AuditRecord,
    Role,
    TokenRecord,
    UserRecipientRecord,
    UserRecord,
)
from sealdrop.storage.models import (
    ApiToken,
    AuditEntry,
    InstanceSetting,
    Seen,
    Submission,
    User,
    UserRecipient,
)
from sealdrop.storage.sqlerrors import translated_errors
from sealdrop.storage.sqlhelpers import (
    chunks,
    execute_dml,
    flush,
    insert_ignoring_duplicates,
    upsert,
)


def _user(row: User) -> UserRecord:
    return UserRecord(
        id=UserId(row.id),
        username=row.username,
        passphrase_hash=row.passphrase_hash,
        totp_secret=row.totp_secret,
        totp_last_step=row.totp_last_step,
        role=cast(Role, row.role),
        disabled=row.disabled,
        failed_logins=row.failed_logins,
        locked_until=row.locked_until,
    )


def _user_recipient(row: UserRecipient) -> UserRecipientRecord:
    return UserRecipientRecord(
        id=RecipientId(row.id),
        user_id=UserId(row.user_id),
        public_key=row.public_key,
        name=row.name,
    )


def _token(row: ApiToken) -> TokenRecord:
    return TokenRecord(
        token_hash=row.token_hash,
        user_id=UserId(row.user_id),
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


_INT32_MAX = 2**31 - 1


class SqlUserRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, username: str, passphrase_hash: str, totp_secret: str, role: Role) -> UserRecord:
        row = User(
            id=new_id(),
            username=username,
            passphrase_hash=passphrase_hash,
            totp_secret=totp_secret,
            totp_last_step=None,
            role=role,
            disabled=False,
            failed_logins=0,
            locked_until=None,
        )
        self._session.add(row)
        flush(self._session)
        return _user(row)

    def get(self, user_id: UserId) -> UserRecord | None:
        row = self._session.get(User, user_id)
        return None if row is None else _user(row)

    def by_username(self, username: str) -> UserRecord | None:
        # An exact match: the name is already in its stored form (services.accounts owns the
        # rule, so that one rule serves every entry point).
        stmt = select(User).where(User.username == username)
        row = self._session.scalars(stmt).first()
        return None if row is None else _user(row)

    def list(self) -> Sequence[UserRecord]:
        return [_user(row) for row in self._session.scalars(select(User).order_by(User.username))]

    def set_disabled(self, user_id: UserId, disabled: bool) -> bool:
        stmt = update(User).where(User.id == user_id).values(disabled=disabled)
        return execute_dml(self._session, stmt) > 0

    def set_totp_secret(self, user_id: UserId, secret: str) -> bool:
        stmt = (
            update(User).where(User.id == user_id).values(totp_secret=secret, totp_last_step=None)
        )
        return execute_dml(self._session, stmt) > 0

    def use_totp_step(self, user_id: UserId, step: int) -> bool:
        # One conditional UPDATE, and its row count decides. A read-then-write would let two
        # concurrent logins with the same intercepted code both pass the check. Here the second
        # waits for the first's row lock (PostgreSQL re-evaluates the WHERE on the committed row;
        # SQLite serialises writers) and then matches nothing: a code is accepted once.
        stmt = (
            update(User)
            .where(
                User.id == user_id,
                or_(User.totp_last_step.is_(None), User.totp_last_step < step),
            )
            .values(totp_last_step=step)
            # "fetch": the session's copy of the row follows the database's decision, not a
            # re-evaluation of the WHERE against a possibly stale copy in Python.
            .execution_options(synchronize_session="fetch")
        )
        return execute_dml(self._session, stmt) == 1

    def record_failure(self, user_id: UserId, locked_until: int | None) -> int:
        # Incremented in the database, not read-modify-write: concurrent failed guesses all count.
        stmt = (
            update(User)
            .where(User.id == user_id)
            .values(failed_logins=User.failed_logins + 1, locked_until=locked_until)
            .returning(User.failed_logins)
        )
        with translated_errors():
            count = self._session.execute(stmt).scalar_one_or_none()
        if count is None:
            raise StorageError("no such user")
        return count

    def set_locked_until(self, user_id: UserId, locked_until: int | None) -> None:
        stmt = update(User).where(User.id == user_id).values(locked_until=locked_until)
        execute_dml(self._session, stmt)

    def clear_failures(self, user_id: UserId) -> None:
        stmt = update(User).where(User.id == user_id).values(failed_logins=0, locked_until=None)
        execute_dml(self._session, stmt)

    def set_passphrase_hash(self, user_id: UserId, passphrase_hash: str) -> bool:
        stmt = update(User).where(User.id == user_id).values(passphrase_hash=passphrase_hash)
        return execute_dml(self._session, stmt) > 0


class SqlUserRecipientRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, user_id: UserId, public_key: str, name: str) -> UserRecipientRecord:
        row = UserRecipient(id=new_id(), user_id=user_id, public_key=public_key, name=name)
        self._session.add(row)
        flush(self._session)
        return _user_recipient(row)

    def for_user(self, user_id: UserId) -> Sequence[UserRecipientRecord]:
        stmt = (
            select(UserRecipient)
            .where(UserRecipient.user_id == user_id)
            .order_by(UserRecipient.name, UserRecipient.id)
        )
        return [_user_recipient(row) for row in self._session.scalars(stmt)]

    def remove(self, recipient_id: RecipientId) -> bool:
        stmt = delete(UserRecipient).where(UserRecipient.id == recipient_id)
        return execute_dml(self._session, stmt) > 0

    def active_public_keys(self) -> list[str]:
        # A disabled journalist's devices stop receiving new submissions at once: a lost or
        # seized laptop is cut off by disabling its owner, before anyone removes its keys.
        stmt = (
            select(UserRecipient.public_key)
            .join(User, User.id == UserRecipient.user_id)
            .where(User.disabled == false())
            .order_by(UserRecipient.public_key)
        )
        return list(self._session.scalars(stmt))


class SqlTokenRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, record: TokenRecord) -> None:
        self._session.add(
            ApiToken(
                token_hash=record.token_hash,
                user_id=record.user_id,
                created_at=record.created_at,
                expires_at=record.expires_at,
            )
        )
        flush(self._session)

    def get(self, token_hash: bytes) -> TokenRecord | None:
        """The token, expired or not: checking ``expires_at`` is the caller's job."""
        row = self._session.get(ApiToken, token_hash)
        return None if row is None else _token(row)

    def delete(self, token_hash: bytes) -> bool:
        stmt = delete(ApiToken).where(ApiToken.token_hash == token_hash)
        return execute_dml(self._session, stmt) > 0

    def delete_for_user(self, user_id: UserId) -> int:
        return execute_dml(self._session, delete(ApiToken).where(ApiToken.user_id == user_id))

    def purge_expired(self, now: int) -> int:
        """Delete tokens with ``expires_at <= now`` (a token is invalid from its expiry on)."""
        return execute_dml(self._session, delete(ApiToken).where(ApiToken.expires_at <= now))


class SqlSeenRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def mark(self, user_id: UserId, item_ids: Sequence[str]) -> None:
        unique = sorted(set(item_ids))
        rows = [{"user_id": user_id, "item_id": item_id} for item_id in unique]
        insert_ignoring_duplicates(self._session, Seen, rows)

    def seen_among(self, user_id: UserId, item_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunks(sorted(set(item_ids))):
            stmt = select(Seen.item_id).where(Seen.user_id == user_id, Seen.item_id.in_(chunk))
            found.update(self._session.scalars(stmt))
        return found

    def unread_counts(self, user_id: UserId, source_ids: Sequence[SourceId]) -> dict[SourceId, int]:
        """Every requested source, 0 when all is read (or the source does not exist). One query
        per 1,000 sources: a single GROUP BY with a NOT EXISTS on the seen primary key."""
        counts = dict.fromkeys(source_ids, 0)
        unseen = ~exists().where(Seen.user_id == user_id, Seen.item_id == Submission.id)
        for chunk in chunks(sorted(set(source_ids))):
            stmt = (
                select(Submission.source_id, func.count())
                .where(Submission.source_id.in_(chunk), unseen)
                .group_by(Submission.source_id)
            )
            for source_id, count in self._session.execute(stmt):
                counts[SourceId(source_id)] = count
        return counts


class SqlAuditRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, day: dt.date, username: str, action: str, source_pseudonym: str | None) -> None:
        self._session.add(
            AuditEntry(day=day, username=username, action=action, source_pseudonym=source_pseudonym)
        )
        flush(self._session)

    def page(self, *, before_id: int | None, limit: int) -> Sequence[AuditRecord]:
        """Newest first (by id); the last id of a page is the ``before_id`` of the next."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        # The id column is a 32-bit INTEGER: PostgreSQL refuses a larger bound as out of range
        # (found by schemathesis), and every id is below such a bound anyway.
        if before_id is not None and before_id <= _INT32_MAX:
            stmt = stmt.where(AuditEntry.id < before_id)
        return [
            AuditRecord(r.id, r.day, r.username, r.action, r.source_pseudonym)
            for r in self._session.scalars(stmt)
        ]


class SqlSettingRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def all(self) -> dict[str, str]:
        rows = self._session.execute(select(InstanceSetting.key, InstanceSetting.value))
        return {row.key: row.value for row in rows}

    def set(self, key: str, value: str) -> None:
        # An upsert, not read-then-insert: two admins saving at once must not hit a duplicate key.
        upsert(self._session, InstanceSetting, {"key": key, "value": value}, key="key")
