"""`sealdrop serve` with its own tor (the real Debian tor, no Tor network needed): it starts and
owns tor, reports it in `sealdrop status`, restarts it when it dies, reloads or restarts it for
`sealdrop access`, stops it on exit, and serves without it when tor is missing.

The onions are reached through a private Tor network in tests/e2e/test_onion_services.py; these
tests check the management, which needs no network at all."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import psutil
import pytest
from support_http import run_cli

from sealdrop.testing import ServerProcess, sealdrop_command
from sealdrop.tor.layout import TorLayout

pytestmark = pytest.mark.slow

TOR = shutil.which("tor")

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"condition not met in {timeout} s")


def tor_children(server: ServerProcess) -> list[psutil.Process]:
    return [p for p in psutil.Process(server.pid).children() if p.name() == "tor"]


def status(instance: Path) -> str:
    return run_cli("status", instance).stdout


@pytest.fixture
def served(short_instance: Path) -> Iterator[ServerProcess]:
    if TOR is None:
        pytest.fail("tor is not installed: run the README's test command (installs Debian tor)")
    server = ServerProcess(short_instance, env={"SEALDROP_TOR_ENABLED": "yes"}).start()
    try:
        layout = TorLayout.of_instance(short_instance)
        wait_until(lambda: layout.source_onion_address() and layout.api_onion_address())
        wait_until(lambda: "Source onion: http://" in server.log())
        yield server
    finally:
        server.stop()


def test_serve_runs_its_own_tor_with_both_onions_and_reports_them(served: ServerProcess) -> None:
    """serve starts tor as its child, prints both onion addresses, keeps the keys 0600 in the
    instance, logs tor's version unredacted, and `status` reads PoW and circuit-id export back
    from the running tor."""
    layout = TorLayout.of_instance(served.instance)
    source, api = layout.source_onion_address(), layout.api_onion_address()
    assert source
    assert api
    assert source != api
    assert f"Source onion: http://{source}/" in served.log()
    assert f"Journalist API onion: http://{api}/api/v1/" in served.log()
    key = layout.source_onion_dir / "hs_ed25519_secret_key"
    assert key.stat().st_mode & 0o077 == 0
    assert len(tor_children(served)) == 1
    # The log redaction leaves tor's version alone (it is not a peer's address).
    assert "tor: Tor 0.4." in served.log()
    text = status(served.instance)
    assert "Tor: running, version 0.4." in text
    assert "Proof-of-work defense (source onion): on" in text
    assert "Per-circuit limits: on" in text
    assert f"Source onion: http://{source}/" in text
    assert "Authorized reader devices: 0" in text
    # The TCP listeners serve as before.
    assert httpx.get(served.url + "/").status_code == 200


def test_the_onion_listeners_are_unix_sockets_only_this_user_reaches(served: ServerProcess) -> None:
    """tor forwards onion connections to unix sockets in the 0700 tor folder; the source one
    requires the PROXY line tor sends, and closes a connection without it."""
    layout = TorLayout.of_instance(served.instance)
    assert layout.root.stat().st_mode & 0o077 == 0
    wait_until(lambda: layout.source_socket.exists() and layout.api_socket.exists())
    transport = httpx.HTTPTransport(uds=str(layout.api_socket))
    with httpx.Client(transport=transport, base_url="http://api.onion") as client:
        assert client.get("/api/v1/me").status_code == 401
    transport = httpx.HTTPTransport(uds=str(layout.source_socket))
    with (
        httpx.Client(transport=transport, base_url="http://source.onion") as client,
        pytest.raises(httpx.TransportError),
    ):
        client.get("/")


def test_tor_is_restarted_when_it_dies(served: ServerProcess) -> None:
    """A tor killed with SIGKILL is started again by serve, with the same onion addresses."""
    layout = TorLayout.of_instance(served.instance)
    before = layout.source_onion_address()
    (first,) = tor_children(served)
    first.kill()
    first.wait(10)
    second = wait_until(lambda: [p for p in tor_children(served) if p.pid != first.pid])
    assert isinstance(second, list)
    assert len(second) == 1
    wait_until(lambda: "Tor: running" in status(served.instance))
    assert layout.source_onion_address() == before
    assert "restarting it" in served.log()


def test_access_add_reloads_and_revoke_restarts_the_running_tor(served: ServerProcess) -> None:
    """`access add` prints the client key line (and says Tor Browser takes only the key after the
    last colon) and makes tor reload (same process); `access
    revoke` restarts tor (a new process), so that introduction points change."""
    layout = TorLayout.of_instance(served.instance)
    api = layout.api_onion_address()
    assert api
    (before,) = tor_children(served)
    added = run_cli("access", "add", served.instance, "alice-laptop")
    line = added.stdout.strip()
    assert line.startswith(api.removesuffix(".onion") + ":descriptor:x25519:")
    assert "alice-laptop.auth_private" in added.stderr
    # Tor Browser asks for the key alone (the part after the last colon), not the whole line.
    assert "after the last colon" in " ".join(added.stderr.split())
    assert run_cli("access", "list", served.instance).stdout.split() == ["alice-laptop"]
    wait_until(lambda: "Received reload signal (hup)" in served.log())
    assert [p.pid for p in tor_children(served)] == [before.pid]
    revoked = run_cli("access", "revoke", served.instance, "alice-laptop")
    assert "restarting" in revoked.stderr
    wait_until(lambda: [p for p in tor_children(served) if p.pid != before.pid])
    assert run_cli("access", "list", served.instance).stdout.split() == []
    wait_until(lambda: "Tor: running" in status(served.instance))


def test_stopping_or_killing_serve_stops_tor(short_instance: Path) -> None:
    """tor never outlives the serve that started it: not after SIGTERM, and not after SIGKILL
    (tor watches its owning process)."""
    for stop in ("terminate", "kill"):
        server = ServerProcess(short_instance, env={"SEALDROP_TOR_ENABLED": "yes"}).start()
        (tor,) = wait_until(functools.partial(tor_children, server))
        if stop == "terminate":
            server.stop()
        else:
            server.kill()
        tor.wait(30)
        assert not tor.is_running()
    assert "Tor: not running" in status(short_instance)


def test_without_tor_serve_says_how_to_install_it_and_serves_on_loopback(
    short_instance: Path,
) -> None:
    """tor missing with enabled='auto': a hint naming apt-get install tor, and the TCP listener
    serves; with enabled='yes': serve refuses to start, with the same hint."""
    missing = {"SEALDROP_TOR_ENABLED": "auto", "SEALDROP_TOR_BINARY": "/nonexistent/tor"}
    server = ServerProcess(short_instance, env=missing).start()
    try:
        assert "apt-get install tor" in server.log()
        assert httpx.get(server.url + "/").status_code == 200
        assert "Source onion" not in server.log()
    finally:
        server.stop()
    refused = subprocess.run(
        sealdrop_command("serve", short_instance),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **missing, "SEALDROP_TOR_ENABLED": "yes"},
    )
    assert refused.returncode == 1
    assert "apt-get install tor" in refused.stderr
    assert (
        "Tor: not installed"
        in subprocess.run(
            sealdrop_command("status", short_instance),
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **missing},
            check=True,
        ).stdout
    )


def test_access_before_tor_ever_ran_explains_what_to_do(short_instance: Path) -> None:
    """Adding a device needs the API onion's address, which tor creates: a clear error first."""
    result = subprocess.run(
        sealdrop_command("access", "add", short_instance, "alice"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "run `sealdrop serve` once" in result.stderr
