"""age's post-quantum hybrid keys: ML-KEM-768 + X25519 ("X-Wing"), ``age1pq1…`` recipients.

The C2SP age spec ("The MLKEM768-X25519 (i.e. X-Wing) hybrid post-quantum recipient type"): an
identity is a 32-byte random seed, Bech32-encoded with HRP ``AGE-SECRET-KEY-PQ-``; the recipient
is the KEM's public key for that seed (draft-ietf-hpke-pq MLKEM768-X25519, which is X-Wing,
draft-connolly-cfrg-xwing-kem), Bech32 with HRP ``age1pq`` and no 90-character limit (it is 1,959
characters long).

What is ours here is only the key *encoding* and the seed expansion the KEM specifies
(SHAKE256(seed, 96): the first 64 bytes are the ML-KEM-768 seed d‖z, the last 32 the X25519
scalar). ML-KEM, X25519, SHAKE256 and the hybrid KEM itself come from pyca/cryptography; the CCTV
``hybrid*`` test vectors check that the expansion gives the keys age itself derives.

Pure: no I/O.
"""

from __future__ import annotations

import os
from typing import final

from bech32 import bech32_decode, bech32_encode, convertbits
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from sealdrop.errors import InvalidKeyError

__all__ = ["HYBRID_ENC_LEN", "HYBRID_INFO", "HYBRID_SUITE", "HybridIdentity", "HybridRecipient"]

IDENTITY_HRP = "age-secret-key-pq-"
RECIPIENT_HRP = "age1pq"
SEED_LEN = 32
_MLKEM_PUBLIC_LEN = 1184
_X25519_LEN = 32
PUBLIC_LEN = _MLKEM_PUBLIC_LEN + _X25519_LEN  # 1,216 bytes: ML-KEM-768 key ‖ X25519 key
# The mlkem768x25519 stanza's HPKE parameters (C2SP age): SealBase with KEM MLKEM768-X25519,
# HKDF-SHA256 and ChaCha20Poly1305, this info string, empty aad.
HYBRID_INFO = b"age-encryption.org/mlkem768x25519"
HYBRID_SUITE = hpke.Suite(
    hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305
)
HYBRID_ENC_LEN = hpke.KEM.MLKEM768_X25519.enc_length()  # 1,120: ML-KEM ciphertext ‖ X25519 share
# A recipient string is ~1,959 characters; anything much longer is not one (and would only make
# the pure-Python Bech32 checksum work for nothing).
_MAX_TEXT = 2100


def _bech32(hrp: str, payload: bytes) -> str:
    five_bit = convertbits(payload, 8, 5)
    if five_bit is None:  # pragma: no cover - convertbits only fails on out-of-range input
        raise ValueError("cannot Bech32-encode")
    return str(bech32_encode(hrp, five_bit))


def _unbech32(text: str, hrp: str, length: int, what: str) -> bytes:
    # bech32 >= 1.2 has no 90-character limit, which age's long keys need (the spec: "Bech32 …
    # without length limits on the data part"); we bound the length ourselves instead.
    if len(text) > _MAX_TEXT:
        raise InvalidKeyError(f"not a valid {what}")
    found_hrp, data = bech32_decode(text)
    raw = None if data is None else convertbits(data, 5, 8, False)
    if found_hrp != hrp or raw is None or len(raw) != length:
        raise InvalidKeyError(f"not a valid {what}")
    return bytes(raw)


@final
class HybridRecipient:
    """An ``age1pq1…`` public key: ML-KEM-768 encapsulation key ‖ X25519 public key."""

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes) -> None:
        if len(raw) != PUBLIC_LEN:
            raise InvalidKeyError("an age hybrid recipient is 1216 bytes")
        try:
            # Validated now (ML-KEM's modulus check, X25519 length), not at the first encryption.
            mlkem.MLKEM768PublicKey.from_public_bytes(raw[:_MLKEM_PUBLIC_LEN])
            x25519.X25519PublicKey.from_public_bytes(raw[_MLKEM_PUBLIC_LEN:])
        except ValueError:
            raise InvalidKeyError("not a valid age hybrid recipient") from None
        self._raw = bytes(raw)

    @classmethod
    def from_str(cls, text: str) -> HybridRecipient:
        """Parse ``age1pq1…``; InvalidKeyError for anything else."""
        return cls(_unbech32(text, RECIPIENT_HRP, PUBLIC_LEN, "age hybrid recipient (age1pq1…)"))

    @property
    def raw(self) -> bytes:
        """The 1,216-byte public key, as HPKE serialises it."""
        return self._raw

    def hpke_key(self) -> hpke.MLKEM768X25519PublicKey:
        """The key as pyca's HPKE suite takes it."""
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(self._raw[:_MLKEM_PUBLIC_LEN]),
            x25519.X25519PublicKey.from_public_bytes(self._raw[_MLKEM_PUBLIC_LEN:]),
        )

    def __str__(self) -> str:
        return _bech32(RECIPIENT_HRP, self._raw)

    def __repr__(self) -> str:
        text = str(self)
        return f"HybridRecipient({text[:16]}…{text[-8:]})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HybridRecipient) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)


@final
class HybridIdentity:
    """An ``AGE-SECRET-KEY-PQ-1…`` private key (a 32-byte seed). A secret: ``repr`` hides it."""

    __slots__ = ("_private", "_public", "_seed", "_x25519")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_LEN:
            raise ValueError(f"an age hybrid identity is a {SEED_LEN}-byte seed, got {len(seed)}")
        self._seed = bytes(seed)
        # X-Wing's expandDecapsulationKey: SHAKE256(seed) → ML-KEM seed (d‖z) ‖ X25519 scalar.
        digest = hashes.Hash(hashes.SHAKE256(96))
        digest.update(self._seed)
        expanded = digest.finalize()
        mlkem_key = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
        x_key = x25519.X25519PrivateKey.from_private_bytes(expanded[64:96])
        self._x25519 = x_key
        self._private = hpke.MLKEM768X25519PrivateKey(mlkem_key, x_key)
        self._public = HybridRecipient(
            mlkem_key.public_key().public_bytes_raw() + x_key.public_key().public_bytes_raw()
        )

    @classmethod
    def generate(cls) -> HybridIdentity:
        """A fresh identity from 32 bytes of the OS CSPRNG, as the spec says."""
        return cls(os.urandom(SEED_LEN))

    @classmethod
    def from_str(cls, text: str) -> HybridIdentity:
        """Parse ``AGE-SECRET-KEY-PQ-1…`` (either case); the error never repeats the text."""
        return cls(_unbech32(text, IDENTITY_HRP, SEED_LEN, "age hybrid identity"))

    def to_public(self) -> HybridRecipient:
        """The ``age1pq1…`` recipient that encrypts to this identity."""
        return self._public

    def hpke_key(self) -> hpke.MLKEM768X25519PrivateKey:
        """The key as pyca's HPKE suite takes it (to open ``mlkem768x25519`` stanzas)."""
        return self._private

    def refuses_share(self, share: bytes) -> bool:
        """Whether the X25519 half of an encapsulation gives an all-zero shared secret.

        X-Wing itself does not check, but age does (a low-order point contributes nothing and
        the CCTV vectors expect such a stanza to be rejected); pyca's X25519 refuses it for us.
        """
        try:
            self._x25519.exchange(x25519.X25519PublicKey.from_public_bytes(share))
        except ValueError:
            return True
        return False

    def __str__(self) -> str:
        # Upper case, as age-keygen writes identities.
        return _bech32(IDENTITY_HRP, self._seed).upper()

    def __repr__(self) -> str:
        # Never the seed: a repr ends up in logs and tracebacks.
        return f"HybridIdentity(public={self._public!r})"
