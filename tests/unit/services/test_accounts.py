"""AccountService on a real SQLite instance: usernames, generated passphrases and their hashes,
disabling (and the last admin), TOTP reset, and the age keys of journalists' reader devices."""

from __future__ import annotations

import dataclasses
from importlib import resources

import pytest
from support_accounts import AccountsEnv

from sealdrop.crypto.keys import generate_identity, recipient_of
from sealdrop.errors import (
    AuthenticationFailed,
    Conflict,
    InputError,
    InvalidKeyError,
    NotFound,
)
from sealdrop.ids import UserId, new_id


def eff_words() -> set[str]:
    text = resources.files("sealdrop").joinpath("data", "eff_large_wordlist.txt").read_text()
    return {line.split("\t")[1] for line in text.splitlines() if line}


def new_key() -> str:
    return str(recipient_of(generate_identity()))


# -- usernames -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("alice", "alice"),
        ("  Alice.Smith ", "alice.smith"),
        ("BOB_2", "bob_2"),
        ("0-day", "0-day"),
        ("a" * 64, "a" * 64),
    ],
)
def test_usernames_are_stored_normalised(
    accounts_env: AccountsEnv, given: str, stored: str
) -> None:
    """Surrounding spaces are dropped and letters lower-cased before the name is stored."""
    account = accounts_env.account(given)
    assert account.user.username == stored
    assert accounts_env.services.accounts.by_username(stored).id == account.user.id


@pytest.mark.parametrize(
    "name",
    ["", "   ", "a" * 65, "-alice", ".alice", "_alice", "al ice", "alice/..", "élodie", "a\nb"],
)
def test_malformed_usernames_are_refused(accounts_env: AccountsEnv, name: str) -> None:
    """Only 1-64 characters of a-z, digits, dot, dash and underscore, starting alphanumeric."""
    with pytest.raises(InputError):
        accounts_env.account(name)
    assert accounts_env.services.accounts.list() == []


def test_usernames_are_unique_whatever_the_case(accounts_env: AccountsEnv) -> None:
    """A second account whose name differs only in case or spaces is a Conflict."""
    accounts_env.account("alice")
    with pytest.raises(Conflict):
        accounts_env.account(" ALICE")
    assert len(accounts_env.services.accounts.list()) == 1


def test_every_spelling_of_a_name_reaches_the_same_account(accounts_env: AccountsEnv) -> None:
    """' Alice ' and 'ALICE' find the account 'alice' by name (the CLI's commands) and log it
    in (the API); a name that breaks the rule is refused as input, not looked up."""
    account = accounts_env.account(" Alice ")
    assert account.user.username == "alice"
    for spelling in (" Alice ", "ALICE", "alice"):
        assert accounts_env.services.accounts.by_username(spelling).id == account.user.id
        token = accounts_env.services.auth.login(
            spelling, account.passphrase, accounts_env.code(account)
        )
        assert accounts_env.services.auth.authenticate(token.token).user.id == account.user.id
        accounts_env.next_step()
    with pytest.raises(InputError):
        accounts_env.services.accounts.by_username("al ice")


# -- passphrases and TOTP enrolment ----------------------------------------------------------


def test_generated_passphrase_is_7_eff_words(accounts_env: AccountsEnv) -> None:
    """The generated passphrase is seven words of the EFF large list, new for every account."""
    words = eff_words()
    first, second = accounts_env.account("alice"), accounts_env.account("bob")
    for account in (first, second):
        parts = account.passphrase.split(" ")
        assert len(parts) == 7
        assert all(part in words for part in parts)
    assert first.passphrase != second.passphrase


def test_passphrase_hash_is_argon2id(accounts_env: AccountsEnv) -> None:
    """The stored hash is an Argon2id PHC string, and it does not contain the passphrase."""
    account = accounts_env.account()
    stored = accounts_env.stored(account.user.id).passphrase_hash
    assert stored.startswith("$argon2id$")
    assert account.passphrase not in stored
    assert account.passphrase.encode() not in accounts_env.stored_bytes()


def test_a_given_passphrase_needs_16_characters(accounts_env: AccountsEnv) -> None:
    """An operator-chosen passphrase under 16 characters is refused; 16 or more works."""
    with pytest.raises(InputError):
        accounts_env.account("alice", passphrase="x" * 15)
    account = accounts_env.account("alice", passphrase="correct horse bat")
    assert account.passphrase == "correct horse bat"
    accounts_env.login(account)


def test_enrolment_gives_an_otpauth_uri(accounts_env: AccountsEnv) -> None:
    """The TOTP URI names the secret, the user and the instance, for authenticator apps."""
    account = accounts_env.account("alice")
    assert account.totp_uri.startswith("otpauth://totp/")
    assert f"secret={account.totp_secret}" in account.totp_uri
    assert "alice" in account.totp_uri
    assert "issuer=Sealdrop" in account.totp_uri


# -- disabling -------------------------------------------------------------------------------


def test_disabling_revokes_tokens(accounts_env: AccountsEnv) -> None:
    """A disabled account's tokens stop working at once and are deleted; enabling it again does
    not bring them back, but a new login works."""
    env = accounts_env
    env.account("root", role="admin")
    alice = env.account("alice")
    issued = env.login(alice)
    disabled = env.services.accounts.set_disabled(alice.user.id, True, actor="root")
    assert disabled.disabled
    with pytest.raises(AuthenticationFailed):
        env.services.auth.authenticate(issued.token)
    assert env.token_rows(alice.user.id) == 0
    assert not env.services.accounts.set_disabled(alice.user.id, False, actor="root").disabled
    with pytest.raises(AuthenticationFailed):
        env.services.auth.authenticate(issued.token)
    env.next_step()
    env.services.auth.authenticate(env.login(alice).token)


def test_the_last_enabled_admin_cannot_be_disabled(accounts_env: AccountsEnv) -> None:
    """With two admins one can be disabled; the remaining one then cannot (Conflict: enabled
    journalists do not count) and keeps working; once the other is enabled again, it can."""
    env = accounts_env
    root, second = env.account("root", role="admin"), env.account("second", role="admin")
    env.account("alice")
    token = env.login(root)
    assert env.services.accounts.set_disabled(second.user.id, True, actor="root").disabled
    with pytest.raises(Conflict):
        env.services.accounts.set_disabled(root.user.id, True, actor="root")
    assert not env.services.accounts.get(root.user.id).disabled
    assert env.services.auth.authenticate(token.token).is_admin
    env.services.accounts.set_disabled(second.user.id, False, actor="root")
    assert env.services.accounts.set_disabled(root.user.id, True, actor="second").disabled


def test_a_sole_admin_cannot_disable_itself(accounts_env: AccountsEnv) -> None:
    """The only admin is refused with Conflict, even when journalists exist."""
    root = accounts_env.account("root", role="admin")
    accounts_env.account("alice")
    with pytest.raises(Conflict):
        accounts_env.services.accounts.set_disabled(root.user.id, True, actor="root")


def test_unknown_users_are_not_found(accounts_env: AccountsEnv) -> None:
    """Disabling, enabling or resetting an id that names no user is NotFound."""
    missing = UserId(new_id())
    accounts = accounts_env.services.accounts
    for call in (
        lambda: accounts.set_disabled(missing, True, "root"),
        lambda: accounts.set_disabled(missing, False, "root"),
        lambda: accounts.reset_totp(missing, "root"),
        lambda: accounts.get(missing),
    ):
        with pytest.raises(NotFound):
            call()


# -- TOTP reset ------------------------------------------------------------------------------


def test_reset_totp_changes_the_secret_and_revokes_tokens(accounts_env: AccountsEnv) -> None:
    """After a reset the old authenticator's codes fail, the new secret's work, and every
    token issued before is gone."""
    env = accounts_env
    alice = env.account("alice")
    issued = env.login(alice)
    enrolment = env.services.accounts.reset_totp(alice.user.id, actor="root")
    assert enrolment.totp_secret != alice.totp_secret
    assert env.stored(alice.user.id).totp_secret == enrolment.totp_secret
    assert f"secret={enrolment.totp_secret}" in enrolment.totp_uri
    with pytest.raises(AuthenticationFailed):
        env.services.auth.authenticate(issued.token)
    assert env.token_rows(alice.user.id) == 0
    env.next_step()
    with pytest.raises(AuthenticationFailed):
        env.login(alice)  # the old secret's code
    renewed = env.services.auth.login("alice", alice.passphrase, env.code(enrolment.totp_secret))
    env.services.auth.authenticate(renewed.token)


# -- reader-device keys ----------------------------------------------------------------------


def test_device_keys_can_be_added_and_removed(accounts_env: AccountsEnv) -> None:
    """A key is listed for its owner (name whitespace collapsed) until removed."""
    env = accounts_env
    alice = env.account("alice")
    key = new_key()
    added = env.services.accounts.add_recipient(alice.user.id, f"  {key} ", "  my   laptop ")
    assert (added.public_key, added.name, added.user_id) == (key, "my laptop", alice.user.id)
    assert list(env.services.accounts.recipients(alice.user.id)) == [added]
    env.services.accounts.remove_recipient(alice.user.id, added.id)
    assert list(env.services.accounts.recipients(alice.user.id)) == []
    with pytest.raises(NotFound):
        env.services.accounts.remove_recipient(alice.user.id, added.id)


def test_a_duplicate_device_key_is_a_conflict(accounts_env: AccountsEnv) -> None:
    """The same key twice, for the same user or another, is refused with Conflict."""
    env = accounts_env
    alice, bob = env.account("alice"), env.account("bob")
    key = new_key()
    env.services.accounts.add_recipient(alice.user.id, key, "laptop")
    with pytest.raises(Conflict):
        env.services.accounts.add_recipient(alice.user.id, key, "again")
    with pytest.raises(Conflict):
        env.services.accounts.add_recipient(bob.user.id, key, "stolen")
    assert len(env.services.accounts.recipients(alice.user.id)) == 1
    assert list(env.services.accounts.recipients(bob.user.id)) == []


def test_an_organisation_recipient_key_is_refused(accounts_env: AccountsEnv) -> None:
    """A key that is already an organisation recipient cannot also be a device key."""
    env = accounts_env
    alice = env.account("alice")
    key = new_key()
    env.services.recipients.add(key, "offline", actor="root")
    with pytest.raises(Conflict):
        env.services.accounts.add_recipient(alice.user.id, key, "laptop")
    assert list(env.services.accounts.recipients(alice.user.id)) == []


def test_another_users_key_id_is_not_found(accounts_env: AccountsEnv) -> None:
    """Removing someone else's key by its id is NotFound, like a made-up id, and leaves it."""
    env = accounts_env
    alice, bob = env.account("alice"), env.account("bob")
    bobs = env.services.accounts.add_recipient(bob.user.id, new_key(), "bob's")
    with pytest.raises(NotFound):
        env.services.accounts.remove_recipient(alice.user.id, bobs.id)
    with pytest.raises(NotFound):
        env.services.accounts.remove_recipient(alice.user.id, new_id())
    assert list(env.services.accounts.recipients(bob.user.id)) == [bobs]


@pytest.mark.parametrize(
    "key",
    [
        "",
        "age1",
        "age1notavalidkey",
        "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB",
    ],
)
def test_a_malformed_device_key_is_refused(accounts_env: AccountsEnv, key: str) -> None:
    """Anything but an age X25519 recipient raises InvalidKeyError and stores nothing."""
    alice = accounts_env.account("alice")
    with pytest.raises(InvalidKeyError):
        accounts_env.services.accounts.add_recipient(alice.user.id, key, "bad")
    assert list(accounts_env.services.accounts.recipients(alice.user.id)) == []


# -- what leaves services --------------------------------------------------------------------


def test_accounts_handed_out_carry_no_secret(accounts_env: AccountsEnv) -> None:
    """Every account services hand to the API and the CLI (create, list, get, by_username,
    set_disabled, the authenticated caller) holds id, username, role and disabled only: never the
    passphrase hash, the TOTP secret or the lock-out state."""
    env = accounts_env
    admin = env.account("root", "admin")
    alice = env.account("alice")
    accounts = env.services.accounts
    caller = env.services.auth.authenticate(env.login(alice).token)
    handed_out = [
        admin.user,
        *accounts.list(),
        accounts.get(alice.user.id),
        accounts.by_username("alice"),
        accounts.set_disabled(alice.user.id, True, actor="root"),
        caller.user,
    ]
    stored = env.stored(alice.user.id)
    for user in handed_out:
        assert [f.name for f in dataclasses.fields(user)] == ["id", "username", "role", "disabled"]
        assert stored.passphrase_hash not in repr(user)
        assert alice.totp_secret not in repr(user)
