"""Several workers serving one instance on PostgreSQL + S3 (real PostgreSQL, real SeaweedFS):
two servers from two folders with the same settings (two "hosts"), and `serve --workers 2`; and
the refusal where only one server may run."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
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
from sealdrop.tor.layout import TorLayout

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


def _onion_get(path: Path, circuit: int, target: str = "/healthz") -> bytes:
    """One request over the source onion's unix socket, with the PROXY line tor would send for
    a connection of ``circuit``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(20)
        sock.connect(str(path))
        sock.sendall(
            f"PROXY TCP6 fc00:dead:beef:4dad::{circuit >> 16:x}:{circuit & 0xFFFF:x} ::1 "
            f"{circuit & 0xFFFF} 80\r\n".encode()
            + f"GET {target} HTTP/1.1\r\nHost: x.onion\r\nConnection: close\r\n\r\n".encode()
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.slow
def test_with_two_workers_tor_reaches_them_with_its_circuit_ids(
    shared_instance: Path, tmp_path: Path
) -> None:
    """`serve --workers 2` with its own tor (the real tor, no Tor network needed): tor is the
    parent's child, not a worker's; the source onion's socket, shared by the workers, answers
    behind tor's PROXY line; and one circuit's budget is enforced by the workers (each keeps
    its own: with a burst of 2, one circuit gets at most 2 x 2 answers before 429)."""
    if shutil.which("tor") is None:
        pytest.fail("tor is not installed: run the README's test command (installs Debian tor)")
    root = Path(tempfile.mkdtemp(prefix="sdw", dir="/tmp"))  # unix socket paths must be short
    folder = second_host(shared_instance, root / "i")
    log_path = tmp_path / "serve.log"
    log = log_path.open("wb")
    parent = subprocess.Popen(
        sealdrop_command(
            "serve",
            folder,
            "--port",
            str(free_port()),
            "--api-port",
            str(free_port()),
            "--workers",
            "2",
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            "SEALDROP_TOR_ENABLED": "yes",
            "SEALDROP_CIRCUITS_BURST": "2",
            "SEALDROP_CIRCUITS_REQUESTS_PER_MINUTE": "1",
        },
    )
    try:
        _wait(lambda: "Source onion: http://" in log_path.read_text(errors="replace"))
        _wait(lambda: len(_children(parent.pid)) == 3)  # tor and two workers
        names = {pid: _name(pid) for pid in _children(parent.pid)}
        assert list(names.values()).count("tor") == 1
        for worker in (pid for pid, name in names.items() if name != "tor"):
            assert "tor" not in {_name(child) for child in _children(worker)}
        socket_path = TorLayout.of_instance(folder).source_socket
        assert _onion_get(socket_path, circuit=7).endswith(b"\r\n\r\nok\n")
        answers = [
            _onion_get(socket_path, circuit=9, target="/").split(b" ", 2)[1] for _ in range(8)
        ]
        assert b"429" in answers
        assert 2 <= answers.count(b"200") <= 4
        assert _status(_onion_get(socket_path, circuit=10, target="/")) == b"200"
    finally:
        parent.send_signal(signal.SIGTERM)
        try:
            parent.wait(30)
        except subprocess.TimeoutExpired:
            parent.kill()
            parent.wait(10)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _name(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def _status(answer: bytes) -> bytes:
    return answer.split(b" ", 2)[1]


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


def test_more_workers_than_the_derivation_pool_are_refused(shared_instance: Path) -> None:
    """`serve --workers 3` with the default kdf.max_concurrent of 2 stops at once with an error
    naming the setting (three workers would run three 64 MiB derivations where two were
    allowed), before binding or starting anything."""
    result = cli_in_process("serve", shared_instance, "--port", str(free_port()), "--workers", "3")
    assert result.returncode != 0
    assert "3 workers need [kdf] max_concurrent of at least 3 (it is 2)" in result.stderr
    assert "Traceback" not in result.stderr
