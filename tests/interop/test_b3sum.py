"""The server's BLAKE3 content digests against Debian's `b3sum`, the tool docs/api.md gives API
users: a blob written through the filesystem store, both by this process and by another one
(the encrypting child's path, hashed through mappings), has the digest b3sum computes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from sealdrop.storage.blobs_fs import FilesystemBlobStore


def b3sum(b3sum_bin: str, path: Path) -> str:
    done = subprocess.run([b3sum_bin, str(path)], capture_output=True, text=True, check=True)
    return done.stdout.split()[0]


def test_stored_blobs_have_the_digest_b3sum_gives(tmp_path: Path, b3sum_bin: str) -> None:
    """Sizes around BLAKE3's 1 KiB chunks and its wide SIMD path, and one spanning several
    mapped windows of the direct write: "blake3:" + b3sum's hex, every time."""
    store = FilesystemBlobStore(tmp_path / "store")
    source = tmp_path / "source"
    for size in (0, 1, 1023, 1024, 1025, 65_537, 17 * 1024 * 1024 + 3):
        data = os.urandom(size)
        with store.stage() as staged:
            staged.write(data)
            digest = staged.digest
            key, _ = staged.commit()
        path = store.local_path(key)
        assert path is not None
        assert digest == f"blake3:{b3sum(b3sum_bin, path)}", size

        source.write_bytes(data)
        with store.stage() as staged:
            direct = staged.direct_write()
            assert direct is not None
            subprocess.run(["cat", str(source)], stdout=direct.fd, check=True)
            direct.finish()
            assert staged.digest == digest, size
            staged.commit()
