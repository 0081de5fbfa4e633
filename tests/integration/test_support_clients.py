"""The test harness's HTTP clients (support_http.Source, support_api.Api) cost little CPU to make:
the suite makes one for nearly every test, on a machine the parallel run keeps busy."""

from __future__ import annotations

import time
from pathlib import Path

from support_api import Api
from support_http import Source, close_clients

from sealdrop.testing import ServerProcess


def test_a_source_or_api_client_costs_a_few_milliseconds_of_cpu(tmp_path: Path) -> None:
    """Making a Source and an Api costs well under 10 ms of CPU each (a new httpx client that
    builds its own TLS context, the CA bundle loaded, costs ~25 ms)."""
    server = ServerProcess(tmp_path)  # never started: the clients only keep its URLs
    before = time.process_time()
    for _ in range(20):
        Source(server.url)
        Api(server)
    spent = (time.process_time() - before) / 40
    close_clients()
    assert spent < 0.01, f"{spent * 1000:.1f} ms of CPU per client"
