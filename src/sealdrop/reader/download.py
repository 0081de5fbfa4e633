"""Verified, resumable downloads of ciphertext into the reader's cache.

A download goes to ``NAME.part`` and resumes it with a Range request; the whole file is hashed
before it is renamed into place, so the cache never holds ciphertext other than what the server
announced (a blob altered on the server is caught here, not at decryption time). The digest is
computed with the algorithm the announced one names (``sealdrop.digests``: BLAKE3, or SHA-256 for
items stored before it). An item stored before the server kept digests (announced as "") is not
checked here; age's authentication of every chunk at decryption is then the only check.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import httpx

from sealdrop import digests
from sealdrop.errors import Corrupted, ProtocolViolation
from sealdrop.reader.compat import etag_names

__all__ = ["CHUNK", "DownloadResult", "Opener", "Progress", "download"]

CHUNK = 64 * 1024
# Reads of the finished file for its digest: larger than the network's chunks, so that BLAKE3
# sees inputs long enough for its wide (SIMD) path.
_HASH_READ = 1024 * 1024

Progress = Callable[[int], None]
"""Called with the number of bytes just received."""

Opener = Callable[[dict[str, str]], AbstractContextManager[httpx.Response]]
"""Opens the GET of the content with these extra headers: a streamed response that is a 200 or a
206 (any other answer raises), and transport failures mapped to the reader's errors."""


@dataclass(frozen=True)
class DownloadResult:
    """How a download went: where it resumed from and how many bytes came over the wire."""

    size: int
    resumed_from: int
    received: int


def download(
    opener: Opener, dest: Path, expected_digest: str, progress: Progress | None = None
) -> DownloadResult:
    """Fetch ciphertext into ``dest``, resuming ``dest.part``.

    On a mismatch the ``.part`` is deleted and :class:`Corrupted` raised (once more from scratch
    first, if the mismatch may come from a stale partial file). A broken connection keeps the
    ``.part`` for next time.
    """
    part = dest.with_name(dest.name + ".part")
    result = _fetch(opener, part, expected_digest, progress)
    actual = _file_digest(part, expected_digest)
    if actual != expected_digest and result.resumed_from > 0:
        # The kept prefix may be what is wrong (a blob replaced since): one fresh try.
        part.unlink()
        result = _fetch(opener, part, expected_digest, progress)
        actual = _file_digest(part, expected_digest)
    if actual != expected_digest:
        part.unlink(missing_ok=True)
        raise Corrupted(expected_digest, actual)
    os.replace(part, dest)
    return result


def _fetch(opener: Opener, part: Path, expected: str, progress: Progress | None) -> DownloadResult:
    offset = part.stat().st_size if part.exists() else 0
    headers = {"range": f"bytes={offset}-"} if offset else {}
    with opener(headers) as response:
        if response.status_code == 416 and offset:
            # The partial file is as long as the blob or longer: start again.
            response.close()
            part.unlink()
            return _fetch(opener, part, expected, progress)
        etag = response.headers.get("etag", "").strip('"')
        if etag and not etag_names(etag, expected):
            part.unlink(missing_ok=True)
            raise Corrupted(expected, etag)
        if response.status_code == 200:
            offset = 0  # the server sent it all: overwrite what was kept
        elif not response.headers.get("content-range", "").startswith(f"bytes {offset}-"):
            raise ProtocolViolation("content range does not match the request")
        received = 0
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if offset else os.O_TRUNC)
        with os.fdopen(os.open(part, flags, 0o600), "wb") as out:
            for chunk in response.iter_bytes(CHUNK):
                out.write(chunk)
                received += len(chunk)
                if progress is not None:
                    progress(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    return DownloadResult(size=offset + received, resumed_from=offset, received=received)


def _file_digest(path: Path, like: str) -> str:
    """The file's digest with the algorithm ``like`` names; "" when ``like`` is "" (no digest
    to check against)."""
    if not like:
        return ""
    digest = digests.like(like)
    with path.open("rb") as stream:
        while chunk := stream.read(_HASH_READ):
            digest.update(chunk)
    return digest.text()
