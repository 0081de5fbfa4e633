"""The reader's ciphertext cache: a folder of age files named by item id.

Only ciphertext is ever written there (downloads, verified against their digest by
reader/download.py), and nothing in this module decrypts: plaintext reaches disk only through
export.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_ID = re.compile(r"^[0-9a-f]{32}$")


class CiphertextCache:
    """A folder (mode 0700) of age files named by item id; ``<id>.part`` while downloading."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)

    def path(self, item_id: str) -> Path:
        # Ids come from the server: only 32 hex digits may become a file name.
        if not _ID.match(item_id):
            raise ValueError("malformed item id")
        return self.directory / item_id

    def part(self, item_id: str) -> Path:
        path = self.path(item_id)
        return path.with_name(path.name + ".part")

    def has(self, item_id: str) -> bool:
        return self.path(item_id).is_file()

    def remove(self, item_id: str) -> None:
        self.path(item_id).unlink(missing_ok=True)
        self.part(item_id).unlink(missing_ok=True)

    def prune(self, known: set[str]) -> list[Path]:
        """Delete files that belong to no known item (say, left by a crash); returns them."""
        stray = [p for p in self.directory.iterdir() if p.name.removesuffix(".part") not in known]
        for path in stray:
            path.unlink(missing_ok=True)
        return stray
