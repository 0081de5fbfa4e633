"""KdfPool: codename derivations run in a bounded pool of processes (or threads) of lower CPU
priority, away from the memory of the server that serves pages."""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
from pathlib import Path

import pytest

from sealdrop.crypto import codenames
from sealdrop.crypto.derive import ARGON2_MEMORY_KIB, derive_source_keys
from sealdrop.services import kdf
from sealdrop.services.kdf import KDF_NICENESS, KdfPool

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="Linux's /proc and nice values")


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _peak_rss_kib() -> int:
    status = Path("/proc/self/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert match
    return int(match.group(1))


def _process_niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, 0)


def test_a_closed_pool_leaves_no_derivation_process_behind() -> None:
    """close() ends every derivation process it started."""
    pool = KdfPool(b"s" * 16, max_concurrent=2)
    pool.derive(codenames.generate())
    pids = pool.child_pids()
    pool.close()
    assert pids
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # already reaped: not a child any more


@linux_only
def test_a_derivation_takes_its_memory_in_another_process_not_the_callers() -> None:
    """The 64 MiB of Argon2id are taken in a derivation process: the calling process (the server)
    does not grow by them, so its page faults and unmaps never wait on a derivation's."""
    pool = KdfPool(b"s" * 16, max_concurrent=1)
    try:
        pool.derive(codenames.generate())  # starts the process: imports are not what we measure
        # Reset this process's peak RSS (VmHWM) to its current RSS, then derive again.
        Path("/proc/self/clear_refs").write_text("5")
        before = _peak_rss_kib()
        pool.derive(codenames.generate())
        grown = _peak_rss_kib() - before
    finally:
        pool.close()
    assert grown < ARGON2_MEMORY_KIB // 4, f"the caller grew by {grown} KiB"


@linux_only
def test_derivation_processes_run_nicer_than_the_server() -> None:
    """Each derivation process runs at KDF_NICENESS above the server's priority (capped at 19);
    the server keeps its own."""
    caller = _process_niceness()
    pool = KdfPool(b"s" * 16, max_concurrent=2)
    try:
        pool.derive(codenames.generate())  # one derivation starts one process, not two
        (pid,) = pool.child_pids()
        assert pid != os.getpid()
        seen = os.getpriority(os.PRIO_PROCESS, pid)
    finally:
        pool.close()
    assert seen == min(19, caller + KDF_NICENESS)
    assert _process_niceness() == caller


@linux_only
def test_a_killed_derivation_process_is_replaced_and_logins_go_on() -> None:
    """A derivation process that dies (the OOM killer, an operator) does not break every later
    login: the pool starts new processes and the derivation is done."""
    salt = b"k" * 16
    pool = KdfPool(salt, max_concurrent=1)
    try:
        pool.derive(codenames.generate())
        for pid in pool.child_pids():
            os.kill(pid, signal.SIGKILL)
        codename = codenames.generate()
        keys = pool.derive(codename)
    finally:
        pool.close()
    assert keys.lookup_id == derive_source_keys(codename, salt).lookup_id


@linux_only
def test_in_threads_derivations_run_nicer_than_the_threads_that_serve_pages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With processes=False, a derivation runs in a thread at KDF_NICENESS above the caller's
    priority (capped at 19), while the calling thread (a page being served) keeps its own."""
    seen: list[int] = []

    def fake_derive(_codename: object, _salt: bytes) -> object:
        seen.append(_niceness())
        return object()

    monkeypatch.setattr(kdf, "derive_source_keys", fake_derive)
    caller = _niceness()
    pool = KdfPool(b"s" * 16, max_concurrent=2, processes=False)
    try:
        for _ in range(4):
            pool.derive(codenames.generate())
    finally:
        pool.close()
    assert seen == [min(19, caller + KDF_NICENESS)] * 4
    assert _niceness() == caller


@pytest.mark.parametrize("processes", [True, False])
def test_a_real_derivation_still_gives_the_same_keys_in_the_pool(processes: bool) -> None:
    """Where and at which priority a derivation runs changes when it runs, never what it
    yields."""
    salt = b"k" * 16
    codename = codenames.generate()
    pool = KdfPool(salt, max_concurrent=1, processes=processes)
    try:
        in_pool = pool.derive(codename)
    finally:
        pool.close()
    direct = derive_source_keys(codename, salt)
    assert in_pool.lookup_id == direct.lookup_id
    assert str(in_pool.reply_recipient) == str(direct.reply_recipient)
    assert str(in_pool.reply_identity) == str(direct.reply_identity)
    # The hybrid reply identity's seed crosses the process boundary too (post-quantum instances).
    assert in_pool.hybrid_reply_seed == direct.hybrid_reply_seed
    assert str(in_pool.hybrid_reply_identity) == str(direct.hybrid_reply_identity)
