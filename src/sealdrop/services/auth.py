"""Journalist API authentication: passphrase + TOTP → an expiring, revocable bearer token.

- The token is 256 random bits; only its SHA-256 is stored, so a copy of the database cannot be
  replayed as a login.
- A TOTP code works once: the time step it matched is recorded atomically, and a second use of
  the same (or an earlier) step is refused, even by a concurrent request.
- Every failure looks the same to the caller ("invalid credentials"), whichever factor was
  wrong, whether the user exists or is disabled; unknown users cost a dummy Argon2 verification.
- Back-off: each account's failures lock it for a growing time (30 s doubling, at most an hour);
  a global budget of attempts per minute bounds guessing across all accounts.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sealdrop.crypto import passwords
from sealdrop.errors import AuthenticationFailed
from sealdrop.services.accounts import UserView, username_or_none
from sealdrop.services.audit import AuditTrail
from sealdrop.services.clock import Clock
from sealdrop.services.throttle import LoginThrottle
from sealdrop.storage.interfaces import Database
from sealdrop.storage.interfaces_accounts import TokenRecord

TOKEN_LIFETIME_SECONDS = 8 * 3600
FREE_FAILURES = 3
BASE_LOCK_SECONDS = 30
MAX_LOCK_SECONDS = 3600
# The one answer to every failed login, whatever failed.
FAILED = "invalid credentials, or too many attempts: check them and retry in a minute"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str  # the only copy: returned to the client once
    expires_at: int


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of an API request (its account as a view: no secrets)."""

    user: UserView
    token_hash: bytes

    @property
    def is_admin(self) -> bool:
        return self.user.role == "admin"


def _hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "replace")).digest()


def lock_seconds(failures: int) -> int:
    """How long an account is locked after its n-th consecutive failure."""
    if failures <= FREE_FAILURES:
        return 0
    exponent: int = failures - FREE_FAILURES - 1
    return min(MAX_LOCK_SECONDS, BASE_LOCK_SECONDS * (1 << min(exponent, 20)))


class AuthService:
    def __init__(
        self, database: Database, clock: Clock, throttle: LoginThrottle, audit: AuditTrail
    ) -> None:
        self._db = database
        self._clock = clock
        self._throttle = throttle
        self._audit = audit

    def login(self, username: str, passphrase: str, code: str) -> IssuedToken:
        with self._throttle.attempt(None):
            now = int(self._clock.now())
            # The accounts' own rule: a name that cannot be one fails like an unknown one.
            name = username_or_none(username)
            user = None
            if name is not None:
                with self._db.transaction() as repos:
                    user = repos.users.by_username(name)
            if user is None:
                passwords.dummy_verify(passphrase)
                raise AuthenticationFailed(FAILED)
            if user.locked_until is not None and now < user.locked_until:
                # Refused before any check, so a locked account cannot be probed further, and
                # with the same answer as any failure, so a lock does not reveal the username.
                passwords.dummy_verify(passphrase)
                raise AuthenticationFailed(FAILED)
            ok = passwords.verify_passphrase(user.passphrase_hash, passphrase)
            step = passwords.verify_totp(user.totp_secret, code, now) if ok else None
            with self._db.transaction() as repos:
                accepted = (
                    step is not None
                    and not user.disabled
                    and repos.users.use_totp_step(user.id, step)
                )
                if not accepted:
                    # Recorded in a transaction that commits (raising inside would roll back).
                    # The lock follows the count as stored, so concurrent failures all count.
                    failures = repos.users.record_failure(user.id, user.locked_until)
                    pause = lock_seconds(failures)
                    if pause:
                        repos.users.set_locked_until(user.id, now + pause)
            if not accepted:
                raise AuthenticationFailed(FAILED)
            with self._db.transaction() as repos:
                repos.users.clear_failures(user.id)
                if passwords.needs_rehash(user.passphrase_hash):
                    repos.users.set_passphrase_hash(user.id, passwords.hash_passphrase(passphrase))
                token = secrets.token_urlsafe(32)
                expires = now + TOKEN_LIFETIME_SECONDS
                repos.tokens.add(TokenRecord(_hash_token(token), user.id, now, expires))
                self._audit.record(repos, user.username, "login", None)
        return IssuedToken(token, expires)

    def authenticate(self, token: str | None) -> Principal:
        """The principal a bearer token stands for; AuthenticationFailed if missing, unknown,
        expired, revoked, or its user is disabled."""
        if not token or len(token) > 200:
            raise AuthenticationFailed("missing or malformed token")
        token_hash = _hash_token(token)
        now = int(self._clock.now())
        with self._db.transaction() as repos:
            record = repos.tokens.get(token_hash)
            if record is None:
                raise AuthenticationFailed("invalid token")
            expired = record.expires_at <= now
            if expired:
                repos.tokens.delete(token_hash)  # committed: the raise comes after the block
            user = repos.users.get(record.user_id)
        if expired:
            raise AuthenticationFailed("token expired")
        if user is None or user.disabled:
            raise AuthenticationFailed("invalid token")
        return Principal(UserView.of(user), token_hash)

    def logout(self, principal: Principal) -> None:
        with self._db.transaction() as repos:
            repos.tokens.delete(principal.token_hash)
            self._audit.record(repos, principal.user.username, "logout", None)

    def purge_expired(self) -> int:
        with self._db.transaction() as repos:
            return repos.tokens.purge_expired(int(self._clock.now()))
