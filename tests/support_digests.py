"""The content digest a test expects for some bytes, computed with the BLAKE3 library itself
(not through ``sealdrop.digests``, which is what the tests check). tests/interop/test_b3sum.py
holds the library's digests to Debian's ``b3sum``."""

from __future__ import annotations

import blake3


def blake3_digest(data: bytes) -> str:
    return "blake3:" + blake3.blake3(data).hexdigest()
