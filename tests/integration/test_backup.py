"""`sealdrop backup` against a running server, and the instance brought back from it (by
`sealdrop restore`, and by stock `age -d | tar -x`) serving the earlier conversation; refusals.

The backup is taken while an upload is held open mid-body; the restored instance must have the
conversation as it was, without that upload, on SQLite and on PostgreSQL."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from support_api import Api, cli_account
from support_http import (
    BOTH_BACKENDS,
    JournalistKey,
    Source,
    add_reply,
    age_keygen,
    browser_multipart,
    cli_in_process,
    staging_files,
    start_server,
    stored,
)

from sealdrop.testing import ServerProcess

MiB = 1024 * 1024
CANARY_MESSAGE = "canary-message-5f1d0c8e plaintext that must never be stored"
CANARY_FILE = b"canary-file-93be71aa " * 1000
CANARY_NAME = "canary-name-2d7f40c1.txt"
REPLY = "Can you tell us more about the documents?"
ONION_FILES = ("hostname", "hs_ed25519_public_key", "hs_ed25519_secret_key")


@pytest.fixture
def offline_key(tmp_path: Path) -> JournalistKey:
    """The organisation's offline backup key, made by the stock age-keygen."""
    return age_keygen(tmp_path / "offline-key.txt")


@pytest.fixture
def restore_url(backend: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for SQLite; a second, empty PostgreSQL database on the session's server otherwise."""
    if backend == "sqlite":
        yield None
        return
    url: str = request.getfixturevalue("postgres_url")
    admin = url.replace("+psycopg", "").rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS sealdrop_restored WITH (FORCE)")
        conn.execute("CREATE DATABASE sealdrop_restored")
    yield url.rsplit("/", 1)[0] + "/sealdrop_restored"


def upload_head(source: Source, port: int, content_type: str, length: int) -> bytes:
    cookies = "; ".join(f"{k}={v}" for k, v in source.http.cookies.items())
    return (
        f"POST /submit HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookies}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def read_status(sock: socket.socket) -> int:
    received = b""
    while b"\r\n" not in received:
        data = sock.recv(65536)
        assert data, "closed without a response"
        received += data
    return int(received.split(b" ", 2)[1])


def wait_for_staging(instance: Path) -> None:
    deadline = time.monotonic() + 15
    while not staging_files(instance):
        assert time.monotonic() < deadline, "the upload never reached staging"
        time.sleep(0.05)


def plant_onion_keys(instance: Path) -> dict[str, bytes]:
    """Onion service files as tor leaves them (tor itself is off in these tests)."""
    planted = {}
    for onion in ("source-onion", "api-onion"):
        folder = instance / "tor" / onion
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name in ONION_FILES:
            planted[f"tor/{onion}/{name}"] = os.urandom(64)
            (folder / name).write_bytes(planted[f"tor/{onion}/{name}"])
    return planted


def stock_decrypt(identity: Path, backup: Path) -> bytes:
    return subprocess.run(
        ["age", "-d", "-i", str(identity), str(backup)], check=True, capture_output=True
    ).stdout


@BOTH_BACKENDS
def test_a_backup_taken_during_an_upload_restores_the_conversation_without_the_upload(
    backend: str,
    server: ServerProcess,
    instance_dir: Path,
    journalist_key: JournalistKey,
    offline_key: JournalistKey,
    restore_url: str | None,
    server_tmp: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A backup taken while the server serves and an upload is held open mid-body restores (on
    SQLite with stock `age -d | tar -x` too) to an instance that serves the earlier source's
    conversation: the codename logs in and reads the reply, a journalist's token still works,
    the onion keys are the same, and the held upload (accepted after the backup) is absent. The
    decrypted archive holds no plaintext canary (message, file content, file name) in any
    member."""
    source = Source(server.url)
    codename = source.start()
    sent = source.submit(CANARY_MESSAGE, files=[(CANARY_NAME, CANARY_FILE, "text/plain")])
    assert sent.status_code == 303
    items = stored(instance_dir)
    add_reply(instance_dir, items[0]["source"], REPLY, journalist_key.recipient)
    api = Api(server)
    api.token = api.login(cli_account(instance_dir, "alice"))
    onion = plant_onion_keys(instance_dir)
    backup = tmp_path / "instance.backup.age"

    token = source.csrf_token()
    body, content_type = browser_multipart(
        [("csrf_token", token)], [("in-flight.bin", os.urandom(4 * MiB), "x/y")]
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as upload:
        upload.sendall(upload_head(source, server.port, content_type, len(body)))
        upload.sendall(body[: len(body) // 2])
        wait_for_staging(instance_dir)
        made = cli_in_process(
            "backup", instance_dir, "--to", backup, "--recipient", offline_key.recipient
        )
        assert made.returncode == 0, made.stderr
        upload.sendall(body[len(body) // 2 :])
        assert read_status(upload) == 303
    assert len(stored(instance_dir)) == len(items) + 1  # the held upload was accepted after

    archive = stock_decrypt(offline_key.identity_file, backup)
    canaries = (CANARY_MESSAGE.encode(), CANARY_FILE[:40], CANARY_NAME.encode())
    assert not any(c in backup.read_bytes() or c in archive for c in canaries)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            content = tar.extractfile(member).read() if member.isreg() else b""  # type: ignore[union-attr]
            assert not any(c in content for c in canaries), member.name

    restored = tmp_path / "restored"
    args = ["--database-url", restore_url] if restore_url else []
    result = cli_in_process(
        "restore", backup, "--identity", offline_key.identity_file, "--to", restored, *args
    )
    assert result.returncode == 0, result.stderr
    assert f"{len(items) + 1} item(s)" in result.stderr  # two submissions and the reply
    if backend == "sqlite":
        # Stock tools give the same instance folder (the manifest aside).
        by_stock = tmp_path / "by-stock-tools"
        by_stock.mkdir(mode=0o700)
        subprocess.run(
            ["tar", "-x", "-C", str(by_stock)], input=archive, check=True, capture_output=True
        )
        tree = {p.relative_to(restored): p.read_bytes() for p in restored.rglob("*") if p.is_file()}
        assert tree == {
            p.relative_to(by_stock): p.read_bytes() for p in by_stock.rglob("*") if p.is_file()
        }
        restored = by_stock
    else:
        monkeypatch.setenv("SEALDROP_DATABASE_URL", restore_url)  # type: ignore[arg-type]
    assert {
        f"tor/{p.relative_to(restored / 'tor')}" for p in (restored / "tor").rglob("*/*")
    } == set(onion)
    for name, content in onion.items():
        assert (restored / name).read_bytes() == content
    assert [i["id"] for i in stored(restored)] == [i["id"] for i in items]

    server.stop()  # the old server is gone: the restored one replaces it
    again = start_server(restored, server_tmp)
    try:
        reader = Source(again.url)
        assert reader.login(codename).status_code == 303
        page = reader.http.get("/conversation").text
        assert REPLY in page
        same_token = Api(again, api.token)
        listed = same_token.get("/sources")
        assert listed.status_code == 200, listed.text
        assert [s["id"] for s in listed.json()["sources"]] == [items[0]["source"]]
    finally:
        again.stop()


# --- refusals: one `error:` line each, and nothing half-made left behind ------------------------


@pytest.fixture
def backup_file(instance_dir: Path, offline_key: JournalistKey, tmp_path: Path) -> Path:
    """A backup of a fresh SQLite instance, made in this process (no server)."""
    path = tmp_path / "fresh.backup.age"
    made = cli_in_process("backup", instance_dir, "--to", path, "-r", offline_key.recipient)
    assert made.returncode == 0, made.stderr
    return path


def assert_error(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode == 1
    assert result.stderr.startswith("error: "), result.stderr
    assert text in result.stderr
    assert "Traceback" not in result.stderr


def test_backup_refuses_no_recipient_an_existing_file_the_demo_key_and_removes_a_failed_one(
    instance_dir: Path, offline_key: JournalistKey, tmp_path: Path
) -> None:
    """No --recipient, a --to file that exists (an earlier backup is never overwritten), and the
    demo key (its private half lives beside the instance) are refused; no file is written. A
    backup that fails after it began (here: no database) removes its file."""
    target = tmp_path / "b.age"
    assert_error(cli_in_process("backup", instance_dir, "--to", target), "at least one --recipient")
    assert not target.exists()
    target.write_bytes(b"an earlier backup")
    refused = cli_in_process("backup", instance_dir, "--to", target, "-r", offline_key.recipient)
    assert_error(refused, "exists")
    assert target.read_bytes() == b"an earlier backup"
    demo = age_keygen(tmp_path / "demo-key.txt")
    (instance_dir.parent / "journalist-identity.DEMO-ONLY.txt").write_text(
        f"# public key: {demo.recipient}\n"
    )
    other = tmp_path / "c.age"
    refused = cli_in_process("backup", instance_dir, "--to", other, "-r", demo.recipient)
    assert_error(refused, "demo key")
    assert not other.exists()
    assert_error(cli_in_process("backup", instance_dir, "--to", other, "-r", "age1nope"), "age")
    assert not other.exists()
    (instance_dir / "sealdrop.db").unlink()
    failed = cli_in_process("backup", instance_dir, "--to", other, "-r", offline_key.recipient)
    assert_error(failed, "no database file")
    assert not other.exists()  # an age file of a cut-short archive is never left to be trusted


def test_restore_refuses_a_non_empty_folder_and_a_wrong_identity(
    backup_file: Path, tmp_path: Path
) -> None:
    """A folder that holds anything is refused and left as it was; a key the backup was not
    encrypted to is refused before any folder is made."""
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    key = tmp_path / "offline-key.txt"
    assert_error(
        cli_in_process("restore", backup_file, "--identity", key, "--to", busy), "not empty"
    )
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    wrong = age_keygen(tmp_path / "wrong-key.txt")
    target = tmp_path / "restored"
    result = cli_in_process("restore", backup_file, "-i", wrong.identity_file, "--to", target)
    assert_error(result, "decryption failed")
    assert not target.exists()


def test_restore_of_a_damaged_backup_leaves_nothing_behind(
    backup_file: Path, tmp_path: Path
) -> None:
    """A backup cut short fails (age authenticates every chunk and the end) and the files
    written before the damage was found are removed."""
    cut = tmp_path / "cut.age"
    data = backup_file.read_bytes()
    cut.write_bytes(data[: len(data) - 1000])
    target = tmp_path / "restored"
    result = cli_in_process("restore", cut, "-i", tmp_path / "offline-key.txt", "--to", target)
    assert_error(result, "decryption failed")
    assert not target.exists()


def test_restore_refuses_an_archive_member_a_backup_never_holds(
    offline_key: JournalistKey, tmp_path: Path
) -> None:
    """Anyone who knows the public key can make an age file to it: a member outside the names a
    backup holds ('../', an absolute path, a symlink) is refused and nothing is written."""
    for name, kind in (
        ("../escaped", tarfile.REGTYPE),
        ("/etc/x", tarfile.REGTYPE),
        ("sealdrop.toml", tarfile.SYMTYPE),
    ):
        plain = io.BytesIO()
        with tarfile.open(fileobj=plain, mode="w") as tar:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
            tar.addfile(info, io.BytesIO(b""))
        crafted = tmp_path / "crafted.age"
        crafted.write_bytes(
            subprocess.run(
                ["age", "-r", offline_key.recipient],
                input=plain.getvalue(),
                check=True,
                capture_output=True,
            ).stdout
        )
        target = tmp_path / "restored"
        result = cli_in_process("restore", crafted, "-i", offline_key.identity_file, "--to", target)
        assert_error(result, "not a Sealdrop backup")
        assert not target.exists()
        assert not (tmp_path / "escaped").exists()
