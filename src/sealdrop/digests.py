"""Content digests of stored ciphertext: an item's ``digest`` in the journalist API (also its
ETag), what the reader checks a download against, what ``restore --check`` checks a blob against.

A digest names its algorithm, as OCI's content digests do: ``blake3:`` and 64 hex digits for
every blob stored now, ``sha256:`` and 64 hex digits for blobs stored before BLAKE3 (migration
0009 gave their hex SHA-256 this prefix). Checking a digest uses the algorithm it names, so old
and new blobs are checked alike, and a reader keeps what it cached before the change.

Why BLAKE3: the server hashes every byte of ciphertext it stores, while the upload arrives.
SHA-256 cost 0.55 CPU-s per GiB on its own even with the CPU's SHA instructions, about a third of
the server's CPU in an upload (bench/README.md, session 11); BLAKE3 costs 0.14 on the same host.
Both give 256-bit digests with 128-bit collision resistance. Neither is an authenticator here: a
server that wanted to swap ciphertext could give the swapped file's digest too (age's own
authentication and the journalist's keys are what protect content); the digest catches a blob
damaged in storage, in a backup or on the way, and names content for caches (the ETag). The
library is ``blake3``, the BLAKE3 team's own Rust implementation bound for Python (it releases
the GIL on large inputs, as hashlib does); SHA-256 stays hashlib's.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import blake3

if TYPE_CHECKING:  # collections.abc.Buffer from Python 3.12
    from typing_extensions import Buffer

__all__ = ["CURRENT", "FORM", "ContentHash", "like", "new", "valid"]


class _Hasher(Protocol):
    def update(self, data: Buffer, /) -> object: ...

    def hexdigest(self) -> str: ...


CURRENT = "blake3"
_ALGORITHMS: dict[str, Callable[[], _Hasher]] = {"blake3": blake3.blake3, "sha256": hashlib.sha256}
# The whole form, for values read from outside (the API's answers, a restored database). The
# journalist API's schema (sealdrop.wire, a leaf that imports no project module) spells the same
# form; tests/unit/test_digests.py holds the two together.
FORM = re.compile(r"(?:blake3|sha256):[0-9a-f]{64}")


class ContentHash:
    """A digest being computed: ``update`` with the bytes in order, then ``text()``."""

    __slots__ = ("_hash", "algorithm")

    def __init__(self, algorithm: str = CURRENT) -> None:
        self.algorithm = algorithm
        self._hash = _ALGORITHMS[algorithm]()

    def update(self, data: Buffer) -> None:
        self._hash.update(data)

    def text(self) -> str:
        """The digest of everything so far, ``ALGORITHM:HEX``."""
        return f"{self.algorithm}:{self._hash.hexdigest()}"


def new() -> ContentHash:
    """A digest of new content, with the current algorithm."""
    return ContentHash()


def valid(text: str) -> bool:
    return FORM.fullmatch(text) is not None


def like(digest: str) -> ContentHash:
    """A digest to check content against ``digest``: computed with the algorithm it names.
    ValueError for anything that is not a digest of a known algorithm."""
    if not valid(digest):
        raise ValueError(f"not a content digest: {digest[:80]!r}")
    return ContentHash(digest.partition(":")[0])
