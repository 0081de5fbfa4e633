"""Fixtures shared by the web unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sealdrop.crypto import derive


@pytest.fixture(scope="module", autouse=True)
def _cheap_codename_derivations() -> Iterator[None]:
    """Codenames are derived with Argon2id at a tiny cost here (64 KiB, one pass), in threads of
    the test process (``test_source_app.new_instance`` builds the services with
    ``kdf_processes=False``, so that the patched cost is the one used). These tests check the web
    edge (pages, headers, cookies, refusals, limits), not the KDF; at the real cost (64 MiB, three
    passes, a process of its own) the web unit tests (the fuzz module aside, which does the same
    itself) took ~42 CPU-seconds, and ~36 at this cost (2026-12-06). The real parameters are
    pinned by tests/unit/crypto/test_derive.py, the pool of derivation processes is tested by
    tests/unit/services/test_kdf_pool.py, and every server the integration and browser tests
    start derives at the real cost in its own processes."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(derive, "ARGON2_MEMORY_KIB", 64)
        patch.setattr(derive, "ARGON2_TIME_COST", 1)
        yield
