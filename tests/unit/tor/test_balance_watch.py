"""`sealdrop balance --watch`: the checker's state machine (dead after K failed checks in a row,
alive after one success), the configuration it writes for Onionbalance (never without workers),
and the SIGHUP that makes Onionbalance reload it. Checks are fakes here (no tor); the file, the
signal and the child process are real. The end-to-end test drives it through the private Tor
network (tests/e2e/test_onionbalance.py)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from stem.descriptor.hidden_service import HiddenServiceDescriptorV3
from typer.testing import CliRunner

from sealdrop.cli.main import app
from sealdrop.errors import ConfigError, TorError
from sealdrop.tor.balance_watch import (
    Liveness,
    Watcher,
    check_health,
    configured_workers,
    pid_reloader,
    unit_reloader,
)
from sealdrop.tor.front import render_onionbalance_config


def _address() -> str:
    public = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return str(HiddenServiceDescriptorV3.address_from_identity_key(public, suffix=True))


FRONT, A, B, C = (_address() for _ in range(4))


class Fakes:
    """Scripted checks (a worker answers unless marked down) and counted reloads."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.reloads = 0

    def check(self, address: str) -> str | None:
        return "SOCKS error: TTL expired" if address in self.down else None

    def reload(self) -> None:
        self.reloads += 1


def _watcher(tmp_path: Path, fakes: Fakes, workers: list[str], k: int = 3) -> Watcher:
    return Watcher(
        front=FRONT,
        workers=workers,
        config=tmp_path / "config.yaml",
        reload=fakes.reload,
        check=fakes.check,
        failures_to_dead=k,
    )


def test_worker_is_dead_after_k_failures_in_a_row_and_alive_after_one_success() -> None:
    """Dead only at the K-th consecutive failure (a success in between resets the count), and
    alive again at the first success."""
    liveness = Liveness([A, B], failures_to_dead=3)
    assert [liveness.record(A, False), liveness.record(A, False)] == [None, None]
    assert liveness.record(A, True) is None  # a success resets the count
    assert [liveness.record(A, False) for _ in range(2)] == [None, None]
    assert liveness.alive() == [A, B]
    assert liveness.record(A, False) == "dead"
    assert liveness.record(A, False) is None  # reported once
    assert liveness.alive() == [B]
    assert liveness.record(A, True) == "alive"
    assert liveness.alive() == [A, B]
    with pytest.raises(ConfigError):
        Liveness([A], failures_to_dead=0)


def test_watcher_takes_a_dead_worker_out_reloads_once_and_puts_it_back(tmp_path: Path) -> None:
    """After K failed rounds the configuration names only the live workers and Onionbalance gets
    one SIGHUP; further rounds change nothing; one success puts the worker back (another)."""
    fakes = Fakes()
    watcher = _watcher(tmp_path, fakes, [A, B], k=2)
    watcher.start()
    config = tmp_path / "config.yaml"
    assert config.read_text() == render_onionbalance_config(FRONT, [A, B])
    assert fakes.reloads == 1  # there was no configuration: written, and Onionbalance told
    assert config.stat().st_mode & 0o777 == 0o600
    fakes.down.add(A)
    watcher.round()
    assert configured_workers(config) == {A, B}  # one failure is not death
    watcher.round()
    assert config.read_text() == render_onionbalance_config(FRONT, [B])
    assert fakes.reloads == 2
    watcher.round()
    assert fakes.reloads == 2  # nothing changed: no rewrite, no reload
    fakes.down.clear()
    watcher.round()
    assert config.read_text() == render_onionbalance_config(FRONT, [A, B])
    assert fakes.reloads == 3


def test_watcher_never_writes_a_configuration_without_workers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """When every worker fails (or only this host's tor does), the configuration keeps the
    workers it named last, and the log says so at ERROR level at each round."""
    fakes = Fakes()
    watcher = _watcher(tmp_path, fakes, [A, B, C], k=1)
    watcher.start()
    fakes.down |= {A, B}
    watcher.round()
    assert configured_workers(tmp_path / "config.yaml") == {C}
    fakes.down.add(C)
    with caplog.at_level(logging.INFO, logger="sealdrop.balance"):
        watcher.round()
        watcher.round()
    assert configured_workers(tmp_path / "config.yaml") == {C}
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "EVERY worker failed" in errors[0].getMessage()
    assert any(f"worker {C} is dead" in r.getMessage() for r in caplog.records)
    fakes.down.discard(A)
    watcher.round()
    assert configured_workers(tmp_path / "config.yaml") == {A}


def test_restarted_watcher_keeps_out_a_worker_the_configuration_leaves_out(
    tmp_path: Path,
) -> None:
    """A watcher started on a configuration without worker A does not put A back (nor signal
    Onionbalance) until A answers a check."""
    config = tmp_path / "config.yaml"
    config.write_text(render_onionbalance_config(FRONT, [B]))
    fakes = Fakes()
    fakes.down.add(A)
    watcher = _watcher(tmp_path, fakes, [A, B])
    watcher.start()
    watcher.round()
    assert configured_workers(config) == {B}
    assert fakes.reloads == 0
    fakes.down.clear()
    watcher.round()
    assert configured_workers(config) == {A, B}
    assert fakes.reloads == 1


def test_reload_failure_is_logged_and_the_watcher_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A pidfile that names no process is an ERROR in the log, not the end of the watcher."""
    fakes = Fakes()
    watcher = Watcher(
        front=FRONT,
        workers=[A, B],
        config=tmp_path / "config.yaml",
        reload=pid_reloader(str(tmp_path / "missing.pid")),
        check=fakes.check,
        failures_to_dead=1,
    )
    with caplog.at_level(logging.ERROR, logger="sealdrop.balance"):
        watcher.start()
        fakes.down.add(A)
        watcher.round()
    assert configured_workers(tmp_path / "config.yaml") == {B}
    assert [r.getMessage() for r in caplog.records][-1].startswith(
        "Onionbalance did not get the new configuration: cannot read Onionbalance's pid"
    )


def _hup_catcher(marker: Path) -> subprocess.Popen[bytes]:
    """A process that touches ``marker`` on SIGHUP (and lives on), ready when returned."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import pathlib, signal, sys, time\n"
            f"signal.signal(signal.SIGHUP, lambda *_: pathlib.Path({str(marker)!r}).touch())\n"
            "print('ready', flush=True)\n"
            "time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n"
    return child


def _hupped(marker: Path) -> bool:
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return marker.exists()


def test_pid_reloader_sends_sighup_to_the_pid_in_the_file(tmp_path: Path) -> None:
    """The pidfile is read at the reload and the process it names receives SIGHUP."""
    marker = tmp_path / "hup"
    child = _hup_catcher(marker)
    try:
        pidfile = tmp_path / "onionbalance.pid"
        pidfile.write_text(f"{child.pid}\n")
        pid_reloader(str(pidfile))()
        assert _hupped(marker)
        assert child.poll() is None  # reloaded, not killed
    finally:
        child.kill()
        child.wait()
    with pytest.raises(TorError, match="names no running Onionbalance"):
        pid_reloader("0")()


def test_unit_reloader_signals_the_units_main_pid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --onionbalance-unit the pid is the unit's MainPID as `systemctl show` reports it (a
    stand-in systemctl here: no systemd in the test machine), and that process gets SIGHUP."""
    marker = tmp_path / "hup"
    child = _hup_catcher(marker)
    try:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        systemctl = bin_dir / "systemctl"
        asked = tmp_path / "asked"
        systemctl.write_text(f'#!/bin/sh\necho "$@" > {asked}\necho {child.pid}\n')
        systemctl.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
        unit_reloader("onionbalance")()
        assert _hupped(marker)
        assert asked.read_text() == "show --property=MainPID --value onionbalance\n"
        assert child.poll() is None
        systemctl.write_text("#!/bin/sh\necho 0\n")  # the unit is not running
        with pytest.raises(TorError, match="names no running Onionbalance"):
            unit_reloader("onionbalance")()
    finally:
        child.kill()
        child.wait()


def test_check_fails_when_tor_does_not_answer(tmp_path: Path) -> None:
    """A check through a SOCKS port where nothing listens is a failure with a reason."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    problem = check_health(A, f"127.0.0.1:{port}", timeout=5)
    assert problem is not None
    assert problem.startswith("ConnectError")


def test_check_fails_on_tors_extended_socks_error_instead_of_crashing() -> None:
    """Tor's extended SOCKS replies (here 0xF2, "introduction failed"), which socksio does not
    know, make the check fail with a reason; they once crashed the watcher."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(16)  # greeting: version, methods
            conn.sendall(b"\x05\x02")  # username/password, as tor with IsolateSOCKSAuth
            conn.recv(512)  # the credentials
            conn.sendall(b"\x01\x00")
            conn.recv(512)  # CONNECT to the onion
            conn.sendall(b"\x05\xf2\x00\x01" + bytes(6))

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        problem = check_health(A, f"127.0.0.1:{port}", timeout=10)
    finally:
        thread.join(10)
        server.close()
    assert problem is not None
    assert problem.startswith("tor refused the connection (an onion-service error")
    assert problem.endswith("no introduction point answered)")


def test_balance_watch_refuses_without_workers_or_a_way_to_signal(tmp_path: Path) -> None:
    """--watch needs the workers, exactly one of --onionbalance-pid / --onionbalance-unit, and
    the front key already made (it never makes one); those options without --watch are
    refused, not ignored."""
    runner = CliRunner()
    instance = tmp_path / "inst"
    assert runner.invoke(app, ["init", str(instance)]).exit_code == 0
    no_workers = runner.invoke(
        app, ["balance", str(instance), "--watch", "--onionbalance-pid", "1"]
    )
    assert no_workers.exit_code != 0
    assert "name each with --worker" in no_workers.output
    no_signal = runner.invoke(app, ["balance", str(instance), "--watch", "--worker", A])
    assert no_signal.exit_code != 0
    assert "--onionbalance-pid or --onionbalance-unit" in no_signal.output
    not_watching = runner.invoke(app, ["balance", str(instance), "--onionbalance-unit", "ob"])
    assert not_watching.exit_code != 0
    assert "for --watch only" in not_watching.output
    no_key = runner.invoke(
        app, ["balance", str(instance), "--watch", "--worker", A, "--onionbalance-pid", "1"]
    )
    assert no_key.exit_code != 0
    assert "no front key" in no_key.output
    # The watcher made no key of its own: that would be a new front address.
    assert not (instance / "tor" / "front-onion" / "key.pem").exists()


def test_balance_watch_needs_only_the_front_key_not_the_instance_secrets(tmp_path: Path) -> None:
    """On the Onionbalance host the watcher runs from a folder holding only
    tor/front-onion/key.pem (no secrets.toml, no sealdrop.toml) and writes only Onionbalance's
    configuration; here every check fails (no tor), so it names both workers and says so."""
    runner = CliRunner()
    instance = tmp_path / "inst"
    assert runner.invoke(app, ["init", str(instance)]).exit_code == 0
    assert runner.invoke(app, ["balance", str(instance)]).exit_code == 0
    host = tmp_path / "ob-host"
    (host / "tor" / "front-onion").mkdir(parents=True)
    key = host / "tor" / "front-onion" / "key.pem"
    key.write_bytes((instance / "tor" / "front-onion" / "key.pem").read_bytes())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    config = tmp_path / "config.yaml"
    command = [
        sys.executable,
        "-m",
        "sealdrop",
        "balance",
        str(host),
        "--worker",
        A,
        "--worker",
        B,
        "--watch",
        "--onionbalance-config",
        str(config),
        "--onionbalance-pid",
        str(tmp_path / "no.pid"),
        "--socks",
        f"127.0.0.1:{closed}",
        "--interval",
        "1",
        "--failures",
        "1",
    ]
    watcher = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        lines: list[str] = []
        assert watcher.stderr is not None
        while time.monotonic() < deadline and not any("EVERY worker" in x for x in lines):
            line = watcher.stderr.readline()
            if not line:
                break
            lines.append(line)
    finally:
        watcher.terminate()
        watcher.wait(10)
    assert any("ERROR sealdrop.balance: EVERY worker failed" in x for x in lines), lines
    assert configured_workers(config) == {A, B}
    assert sorted(p.name for p in host.rglob("*")) == ["front-onion", "key.pem", "tor"]
