"""KdfPool: codename derivations run in a bounded pool of threads of lower CPU priority."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from sealdrop.crypto import codenames
from sealdrop.services import kdf
from sealdrop.services.kdf import KDF_NICENESS, KdfPool


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_derivations_run_nicer_than_the_threads_that_serve_pages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A derivation runs at KDF_NICENESS above the caller's priority (capped at 19), while the
    calling thread (a page being served) keeps its own."""
    seen: list[int] = []

    def fake_derive(_codename: object, _salt: bytes) -> object:
        seen.append(_niceness())
        return object()

    monkeypatch.setattr(kdf, "derive_source_keys", fake_derive)
    caller = _niceness()
    pool = KdfPool(b"s" * 16, max_concurrent=2)
    try:
        for _ in range(4):
            pool.derive(codenames.generate())
    finally:
        pool.close()
    assert seen == [min(19, caller + KDF_NICENESS)] * 4
    assert _niceness() == caller


def test_a_real_derivation_still_gives_the_same_keys_in_the_pool() -> None:
    """Lowering the priority changes when a derivation runs, never what it yields."""
    from sealdrop.crypto.derive import derive_source_keys

    salt = b"k" * 16
    codename = codenames.generate()
    pool = KdfPool(salt, max_concurrent=1)
    try:
        in_pool = pool.derive(codename)
    finally:
        pool.close()
    direct = derive_source_keys(codename, salt)
    assert in_pool.lookup_id == direct.lookup_id
    assert str(in_pool.reply_recipient) == str(direct.reply_recipient)
