"""Journalist and admin accounts: passphrases, TOTP enrolment, roles, reader-device keys.

A journalist's reader devices register age recipients here; every new submission is encrypted to
the recipients of every active account plus the organisation recipients (invariant 2: only
public keys ever reach the server).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sealdrop.crypto import passwords
from sealdrop.crypto.keys import parse_recipient
from sealdrop.errors import Conflict, InputError, NotFound, StorageError
from sealdrop.ids import RecipientId, UserId, is_id
from sealdrop.services.audit import AuditTrail
from sealdrop.services.key_kinds import check_new_key
from sealdrop.storage.interfaces import Database, Repositories
from sealdrop.storage.interfaces_accounts import Role, UserRecipientRecord, UserRecord

__all__ = [
    "AccountService",
    "Enrolment",
    "NewAccount",
    "UserView",
    "normalise_username",
    "username_or_none",
]

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSPHRASE_CHARS = 16


@dataclass(frozen=True, slots=True)
class UserView:
    """An account as the API and the CLI show it. Not the stored ``UserRecord``: that carries the
    passphrase hash, the TOTP secret and the lock-out state, which nothing outside services has
    a use for, so a route or a log line can never show them by accident."""

    id: UserId
    username: str
    role: Role
    disabled: bool

    @classmethod
    def of(cls, record: UserRecord) -> UserView:
        return cls(record.id, record.username, record.role, record.disabled)


@dataclass(frozen=True, slots=True)
class NewAccount:
    user: UserView
    passphrase: str  # shown once to whoever creates the account, never stored
    totp_secret: str
    totp_uri: str  # otpauth:// URI for authenticator apps (also shown as a QR code)


@dataclass(frozen=True, slots=True)
class Enrolment:
    totp_secret: str
    totp_uri: str


def printable_label(name: str, limit: int = 200) -> str:
    """A display name with control characters removed and whitespace collapsed."""
    cleaned = "".join(c for c in name if c.isprintable() or c.isspace())
    return " ".join(cleaned.split())[:limit]


def username_or_none(username: str) -> str | None:
    """The stored form of a username, or None if it cannot be one.

    The one rule for usernames: every entry point that takes a name (creating an account, the
    API login, the CLI's disable, enable, reset-2fa and token revoke) goes through it, so that
    " Alice " and "ALICE" always reach the same account. Storage compares names exactly: lower
    case here makes uniqueness ignore case on every backend (PostgreSQL compares
    case-sensitively; SQLite's NOCASE folds ASCII only).
    """
    name = username.strip().lower()
    # fullmatch: "$" would also match before a trailing newline.
    return name if _USERNAME.fullmatch(name) else None


def normalise_username(username: str) -> str:
    """The stored form of a username; InputError if it cannot be one (see username_or_none)."""
    name = username_or_none(username)
    if name is None:
        raise InputError(
            "usernames are 1-64 characters: letters a-z, digits, dot, dash, underscore"
        )
    return name


class AccountService:
    def __init__(
        self, database: Database, audit: AuditTrail, issuer: str, post_quantum: bool = False
    ) -> None:
        self._db = database
        self._audit = audit
        self._issuer = issuer
        self._post_quantum = post_quantum

    def create(
        self, username: str, role: Role, actor: str, passphrase: str | None = None
    ) -> NewAccount:
        """Create an account with a generated passphrase (or a given one of 16+ characters) and
        a fresh TOTP secret."""
        name = normalise_username(username)
        if passphrase is not None and len(passphrase) < MIN_PASSPHRASE_CHARS:
            raise InputError(f"passphrases have at least {MIN_PASSPHRASE_CHARS} characters")
        secret = passwords.new_totp_secret()
        phrase = passphrase or passwords.generate_passphrase()
        hashed = passwords.hash_passphrase(phrase)
        with self._db.transaction() as repos:
            if repos.users.by_username(name) is not None:
                # Not the name itself: API messages never repeat what the request sent.
                raise Conflict("a user with this name exists")
            user = repos.users.add(name, hashed, secret, role)
            self._audit.record(repos, actor, f"user.create.{role}", None)
        uri = passwords.provisioning_uri(secret, name, self._issuer)
        return NewAccount(UserView.of(user), phrase, secret, uri)

    def list(self) -> list[UserView]:
        with self._db.transaction() as repos:
            return [UserView.of(user) for user in repos.users.list()]

    def get(self, user_id: UserId) -> UserView:
        if not is_id(user_id):
            raise NotFound("no such user")
        with self._db.transaction() as repos:
            user = repos.users.get(user_id)
        if user is None:
            raise NotFound("no such user")
        return UserView.of(user)

    def by_username(self, username: str) -> UserView:
        name = normalise_username(username)
        with self._db.transaction() as repos:
            user = repos.users.by_username(name)
        if user is None:
            raise NotFound("no such user")
        return UserView.of(user)

    def set_disabled(self, user_id: UserId, disabled: bool, actor: str) -> UserView:
        """Disable (or enable) an account; disabling also revokes its tokens at once. The last
        enabled admin cannot be disabled, so the instance can always be administered."""
        if not is_id(user_id):
            raise NotFound("no such user")
        with self._db.transaction() as repos:
            user = repos.users.get(user_id)
            if user is None:
                raise NotFound("no such user")
            if disabled and user.role == "admin":
                admins = [u for u in repos.users.list() if u.role == "admin" and not u.disabled]
                if admins == [user]:
                    raise Conflict("the last enabled admin cannot be disabled")
            repos.users.set_disabled(user_id, disabled)
            if disabled:
                repos.tokens.delete_for_user(user_id)
            self._audit.record(repos, actor, "user.disable" if disabled else "user.enable", None)
            updated = repos.users.get(user_id)
        assert updated is not None
        return UserView.of(updated)

    def reset_totp(self, user_id: UserId, actor: str) -> Enrolment:
        """A new TOTP secret (the old authenticator stops working); tokens are revoked."""
        if not is_id(user_id):
            raise NotFound("no such user")
        secret = passwords.new_totp_secret()
        with self._db.transaction() as repos:
            user = repos.users.get(user_id)
            if user is None:
                raise NotFound("no such user")
            repos.users.set_totp_secret(user_id, secret)
            # A journalist locked out while their phone was lost can log in with the new one.
            repos.users.clear_failures(user_id)
            repos.tokens.delete_for_user(user_id)
            self._audit.record(repos, actor, "user.reset_2fa", None)
        return Enrolment(secret, passwords.provisioning_uri(secret, user.username, self._issuer))

    def revoke_tokens(self, user_id: UserId, actor: str) -> int:
        with self._db.transaction() as repos:
            count = repos.tokens.delete_for_user(user_id)
            self._audit.record(repos, actor, "token.revoke_all", None)
            return count

    # -- reader devices ------------------------------------------------------------------------

    def add_recipient(self, user_id: UserId, public_key: str, name: str) -> UserRecipientRecord:
        """Register a reader device's key. Audited: a key added with a stolen token would receive
        every new submission, so the trail must show it. WrongKeyKind for a classic key on a
        post-quantum instance (``recipients.check_new_key``)."""
        canonical = str(parse_recipient(public_key))
        check_new_key(canonical, self._post_quantum)
        label = printable_label(name)
        with self._db.transaction() as repos:
            if any(r.public_key == canonical for r in repos.recipients.list()):
                raise Conflict("this key is already an organisation recipient")
            if canonical in repos.user_recipients.active_public_keys() or any(
                r.public_key == canonical for r in repos.user_recipients.for_user(user_id)
            ):
                raise Conflict("this key is already registered")
            try:
                record = repos.user_recipients.add(user_id, canonical, label)
            except StorageError:
                raise Conflict("this key is already registered") from None
            self._audit.record(repos, _owner(repos, user_id), "key.add", None)
            return record

    def recipients(self, user_id: UserId) -> Sequence[UserRecipientRecord]:
        with self._db.transaction() as repos:
            return repos.user_recipients.for_user(user_id)

    def remove_recipient(self, user_id: UserId, recipient_id: str) -> None:
        if not is_id(recipient_id):
            raise NotFound("no such key")
        with self._db.transaction() as repos:
            own = {r.id for r in repos.user_recipients.for_user(user_id)}
            if recipient_id not in own:
                raise NotFound("no such key")
            repos.user_recipients.remove(RecipientId(recipient_id))
            self._audit.record(repos, _owner(repos, user_id), "key.remove", None)


def _owner(repos: Repositories, user_id: UserId) -> str:
    user = repos.users.get(user_id)
    if user is None:
        raise NotFound("no such user")
    return user.username
