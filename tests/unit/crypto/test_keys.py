"""sealdrop.crypto.keys: typed helpers around age keys, X25519 and post-quantum hybrid."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from bech32 import bech32_decode, convertbits
from pyrage import x25519

from sealdrop.crypto import keys
from sealdrop.errors import InvalidKeyError, MixedRecipientKinds


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


def test_type_aliases_cover_pyrage_and_hybrid_classes_at_runtime() -> None:
    """Identity/Recipient are unions of pyrage's classes and the hybrid ones; isinstance works."""
    assert keys.X25519Identity is x25519.Identity
    assert keys.X25519Recipient is x25519.Recipient
    for post_quantum in (False, True):
        identity = keys.generate_identity(post_quantum=post_quantum)
        assert isinstance(identity, keys.Identity)
        assert isinstance(keys.recipient_of(identity), keys.Recipient)
        assert not isinstance(identity, keys.Recipient)


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
def test_parse_recipient_rejects_anything_but_native_recipients(text: str) -> None:
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
    """Anything but an age secret key raises InvalidKeyError (never a pyrage error)."""
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


# --- post-quantum hybrid keys (ML-KEM-768 + X25519, age1pq1… / AGE-SECRET-KEY-PQ-1…) ---------

_SPEC_KEYS = Path(__file__).parent / "data" / "spec_hybrid_key.txt"


def _spec_pair() -> tuple[str, str]:
    lines = [line for line in _SPEC_KEYS.read_text("ascii").splitlines() if line[:1] != "#"]
    return lines[0], lines[1]


def test_hybrid_recipient_of_the_spec_identity_is_the_spec_recipient() -> None:
    """The age spec's example identity gives its example recipient (seed expansion, encoding)."""
    identity_text, recipient_text = _spec_pair()
    identity = keys.parse_identity(identity_text)
    assert keys.is_post_quantum(identity)
    assert str(identity) == identity_text
    assert str(keys.recipient_of(identity)) == recipient_text
    assert len(recipient_text) == 1959  # beyond Bech32's usual 90 characters


def test_hybrid_recipient_parses_back_to_an_equal_key() -> None:
    """parse_recipient accepts an age1pq1… string (with whitespace) and gives the same key."""
    recipient = keys.recipient_of(keys.generate_identity(post_quantum=True))
    parsed = keys.parse_recipient(f"  {recipient}\n")
    assert parsed == recipient
    assert keys.is_post_quantum(parsed)
    assert str(parsed).startswith("age1pq1")


def test_generate_identity_post_quantum_gives_distinct_hybrid_identities() -> None:
    """generate_identity(post_quantum=True) makes fresh AGE-SECRET-KEY-PQ-1… identities."""
    first = keys.generate_identity(post_quantum=True)
    second = keys.generate_identity(post_quantum=True)
    assert str(first).startswith("AGE-SECRET-KEY-PQ-1")
    assert str(first) != str(second)
    assert keys.is_post_quantum(first)
    assert not keys.is_post_quantum(keys.generate_identity())
    assert not keys.is_post_quantum(keys.recipient_of(keys.generate_identity()))


def test_hybrid_identity_from_seed_is_the_seed_in_age_encoding() -> None:
    """The same 32 bytes give the same identity, whose age string decodes to exactly that seed."""
    seed = os.urandom(32)
    identity = keys.hybrid_identity_from_seed(seed)
    assert str(identity) == str(keys.hybrid_identity_from_seed(seed))
    hrp, data = bech32_decode(str(identity).lower())
    assert hrp == "age-secret-key-pq-"
    assert data is not None
    assert bytes(convertbits(data, 5, 8, False) or b"") == seed
    assert str(keys.parse_identity(str(identity).lower())) == str(identity)


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_hybrid_identity_from_seed_needs_exactly_32_bytes(length: int) -> None:
    """A seed of any other length is a programming error (ValueError)."""
    with pytest.raises(ValueError, match="32-byte"):
        keys.hybrid_identity_from_seed(bytes(length))


def test_hybrid_identity_repr_and_errors_never_show_the_secret() -> None:
    """repr() shows only the public key; a damaged PQ identity's error does not repeat it."""
    identity = keys.generate_identity(post_quantum=True)
    assert str(identity) not in repr(identity)
    assert str(identity)[19:40] not in repr(identity)
    damaged = str(identity)[:-1] + ("Q" if str(identity)[-1] != "Q" else "P")
    with pytest.raises(InvalidKeyError) as caught:
        keys.parse_identity(damaged)
    assert damaged[19:40] not in str(caught.value)


@pytest.mark.parametrize(
    "make",
    [
        lambda r: r[:-1] + ("q" if r[-1] != "q" else "p"),  # checksum
        lambda r: r[:100] + r[101:],  # a character missing
        lambda r: r.upper()[:50] + r[50:],  # mixed case
        lambda r: r + "qqqqqqqq" * 40,  # too long
        lambda r: "age1pq1",
    ],
)
def test_parse_recipient_rejects_damaged_hybrid_recipients(make: Callable[[str], str]) -> None:
    """A damaged age1pq1… string raises InvalidKeyError."""
    text = str(keys.recipient_of(keys.generate_identity(post_quantum=True)))
    with pytest.raises(InvalidKeyError):
        keys.parse_recipient(make(text))


def test_parse_identity_refuses_a_hybrid_recipient_and_vice_versa() -> None:
    """Public and private hybrid strings are never taken for one another."""
    identity = keys.generate_identity(post_quantum=True)
    with pytest.raises(InvalidKeyError):
        keys.parse_identity(str(keys.recipient_of(identity)))
    with pytest.raises(InvalidKeyError):
        keys.parse_recipient(str(identity))


def test_require_one_kind_names_the_kind_and_refuses_a_mix() -> None:
    """All-hybrid → True, all-X25519 → False, a mix → MixedRecipientKinds, none → ValueError."""
    hybrid = [keys.recipient_of(keys.generate_identity(post_quantum=True)) for _ in range(2)]
    classic = [keys.recipient_of(keys.generate_identity()) for _ in range(2)]
    assert keys.require_one_kind(hybrid) is True
    assert keys.require_one_kind(classic) is False
    with pytest.raises(MixedRecipientKinds):
        keys.require_one_kind([*classic, hybrid[0]])
    with pytest.raises(ValueError, match="at least one"):
        keys.require_one_kind([])
