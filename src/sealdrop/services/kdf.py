"""The bounded pool in which codename derivations run (invariant 10).

Each Argon2id call holds 64 MiB for a few hundred milliseconds. However many requests ask at once,
at most ``max_concurrent`` derivations run, so the memory they can take is bounded by
``max_concurrent x 64 MiB``; the others wait their turn.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sealdrop.crypto.codenames import Codename
from sealdrop.crypto.derive import SourceKeys, derive_source_keys


class KdfPool:
    def __init__(self, salt: bytes, max_concurrent: int) -> None:
        self._salt = salt
        self._executor = ThreadPoolExecutor(
            max_workers=max_concurrent, thread_name_prefix="sealdrop-kdf"
        )

    def derive(self, codename: Codename) -> SourceKeys:
        """Derive a source's keys; blocks the caller until a pool slot has done it."""
        return self._executor.submit(derive_source_keys, codename, self._salt).result()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
