"""Fixtures for the reader tests: the stock age binaries (age_bin, age_keygen_bin: in
tests/conftest.py), driven through a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import signal
import time
from collections.abc import Callable

import pytest

# age reads passphrases only from the terminal (/dev/tty), never from stdin or the environment.
AgeOnPty = Callable[[list[str], str], tuple[int, str]]


def _run_on_pty(argv: list[str], passphrase: str, timeout: float = 30.0) -> tuple[int, str]:
    """Run ``argv`` with a new pty as its controlling terminal; answer each passphrase prompt."""
    pid, master = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.execv(argv[0], argv)  # noqa: S606 - a fixed argv from the test, no shell
        finally:
            os._exit(127)
    transcript = b""
    answered = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                transcript += chunk
                if transcript.lower().count(b"passphrase") > answered:
                    answered += 1
                    os.write(master, passphrase.encode() + b"\r")
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status), transcript.decode(errors="replace")
        else:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), transcript.decode(errors="replace")
    finally:
        os.close(master)


@pytest.fixture
def age_on_pty() -> AgeOnPty:
    """Run a command on a pseudo-terminal, typing ``passphrase`` at each prompt: (exit code,
    transcript)."""
    return _run_on_pty
