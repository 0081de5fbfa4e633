"""sealdrop.crypto.derive: codename → lookup id + reply identity (Argon2id, then HKDF).

Each derive costs ~0.15 s and 64 MiB, so the module computes a few results once and shares them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from argon2.low_level import Type, hash_secret_raw
from bech32 import bech32_decode, convertbits
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealdrop.crypto import derive, envelope, keys
from sealdrop.crypto.codenames import Codename
from sealdrop.errors import InvalidCodename

CODENAME = Codename("abacus t-shirt zoom drop-down yo-yo felt-tip kinfolk")
OTHER_CODENAME = Codename("abacus t-shirt zoom drop-down yo-yo felt-tip kick")
SALT = bytes(range(16))
OTHER_SALT = bytes(range(1, 17))

# Pinned output for CODENAME + SALT. If this changes, every existing source is locked out of their
# account and replies: change the construction only with a migration plan (DESIGN.md).
PINNED_LOOKUP_ID = "3ca65a85c0826ac0ca54375f9a5bace7a65a06a8931f771331f12c7fd086b15b"
PINNED_RECIPIENT = "age1a4zldmt0fseneklk8kqdeu6xwncs4jnp25hzyrkf5cfpx0anl45seyeqn2"


@pytest.fixture(scope="module")
def source_keys() -> derive.SourceKeys:
    return derive.derive_source_keys(CODENAME, SALT)


def _scalar(identity: keys.Identity) -> bytes:
    _, data = bech32_decode(str(identity).lower())
    assert data is not None
    scalar = convertbits(data, 5, 8, False)
    assert scalar is not None
    return bytes(scalar)


def test_construction_matches_the_specification(source_keys: derive.SourceKeys) -> None:
    """Outputs equal an independent Argon2id(t=3, m=64 MiB, p=1, 64 B) → HKDF-SHA256 computation."""
    stretched = hash_secret_raw(
        secret=CODENAME.encode(),
        salt=SALT,
        time_cost=3,
        memory_cost=65536,
        parallelism=1,
        hash_len=64,
        type=Type.ID,
    )

    def hkdf(info: bytes) -> bytes:
        return HKDF(algorithm=SHA256(), length=32, salt=None, info=info).derive(stretched)

    assert source_keys.lookup_id == hkdf(b"sealdrop/v1/lookup-id")
    assert _scalar(source_keys.reply_identity) == hkdf(b"sealdrop/v1/reply-identity")


def test_output_is_pinned(source_keys: derive.SourceKeys) -> None:
    """A fixed codename and salt always give the same, recorded lookup id and recipient."""
    assert source_keys.lookup_id.hex() == PINNED_LOOKUP_ID
    assert str(source_keys.reply_recipient) == PINNED_RECIPIENT


def test_same_codename_and_salt_derive_the_same_keys(source_keys: derive.SourceKeys) -> None:
    """Deriving again (a later login) reproduces both outputs exactly."""
    again = derive.derive_source_keys(CODENAME, SALT)
    assert again.lookup_id == source_keys.lookup_id
    assert str(again.reply_identity) == str(source_keys.reply_identity)


def test_another_salt_derives_unrelated_keys(source_keys: derive.SourceKeys) -> None:
    """The same codename on another instance (another salt) gives a different id and key."""
    elsewhere = derive.derive_source_keys(CODENAME, OTHER_SALT)
    assert elsewhere.lookup_id != source_keys.lookup_id
    assert str(elsewhere.reply_identity) != str(source_keys.reply_identity)


def test_another_codename_derives_unrelated_keys(source_keys: derive.SourceKeys) -> None:
    """Codenames differing in one word give a different id and key."""
    other = derive.derive_source_keys(OTHER_CODENAME, SALT)
    assert other.lookup_id != source_keys.lookup_id
    assert str(other.reply_identity) != str(source_keys.reply_identity)


def test_lookup_id_and_reply_key_are_independent(source_keys: derive.SourceKeys) -> None:
    """The stored lookup id is 32 bytes and shares nothing with the reply key's scalar."""
    scalar = _scalar(source_keys.reply_identity)
    assert len(source_keys.lookup_id) == len(scalar) == 32
    assert source_keys.lookup_id != scalar
    # No long common run either (e.g. one output being a slice of a shared stream).
    windows = {source_keys.lookup_id[i : i + 4] for i in range(29)}
    assert not any(scalar[i : i + 4] in windows for i in range(29))


def test_reply_recipient_matches_age_keygen(
    source_keys: derive.SourceKeys, age_keygen_public: Callable[[keys.Identity], str]
) -> None:
    """The stored public key is what `age-keygen -y` prints for the derived identity."""
    assert age_keygen_public(source_keys.reply_identity) == str(source_keys.reply_recipient)


def test_derived_identity_opens_replies_sent_to_its_recipient(
    source_keys: derive.SourceKeys,
) -> None:
    """A reply encrypted to the stored recipient decrypts with the identity derived at login."""
    reply = envelope.encrypt_bytes(b"thank you", [source_keys.reply_recipient])
    again = derive.derive_source_keys(CODENAME, SALT)
    assert envelope.decrypt_bytes(reply, [again.reply_identity]) == b"thank you"


def test_repr_hides_lookup_id_and_identity(source_keys: derive.SourceKeys) -> None:
    """repr(SourceKeys) shows neither output, so a stray log line cannot link a source."""
    shown = repr(source_keys)
    assert source_keys.lookup_id.hex() not in shown
    assert repr(source_keys.lookup_id) not in shown
    assert str(source_keys.reply_identity) not in shown


def test_source_keys_are_frozen(source_keys: derive.SourceKeys) -> None:
    """SourceKeys cannot be modified after derivation."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        source_keys.lookup_id = b""  # type: ignore[misc]


@pytest.mark.parametrize("length", [0, 8, 15])
def test_salt_shorter_than_16_bytes_is_refused(length: int) -> None:
    """A short instance salt is a configuration bug: ValueError before any KDF work."""
    with pytest.raises(ValueError, match="at least 16 bytes"):
        derive.derive_source_keys(CODENAME, bytes(length))


def test_parameters_are_the_designed_ones() -> None:
    """Module constants are the DESIGN.md values: t=3, m=64 MiB, p=1, 64-byte output."""
    assert derive.ARGON2_TIME_COST == 3
    assert derive.ARGON2_MEMORY_KIB == 64 * 1024
    assert derive.ARGON2_PARALLELISM == 1
    assert derive.ARGON2_HASH_LEN == 64
    assert derive.MIN_SALT_LEN == 16


@pytest.mark.parametrize("raw", [CODENAME.upper(), f" {CODENAME} ", CODENAME.replace(" ", "  ")])
def test_non_normalised_codename_is_refused(raw: str) -> None:
    """A caller that forgot normalize() gets ValueError, not a silently different key."""
    with pytest.raises(ValueError, match="normalised"):
        derive.derive_source_keys(Codename(raw), SALT)


def test_invalid_codename_is_refused() -> None:
    """Text that is not a codename at all raises InvalidCodename before any KDF work."""
    with pytest.raises(InvalidCodename):
        derive.derive_source_keys(Codename("not a codename"), SALT)
