"""Codename → the source's keys (invariant 3: derived on every login, never stored).

One Argon2id call stretches the codename; HKDF then splits its output into independent values:

* ``lookup_id``: stored in the DB (unique index) to find the source's record;
* ``reply_identity``: the X25519 identity journalists' replies are encrypted to; only its public
  key is stored;
* ``hybrid_reply_identity``: the post-quantum (ML-KEM-768 + X25519) identity replies are
  encrypted to on an instance with ``crypto.post_quantum``, from a 32-byte seed of its own; only
  its public key is stored. Its seed is derived on every instance (an HKDF beside the
  Argon2id), the key itself only when asked for, on post-quantum instances.

Because HKDF outputs under distinct ``info`` strings are independent, the stored lookup id reveals
nothing about the reply identity: a stolen DB cannot decrypt replies without the codename.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealdrop.crypto.codenames import Codename, normalize
from sealdrop.crypto.keys import (
    HybridIdentity,
    Identity,
    Recipient,
    hybrid_identity_from_seed,
    identity_from_secret,
    recipient_of,
)

__all__ = ["SourceKeys", "derive_source_keys"]

# Argon2id parameters, fixed by DESIGN.md ("Security invariants" 3). Memory-hard so that an
# attacker holding the DB (and the instance salt) pays 64 MiB and three passes per codename guess;
# p=1 because the server runs many logins in parallel in a bounded pool (invariant 10), and the
# memory cap there is counted as pool size × 64 MiB. Changing any of these changes every source's
# lookup id and reply key, i.e. locks every existing source out.
ARGON2_TIME_COST = 3
ARGON2_MEMORY_KIB = 65536  # 64 MiB
ARGON2_PARALLELISM = 1
ARGON2_HASH_LEN = 64
# The salt is a per-instance secret: a precomputed codename table for one instance is useless on
# another, and without the salt a stolen lookup id cannot be attacked offline at all.
MIN_SALT_LEN = 16

# Domain-separation labels: each output comes from its own HKDF info string, so none can be
# computed from another. Versioned so a future construction can never collide with this one.
_LOOKUP_ID_INFO = b"sealdrop/v1/lookup-id"
_REPLY_IDENTITY_INFO = b"sealdrop/v1/reply-identity"
# Its own label: the hybrid identity's seed is independent of the X25519 scalar above (and the
# X25519 half inside the hybrid key is expanded from that seed, so it is not the classic key).
_HYBRID_REPLY_IDENTITY_INFO = b"sealdrop/v1/reply-identity-mlkem768x25519"
_OUTPUT_LEN = 32


@dataclass(frozen=True)
class SourceKeys:
    """What a codename unlocks. ``repr`` shows neither field: both identify the source."""

    lookup_id: bytes = field(repr=False)
    reply_identity: Identity = field(repr=False)
    # The hybrid identity's 32-byte seed: the identity itself (its ML-KEM key expansion) is made
    # only when asked for, i.e. on post-quantum instances.
    hybrid_reply_seed: bytes = field(repr=False)

    @cached_property
    def hybrid_reply_identity(self) -> HybridIdentity:
        """The post-quantum reply identity (``AGE-SECRET-KEY-PQ-1…`` whose seed is ours)."""
        return hybrid_identity_from_seed(self.hybrid_reply_seed)

    @property
    def reply_recipient(self) -> Recipient:
        """The public half of ``reply_identity``: what the server stores and journalists use."""
        return recipient_of(self.reply_identity)

    def reply_key(self, post_quantum: bool) -> str:
        """The public key the server stores for replies on an instance of this kind."""
        identity = self.hybrid_reply_identity if post_quantum else self.reply_identity
        return str(recipient_of(identity))


def derive_source_keys(codename: Codename, salt: bytes) -> SourceKeys:
    """Derive a source's lookup id and reply identity from its (normalised) codename.

    Deterministic: the same codename and salt give the same keys; another salt gives unrelated
    ones. Takes ~0.3 s and 64 MiB, so callers must run it in the bounded KDF pool.
    """
    if len(salt) < MIN_SALT_LEN:
        raise ValueError(f"the instance salt must be at least {MIN_SALT_LEN} bytes")
    # A codename that is not in canonical form would derive a valid but different key, silently
    # locking the source out; catch that caller bug here rather than as "unknown codename".
    if normalize(codename) != codename:
        raise ValueError("derive_source_keys needs a normalised codename")
    stretched = hash_secret_raw(
        secret=codename.encode("utf-8"),
        salt=salt,
        time_cost=ARGON2_TIME_COST,
        memory_cost=ARGON2_MEMORY_KIB,
        parallelism=ARGON2_PARALLELISM,
        hash_len=ARGON2_HASH_LEN,
        type=Type.ID,
    )
    return SourceKeys(
        lookup_id=_expand(stretched, _LOOKUP_ID_INFO),
        reply_identity=identity_from_secret(_expand(stretched, _REPLY_IDENTITY_INFO)),
        hybrid_reply_seed=_expand(stretched, _HYBRID_REPLY_IDENTITY_INFO),
    )


def _expand(key_material: bytes, info: bytes) -> bytes:
    # No HKDF salt: the input is already a uniformly random Argon2 output (RFC 5869 §3.1).
    return HKDF(algorithm=SHA256(), length=_OUTPUT_LEN, salt=None, info=info).derive(key_material)
