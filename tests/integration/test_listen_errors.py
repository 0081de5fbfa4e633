"""A port already in use: `serve` and `demo` say so in one line, before announcing anything or
starting tor, and exit 1 (the real CLI in a child process, against a really occupied port)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sealdrop.testing import free_port, sealdrop_command
from sealdrop.tor.layout import TorLayout

pytestmark = pytest.mark.slow  # each test starts `sealdrop serve` or `demo` processes


@pytest.fixture
def occupied() -> Iterator[int]:
    """A port on 127.0.0.1 on which another program listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _run(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        sealdrop_command(*map(str, args)),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SEALDROP_TOR_ENABLED": "yes", **(env or {})},
    )


def _assert_one_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""  # no URL, no onion address was announced
    lines = result.stderr.strip().splitlines()
    assert lines == [expected], result.stderr


def test_serve_with_the_source_port_in_use_says_so_once_and_starts_nothing(
    short_instance: Path, occupied: int
) -> None:
    """The source port taken: one error line naming the address and --port / [source] port,
    exit 1, no announcement, no traceback, and tor never started."""
    result = _run("serve", short_instance, "--port", occupied, "--api-port", free_port())
    _assert_one_error(
        result,
        f"error: cannot listen on 127.0.0.1:{occupied} (address in use); choose another port "
        "with --port or [source] port",
    )
    assert not TorLayout.of_instance(short_instance).data_dir.exists()


def test_serve_with_the_api_port_in_use_says_so_once_and_starts_nothing(
    short_instance: Path, occupied: int
) -> None:
    """The API port taken (set in the environment as [api] port): one error line naming
    --api-port / [api] port, exit 1, nothing announced, tor never started."""
    result = _run(
        "serve",
        short_instance,
        "--port",
        free_port(),
        env={"SEALDROP_API_PORT": str(occupied)},
    )
    _assert_one_error(
        result,
        f"error: cannot listen on 127.0.0.1:{occupied} (address in use); choose another port "
        "with --api-port or [api] port",
    )
    assert not TorLayout.of_instance(short_instance).data_dir.exists()


def test_demo_with_its_api_port_in_use_names_its_own_option(tmp_path: Path, occupied: int) -> None:
    """`sealdrop demo --api-port` is used, and a taken one is named as the demo's option."""
    options = ["--port", free_port(), "--api-port", occupied]
    result = _run("demo", tmp_path / "demo", *options, env={"SEALDROP_TOR_ENABLED": "no"})
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: cannot listen on 127.0.0.1:{occupied} (address in use); choose another port "
        "with --api-port (scripts/demo: API_PORT=)"
    )
    assert "Traceback" not in result.stderr


def test_demo_serves_on_the_host_and_ports_it_is_given(tmp_path: Path) -> None:
    """`sealdrop demo --host H --port P --api-port Q` serves the source interface on H:P and
    the journalist API on Q."""
    port, api_port = free_port(), free_port()
    options = ["--host", "127.0.0.1", "--port", port, "--api-port", api_port]
    process = subprocess.Popen(
        sealdrop_command("demo", tmp_path / "demo", *map(str, options)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "SEALDROP_TOR_ENABLED": "no"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                source = httpx.get(f"http://127.0.0.1:{port}/", timeout=1.0)
                api = httpx.get(f"http://127.0.0.1:{api_port}/api/v1/openapi.json", timeout=1.0)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert source.status_code == 200
        assert api.status_code == 200
    finally:
        process.terminate()
        process.wait(20)


def test_serve_with_the_metrics_port_in_use_says_so_once_and_starts_nothing(
    short_instance: Path, occupied: int
) -> None:
    """With [metrics] on and its port taken: one error line naming [metrics] port, exit 1,
    nothing announced, tor never started (the metrics socket is bound with the others, first)."""
    result = _run(
        "serve",
        short_instance,
        "--port",
        free_port(),
        "--api-port",
        free_port(),
        env={"SEALDROP_METRICS_ENABLED": "true", "SEALDROP_METRICS_PORT": str(occupied)},
    )
    _assert_one_error(
        result,
        f"error: cannot listen on 127.0.0.1:{occupied} (address in use); choose another port "
        "with [metrics] port",
    )
    assert not TorLayout.of_instance(short_instance).data_dir.exists()
