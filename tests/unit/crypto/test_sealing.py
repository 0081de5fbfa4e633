"""sealdrop.crypto.sealing: ChaCha20-Poly1305 sealing under a session key (invariant 4)."""

from __future__ import annotations

import pytest

from sealdrop.crypto import keys, sealing
from sealdrop.errors import DecryptionError

AAD = b"session:0f3a"


@pytest.fixture
def key() -> bytes:
    return sealing.new_session_key()


def test_session_keys_are_32_random_bytes() -> None:
    """new_session_key gives 32 bytes, different every time."""
    drawn = {sealing.new_session_key() for _ in range(100)}
    assert len(drawn) == 100
    assert all(len(k) == 32 for k in drawn)


def test_seal_unseal_round_trip(key: bytes) -> None:
    """unseal returns exactly what seal sealed, including an empty plaintext."""
    for plaintext in (b"", b"x", bytes(range(256)) * 10):
        assert sealing.unseal(key, sealing.seal(key, plaintext, AAD), AAD) == plaintext


def test_reply_identity_round_trips_through_a_seal(key: bytes) -> None:
    """The real use: a reply identity sealed for the session comes back as the same key."""
    identity = keys.generate_identity()
    sealed = sealing.seal(key, str(identity).encode(), AAD)
    opened = keys.parse_identity(sealing.unseal(key, sealed, AAD).decode())
    assert str(opened) == str(identity)


def test_sealed_form_is_nonce_ciphertext_tag_and_hides_the_plaintext(key: bytes) -> None:
    """Output is 12-byte nonce + ciphertext + 16-byte tag, and the plaintext does not appear."""
    plaintext = b"AGE-SECRET-KEY-1PLAINTEXTMUSTNOTAPPEAR"
    sealed = sealing.seal(key, plaintext, AAD)
    assert len(sealed) == 12 + len(plaintext) + 16
    assert plaintext not in sealed


def test_sealing_twice_uses_fresh_nonces(key: bytes) -> None:
    """The same plaintext sealed twice gives different outputs with different nonces."""
    first, second = sealing.seal(key, b"same", AAD), sealing.seal(key, b"same", AAD)
    assert first != second
    assert first[:12] != second[:12]


def test_wrong_key_raises_decryption_error(key: bytes) -> None:
    """Another session's key cannot open the seal (the DB alone opens nothing)."""
    sealed = sealing.seal(key, b"secret", AAD)
    with pytest.raises(DecryptionError):
        sealing.unseal(sealing.new_session_key(), sealed, AAD)


def test_wrong_aad_raises_decryption_error(key: bytes) -> None:
    """A sealed value moved to another context (different aad) does not open."""
    sealed = sealing.seal(key, b"secret", AAD)
    with pytest.raises(DecryptionError):
        sealing.unseal(key, sealed, b"session:other")


@pytest.mark.parametrize("index", [0, 11, 12, 20, -17, -1])
def test_any_flipped_bit_raises_decryption_error(key: bytes, index: int) -> None:
    """A flipped bit in the nonce, ciphertext or tag makes unseal fail."""
    damaged = bytearray(sealing.seal(key, b"twelve bytes", AAD))
    damaged[index] ^= 0x80
    with pytest.raises(DecryptionError):
        sealing.unseal(key, bytes(damaged), AAD)


@pytest.mark.parametrize("keep", [0, 1, 11, 12, 27, -1])
def test_truncated_seal_raises_decryption_error(key: bytes, keep: int) -> None:
    """A truncated sealed value (even below nonce + tag length) raises DecryptionError."""
    sealed = sealing.seal(key, b"twelve bytes", AAD)
    with pytest.raises(DecryptionError):
        sealing.unseal(key, sealed[:keep], AAD)


def test_extended_seal_raises_decryption_error(key: bytes) -> None:
    """Bytes appended to a sealed value make it fail, not be ignored."""
    with pytest.raises(DecryptionError):
        sealing.unseal(key, sealing.seal(key, b"x", AAD) + b"\x00", AAD)


@pytest.mark.parametrize("length", [0, 16, 31, 33])
def test_malformed_key_from_a_cookie_is_a_decryption_error(key: bytes, length: int) -> None:
    """unseal treats a wrong-length key (attacker-controlled cookie) as a failed decryption."""
    sealed = sealing.seal(key, b"x", AAD)
    with pytest.raises(DecryptionError):
        sealing.unseal(b"k" * length, sealed, AAD)


@pytest.mark.parametrize("length", [0, 16, 31, 33])
def test_seal_refuses_a_wrong_length_key(length: int) -> None:
    """Sealing with a key that is not 32 bytes is a programming error (ValueError)."""
    with pytest.raises(ValueError, match="32 bytes"):
        sealing.seal(b"k" * length, b"x", AAD)


def test_failure_message_is_the_same_whatever_went_wrong(key: bytes) -> None:
    """Wrong key, truncation and tampering are indistinguishable to the caller."""
    sealed = sealing.seal(key, b"secret", AAD)
    messages = set()
    for attempt_key, attempt in ((sealing.new_session_key(), sealed), (key, sealed[:5])):
        with pytest.raises(DecryptionError) as caught:
            sealing.unseal(attempt_key, attempt, AAD)
        messages.add(str(caught.value))
        assert caught.value.__cause__ is None
    assert len(messages) == 1
