"""The test helpers in sealdrop.testing that the integration tests' servers rely on."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealdrop import testing


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
