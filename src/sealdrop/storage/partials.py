"""The seam of resumable uploads in progress (``services/resumable.py``): where the ciphertext
so far and the sealed stream state are kept between requests, whatever holds them.

``partials_fs.PartialUploads`` keeps them in the instance's blob folder (one server);
``partials_s3.S3PartialUploads`` in the object store, so that any worker sharing it can continue
an upload that another began.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sealdrop.ids import BlobKey

# Far above a sealed stream state (a few hundred bytes), bounding what a damaged record costs.
MAX_STATE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class PartialState:
    expires: int  # unix time after which the upload is swept
    durable: int  # bytes of ciphertext known to be stored
    sealed: bytes  # the stream state, sealed (services/resumable.py)

    def encode(self) -> bytes:
        """The record both stores keep: ``"EXPIRES DURABLE\n"`` then the sealed state."""
        return b"%d %d\n" % (self.expires, self.durable) + self.sealed

    @classmethod
    def decode(cls, raw: bytes) -> PartialState | None:
        """The record ``encode`` wrote, or None if it is not one (the caller's "no such
        upload": a damaged record is never half-trusted)."""
        line, _, sealed = raw.partition(b"\n")
        try:
            expires, durable = (int(v) for v in line.split(b" "))
        except ValueError:
            return None
        return cls(expires, durable, sealed)


class PartialWriting(Protocol):
    @property
    def durable(self) -> int: ...

    def write(self, data: bytes) -> None: ...

    def checkpoint(self) -> int:
        """Make what was written durable, then record its length; return that length."""
        ...

    def close(self) -> None: ...


class PartialStore(Protocol):
    def create(self, upload_id: str, header: bytes, expires: int, sealed: bytes) -> None: ...

    def state(self, upload_id: str) -> PartialState:
        """NotFound if there is no such upload (or it is damaged)."""
        ...

    def writer(self, upload_id: str, state: PartialState) -> PartialWriting:
        """Continue at the durable length (anything written past it is dropped)."""
        ...

    def finish(self, upload_id: str) -> tuple[BlobKey, int, str]:
        """Make the complete ciphertext a blob; return (key, size, digest)."""
        ...

    def delete(self, upload_id: str) -> None: ...

    def sweep(self, now: int) -> int:
        """Remove uploads whose time has passed; return how many."""
        ...
