"""Several workers serving one instance on PostgreSQL + S3 (real PostgreSQL, real SeaweedFS):
two servers from two folders with the same settings (two "hosts"), and `serve --workers 2`; and
the refusal where only one server may run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support_api import Api, age_decrypt, cli_account, encrypt_reply
from support_http import JournalistKey, Source, cli_in_process, setup_cli

from sealdrop.config import CONFIG_FILE, SECRETS_FILE
from sealdrop.testing import ServerProcess, free_port, sealdrop_command
from sealdrop.testing_s3 import SeaweedFS

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

S3_TEST_BUCKET = "sealdrop-test"
OCTETS = {"content-type": "application/octet-stream"}


@pytest.fixture
def shared_instance(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_postgres_url: str,
    seaweedfs: SeaweedFS,
    journalist_key: JournalistKey,
) -> Path:
    """An instance on PostgreSQL + SeaweedFS (the settings in the environment, which the CLI in
    this process and the servers it starts both read), with the journalist's key."""
    monkeypatch.setenv("SEALDROP_DATABASE_URL", fresh_postgres_url)
    prefix = f"w{os.getpid()}{time.monotonic_ns()}"
    for name, value in seaweedfs.env(S3_TEST_BUCKET, prefix).items():
        monkeypatch.setenv(name, value)
    instance = tmp_path / "host-a"
    setup_cli("init", instance)
    setup_cli("recipients", "add", instance, journalist_key.recipient, "--name", "journalist")
    return instance


def second_host(instance: Path, folder: Path) -> Path:
    """Another host's folder: only the same sealdrop.toml and secrets.toml, copied."""
    folder.mkdir(mode=0o700)
    for name in (CONFIG_FILE, SECRETS_FILE):
        shutil.copy2(instance / name, folder / name)
    return folder


@pytest.fixture
def two_hosts(shared_instance: Path, tmp_path: Path) -> Iterator[tuple[ServerProcess, ...]]:
    servers = [
        ServerProcess(folder).start()
        for folder in (shared_instance, second_host(shared_instance, tmp_path / "host-b"))
    ]
    yield tuple(servers)
    for server in servers:
        server.stop()


def test_a_source_moves_between_servers_of_one_instance(
    two_hosts: tuple[ServerProcess, ServerProcess],
    shared_instance: Path,
    journalist_key: JournalistKey,
) -> None:
    """A source that starts on one server logs in and submits on the other; the first server's
    API serves the submission (the journalist's key opens it) and takes a reply, which the
    source reads on the second server."""
    a, b = two_hosts
    codename = Source(a.url).start()
    on_b = Source(b.url)
    assert on_b.login(codename).status_code == 303
    assert on_b.submit("a message sent through host B").status_code == 303

    api = Api(a)
    api.token = api.login(cli_account(shared_instance, "alice"))
    (source,) = api.all_sources()
    (message,) = api.submissions(source["id"])
    content = api.get(f"/submissions/{message['id']}/content")
    assert content.status_code == 200
    assert age_decrypt(journalist_key.identity_file, content.content) == (
        b"a message sent through host B"
    )
    reply = encrypt_reply("a reply posted on host A", source["reply_key"], journalist_key.recipient)
    api.ok("POST", f"/sources/{source['id']}/replies", 201, content=reply, headers=OCTETS)
    assert "a reply posted on host A" in on_b.http.get("/conversation").text


def test_the_login_budget_holds_across_servers(
    shared_instance: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With logins.per_minute = 3, three wrong codenames spread over two servers are answered
    and the next is refused with 429 on both: the budget is the instance's, not each server's."""
    monkeypatch.setenv("SEALDROP_LOGINS_PER_MINUTE", "3")
    folders = (shared_instance, second_host(shared_instance, tmp_path / "host-b"))
    servers = [ServerProcess(folder).start() for folder in folders]
    try:
        wrong = "abandon " * 6 + "zoo"
        answers = [Source(servers[i % 2].url).login(wrong).status_code for i in range(5)]
    finally:
        for server in servers:
            server.stop()
    assert answers == [400, 400, 400, 429, 429]


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def _wait(condition: object, timeout: float = 60.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.TransportError:
        return False


def test_serve_with_two_workers_restarts_a_killed_worker_and_stops_on_sigterm(
    shared_instance: Path, tmp_path: Path
) -> None:
    """`serve --workers 2`: two worker processes answer on one port; a worker killed with
    SIGKILL is replaced by a new one while the other goes on serving; SIGTERM to the parent stops
    every worker and the parent exits 0."""
    port, api_port = free_port(), free_port()
    log = (tmp_path / "serve.log").open("wb")
    parent = subprocess.Popen(
        sealdrop_command(
            "serve",
            shared_instance,
            "--port",
            str(port),
            "--api-port",
            str(api_port),
            "--workers",
            "2",
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "SEALDROP_TOR_ENABLED": "no"},
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait(lambda: len(_children(parent.pid)) == 2 and _answers(url))
        first = _children(parent.pid)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        # The other worker serves meanwhile: the port is the parent's, never closed.
        for _ in range(5):
            assert _answers(url)
        _wait(lambda: len(_children(parent.pid) - {victim}) == 2)
        replaced = _children(parent.pid)
        assert victim not in replaced
        assert first - {victim} <= replaced
        codename = Source(url).start()  # a source served, start to confirm, by either worker
        assert Source(url).login(codename).status_code == 303
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(30) == 0
        for pid in replaced:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in _state(pid)
        assert not _answers(url)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        log.close()
    text = (tmp_path / "serve.log").read_text(errors="replace")
    assert "exited (status -9); restarting it" in text, text


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except FileNotFoundError:
        return "zombie"


@pytest.mark.parametrize("shared", [False, True], ids=["sqlite-fs", "postgres-fs"])
def test_several_workers_are_refused_where_the_instance_is_one_machines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared: bool, request: pytest.FixtureRequest
) -> None:
    """`serve --workers 2` on SQLite, or on PostgreSQL with blobs in a local folder, stops at
    once with an error naming what is missing, before binding or starting anything."""
    if shared:
        monkeypatch.setenv("SEALDROP_DATABASE_URL", request.getfixturevalue("fresh_postgres_url"))
    instance = tmp_path / "instance"
    setup_cli("init", instance)
    result = cli_in_process("serve", instance, "--port", str(free_port()), "--workers", "2")
    assert result.returncode != 0
    assert "several workers need PostgreSQL and S3 object storage" in result.stderr
    assert "the blob store is a local folder" in result.stderr
    assert ("the database is SQLite" in result.stderr) is not shared
