"""A codename derivation process: ``python -m sealdrop.services.kdf_child`` (``services/kdf.py``).

It imports the derivation and nothing else of Sealdrop, reads the instance salt, then answers one
derivation at a time, over its stdin and stdout (pipes, never a file: invariant 4):

- in: the salt (2-byte length, bytes) once; then per derivation, the normalised codename
  (2-byte length, UTF-8);
- out: per derivation, the lookup id (2-byte length, bytes), the reply identity in its age
  text form (2-byte length, ASCII) and the 32-byte seed of the hybrid reply identity (2-byte
  length, bytes; the identity itself is expanded by the caller only on post-quantum instances).

A malformed request ends the process (the pool starts another); a failed derivation answers an
empty lookup id, which the pool turns into an error.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
from typing import IO

from sealdrop.crypto.codenames import Codename
from sealdrop.crypto.derive import derive_source_keys

_LENGTH = struct.Struct(">H")


def read_field(stream: IO[bytes]) -> bytes | None:
    """One length-prefixed field; None at the end of the stream."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(head)
    data = stream.read(length)
    if len(data) < length:
        return None
    return data


def write_fields(stream: IO[bytes], *fields: bytes) -> None:
    stream.write(b"".join(_LENGTH.pack(len(field)) + field for field in fields))
    stream.flush()


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    salt = read_field(stdin)
    if salt is None:
        return
    while (codename := read_field(stdin)) is not None:
        try:
            keys = derive_source_keys(Codename(codename.decode("utf-8")), salt)
        except (ValueError, UnicodeError):
            write_fields(stdout, b"", b"", b"")
            continue
        write_fields(
            stdout,
            keys.lookup_id,
            str(keys.reply_identity).encode("ascii"),
            keys.hybrid_reply_seed,
        )


if __name__ == "__main__":
    # Nicer than the server that started it, by the increment it passes (services/kdf.py says
    # why). Raising one's own niceness needs no privilege; where it fails, derivations simply
    # run at the server's priority.
    with contextlib.suppress(OSError, ValueError, IndexError):
        os.nice(int(sys.argv[1]))
    main()
