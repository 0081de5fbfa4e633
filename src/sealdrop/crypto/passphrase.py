"""Passphrase-encrypted age files (age's scrypt recipient), for small byte strings.

Used for the journalist's identity file: an age file whose only recipient is a passphrase, so the
stock ``age -d`` (and ``age -d -i``, which accepts encrypted identity files) can open it. scrypt's
work factor is chosen by the age library, never by us; this module only copes with how it is
chosen.

The age library (rage, through pyrage) calibrates by timing one tiny scrypt run (about a
millisecond): a new file gets the factor that takes about a second here, and a file whose factor
is more than 4 above the calibration is refused before any work ("Excessive work parameter").
One millisecond is at the scheduler's mercy. Measured on a busy two-core machine: a valid
identity file of factor 20 was refused 4 times in 15 (the calibration had dropped to 15-16, and
the refusal was then reported as a wrong passphrase), and new files got factor 17 where the idle
machine gives 19-20, a quarter of the cost for someone guessing passphrases. So: encryption tries
again while the factor is below age's reference default (18) and keeps the strongest file, and
decryption tries again when age refuses for excessive work, then says so (``ExcessiveWork``),
never "wrong passphrase" for a passphrase that was not even tried.
"""

from __future__ import annotations

import re
import time

from pyrage import DecryptError, EncryptError
from pyrage import passphrase as _passphrase

from sealdrop.errors import CryptoError, DecryptionError, ExcessiveWork

__all__ = ["decrypt_with_passphrase", "encrypt_with_passphrase", "work_factor"]

# The reference implementation (age, Go) encrypts with this fixed factor; below it, the file was
# made while the calibration read this machine as slower than it is.
WORK_FACTOR_FLOOR = 18
# Each try re-times the machine. Encrypting costs about a second a try (scrypt runs at the factor
# chosen); a refusal for excessive work costs only the timing, so decryption can try more often.
_ENCRYPT_TRIES = 4
_DECRYPT_TRIES = 8
_DECRYPT_PAUSE = 0.05  # seconds: let a burst of load pass before timing again
_SCRYPT_STANZA = re.compile(rb"\n-> scrypt [A-Za-z0-9+/]{22} ([0-9]{1,2})\n")
_EXCESSIVE_WORK = "Excessive work parameter"


def work_factor(ciphertext: bytes) -> int | None:
    """The scrypt work factor (log2 N) of a passphrase-encrypted age file, from its header."""
    header = ciphertext.split(b"\n--- ", 1)[0] + b"\n"
    found = _SCRYPT_STANZA.search(header)
    return int(found.group(1)) if found else None


def encrypt_with_passphrase(data: bytes, passphrase: str) -> bytes:
    """``data`` as a binary age file that opens with ``passphrase`` (scrypt recipient)."""
    if not passphrase:
        # An empty passphrase would make an age file anyone can open.
        raise ValueError("passphrase encryption needs a non-empty passphrase")
    best: tuple[int, bytes] | None = None
    for _ in range(_ENCRYPT_TRIES):
        try:
            ciphertext: bytes = _passphrase.encrypt(data, passphrase)
        except EncryptError as exc:
            raise CryptoError(f"age passphrase encryption failed: {exc}") from None
        factor = work_factor(ciphertext) or 0
        if best is None or factor > best[0]:
            best = (factor, ciphertext)
        if factor >= WORK_FACTOR_FLOOR:
            break
    assert best is not None
    # A machine that really is slow keeps its strongest try: refusing would leave the journalist
    # without an identity, and the file stays as costly to guess as this machine can afford.
    return best[1]


def decrypt_with_passphrase(data: bytes, passphrase: str) -> bytes:
    """The plaintext of the passphrase-encrypted age file ``data``.

    Raises DecryptionError on a wrong passphrase and on a damaged file alike: age authenticates the
    header with a key that only the right passphrase yields, so the two cannot always be told apart.
    Raises ExcessiveWork when age would not run the file's scrypt (see the module's text). No
    message repeats the passphrase.
    """
    for attempt in range(_DECRYPT_TRIES):
        if attempt:
            time.sleep(_DECRYPT_PAUSE)
        try:
            plaintext: bytes = _passphrase.decrypt(data, passphrase)
        except DecryptError as exc:
            if _EXCESSIVE_WORK not in str(exc):
                raise DecryptionError(f"age passphrase decryption failed: {exc}") from None
            continue
        except OSError as exc:
            raise DecryptionError(f"age passphrase decryption failed: {exc}") from None
        return plaintext
    raise ExcessiveWork(
        f"age would not run this file's passphrase work factor (2^{work_factor(data)}): it timed "
        "this computer as too slow for it, which usually means the computer is busy"
    )
