"""Typed helpers around age X25519 keys (pyrage.x25519).

pyrage ships no type stubs, so ``Identity`` and ``Recipient`` are declared here for the type
checker and bound to the real pyrage classes at runtime: callers get nominal types (an identity can
never be passed where a recipient is expected) without ``Any`` leaking out of this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from bech32 import bech32_encode, convertbits
from pyrage import IdentityError, RecipientError, x25519

from sealdrop.errors import InvalidKeyError

__all__ = [
    "Identity",
    "Recipient",
    "generate_identity",
    "identity_from_secret",
    "parse_identity",
    "parse_recipient",
    "recipient_of",
]

# The Bech32 human-readable part of an age X25519 secret key (C2SP age, "X25519 recipient type").
_SECRET_KEY_HRP = "age-secret-key-"  # noqa: S105 - a format label, not a secret
_RECIPIENT_PREFIX = "age1"
_SECRET_LEN = 32

if TYPE_CHECKING:

    @final
    class Recipient:
        """An age X25519 public key; ``str()`` gives the ``age1…`` form."""

    @final
    class Identity:
        """An age X25519 private key; ``str()`` gives the ``AGE-SECRET-KEY-1…`` form (a secret)."""

        def to_public(self) -> Recipient: ...

else:
    Recipient = x25519.Recipient
    Identity = x25519.Identity


def generate_identity() -> Identity:
    """A fresh random X25519 identity."""
    identity: Identity = x25519.Identity.generate()
    return identity


def recipient_of(identity: Identity) -> Recipient:
    """The public recipient that encrypts to ``identity``."""
    return identity.to_public()


def parse_recipient(text: str) -> Recipient:
    """Parse an ``age1…`` X25519 recipient; anything else raises InvalidKeyError.

    Plugin and post-quantum recipients (``age1yubikey1…``, ``age1pq1…``) are refused on purpose: the
    server only encrypts to key types that stock ``age`` can decrypt without plugins.
    """
    candidate = text.strip()
    if not candidate.startswith(_RECIPIENT_PREFIX):
        raise InvalidKeyError("not an age X25519 recipient (age1…)")
    try:
        recipient: Recipient = x25519.Recipient.from_str(candidate)
    except RecipientError:
        raise InvalidKeyError("not a valid age X25519 recipient") from None
    return recipient


def parse_identity(text: str) -> Identity:
    """Parse an ``AGE-SECRET-KEY-1…`` X25519 identity; anything else raises InvalidKeyError.

    The error message never repeats the text: it may be (a mangled copy of) a private key.
    """
    try:
        identity: Identity = x25519.Identity.from_str(text.strip())
    except IdentityError:
        # `from None`: the pyrage exception is dropped so no traceback can carry key material.
        raise InvalidKeyError("not a valid age X25519 identity") from None
    return identity


def identity_from_secret(secret32: bytes) -> Identity:
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
    return parse_identity(str(encoded).upper())
