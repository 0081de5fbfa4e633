"""The reader's verified download (reader/download.py) against answers made here: the ETag and
the digest it checks, including a server of the release before named digests, whose ETag is
the bare hex of a SHA-256."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from sealdrop.errors import Corrupted
from sealdrop.reader.download import Opener, download
from support_digests import blake3_digest

DATA = os.urandom(200_000)
SHA256_HEX = hashlib.sha256(DATA).hexdigest()


def serving(etag: str, content: bytes = DATA) -> Opener:
    @contextmanager
    def opener(headers: dict[str, str]) -> Iterator[httpx.Response]:
        assert "range" not in headers  # nothing kept from before in these tests
        yield httpx.Response(200, headers={"etag": f'"{etag}"'}, content=content)

    return opener


@pytest.mark.parametrize(
    ("etag", "expected"),
    [
        (blake3_digest(DATA), blake3_digest(DATA)),  # this release
        (f"sha256:{SHA256_HEX}", f"sha256:{SHA256_HEX}"),  # an item stored before BLAKE3
        (SHA256_HEX, f"sha256:{SHA256_HEX}"),  # a server not upgraded yet
    ],
    ids=["blake3", "sha256", "older-server"],
)
def test_a_download_is_kept_when_its_etag_and_bytes_match_the_digest(
    tmp_path: Path, etag: str, expected: str
) -> None:
    """The file is kept, whole, when the bytes have the announced digest and the ETag names it
    (the same digest, or an older server's bare hex SHA-256 for a sha256 digest)."""
    dest = tmp_path / "item"
    result = download(serving(etag), dest, expected)
    assert dest.read_bytes() == DATA
    assert (result.size, result.resumed_from) == (len(DATA), 0)


def test_a_bare_hex_etag_does_not_stand_for_a_blake3_digest(tmp_path: Path) -> None:
    """Bare hex is accepted only as an older server's SHA-256: beside a BLAKE3 digest it is a
    different blob, refused before anything is kept."""
    dest = tmp_path / "item"
    with pytest.raises(Corrupted):
        download(serving(SHA256_HEX), dest, blake3_digest(DATA))
    assert not dest.exists()
    assert not dest.with_name("item.part").exists()


def test_bytes_that_do_not_match_are_never_kept(tmp_path: Path) -> None:
    """An older server whose ETag matches but whose bytes were altered: the SHA-256 of what
    arrived decides, and nothing is kept."""
    dest = tmp_path / "item"
    altered = DATA[:-1] + bytes([DATA[-1] ^ 1])
    with pytest.raises(Corrupted):
        download(serving(SHA256_HEX, altered), dest, f"sha256:{SHA256_HEX}")
    assert not dest.exists()
    assert not dest.with_name("item.part").exists()
