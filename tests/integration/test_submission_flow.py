"""The core promise, end to end against a real server: what a source sends is encrypted while it
streams in, and the stock `age` binary with the journalist's key (never on the server) opens it.

The tests on the module's ``shared_server`` look only at what their own submission added to the
instance (``stored_since``); the ones that need an instance of their own (both databases, the
server's peak memory) start one."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyrage
import pytest
from support_http import (
    BOTH_BACKENDS,
    JournalistKey,
    Source,
    browser_multipart,
    stored,
    stored_since,
)

from sealdrop.config import load_settings
from sealdrop.storage.database import SqlDatabase
from sealdrop.testing import ServerProcess

MiB = 1024 * 1024


def age_decrypt(identity: Path, blob: Path) -> bytes:
    return subprocess.run(
        ["age", "-d", "-i", str(identity), str(blob)], check=True, capture_output=True
    ).stdout


def files_changed_under(root: Path, since: float) -> Iterator[Path]:
    """Every regular file under ``root`` (or ``root`` itself) whose inode changed at or after
    ``since``. A file untouched since the test began cannot hold the test's fresh canary, and
    reading every file in /tmp (other tests' uploads, browser profiles, Tor data: ~20 CPU-s a
    scan on a busy machine) only repeated the same answer. The change time (st_ctime) is used,
    not the modification time: utime() can set the latter back (and a blob's times are set on
    purpose), the former it cannot. os.scandir passes over a folder that vanishes while it walks
    (another worker's temporary files), where Path.rglob raises."""
    stack = [root]
    while stack:
        path = stack.pop()
        try:
            info = path.lstat()
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode):
            try:
                with os.scandir(path) as entries:
                    stack.extend(Path(entry.path) for entry in entries)
            except OSError:
                continue
        elif stat.S_ISREG(info.st_mode) and info.st_ctime >= since:
            yield path


def scan_for(needles: list[bytes], roots: list[Path], since: float) -> list[str]:
    """Every file under ``roots``, changed at or after ``since``, that contains one of
    ``needles``."""
    hits = []
    overlap = max(len(n) for n in needles)
    for root in roots:
        for path in files_changed_under(root, since):
            try:
                with path.open("rb") as fh:
                    tail = b""
                    while chunk := fh.read(4 * MiB):
                        window = tail + chunk
                        if any(n in window for n in needles):
                            hits.append(str(path))
                            break
                        tail = window[-overlap:]
            except OSError:
                continue
    return hits


def test_the_plaintext_scan_finds_a_canary_written_after_it_began_even_with_old_times(
    tmp_path: Path,
) -> None:
    """The scan the no-plaintext tests rely on finds a canary in a file written after the test
    began, in a nested folder, across a 4 MiB read boundary, even when the file's modification
    time is set back years; a file untouched since before is not read."""
    old = tmp_path / "old.txt"
    old.write_bytes(b"canary-old")
    os.utime(old, (1, 1))
    began = time.time() + 1  # ctimes at or after this are "changed since"
    time.sleep(1.1)
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    planted = nested / "planted.bin"
    planted.write_bytes(b"x" * (4 * MiB - 3) + b"canary-new")
    os.utime(planted, (1, 1))  # its mtime now says 1970; its ctime cannot
    assert scan_for([b"canary-new"], [tmp_path], began) == [str(planted)]
    assert scan_for([b"canary-old"], [tmp_path], began) == []
    assert scan_for([b"canary-old"], [tmp_path], began - 60) == [str(old)]


def metadata_of(instance: Path, identity: Path) -> dict[str, dict[str, object]]:
    """Each file submission's sealed metadata, decrypted with the journalist's identity."""
    identities = [
        pyrage.x25519.Identity.from_str(
            next(
                line for line in identity.read_text().splitlines() if line.startswith("AGE-SECRET")
            )
        )
    ]
    database = SqlDatabase(load_settings(instance).database_url)
    try:
        with database.transaction() as repos:
            records = list(repos.submissions.all())
    finally:
        database.close()
    return {
        r.id: json.loads(pyrage.decrypt(r.metadata_ciphertext, identities))
        for r in records
        if r.metadata_ciphertext is not None
    }


@BOTH_BACKENDS
def test_file_and_message_decrypt_with_stock_age_and_leave_no_plaintext(
    server: ServerProcess,
    source: Source,
    instance_dir: Path,
    journalist_key: JournalistKey,
    server_tmp: Path,
) -> None:
    """A 50 MiB file and a canary message arrive encrypted; `age -d` yields the exact bytes and
    text; no copy of the canary (text, file name or file content) exists anywhere on disk."""
    began = time.time() - 2  # slack for coarse file times
    canary = f"canary-{uuid.uuid4().hex}"
    message = f"Meet me by the river. {canary} — ünïcödé ✓\r\nSecond line."
    content = bytearray(os.urandom(50 * MiB))
    content[1000 : 1000 + len(canary)] = canary.encode()
    filename = f"report-{canary}.pdf"

    source.start()
    response = source.submit(message, files=[(filename, io.BytesIO(content), "application/pdf")])
    assert response.status_code == 303
    assert response.headers["location"] == "/submitted"

    items = stored(instance_dir)
    assert [i["kind"] for i in items] == ["message", "file"]
    assert [i["seq"] for i in items] == [1, 2]
    assert len({i["source"] for i in items}) == 1
    message_item, file_item = items
    assert age_decrypt(journalist_key.identity_file, Path(message_item["path"])) == message.encode()
    plaintext = age_decrypt(journalist_key.identity_file, Path(file_item["path"]))
    assert hashlib.sha256(plaintext).digest() == hashlib.sha256(content).digest()
    assert file_item["size"] > len(content)  # ciphertext: header + per-chunk tags

    (meta,) = metadata_of(instance_dir, journalist_key.identity_file).values()
    assert meta == {"filename": filename, "content_type": "application/pdf", "size": len(content)}

    # Invariant 1: nothing readable anywhere the server writes, nor in the temp dirs.
    roots = [instance_dir, server_tmp, Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")]
    roots = [r for r in roots if r.exists()]
    assert scan_for([canary.encode(), canary.encode("utf-16-le")], roots, began) == []
    assert canary not in server.log()


def test_a_message_alone_is_taken_whole_yet_leaves_no_plaintext(
    shared_server: ServerProcess, shared_source: Source, shared_journalist_key: JournalistKey
) -> None:
    """A message without files (a body within limits.max_form_bytes, read whole in memory before
    it is encrypted, unlike a streamed upload) decrypts with `age -d` to its text, and no copy of
    its canary exists anywhere on disk or in the log (invariant 1 on the small-body path)."""
    began = time.time() - 2  # slack for coarse file times
    canary = f"canary-{uuid.uuid4().hex}"
    message = f"Only words this time. {canary} " + "x" * 20_000
    server, source, journalist_key = shared_server, shared_source, shared_journalist_key
    instance_dir, server_tmp = server.instance, server.instance.parent / "server-tmp"
    before = stored(instance_dir)

    source.start()
    response = source.submit(message)
    assert response.status_code == 303
    assert int(response.request.headers["content-length"]) < 64 * 1024  # the small path

    (item,) = stored_since(instance_dir, before)
    assert age_decrypt(journalist_key.identity_file, Path(item["path"])) == message.encode()
    roots = [instance_dir, server_tmp, Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")]
    roots = [r for r in roots if r.exists()]
    assert scan_for([canary.encode(), canary.encode("utf-16-le")], roots, began) == []
    assert canary not in server.log()


def test_arrival_is_recorded_as_a_day_and_blob_times_reveal_nothing(
    shared_server: ServerProcess, shared_source: Source
) -> None:
    """Invariant 6: the row holds only the UTC day; the blob's mtime is normalised to the epoch."""
    before = stored(shared_server.instance)
    shared_source.start()
    assert shared_source.submit("hello").status_code == 303
    (item,) = stored_since(shared_server.instance, before)
    assert len(item["arrival_day"]) == 10  # YYYY-MM-DD, nothing finer
    assert os.stat(item["path"]).st_mtime == 0


def test_server_memory_does_not_grow_with_upload_size(
    server: ServerProcess, source: Source
) -> None:
    """Peak RSS of the server grows by far less than the upload: a 256 MiB file costs < 48 MiB.

    (Generous on purpose; the real figures are measured in bench/.)
    """
    source.start()  # the KDF's 64 MiB are part of the baseline
    assert (
        source.submit("warm-up", files=[("a.bin", io.BytesIO(os.urandom(MiB)), "x/y")]).status_code
        == 303
    )
    baseline = _peak_rss(server.pid)
    big = _RepeatingReader(256 * MiB)
    assert source.submit(files=[("big.bin", big, "application/octet-stream")]).status_code == 303
    growth = _peak_rss(server.pid) - baseline
    assert growth < 48 * MiB, f"server peak RSS grew by {growth / MiB:.1f} MiB"


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


class _RepeatingReader(io.RawIOBase):
    """A large upload body generated on the fly, so the test itself stays small in memory."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._pos = 0
        self._block = os.urandom(MiB)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        n = min(len(buffer), self._size - self._pos)
        start = self._pos % MiB
        out = (
            (self._block[start:] + self._block)[:n]
            if n > MiB - start
            else self._block[start : start + n]
        )
        buffer[: len(out)] = out
        self._pos += len(out)
        return len(out)


@pytest.mark.parametrize(
    "filename",
    [
        "../../etc/passwd",
        "/absolute/path/name.txt",
        "C:\\Windows\\system32\\evil.dll",
        "nul\x00byte.txt",
        "x" * 10_000,
        "<script>alert(1)</script>.html",
        "имя файла 文件名 ملف.txt",
    ],
    ids=["dotdot", "absolute", "windows", "nul", "10k-chars", "html", "unicode"],
)
def test_hostile_filenames_are_never_paths_and_kept_only_sealed(
    shared_server: ServerProcess,
    shared_source: Source,
    shared_journalist_key: JournalistKey,
    filename: str,
) -> None:
    """A file name with separators, NUL, markup or 10,000 characters is stored byte for byte
    inside the metadata ciphertext, and never shapes a path on the server."""
    source, instance_dir = shared_source, shared_server.instance
    before = stored(instance_dir)
    source.start()
    body, content_type = browser_multipart(
        [("csrf_token", source.csrf_token()), ("message", "")],
        [(filename, b"content", "text/plain")],
    )
    response = source.http.post("/submit", content=body, headers={"content-type": content_type})
    assert response.status_code == 303, response.text
    (item,) = stored_since(instance_dir, before)
    blob = Path(item["path"])
    assert blob.is_relative_to(instance_dir / "store" / "blobs")
    assert len(blob.name) == 32
    assert all(c in "0123456789abcdef" for c in blob.name)
    meta = metadata_of(instance_dir, shared_journalist_key.identity_file)[item["id"]]
    assert meta["filename"] == filename
    names = {p.name for p in instance_dir.rglob("*")}
    assert not any("passwd" in n or "evil" in n or "xxxx" in n or "script" in n for n in names)
