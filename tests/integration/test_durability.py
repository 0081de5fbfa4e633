"""Invariant 9 under a crash: an accepted submission survives kill -9; a killed upload leaves no
partial submission, and its staging file is removed when the server starts again."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from support_http import (
    BOTH_BACKENDS,
    JournalistKey,
    Source,
    browser_multipart,
    staging_files,
    start_server,
    stored,
)

from sealdrop.testing import ServerProcess, sealdrop_command

pytestmark = pytest.mark.slow  # each test starts, kills and restarts servers

MiB = 1024 * 1024


@BOTH_BACKENDS
def test_kill_9_mid_upload_then_restart(
    server: ServerProcess,
    source: Source,
    instance_dir: Path,
    journalist_key: JournalistKey,
    server_tmp: Path,
) -> None:
    """Accepted submissions decrypt after kill -9 and restart; the upload in flight when the
    process died is neither visible (to operators, nor to the source) nor left in staging or
    among the blobs."""
    source.start()
    assert source.submit("an earlier message").status_code == 303
    accepted = os.urandom(3 * MiB)
    assert source.submit("before the crash", files=[("a.bin", accepted, "x/y")]).status_code == 303
    assert received_count(source) == 3

    body, content_type = browser_multipart(
        [("csrf_token", source.csrf_token())], [("in-flight.bin", os.urandom(8 * MiB), "x/y")]
    )
    cookie = "; ".join(f"{k}={v}" for k, v in source.http.cookies.items())
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            (
                f"POST /submit HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body[: len(body) // 2]
        )
        deadline = time.monotonic() + 10
        while not staging_files(instance_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert staging_files(instance_dir), "the upload never reached staging"
        server.kill()

    # Dead server: the half upload is still in staging, but it is not a submission.
    assert len(stored(instance_dir)) == 3

    restarted = start_server(instance_dir, server_tmp)
    try:
        assert staging_files(instance_dir) == []
        items = stored(instance_dir)
        assert [i["kind"] for i in items] == ["message", "message", "file"]
        blobs = {p for p in (instance_dir / "store" / "blobs").rglob("*") if p.is_file()}
        assert blobs == {Path(i["path"]) for i in items}
        plain = [
            subprocess.run(
                ["age", "-d", "-i", str(journalist_key.identity_file), item["path"]],
                check=True,
                capture_output=True,
            ).stdout
            for item in items
        ]
        assert plain[:2] == [b"an earlier message", b"before the crash"]
        assert hashlib.sha256(plain[2]).digest() == hashlib.sha256(accepted).digest()
        # The old session survived the restart (it lives in the DB, split with the cookie), and
        # the source is shown exactly what was accepted before the crash.
        source.http.base_url = httpx.URL(restarted.url)
        assert received_count(source) == 3
    finally:
        restarted.stop()


def received_count(source: Source) -> int:
    """How many items the conversation page says have arrived (the source's only view of what
    it sent), over all days."""
    page = source.http.get("/conversation")
    assert page.status_code == 200, page.text
    counts = re.findall(r"(\d+) items? received", page.text)
    assert counts, page.text
    return sum(map(int, counts))


def test_orphan_blob_without_row_is_swept_at_start(
    server: ServerProcess, source: Source, instance_dir: Path, server_tmp: Path
) -> None:
    """A blob renamed into place whose row was never committed (a crash between the two steps)
    is removed at the next start; referenced blobs are kept."""
    source.start()
    assert source.submit("kept").status_code == 303
    server.stop()
    orphan = instance_dir / "store" / "blobs" / "ab" / ("ab" + "0" * 30)
    orphan.parent.mkdir(mode=0o700, exist_ok=True)
    orphan.write_bytes(b"age-encryption.org/v1\n...")
    restarted = start_server(instance_dir, server_tmp)
    try:
        assert not orphan.exists()
        (item,) = stored(instance_dir)
        assert Path(item["path"]).exists()
    finally:
        restarted.stop()


def test_second_server_on_the_same_instance_is_refused(
    server: ServerProcess, instance_dir: Path
) -> None:
    """Two servers on one instance could sweep each other's uploads: the second one refuses."""
    result = subprocess.run(
        sealdrop_command("serve", instance_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "already running" in result.stderr
