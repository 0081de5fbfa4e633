"""``sealdrop backup``: one age file holding what it takes to bring an instance back.

The file is an age file (C2SP age v1) to the operator's offline keys, and inside it a plain tar
whose member names are the paths in the instance folder, so that stock tools restore it
(``age -d -i KEY FILE | tar -x``). What goes in, and nothing else:

    sealdrop.toml, secrets.toml            settings; the KDF salt without which no codename works
    tor/{source,api}-onion/hostname, hs_ed25519_*   the onion keys: the same addresses after restore
    tor/api-onion/authorized_clients/*.auth   the reader devices allowed to reach the API onion
    store/blobs/xx/xxxx…                    every blob a row of the snapshot names (ciphertext),
                                           from the filesystem or S3 (``storage.blobs``)
    sealdrop.db  or  database.sql           the database snapshot (SQLite file / pg_dump SQL)
    sealdrop-backup.json                    manifest: backend, migration, counts, withdrawn rows

Not staging files (uploads not yet accepted), not tor's state and consensus cache, not the lock
file or sockets, not blobs no row names (orphans of an upload whose row was never committed).

Consistency while the server serves and receives. The database snapshot is taken first, then the
blobs its rows name are copied:
- an upload in flight is invisible: its blob may already be in ``blobs/`` (blobs are committed
  before their row, invariant 9), but its row is not in the snapshot, so the blob is not copied
  and the restored instance has no partial item;
- a row in the snapshot always had its blob at that moment (no blob is removed while a row names
  it: deletions remove the row, commit, then the blob), so a blob missing at copy time was
  deleted *after* the snapshot. Its row is then "withdrawn": dropped from the SQLite copy, or, for
  PostgreSQL, listed in the manifest and deleted by ``restore`` after loading the dump. The
  backup so never resurrects an item a journalist deleted while it ran, nor holds a row without
  its blob.

The tar is produced by a thread into a pipe that the encryptor reads: no plaintext copy of the
archive exists anywhere, in memory beyond a pipe's worth or on disk.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import BinaryIO, Final

from sealdrop.config import CONFIG_FILE, SECRETS_FILE, Settings
from sealdrop.crypto import envelope
from sealdrop.crypto.envelope import Writable
from sealdrop.crypto.keys import Recipient, parse_recipient
from sealdrop.errors import BlobNotFound, ConfigError
from sealdrop.ids import BlobKey
from sealdrop.services import age_child
from sealdrop.services.blob_store import open_blob_store
from sealdrop.storage.snapshots import open_snapshot
from sealdrop.tor.layout import TorLayout

__all__ = ["FORMAT", "MANIFEST", "BackupSummary", "recipients_from", "write_backup"]

MANIFEST: Final = "sealdrop-backup.json"
SQLITE_MEMBER: Final = "sealdrop.db"
POSTGRES_MEMBER: Final = "database.sql"
STORE: Final = "store"
FORMAT: Final = 1
ONION_KEY_FILES: Final = ("hostname", "hs_ed25519_public_key", "hs_ed25519_secret_key")


@dataclass
class BackupSummary:
    blobs: int = 0
    blob_bytes: int = 0
    withdrawn: list[str] = field(default_factory=list)
    backend: str = ""


def write_backup(
    settings: Settings, out: Writable, recipients: Sequence[Recipient]
) -> BackupSummary:
    """Write the instance's backup to ``out`` as an age file to ``recipients``.

    On any exception ``out`` holds an incomplete file, which the caller must discard.
    """
    if not recipients:
        # Checked first: a backup nobody can open is no backup, and encrypting to "no one" must
        # never silently become something else.
        raise ConfigError("a backup needs at least one --recipient (an offline age1… key)")
    summary = BackupSummary()
    read_fd, write_fd = os.pipe()
    failures: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb") as sink:
                _write_archive(settings, sink, summary)
        except BaseException as exc:  # reported by the caller, after the encryptor stops
            failures.append(exc)

    producer = threading.Thread(target=produce, name="backup-tar", daemon=True)
    producer.start()
    try:
        with os.fdopen(read_fd, "rb") as source:
            _encryptor()(source, out, recipients)
    finally:
        # If encryption stopped early, the producer's next write fails (the pipe is closed)
        # and it ends; join either way.
        producer.join()
    if failures:
        # The producer closed the pipe on its way out, so the encryptor saw an early end and
        # wrote a complete-looking age file of a truncated tar: never report it as a backup.
        raise failures[0]
    return summary


def _encryptor() -> Callable[[BinaryIO, Writable, Sequence[Recipient]], None]:
    # The stock age program in a child (another core) when installed, as for uploads; pyrage
    # in-process otherwise. The same format either way.
    binary = age_child.age_binary()
    return envelope.encrypt if binary is None else partial(age_child.encrypt_in_child, binary)


def _write_archive(settings: Settings, sink: BinaryIO, summary: BackupSummary) -> None:
    instance = settings.instance_dir
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in (CONFIG_FILE, SECRETS_FILE):
            _add_path(tar, name, instance / name)
        _add_tor_keys(tar, TorLayout.of_instance(instance))
        # The snapshot before the blobs: see the module docstring for why this order.
        snapshot = open_snapshot(settings.database_url)
        try:
            summary.backend = snapshot.backend
            # The instance's store, whichever it is (files, or S3): the archive holds the blobs
            # under store/blobs/ either way, so that one restore reads both.
            blobs = open_blob_store(settings)
            _add_dir(tar, STORE)
            _add_dir(tar, f"{STORE}/blobs")
            shards: set[str] = set()
            for key in sorted(snapshot.blob_keys):
                try:
                    blob = blobs.open(BlobKey(key))
                except BlobNotFound:
                    summary.withdrawn.append(key)
                    continue
                with blob:
                    if key[:2] not in shards:
                        shards.add(key[:2])
                        _add_dir(tar, f"{STORE}/blobs/{key[:2]}")
                    # An open file (a descriptor; on S3 a GET under way) stays readable even if
                    # the blob is deleted now.
                    size = blob.seek(0, io.SEEK_END)
                    blob.seek(0)
                    tar.addfile(_member(f"{STORE}/blobs/{key[:2]}/{key}", size), blob)
                summary.blobs += 1
                summary.blob_bytes += size
            member = SQLITE_MEMBER if snapshot.backend == "sqlite" else POSTGRES_MEMBER
            data, size = snapshot.finish(summary.withdrawn, instance)
            with data:
                tar.addfile(_member(member, size), data)
            manifest = {
                "format": FORMAT,
                "database": snapshot.backend,
                "database_member": member,
                "migration": snapshot.revision,
                "blobs": summary.blobs,
                # Blob keys are random ids: they tell nothing about an item.
                "withdrawn": sorted(summary.withdrawn),
            }
        finally:
            snapshot.close()
        _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=1).encode() + b"\n")


def _add_tor_keys(tar: tarfile.TarFile, layout: TorLayout) -> None:
    onions = [layout.source_onion_dir, layout.api_onion_dir]
    present = [d for d in onions if any((d / n).is_file() for n in ONION_KEY_FILES)]
    if not present:
        return  # tor never ran (or is disabled): there are no keys to keep
    _add_dir(tar, "tor")
    for onion in present:
        prefix = f"tor/{onion.name}"
        _add_dir(tar, prefix)
        for name in ONION_KEY_FILES:
            if (onion / name).is_file():
                _add_path(tar, f"{prefix}/{name}", onion / name)
    clients = layout.authorized_clients_dir
    if clients.is_dir():
        auth = sorted(p for p in clients.iterdir() if p.suffix == ".auth" and p.is_file())
        if auth:
            _add_dir(tar, "tor/api-onion/authorized_clients")
        for path in auth:
            _add_path(tar, f"tor/api-onion/authorized_clients/{path.name}", path)


def _member(name: str, size: int, directory: bool = False) -> tarfile.TarInfo:
    # Owner-only modes, as the instance keeps them; no owner names, and every time the epoch
    # (invariant 6: the archive must not date the items in it).
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o700 if directory else 0o600
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    tar.addfile(_member(name, 0, directory=True))


def _add_path(tar: tarfile.TarFile, name: str, path: Path) -> None:
    with path.open("rb") as source:
        tar.addfile(_member(name, os.fstat(source.fileno()).st_size), source)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    tar.addfile(_member(name, len(data)), io.BytesIO(data))


def recipients_from(keys: Iterable[str], files: Iterable[Path]) -> list[Recipient]:
    """The ``age1…`` keys given on the command line and in recipients files (one per line,
    ``#`` comments), as age's own ``-R`` reads them."""
    texts = list(keys)
    for path in files:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the recipients file {path}: {exc}") from None
        texts += [s for line in lines if (s := line.strip()) and not s.startswith("#")]
    return [parse_recipient(t) for t in texts]
