"""The test helpers in sealdrop.testing that the integration tests' servers rely on."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from sealdrop import testing
from sealdrop.services.instance import init_instance

# Runs a pytest session of its own inside a test (the session hooks of tests/support_session.py).
pytest_plugins = ["pytester"]


def test_a_server_process_never_gets_one_port_for_both_listeners(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When free_port hands out the same port twice (the first one is free again once its probe
    socket is closed), the API listener gets another port: `serve` refuses one port for both."""
    ports = iter([40001, 40001, 40002])
    monkeypatch.setattr(testing, "free_port", lambda: next(ports))
    server = testing.ServerProcess(tmp_path)
    assert (server.port, server.api_port) == (40001, 40002)
    assert server.api_url == "http://127.0.0.1:40002"


def test_the_tor_network_stops_after_the_last_test_that_uses_it(pytester: pytest.Pytester) -> None:
    """The session's Tor network (tests/support_session.py) is torn down as soon as the next test
    does not use it, not at the session's end, and a later test that uses it gets a new one."""
    log = pytester.path / "events.txt"
    pytester.makeconftest(
        f"""
        import pytest
        from support_session import pytest_runtest_teardown

        @pytest.fixture(scope="session")
        def tor_network():
            with open({str(log)!r}, "a") as f:
                f.write("start ")
            yield
            with open({str(log)!r}, "a") as f:
                f.write("stop ")

        @pytest.fixture(scope="module")
        def client(tor_network):
            yield
        """
    )
    pytester.makepyfile(
        f"""
        from pathlib import Path
        EVENTS = Path({str(log)!r})

        def test_one(client): pass
        def test_two(tor_network): pass
        def test_without_the_network():
            assert EVENTS.read_text() == "start stop "
        def test_again(tor_network):
            assert EVENTS.read_text() == "start stop start "
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=4)
    assert log.read_text() == "start stop start stop "


def test_waiting_for_a_server_to_start_costs_the_test_process_little_cpu(tmp_path: Path) -> None:
    """ServerProcess.start probes the new server until it answers without spending CPU on each
    probe (a new HTTP client per probe cost ~50 ms a round: seconds per server start)."""
    instance = init_instance(tmp_path / "instance")
    server = testing.ServerProcess(instance)
    before = time.process_time()
    server.start()
    try:
        spent = time.process_time() - before
        assert httpx.get(server.url + "/", timeout=10).status_code == 200
    finally:
        server.stop()
    # While it waited, the server's ~1.3 s of imports alone meant 10+ rounds of probes.
    assert spent < 0.3, f"{spent:.2f} s of CPU in this process to wait for one server"
