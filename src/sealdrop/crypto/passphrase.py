"""Passphrase-encrypted age files (age's scrypt recipient), for small byte strings.

Used for the journalist's identity file: an age file whose only recipient is a passphrase, so the
stock ``age -d`` (and ``age -d -i``, which accepts encrypted identity files) can open it. scrypt's
work factor is chosen by the age library (calibrated to about a second), never by us.
"""

from __future__ import annotations

from pyrage import DecryptError, EncryptError
from pyrage import passphrase as _passphrase

from sealdrop.errors import CryptoError, DecryptionError

__all__ = ["decrypt_with_passphrase", "encrypt_with_passphrase"]


def encrypt_with_passphrase(data: bytes, passphrase: str) -> bytes:
    """``data`` as a binary age file that opens with ``passphrase`` (scrypt recipient)."""
    if not passphrase:
        # An empty passphrase would make an age file anyone can open.
        raise ValueError("passphrase encryption needs a non-empty passphrase")
    try:
        ciphertext: bytes = _passphrase.encrypt(data, passphrase)
    except EncryptError as exc:
        raise CryptoError(f"age passphrase encryption failed: {exc}") from None
    return ciphertext


def decrypt_with_passphrase(data: bytes, passphrase: str) -> bytes:
    """The plaintext of the passphrase-encrypted age file ``data``.

    Raises DecryptionError on a wrong passphrase and on a damaged file alike: age authenticates the
    header with a key that only the right passphrase yields, so the two cannot always be told apart.
    The message never repeats the passphrase.
    """
    try:
        plaintext: bytes = _passphrase.decrypt(data, passphrase)
    except (DecryptError, OSError) as exc:
        raise DecryptionError(f"age passphrase decryption failed: {exc}") from None
    return plaintext
