"""Typed helpers around age keys of both kinds: X25519 (pyrage) and post-quantum hybrid.

``Recipient`` and ``Identity`` cover both kinds: classic X25519 keys (``age1…``,
``AGE-SECRET-KEY-1…``), which are pyrage's own classes, and the hybrid ML-KEM-768 + X25519 keys
(``age1pq1…``, ``AGE-SECRET-KEY-PQ-1…``) of ``crypto/hybrid_keys.py``. pyrage ships no type stubs,
so its classes are declared here for the type checker and bound to the real pyrage classes at
runtime: callers get nominal types (an identity can never be passed where a recipient is expected)
without ``Any`` leaking out of this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeAlias, final

from bech32 import bech32_decode, bech32_encode, convertbits
from pyrage import IdentityError, RecipientError, x25519

from sealdrop.crypto.hybrid_keys import HybridIdentity, HybridRecipient
from sealdrop.errors import InvalidKeyError, MixedRecipientKinds

__all__ = [
    "HybridIdentity",
    "HybridRecipient",
    "Identity",
    "Recipient",
    "X25519Identity",
    "X25519Recipient",
    "generate_identity",
    "hybrid_identity_from_seed",
    "identity_from_secret",
    "identity_scalar",
    "is_post_quantum",
    "parse_identity",
    "parse_recipient",
    "recipient_of",
    "require_one_kind",
]

# The Bech32 human-readable part of an age X25519 secret key (C2SP age, "X25519 recipient type").
_SECRET_KEY_HRP = "age-secret-key-"  # noqa: S105 - a format label, not a secret
_RECIPIENT_PREFIX = "age1"
# "1" is not a Bech32 data character, so no X25519 recipient can start like a hybrid one.
_HYBRID_RECIPIENT_PREFIX = "age1pq1"
_HYBRID_IDENTITY_PREFIX = "age-secret-key-pq-1"
_SECRET_LEN = 32

if TYPE_CHECKING:

    @final
    class X25519Recipient:
        """An age X25519 public key; ``str()`` gives the ``age1…`` form."""

    @final
    class X25519Identity:
        """An age X25519 private key; ``str()`` gives the ``AGE-SECRET-KEY-1…`` form (a secret)."""

        def to_public(self) -> X25519Recipient: ...

else:
    X25519Recipient = x25519.Recipient
    X25519Identity = x25519.Identity

# Both kinds. Unions of classes, so ``isinstance(key, Recipient)`` works at runtime too.
Recipient: TypeAlias = X25519Recipient | HybridRecipient
Identity: TypeAlias = X25519Identity | HybridIdentity


def generate_identity(post_quantum: bool = False) -> Identity:
    """A fresh random identity: X25519, or ML-KEM-768 + X25519 hybrid with ``post_quantum``."""
    if post_quantum:
        return HybridIdentity.generate()
    identity: X25519Identity = x25519.Identity.generate()
    return identity


def hybrid_identity_from_seed(seed32: bytes) -> HybridIdentity:
    """The hybrid identity whose 32-byte seed is ``seed32`` (e.g. a KDF output).

    The seed is the whole identity in age's format (``AGE-SECRET-KEY-PQ-1…`` encodes exactly
    these 32 bytes), so stock age ≥ 1.3 loads the same key from ``str()`` of the result.
    """
    return HybridIdentity(seed32)


def is_post_quantum(key: Recipient | Identity) -> bool:
    """Whether ``key`` is of the hybrid post-quantum kind (``age1pq1…`` / ``…-PQ-1…``)."""
    return isinstance(key, HybridRecipient | HybridIdentity)


def require_one_kind(recipients: Iterable[Recipient]) -> bool:
    """Whether ``recipients`` are all hybrid (True) or all X25519 (False).

    A mix raises MixedRecipientKinds: the age format says a file SHOULD NOT be encrypted to both
    kinds, as the classic key would open a file that claims to resist a quantum computer. No
    recipient at all raises ValueError (data nobody could ever open).
    """
    kinds = {is_post_quantum(recipient) for recipient in recipients}
    if not kinds:
        raise ValueError("encryption needs at least one recipient")
    if len(kinds) > 1:
        raise MixedRecipientKinds(
            "post-quantum (age1pq1…) and X25519 (age1…) recipients cannot share a file"
        )
    return kinds == {True}


def recipient_of(identity: Identity) -> Recipient:
    """The public recipient that encrypts to ``identity`` (of the same kind)."""
    return identity.to_public()


def parse_recipient(text: str) -> Recipient:
    """Parse an ``age1…`` X25519 or ``age1pq1…`` hybrid recipient; else InvalidKeyError.

    Plugin recipients (``age1yubikey1…``, …) are refused on purpose: the server only encrypts to
    native key types, which age itself decrypts without plugins (hybrid ones from age 1.3 on).
    """
    candidate = text.strip()
    if candidate.startswith(_HYBRID_RECIPIENT_PREFIX):
        return HybridRecipient.from_str(candidate)
    if not candidate.startswith(_RECIPIENT_PREFIX):
        raise InvalidKeyError("not an age recipient (age1… or age1pq1…)")
    try:
        recipient: X25519Recipient = x25519.Recipient.from_str(candidate)
    except RecipientError:
        raise InvalidKeyError("not a valid age X25519 recipient") from None
    return recipient


def parse_identity(text: str) -> Identity:
    """Parse an ``AGE-SECRET-KEY-1…`` or ``AGE-SECRET-KEY-PQ-1…`` identity; else InvalidKeyError.

    The error message never repeats the text: it may be (a mangled copy of) a private key.
    """
    candidate = text.strip()
    if candidate.lower().startswith(_HYBRID_IDENTITY_PREFIX):
        return HybridIdentity.from_str(candidate)
    try:
        identity: X25519Identity = x25519.Identity.from_str(candidate)
    except IdentityError:
        # `from None`: the pyrage exception is dropped so no traceback can carry key material.
        raise InvalidKeyError("not a valid age identity") from None
    return identity


def identity_from_secret(secret32: bytes) -> X25519Identity:
    """The X25519 identity whose scalar is ``secret32`` (32 bytes, e.g. a KDF output).

    Encoded as the standard age secret-key string and parsed by pyrage, so the key is exactly the
    one ``age`` itself would load from that string (a test checks it against ``age-keygen -y``).
    """
    if len(secret32) != _SECRET_LEN:
        raise ValueError(f"an X25519 secret is {_SECRET_LEN} bytes, got {len(secret32)}")
    five_bit = convertbits(secret32, 8, 5)
    if five_bit is None:  # pragma: no cover - convertbits only fails on out-of-range input
        raise ValueError("cannot Bech32-encode the secret")
    encoded = bech32_encode(_SECRET_KEY_HRP, five_bit)
    try:
        identity: X25519Identity = x25519.Identity.from_str(str(encoded).upper())
    except IdentityError:  # pragma: no cover - every 32-byte string is an X25519 scalar
        raise InvalidKeyError("not a valid age X25519 identity") from None
    return identity


def identity_scalar(identity: X25519Identity) -> bytes:
    """The 32-byte X25519 scalar of ``identity`` (the inverse of ``identity_from_secret``).

    For our own age decryptor (pyrage does not expose the key); a secret, never to be stored.
    """
    hrp, data = bech32_decode(str(identity).lower())
    scalar = None if data is None else convertbits(data, 5, 8, False)
    if hrp != _SECRET_KEY_HRP or scalar is None or len(scalar) != _SECRET_LEN:
        raise InvalidKeyError("not an age X25519 identity")  # pragma: no cover - pyrage's own
    return bytes(scalar)
