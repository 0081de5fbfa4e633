"""sealdrop.crypto.keys: typed helpers around age X25519 keys."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from bech32 import bech32_decode, convertbits
from pyrage import x25519

from sealdrop.crypto import keys
from sealdrop.errors import InvalidKeyError


def _secret_bytes(identity: keys.Identity) -> bytes:
    """The 32-byte scalar inside an AGE-SECRET-KEY-1… string, decoded independently."""
    hrp, data = bech32_decode(str(identity).lower())
    assert hrp == "age-secret-key-"
    assert data is not None
    scalar = convertbits(data, 5, 8, False)
    assert scalar is not None
    return bytes(scalar)


def test_generated_identities_are_distinct_x25519_keys() -> None:
    """Two generated identities differ and both are pyrage X25519 identities."""
    first, second = keys.generate_identity(), keys.generate_identity()
    assert isinstance(first, x25519.Identity)
    assert str(first) != str(second)
    assert str(first).startswith("AGE-SECRET-KEY-1")


def test_type_aliases_are_the_pyrage_classes_at_runtime() -> None:
    """Identity/Recipient are pyrage's own classes at runtime, so isinstance works."""
    assert keys.Identity is x25519.Identity
    assert keys.Recipient is x25519.Recipient
    assert isinstance(keys.recipient_of(keys.generate_identity()), keys.Recipient)


def test_recipient_of_gives_the_age1_public_key() -> None:
    """recipient_of returns the identity's public age1… recipient."""
    identity = keys.generate_identity()
    assert str(keys.recipient_of(identity)) == str(identity.to_public())
    assert str(keys.recipient_of(identity)).startswith("age1")


def test_parse_recipient_round_trips_and_strips_whitespace() -> None:
    """A recipient string, with surrounding whitespace and newline, parses back to itself."""
    text = str(keys.recipient_of(keys.generate_identity()))
    assert str(keys.parse_recipient(f"  \t{text}\r\n")) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "age1",
        "hello",
        "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",  # bad checksum
        "age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t",  # plugin
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB/VkgyOKP+F",
        "npub1sg6plzptd64u62a878hep2kev88swjh3tw00gjsfl8f237lmu63q0uf63m",
    ],
)
def test_parse_recipient_rejects_anything_but_x25519(text: str) -> None:
    """Non-recipients, plugin recipients and SSH keys raise InvalidKeyError."""
    with pytest.raises(InvalidKeyError):
        keys.parse_recipient(text)


def test_parse_recipient_refuses_an_identity_string() -> None:
    """A secret key pasted where a public key belongs is refused, not half-accepted."""
    with pytest.raises(InvalidKeyError):
        keys.parse_recipient(str(keys.generate_identity()))


def test_parse_identity_round_trips_and_strips_whitespace() -> None:
    """An AGE-SECRET-KEY-1… string with surrounding whitespace parses back to the same key."""
    identity = keys.generate_identity()
    assert str(keys.parse_identity(f"\n {identity} \n")) == str(identity)


def test_parse_identity_error_never_echoes_the_key_material() -> None:
    """A corrupted secret key raises InvalidKeyError without repeating it or chaining pyrage's."""
    valid = str(keys.generate_identity())
    # Change the last (checksum) character to a different one: a bech32 checksum then fails.
    text = valid[:-1] + ("Q" if valid[-1] != "Q" else "P")
    with pytest.raises(InvalidKeyError) as caught:
        keys.parse_identity(text)
    assert text not in str(caught.value)
    assert text[16:40] not in repr(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.parametrize("text", ["", "age1abc", "AGE-SECRET-KEY-1", "AGE-PLUGIN-YUBIKEY-1QQQ"])
def test_parse_identity_rejects_non_identities(text: str) -> None:
    """Anything but an X25519 secret key raises InvalidKeyError (never a pyrage error)."""
    with pytest.raises(InvalidKeyError):
        keys.parse_identity(text)


def test_parse_identity_rejects_a_recipient() -> None:
    """A public key is not an identity."""
    with pytest.raises(InvalidKeyError):
        keys.parse_identity(str(keys.recipient_of(keys.generate_identity())))


def test_identity_from_secret_inverts_the_age_encoding() -> None:
    """Re-encoding the scalar of a generated identity gives back the identical key string."""
    identity = keys.generate_identity()
    assert str(keys.identity_from_secret(_secret_bytes(identity))) == str(identity)


def test_identity_from_secret_is_deterministic() -> None:
    """The same 32 bytes always give the same identity."""
    secret = os.urandom(32)
    first, second = keys.identity_from_secret(secret), keys.identity_from_secret(secret)
    assert str(first) == str(second)
    assert _secret_bytes(first) == secret


def test_identity_from_secret_matches_age_keygen(
    age_keygen_public: Callable[[keys.Identity], str],
) -> None:
    """`age-keygen -y` computes the same public key as we do for an identity built from bytes."""
    for secret in (bytes(32), b"\xff" * 32, os.urandom(32)):
        identity = keys.identity_from_secret(secret)
        assert age_keygen_public(identity) == str(keys.recipient_of(identity))


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_identity_from_secret_needs_exactly_32_bytes(length: int) -> None:
    """Any other length is a programming error (ValueError), never silently padded or cut."""
    with pytest.raises(ValueError, match="32 bytes"):
        keys.identity_from_secret(bytes(length))
