"""Encrypting a large upload with the stock ``age`` program in a child process.

Why here and not in ``crypto``: ``crypto`` is pure (values and the streams it is handed, no
processes, threads or configuration; an import-linter contract forbids ``subprocess`` and
``threading`` there), so that each construction can be audited on its own. Starting a program
found on ``PATH`` and pumping a pipe from a thread is I/O. It is not storage's either: storage
keeps ciphertext and must not know recipients. It belongs with its one user, the submission
intake, which decides which parts go to the child (``services/submissions.py``). The format is
still the one ``crypto.envelope`` writes: the child produces an age v1 file, the stock program
being the reference implementation of that format (invariant 5).

Post-quantum hybrid recipients (``age1pq1…``): Debian's age (1.1.1) does not know them, so the child
is then this module itself run by the same Python (``python -m sealdrop.services.age_child
RECIPIENT…``), encrypting stdin to stdout with ``crypto.envelope`` — the same streaming writer as
in-process, on another core all the same.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence

from sealdrop.crypto import envelope
from sealdrop.crypto.envelope import Readable, Writable
from sealdrop.crypto.keys import Recipient, parse_recipient, require_one_kind
from sealdrop.errors import CryptoError
from sealdrop.storage.blobs import DirectWrite

__all__ = ["age_binary", "encrypt_in_child"]

# How a child says that the disk is full: Go's (age) and Python's (the hybrid child) wording of
# ENOSPC and EDQUOT.
_FULL_DISK = re.compile(rb"no space left on device|disk quota exceeded", re.IGNORECASE)
# Reads from the source and writes to the child in pieces of this size: as large as the body's
# socket reads (web/connections.py), so that a chunk goes through whole, never cut into slices.
_PIPE_CHUNK = 1024 * 1024
_PIPE_SIZE = 1024 * 1024


def age_binary() -> str | None:
    """The stock ``age`` program, if installed (Debian package ``age``)."""
    return shutil.which("age")


def encrypt_in_child(
    binary: str, src: Readable, dst: Writable | DirectWrite, recipients: Sequence[Recipient]
) -> None:
    """``envelope.encrypt``, with the encryption done by the stock ``age`` program in a child.

    pyrage holds Python's GIL for the whole stream, so encrypting a large upload in-process
    takes turns with receiving it, and the server uses one core. Here the child encrypts on
    another core while this process only moves bytes (the pipe writes, reads, hashing and file
    writes release the GIL). The plaintext goes only through a pipe, never to disk; the child's
    command line holds public keys only; its environment is empty. Same contract as
    ``envelope.encrypt``: an exception from ``src.read`` or ``dst.write`` propagates as itself,
    and on any exception ``dst`` holds an incomplete file for the caller to discard. When ``dst``
    is a staged file (``DirectWrite``) the child writes it itself, and a full disk it meets is
    raised as the blob store's own error (StorageFull).
    """
    targets = list(recipients)
    # Checked before any byte is read: encrypting to nobody would make data nobody can open, and
    # a mix of hybrid and X25519 recipients (MixedRecipientKinds) a weak "post-quantum" file.
    if require_one_kind(targets):
        command = [sys.executable, "-m", __name__, *(str(r) for r in targets)]
        # Only the module search path, so the child runs the very code this process runs.
        env = {k: v for k, v in os.environ.items() if k == "PYTHONPATH"}
    else:
        command = [binary, "--encrypt"]
        for recipient in targets:
            command += ["--recipient", str(recipient)]
        env = {}
    # A staged file (the filesystem store): the child writes the ciphertext into it itself, and
    # this process only reads it back to hash it (storage/direct_write.py). Otherwise (S3, a
    # test's buffer) the ciphertext comes back through a pipe and is written to ``dst`` here.
    direct, sink = (dst, None) if isinstance(dst, DirectWrite) else (None, dst)
    try:
        child = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE if direct is None else direct.fd,
            stderr=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
    except BaseException:
        if direct is not None:
            direct.abandon()
        raise
    assert child.stdin is not None
    assert child.stderr is not None
    # Larger pipes than the 64 KiB default: fewer wake-ups on both sides of each pipe.
    for stream in (child.stdin, child.stdout):
        if stream is not None:
            with contextlib.suppress(OSError, AttributeError):
                fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
    failures: list[BaseException] = []
    reader = None
    if sink is not None:
        assert child.stdout is not None
        stdout_fd, write = child.stdout.fileno(), sink.write

        def copy_out() -> None:
            try:
                while chunk := os.read(stdout_fd, _PIPE_CHUNK):
                    write(chunk)
            except BaseException as exc:  # a full disk, say: stop the child, keep the error
                failures.append(exc)
                child.kill()

        reader = threading.Thread(target=copy_out, name="age-output", daemon=True)
        reader.start()
    errors = b""
    try:
        try:
            while data := src.read(_PIPE_CHUNK):
                child.stdin.write(data)
            child.stdin.close()
        except BrokenPipeError:
            pass  # the child died: its status (or the reader's error) says why, below
        except BaseException:
            child.kill()
            if direct is not None:
                direct.abandon()
            raise
        finally:
            if reader is not None:
                reader.join()
            status = child.wait()
        # Its few lines of complaint, if any (the child has exited: the pipe holds them all).
        with contextlib.suppress(OSError):
            errors = child.stderr.read(4096)
    finally:
        for stream in (child.stdin, child.stdout, child.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
    if failures:
        raise failures[0]
    if direct is not None:
        if status != 0:
            direct.abandon()
            # The child met the full disk, not this process: its message is the only sign.
            if _FULL_DISK.search(errors):
                raise direct.failure(OSError(errno.ENOSPC, "No space left on device"))
        else:
            direct.finish()
    if status != 0:
        raise CryptoError(f"age encryption failed (age exited with status {status})")


def _main(arguments: list[str]) -> int:
    """The child for hybrid recipients: stdin to stdout as an age file to ``arguments``."""
    recipients = [parse_recipient(text) for text in arguments]
    envelope.encrypt(sys.stdin.buffer, sys.stdout.buffer, recipients)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
