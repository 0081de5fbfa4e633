"""``sealdrop keygen [--pq] [-o FILE]``: an age identity, as ``age-keygen`` makes it.

For the organisation's offline keys: run it on the offline machine, keep the file there, register
only the public key (``sealdrop recipients add``). ``--pq`` makes a post-quantum hybrid identity
(``AGE-SECRET-KEY-PQ-1…``, recipient ``age1pq1…``), which Debian's ``age-keygen`` (1.1.1) cannot;
age ≥ 1.3 reads it (``age -d -i FILE``).

Same output as ``age-keygen`` (checked against it on Debian): "# created:" (RFC 3339, seconds),
"# public key:", the identity; with ``-o`` the file is created with mode 0600 and never
overwritten, and "Public key: …" goes to stderr; without it everything goes to stdout, with a
warning on stderr if stdout is a world-readable file. Plain writes, no rich console: a hybrid
recipient is 1,959 characters and must never be wrapped.
"""

from __future__ import annotations

import os
import stat
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from sealdrop.crypto.keys import generate_identity, recipient_of

_NAME = "sealdrop keygen"


def _created() -> str:
    # Go's time.RFC3339: local time to the second, "Z" for UTC.
    stamp = datetime.now().astimezone().isoformat(timespec="seconds")
    return stamp.removesuffix("+00:00") + "Z" if stamp.endswith("+00:00") else stamp


def keygen(
    pq: Annotated[
        bool,
        typer.Option(
            "--pq", help="A post-quantum hybrid identity (ML-KEM-768 + X25519, age ≥ 1.3)."
        ),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Write the identity to this new file (mode 0600, never over)."
        ),
    ] = None,
) -> None:
    """Make an age identity (X25519, or hybrid with --pq) like age-keygen; print its public key."""
    identity = generate_identity(post_quantum=pq)
    public = str(recipient_of(identity))
    text = f"# created: {_created()}\n# public key: {public}\n{identity}\n"
    if output is None:
        try:
            mode = os.fstat(sys.stdout.fileno()).st_mode
        except (OSError, ValueError, AttributeError):
            mode = 0
        if stat.S_ISREG(mode) and mode & stat.S_IROTH:
            sys.stderr.write(f"{_NAME}: warning: writing secret key to a world-readable file\n")
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        # O_EXCL: an existing key file is never replaced (it may be the only copy of a key that
        # opens years of submissions); 0600 from the first byte, not chmod-ed afterwards.
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        sys.stderr.write(f'{_NAME}: error: failed to open output file "{output}": {exc.strerror}\n')
        raise typer.Exit(code=1) from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    sys.stderr.write(f"Public key: {public}\n")
