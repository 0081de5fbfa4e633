"""AuthService on a real SQLite instance: passphrase + TOTP logins, refusal of replayed codes,
one answer for every failure, back-off locks, token expiry, logout and revocation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support_accounts import AccountsEnv

from sealdrop.crypto import passwords
from sealdrop.errors import AuthenticationFailed
from sealdrop.services import auth
from sealdrop.services.auth import (
    BASE_LOCK_SECONDS,
    FAILED,
    FREE_FAILURES,
    MAX_LOCK_SECONDS,
    TOKEN_LIFETIME_SECONDS,
    lock_seconds,
)


def test_login_returns_a_token_that_authenticates(accounts_env: AccountsEnv) -> None:
    """A right passphrase and the current code give a token that authenticates as the user."""
    account = accounts_env.account("alice")
    issued = accounts_env.login(account)
    assert issued.expires_at == int(accounts_env.clock.now()) + TOKEN_LIFETIME_SECONDS
    principal = accounts_env.services.auth.authenticate(issued.token)
    assert principal.user.id == account.user.id
    assert not principal.is_admin


def test_login_normalises_the_username(accounts_env: AccountsEnv) -> None:
    """Case and surrounding spaces of the username do not matter at login."""
    account = accounts_env.account("alice")
    issued = accounts_env.services.auth.login(
        "  ALICE ", account.passphrase, accounts_env.code(account)
    )
    assert accounts_env.services.auth.authenticate(issued.token).user.id == account.user.id


def test_admin_principal_is_admin(accounts_env: AccountsEnv) -> None:
    """An admin's token authenticates a principal with the admin role."""
    account = accounts_env.account("root", role="admin")
    principal = accounts_env.services.auth.authenticate(accounts_env.login(account).token)
    assert principal.is_admin


def test_a_totp_code_is_accepted_once(accounts_env: AccountsEnv) -> None:
    """The same code (the same time step) used twice: the second login is refused."""
    account = accounts_env.account()
    accounts_env.login(account)
    with pytest.raises(AuthenticationFailed) as refused:
        accounts_env.login(account)
    assert str(refused.value) == FAILED
    # A later step works again.
    accounts_env.next_step()
    accounts_env.login(account)


def test_an_earlier_step_after_a_later_one_is_refused(accounts_env: AccountsEnv) -> None:
    """Once the next step's code (valid within the skew window) was used, the current step's code
    is refused although it is still inside the window."""
    account = accounts_env.account()
    accounts_env.login(account, offset=passwords.TOTP_INTERVAL)
    with pytest.raises(AuthenticationFailed):
        accounts_env.login(account)


def test_an_earlier_step_is_refused_after_the_clock_moved(accounts_env: AccountsEnv) -> None:
    """A code of the previous step (still in the window) is refused after a newer step logged in."""
    account = accounts_env.account()
    accounts_env.next_step()
    accounts_env.login(account)
    with pytest.raises(AuthenticationFailed):
        accounts_env.login(account, offset=-passwords.TOTP_INTERVAL)


def test_a_code_outside_the_window_is_refused(accounts_env: AccountsEnv) -> None:
    """A code two steps away (beyond the one-step skew allowance) does not log in."""
    account = accounts_env.account()
    with pytest.raises(AuthenticationFailed):
        accounts_env.login(account, offset=2 * passwords.TOTP_INTERVAL)


FAILURE_KINDS = ["unknown user", "wrong passphrase", "wrong code", "disabled user", "locked"]


@pytest.mark.parametrize("kind", FAILURE_KINDS)
def test_every_login_failure_gives_the_same_answer(accounts_env: AccountsEnv, kind: str) -> None:
    """Unknown user, wrong passphrase, wrong code, disabled or locked account: the same exception
    with the same message, so the answer never says which factor (or whether the user) failed."""
    env = accounts_env
    env.account("root", role="admin")
    account = env.account("alice")
    username, passphrase, code = account.user.username, account.passphrase, env.code(account)
    if kind == "unknown user":
        username = "mallory"
    elif kind == "wrong passphrase":
        passphrase = passphrase + "x"
    elif kind == "wrong code":
        code = f"{(int(code) + 1) % 1_000_000:06d}"
    elif kind == "disabled user":
        env.services.accounts.set_disabled(account.user.id, True, actor="root")
    else:
        env.lock(account.user.id, int(env.clock.now()) + 600)
    with pytest.raises(AuthenticationFailed) as refused:
        env.services.auth.login(username, passphrase, code)
    assert type(refused.value) is AuthenticationFailed
    assert str(refused.value) == FAILED
    assert env.token_rows() == 0


def test_lock_seconds_grows_from_30_s_to_an_hour() -> None:
    """The first failures are free; then 30 s, doubling each time, never more than an hour."""
    assert [lock_seconds(n) for n in range(FREE_FAILURES + 1)] == [0] * (FREE_FAILURES + 1)
    assert [lock_seconds(FREE_FAILURES + k) for k in range(1, 9)] == [
        30,
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
    ]
    assert lock_seconds(10_000) == MAX_LOCK_SECONDS
    assert BASE_LOCK_SECONDS == 30


@given(st.integers(min_value=0, max_value=10**6))
def test_lock_seconds_is_monotonic_and_bounded(failures: int) -> None:
    """More failures never lock for less time, and never for more than MAX_LOCK_SECONDS."""
    assert 0 <= lock_seconds(failures) <= lock_seconds(failures + 1) <= MAX_LOCK_SECONDS


def test_a_locked_account_refuses_right_credentials_until_the_lock_ends(
    accounts_env: AccountsEnv,
) -> None:
    """While locked, even the right passphrase and code are refused; from locked_until on, the
    same credentials log in, and the success clears the failures."""
    env = accounts_env
    account = env.account()
    until = int(env.clock.now()) + 90
    env.lock(account.user.id, until)
    with pytest.raises(AuthenticationFailed):
        env.login(account)
    env.clock.advance(89)
    with pytest.raises(AuthenticationFailed):
        env.login(account)
    env.clock.advance(1)
    assert int(env.clock.now()) == until
    env.services.auth.authenticate(env.login(account).token)
    user = env.stored(account.user.id)
    assert (user.failed_logins, user.locked_until) == (0, None)


def test_failed_logins_lock_the_account_for_growing_times(accounts_env: AccountsEnv) -> None:
    """After the free failures a wrong passphrase locks the account for 30 s; during the lock the
    right credentials are refused too; the next failure after it locks for 60 s; a success then
    clears everything. (Regression: failures were recorded in a transaction that the refusal
    rolled back, so accounts never locked.)"""
    env = accounts_env
    account = env.account()

    def fail() -> None:
        with pytest.raises(AuthenticationFailed) as refused:
            env.services.auth.login(account.user.username, "wrong " * 4, env.code(account))
        assert str(refused.value) == FAILED

    for n in range(1, FREE_FAILURES + 1):
        fail()
        user = env.stored(account.user.id)
        assert (user.failed_logins, user.locked_until) == (n, None)
    fail()
    user = env.stored(account.user.id)
    assert user.failed_logins == FREE_FAILURES + 1
    assert user.locked_until == int(env.clock.now()) + BASE_LOCK_SECONDS
    with pytest.raises(AuthenticationFailed):
        env.login(account)
    env.clock.advance(BASE_LOCK_SECONDS)
    fail()
    user = env.stored(account.user.id)
    assert user.locked_until == int(env.clock.now()) + 2 * BASE_LOCK_SECONDS
    env.clock.advance(2 * BASE_LOCK_SECONDS)
    env.services.auth.authenticate(env.login(account).token)
    user = env.stored(account.user.id)
    assert (user.failed_logins, user.locked_until) == (0, None)


def test_a_token_expires_after_8_hours(accounts_env: AccountsEnv) -> None:
    """A token works until a second before its expiry and is refused from then on."""
    env = accounts_env
    issued = env.login(env.account())
    env.clock.advance(TOKEN_LIFETIME_SECONDS - 1)
    env.services.auth.authenticate(issued.token)
    env.clock.advance(1)
    assert int(env.clock.now()) == issued.expires_at
    with pytest.raises(AuthenticationFailed):
        env.services.auth.authenticate(issued.token)


def test_an_expired_token_is_deleted_when_presented(accounts_env: AccountsEnv) -> None:
    """Presenting an expired token removes its row at once, not only at the next purge.
    (Regression: the delete was rolled back by the refusal raised in the same transaction.)"""
    env = accounts_env
    issued = env.login(env.account())
    env.clock.advance(TOKEN_LIFETIME_SECONDS)
    with pytest.raises(AuthenticationFailed):
        env.services.auth.authenticate(issued.token)
    assert env.token_rows() == 0


def test_purge_expired_removes_expired_tokens_only(accounts_env: AccountsEnv) -> None:
    """purge_expired deletes tokens at or past their expiry and keeps live ones."""
    env = accounts_env
    account = env.account()
    env.login(account)
    env.clock.advance(3600)
    later = env.login(account)
    env.clock.advance(TOKEN_LIFETIME_SECONDS - 3600)
    assert env.services.auth.purge_expired() == 1
    assert env.token_rows() == 1
    env.services.auth.authenticate(later.token)


def test_logout_revokes_only_that_token(accounts_env: AccountsEnv) -> None:
    """Logout removes the token used for it; another session of the same user keeps working."""
    env = accounts_env
    account = env.account()
    first = env.login(account)
    env.next_step()
    second = env.login(account)
    env.services.auth.logout(env.services.auth.authenticate(first.token))
    with pytest.raises(AuthenticationFailed):
        env.services.auth.authenticate(first.token)
    env.services.auth.authenticate(second.token)
    assert env.token_rows(account.user.id) == 1


def test_revoke_tokens_revokes_every_token_of_the_user(accounts_env: AccountsEnv) -> None:
    """revoke_tokens ends all of one user's sessions and no one else's."""
    env = accounts_env
    alice, bob = env.account("alice"), env.account("bob")
    tokens = [env.login(alice)]
    env.next_step()
    tokens.append(env.login(alice))
    bobs = env.login(bob)
    assert env.services.accounts.revoke_tokens(alice.user.id, actor="root") == 2
    for issued in tokens:
        with pytest.raises(AuthenticationFailed):
            env.services.auth.authenticate(issued.token)
    assert env.services.auth.authenticate(bobs.token).user.id == bob.user.id


@pytest.mark.parametrize("token", [None, "", "x" * 201, "not-a-token", "\x00", "é" * 50])
def test_authenticate_refuses_missing_malformed_and_unknown_tokens(
    accounts_env: AccountsEnv, token: str | None
) -> None:
    """No token, an overlong one and one that was never issued are all refused."""
    env = accounts_env
    env.login(env.account())
    with pytest.raises(AuthenticationFailed):
        env.services.auth.authenticate(token)


def test_the_token_never_reaches_the_database_file(accounts_env: AccountsEnv) -> None:
    """Only a hash of the bearer token is stored: no file of the instance (database, WAL, blob
    store) holds the token or the passphrase that logged in."""
    env = accounts_env
    account = env.account()
    code = env.code(account)
    issued = env.services.auth.login(account.user.username, account.passphrase, code)
    env.services.auth.authenticate(issued.token)
    stored = env.stored_bytes()
    assert env.token_rows() == 1
    assert issued.token.encode() not in stored
    assert account.passphrase.encode() not in stored
    assert auth._hash_token(issued.token) in stored  # the hash is what is kept
