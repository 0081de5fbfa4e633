"""How the reader writes a file of its data folder (config, token, identity): atomically and
durably, with a mode set before any byte is written.

A temp file in the same folder gets the mode, the data and an fsync; it is then renamed (or, when
nothing may be replaced, hard-linked) to its name, and the folder is fsynced so that the new name
itself survives a crash. A reader killed at any point leaves the old file or the new one, never a
torn one, and never a token or key readable by others for an instant.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from sealdrop.errors import ReaderError

__all__ = ["write_private"]


def write_private(path: Path, data: bytes, *, mode: int = 0o600, replace: bool = True) -> None:
    """Write ``data`` to ``path`` (``mode``) atomically: temp file, fsync, rename, folder fsync.

    With ``replace=False`` an existing ``path`` is never clobbered, even by a racing writer: the
    temp file is hard-linked to the final name (FileExistsError if the name exists) instead of
    renamed. Any other failure is a ReaderError; no temp file is left behind.
    """
    directory = path.parent
    try:
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ReaderError(f"cannot write in {directory}: {exc.strerror}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            tmp.replace(path)
        else:
            os.link(tmp, path)
            tmp.unlink()
        _fsync_dir(directory)
    except FileExistsError:
        raise
    except OSError as exc:
        raise ReaderError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable: without it a crash can lose the new name.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
