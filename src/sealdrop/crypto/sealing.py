"""Seal small secrets under a session key (invariant 4: split-knowledge sessions).

The source's cookie carries a random session key; the server stores only the reply identity sealed
under it. The DB alone (no key) or the cookie alone (no sealed blob) opens nothing.

ChaCha20-Poly1305 with a random 96-bit nonce, stored in front of the ciphertext. Random nonces are
safe here because each session key seals only a handful of values, far below the ~2^32 messages
where a nonce collision becomes a concern. ``aad`` binds the sealed value to its context (e.g. the
session id hash) so a sealed blob cannot be moved to another row and still open.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from sealdrop.errors import DecryptionError

__all__ = ["KEY_LEN", "new_session_key", "seal", "unseal"]

KEY_LEN = 32
_NONCE_LEN = 12
_TAG_LEN = 16


def new_session_key() -> bytes:
    """A fresh random 32-byte session key."""
    return os.urandom(KEY_LEN)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """``nonce || ChaCha20-Poly1305(key, nonce, plaintext, aad)``."""
    if len(key) != KEY_LEN:
        raise ValueError(f"a session key is {KEY_LEN} bytes")
    nonce = os.urandom(_NONCE_LEN)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """The plaintext ``seal`` sealed; DecryptionError for a wrong key, aad or altered data.

    The key comes from a cookie, i.e. from the client: a malformed one is a failed decryption too,
    not a programming error, and every failure looks the same to the caller.
    """
    if len(key) != KEY_LEN or len(sealed) < _NONCE_LEN + _TAG_LEN:
        raise DecryptionError("sealed data does not open")
    nonce, ciphertext = sealed[:_NONCE_LEN], sealed[_NONCE_LEN:]
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise DecryptionError("sealed data does not open") from None
