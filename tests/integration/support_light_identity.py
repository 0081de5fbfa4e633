"""Reader identity files at a light scrypt work factor, for tests whose subject is not the KDF.

Every `reader init` encrypts a new identity file with age's scrypt recipient, at the work factor
the age library calibrates to about a second of this machine (2^18-2^20: 256 MiB-1 GiB of memory,
~2.2 CPU-s here, up to four tries on a busy machine, crypto/passphrase.py), and every process that
opens the file pays the same again. The reader's integration tests set up a dozen readers and open
their files in the pytest worker, in `reader` processes and in reader UI processes: ~70 CPU-s of a
run went to scrypt that those tests do not test.

Inside ``light_identity_kdf()`` the keystore encrypts with ``encrypt_lightly`` instead: the same
age v1 file (one scrypt stanza, header MAC, STREAM payload; C2SP age), at work factor 2^10. What
stays real: the identity, its text, the keystore's checks and file handling, and every *opening*
(pyrage, as in the product, in whichever process opens it). Where the work factor is the point it
is the product's, unchanged: tests/unit/crypto/test_passphrase_work.py (the floor, the retries,
ExcessiveWork), tests/unit/reader/test_keystore*.py (create, load, wrong passphrase), and the e2e
walks, whose `reader init` runs as a process of its own (tests/e2e/test_journalist_walk.py,
test_onion_services.py). test_support_light_identity.py (here) shows that pyrage opens these
files and refuses a wrong passphrase.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from sealdrop.crypto.age_header import INTRO, b64encode, hkdf32
from sealdrop.crypto.age_stream import CHUNK, StreamKeys, encrypt_chunk
from sealdrop.reader import keystore

LIGHT_WORK_FACTOR = 10  # log2 N: 1 MiB of memory, a few milliseconds
_SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"


def encrypt_lightly(data: bytes, passphrase: str) -> bytes:
    """``data`` as a binary age file for ``passphrase`` (one scrypt stanza at 2^10), for files
    of one payload chunk (an identity is a few hundred bytes)."""
    if not passphrase or len(data) > CHUNK:
        raise ValueError("a non-empty passphrase and at most one chunk of data")
    file_key, salt, nonce = os.urandom(16), os.urandom(16), os.urandom(16)
    kdf = Scrypt(salt=_SCRYPT_LABEL + salt, length=32, n=1 << LIGHT_WORK_FACTOR, r=8, p=1)
    wrapped = ChaCha20Poly1305(kdf.derive(passphrase.encode())).encrypt(bytes(12), file_key, None)
    # The wrapped key is 32 bytes: 43 base64 characters, one (final) body line.
    stanza = b"-> scrypt " + b64encode(salt) + b" %d\n" % LIGHT_WORK_FACTOR + b64encode(wrapped)
    header = INTRO + stanza + b"\n---"
    mac = hmac.new(hkdf32(file_key, b"", b"header"), header, hashlib.sha256).digest()
    payload = encrypt_chunk(StreamKeys(hkdf32(file_key, nonce, b"payload")), 0, data, last=True)
    return header + b" " + b64encode(mac) + b"\n" + nonce + payload


@contextmanager
def light_identity_kdf() -> Iterator[None]:
    """Identity files created in this process while inside are encrypted by ``encrypt_lightly``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keystore, "encrypt_with_passphrase", encrypt_lightly)
        yield
