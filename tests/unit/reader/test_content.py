"""sealdrop.reader.content: cached items decrypted in memory, streamed with a progress callback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sealdrop.crypto.envelope import decrypt_bytes, encrypt_bytes
from sealdrop.crypto.keys import Identity, generate_identity, recipient_of
from sealdrop.errors import DecryptionError, NotCached
from sealdrop.reader.cache import CiphertextCache
from sealdrop.reader.content import decrypt_item
from sealdrop.reader.store import CacheState, LocalItem

ITEM_ID = "ab" * 16
# Several 64 KiB age chunks and a partial last one, so the stream takes many reads.
PLAINTEXT_SIZE = 3 * 1024 * 1024 + 12_345


class Stop(Exception):
    """Raised by a progress callback to stop a decryption (say, Ctrl-C on a progress bar)."""


@pytest.fixture(scope="module")
def identity() -> Identity:
    """This device's identity."""
    return generate_identity()


@pytest.fixture(scope="module")
def plaintext() -> bytes:
    """A submitted file's content, incompressible."""
    return os.urandom(PLAINTEXT_SIZE)


@pytest.fixture(scope="module")
def ciphertext(identity: Identity, plaintext: bytes) -> bytes:
    """The file as the server stores it: an age file for this device."""
    return encrypt_bytes(plaintext, [recipient_of(identity)])


def cached_item(
    cache: CiphertextCache, ciphertext: bytes, state: CacheState = CacheState.CACHED
) -> LocalItem:
    """A file item whose ciphertext is in ``cache``, as sync leaves it."""
    cache.path(ITEM_ID).write_bytes(ciphertext)
    return LocalItem(
        id=ITEM_ID,
        source_id="cd" * 16,
        seq=1,
        kind="file",
        arrival_day=None,
        size=len(ciphertext),
        digest="blake3:" + "0" * 64,
        metadata=None,
        author=None,
        seen=False,
        cache=state,
    )


def test_streamed_decryption_reports_progress_and_equals_the_one_shot_result(
    tmp_path: Path, identity: Identity, plaintext: bytes, ciphertext: bytes
) -> None:
    """With a progress callback, every call carries the ciphertext's size as the total, the
    counts only grow and end at that total, and the plaintext is the one-shot decryption's."""
    cache = CiphertextCache(tmp_path / "cache")
    item = cached_item(cache, ciphertext)
    calls: list[tuple[int, int]] = []

    result = decrypt_item(cache, item, identity, lambda done, total: calls.append((done, total)))

    assert result == decrypt_bytes(ciphertext, [identity]) == plaintext
    assert len(calls) > 10, "progress must follow the reads, not come once at the end"
    assert {total for _, total in calls} == {len(ciphertext)}
    counts = [done for done, _ in calls]
    assert counts == sorted(set(counts)), "each call reports more than the one before"
    assert counts[0] > 0
    assert counts[-1] == len(ciphertext)


def test_decryption_without_progress_gives_the_same_plaintext(
    tmp_path: Path, identity: Identity, plaintext: bytes, ciphertext: bytes
) -> None:
    """Without a callback the same streamed path gives the same plaintext."""
    cache = CiphertextCache(tmp_path / "cache")
    assert decrypt_item(cache, cached_item(cache, ciphertext), identity) == plaintext


def test_nothing_but_the_ciphertext_is_on_disk_after_a_streamed_decryption(
    tmp_path: Path, identity: Identity, plaintext: bytes, ciphertext: bytes
) -> None:
    """Streaming decrypts into memory: the folder holds the cached ciphertext and nothing else."""
    cache = CiphertextCache(tmp_path / "cache")
    decrypt_item(cache, cached_item(cache, ciphertext), identity, lambda done, total: None)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [cache.path(ITEM_ID)]
    assert plaintext[:4096] not in cache.path(ITEM_ID).read_bytes()


def test_altered_ciphertext_fails_to_decrypt_midway(
    tmp_path: Path, identity: Identity, ciphertext: bytes
) -> None:
    """A chunk altered in the middle is a DecryptionError, after progress through the good
    chunks before it; no partial plaintext is returned."""
    damaged = bytearray(ciphertext)
    damaged[len(damaged) // 2] ^= 0x01
    cache = CiphertextCache(tmp_path / "cache")
    item = cached_item(cache, bytes(damaged))
    calls: list[int] = []
    with pytest.raises(DecryptionError):
        decrypt_item(cache, item, identity, lambda done, total: calls.append(done))
    assert calls
    assert calls[-1] < len(ciphertext)


def test_an_exception_from_the_progress_callback_stops_decryption_as_itself(
    tmp_path: Path, identity: Identity, ciphertext: bytes
) -> None:
    """The callback's own exception reaches the caller unchanged (not disguised as a crypto
    error), so an interrupted progress bar interrupts the decryption."""
    cache = CiphertextCache(tmp_path / "cache")
    item = cached_item(cache, ciphertext)

    def stop_halfway(done: int, total: int) -> None:
        if done > total // 2:
            raise Stop

    with pytest.raises(Stop):
        decrypt_item(cache, item, identity, stop_halfway)


def test_an_item_not_cached_is_not_decrypted(
    tmp_path: Path, identity: Identity, ciphertext: bytes
) -> None:
    """An item marked corrupted is refused with NotCached, even if a file is in the cache."""
    cache = CiphertextCache(tmp_path / "cache")
    item = cached_item(cache, ciphertext, CacheState.CORRUPTED)
    with pytest.raises(NotCached, match="corrupted on the server"):
        decrypt_item(cache, item, identity, lambda done, total: None)
