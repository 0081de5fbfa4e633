"""A staged file written by another process and hashed by this one as it grows
(storage/direct_write.py): through read-only mappings of the written region, window by window,
never read into a buffer of this process."""

from __future__ import annotations

import errno
import itertools
import os
import time
from pathlib import Path

import pytest

from sealdrop.storage import blobs_fs, direct_write
from sealdrop.storage.direct_write import FileDirectWrite
from support_digests import blake3_digest


def follow(path: Path) -> tuple[int, FileDirectWrite, dict[str, object]]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    result: dict[str, object] = {}

    def done(size: int, digest: str) -> None:
        result.update(size=size, digest=digest)

    return fd, FileDirectWrite(fd, done, blobs_fs._storage_error), result


def write_in_pieces(path: Path, data: bytes, piece: int, pause: float) -> dict[str, object]:
    """``data`` written to a new file at ``path`` in pieces of ``piece`` bytes, ``pause`` s
    apart, as the age child writes, while a FileDirectWrite follows it; what it reported."""
    fd, follower, result = follow(path)
    try:
        for start in range(0, len(data), piece):
            os.write(fd, data[start : start + piece])
            time.sleep(pause)
        follower.finish()
    finally:
        os.close(fd)
    return result


def whole(data: bytes) -> dict[str, object]:
    return {"size": len(data), "digest": blake3_digest(data)}


def test_a_growing_file_is_hashed_from_mappings_not_read_into_a_buffer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The digest thread reads nothing with read/pread/preadv (a copy of every byte into a
    buffer of the server, ~0.05 CPU-s/GiB): it hashes mappings of the file, and the size and
    digest are those of every byte written, across windows and a last partial one."""

    def no_read(*args: object) -> None:
        raise AssertionError("the staged file was read into a buffer")

    for name in ("read", "pread", "preadv", "readv"):
        monkeypatch.setattr(f"sealdrop.storage.direct_write.os.{name}", no_read)
    data = os.urandom(2 * direct_write._WINDOW + 12_345)
    # Pieces that straddle the windows.
    assert write_in_pieces(tmp_path / "staged", data, 3_000_001, 0.01) == whole(data)


def test_the_hash_stays_behind_the_writer_until_a_whole_window_is_written(
    tmp_path: Path,
) -> None:
    """While the writer runs, only whole windows below the file's size are hashed (a mapping
    past the end would fault); the rest waits for the writer to exit."""
    fd, follower, result = follow(tmp_path / "staged")
    try:
        os.write(fd, b"x" * (direct_write._WINDOW - 1))
        time.sleep(0.1)
        assert follower._size == 0
        os.write(fd, b"y" * 2)
        deadline = time.monotonic() + 5
        while follower._size == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert follower._size == direct_write._WINDOW
        follower.finish()
    finally:
        os.close(fd)
    assert result["size"] == direct_write._WINDOW + 1


def test_a_filesystem_that_cannot_map_files_is_read_back_instead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the blob store's filesystem refuses mmap (ENODEV: FUSE with direct_io, some
    network mounts), the file is read back instead, and the size and digest are still those of
    every byte written (with mappings alone, every file upload would fail there)."""

    def no_mapping(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENODEV, "No such device")

    monkeypatch.setattr("sealdrop.storage.direct_write.mmap.mmap", no_mapping)
    data = os.urandom(direct_write._WINDOW + 5_000_000)
    assert write_in_pieces(tmp_path / "staged", data, 4_000_000, 0.05) == whole(data)


def test_each_window_is_sent_to_the_disk_once_hashed_and_a_refusal_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a window is hashed the kernel is asked to start writing it to disk (so that the disk
    works while the upload goes on, instead of all at the final fsync): every byte of the file is
    advised exactly once, in order, never past what was hashed; a filesystem that refuses the
    advice changes neither the size nor the digest."""
    advised: list[tuple[int, int, int]] = []

    def refusing_fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        advised.append((offset, length, advice))
        raise OSError(errno.ESPIPE, "Illegal seek")

    monkeypatch.setattr("sealdrop.storage.direct_write.os.posix_fadvise", refusing_fadvise)
    data = os.urandom(2 * direct_write._WINDOW + 4_321)
    assert write_in_pieces(tmp_path / "staged", data, 1_000_003, 0.005) == whole(data)
    assert {advice for _, _, advice in advised} == {os.POSIX_FADV_DONTNEED}
    offsets = [(offset, offset + length) for offset, length, _ in advised]
    assert offsets[0][0] == 0
    assert all(a[1] == b[0] for a, b in itertools.pairwise(offsets))
    assert offsets[-1][1] == len(data)
