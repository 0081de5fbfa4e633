"""A real `sealdrop serve` with [metrics] on: its metrics listener's text parses with
prometheus_client's own parser, the values change only at the scheduled refresh (a scrape right
after a submission shows the snapshot before it), no source id or pseudonym is in it; every
listener answers /healthz; and without [metrics] enabled the port is not bound at all."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support_http import JournalistKey, Source, setup_cli, start_server, stored

from sealdrop.testing import ServerProcess, free_port
from sealdrop.tor.layout import TorLayout

# Short, so that the test sees refreshes; a real instance keeps the default (900 s).
REFRESH = 4
MESSAGE = "metrics canary message 5d1e"


@dataclass(frozen=True)
class MetricsServer:
    server: ServerProcess
    metrics_url: str
    instance: Path


@dataclass(frozen=True)
class Scrape:
    text: str
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]

    def value(self, name: str, **labels: str) -> float:
        return self.samples[(name, tuple(sorted(labels.items())))]

    @property
    def taken_at(self) -> float:
        return self.value("sealdrop_snapshot_time_seconds")


def scrape(url: str) -> Scrape:
    response = httpx.get(url + "/metrics", timeout=10)
    assert response.status_code == 200
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    return Scrape(response.text, samples)


def next_snapshot(url: str, after: float) -> Scrape:
    """The first scrape whose snapshot was taken after ``after`` (Unix time)."""
    deadline = time.monotonic() + 3 * REFRESH + 10
    while time.monotonic() < deadline:
        current = scrape(url)
        if current.taken_at > after:
            return current
        time.sleep(0.2)
    raise AssertionError("no new snapshot")


@pytest.fixture(scope="module")
def metrics_server(
    tmp_path_factory: pytest.TempPathFactory, shared_journalist_key: JournalistKey
) -> Iterator[MetricsServer]:
    root = tmp_path_factory.mktemp("metrics")
    instance = root / "instance"
    setup_cli("init", instance)
    setup_cli(
        "recipients", "add", instance, shared_journalist_key.recipient, "--name", "journalist"
    )
    (root / "server-tmp").mkdir()
    port = free_port()
    server = start_server(
        instance,
        root / "server-tmp",
        metrics_enabled="true",
        metrics_port=str(port),
        metrics_refresh_seconds=str(REFRESH),
    )
    yield MetricsServer(server, f"http://127.0.0.1:{port}", instance)
    server.stop()


@pytest.mark.slow
def test_metrics_change_only_at_the_refresh_and_name_no_source(
    metrics_server: MetricsServer,
) -> None:
    """Right after a fresh snapshot a source submits once and is refused once (an empty
    submission): a scrape at once shows exactly the text of before; the next snapshot, taken at
    a multiple of the refresh interval, counts one more accepted and one more refused "empty",
    and the source listener's connections. No scrape holds the source's id, pseudonym, codename
    or message."""
    url = metrics_server.metrics_url
    source = Source(metrics_server.server.url)
    codename = source.start()
    token = source.csrf_token()
    # Submit just after a refresh, so that both submissions and the next scrape fall within
    # one interval.
    before = next_snapshot(url, scrape(url).taken_at)
    assert source.submit(MESSAGE, token=token).status_code == 303
    assert source.submit("", token=token).status_code == 400
    same = scrape(url)
    assert same.taken_at == before.taken_at, "the test was too slow for the interval"
    assert same.text == before.text

    after = next_snapshot(url, before.taken_at)
    # At a multiple of the interval (give or take a slow wake-up), not at the submission.
    assert after.taken_at % REFRESH < 1.5
    accepted = "sealdrop_intake_accepted_total"
    refused = "sealdrop_intake_refused_total"
    assert after.value(accepted) == before.value(accepted) + 1
    assert after.value(refused, reason="empty") == before.value(refused, reason="empty") + 1
    assert after.value("sealdrop_connections_peak", listener="source") >= 1
    assert after.value("sealdrop_uploads_peak") >= 1
    assert after.value("sealdrop_storage_free_bytes", folder="blobs") > 0
    assert after.value("sealdrop_storage_free_bytes", folder="database") > 0
    assert after.value("sealdrop_tor_enabled") == 0
    assert after.value("sealdrop_notices_failed_total") == 0
    assert after.value("sealdrop_ready") == 1  # its database and blob store answered

    [item] = [i for i in stored(metrics_server.instance) if i["kind"] == "message"]
    secrets = [item["source"], item["pseudonym"], codename, MESSAGE]
    for text in (before.text, after.text):
        for secret in secrets:
            assert secret not in text


def test_every_listener_answers_health(metrics_server: MetricsServer) -> None:
    """The source, API and metrics listeners each answer GET /healthz with 200 "ok"; the source
    and API listeners answer GET /readyz with 200 "ready" (the server's first check, started
    with it, found the database and the blob store), the metrics listener has no /readyz."""
    server = metrics_server.server
    for base in (server.url, server.api_url, metrics_server.metrics_url):
        response = httpx.get(base + "/healthz", timeout=10)
        assert (response.status_code, response.text) == (200, "ok\n"), base
    for base in (server.url, server.api_url):
        response = httpx.get(base + "/readyz", timeout=10)
        assert (response.status_code, response.text) == (200, "ready\n"), base
    assert httpx.get(metrics_server.metrics_url + "/readyz", timeout=10).status_code == 404


@pytest.mark.slow
def test_the_metrics_listener_is_off_by_default(tmp_path: Path) -> None:
    """Without [metrics] enabled, serve binds nothing on the metrics port (even one set in the
    configuration) and announces no metrics address."""
    instance = tmp_path / "instance"
    setup_cli("init", instance)
    (tmp_path / "server-tmp").mkdir()
    port = free_port()
    server = start_server(instance, tmp_path / "server-tmp", metrics_port=str(port))
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        assert "Metrics:" not in server.log()
        assert httpx.get(server.url + "/healthz", timeout=10).text == "ok\n"
    finally:
        server.stop()


def test_serve_announces_the_metrics_and_warns_of_a_short_refresh(
    metrics_server: MetricsServer,
) -> None:
    """serve prints the scrape URL, and warns that a refresh under 900 s dates submissions to
    within that many seconds."""
    log = metrics_server.server.log()
    assert f"Metrics: {metrics_server.metrics_url}/metrics" in log
    assert f"refresh_seconds is {REFRESH}" in " ".join(log.split())


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"condition not met in {timeout} s")


@pytest.mark.slow
def test_with_managed_tor_the_metrics_show_tor_and_the_onion_listeners_answer_health(
    short_instance: Path,
) -> None:
    """serve with its own tor (no Tor network needed): the metrics say tor is enabled and
    running, with a bootstrap percentage, and count the onion listeners' connections; the
    source onion's socket (behind tor's PROXY line) and the API onion's socket answer
    /healthz with "ok"."""
    if shutil.which("tor") is None:
        pytest.fail("tor is not installed: run the README's test command (installs Debian tor)")
    port = free_port()
    env = {
        "SEALDROP_TOR_ENABLED": "yes",
        "SEALDROP_METRICS_ENABLED": "true",
        "SEALDROP_METRICS_PORT": str(port),
        "SEALDROP_METRICS_REFRESH_SECONDS": "2",
    }
    server = ServerProcess(short_instance, env=env).start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: "Source onion: http://" in server.log())
        layout = TorLayout.of_instance(short_instance)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(layout.source_socket))
            sock.sendall(
                b"PROXY TCP6 fc00:dead:beef:4dad::1:2 ::1 2 80\r\n"
                b"GET /healthz HTTP/1.1\r\nHost: x.onion\r\nConnection: close\r\n\r\n"
            )
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert answer.endswith(b"\r\n\r\nok\n")
        transport = httpx.HTTPTransport(uds=str(layout.api_socket))
        with httpx.Client(transport=transport, base_url="http://api.onion") as client:
            assert client.get("/healthz").text == "ok\n"
        started = time.time()
        after = next_snapshot(url, started)
        assert after.value("sealdrop_tor_enabled") == 1
        assert after.value("sealdrop_tor_running") == 1
        assert 0 <= after.value("sealdrop_tor_bootstrap_percent") <= 100
        # The onion listeners are counted (the health requests above may fall in an earlier
        # interval, so only their presence is checked).
        assert ("sealdrop_connections_peak", (("listener", "source_onion"),)) in after.samples
        assert ("sealdrop_connections_peak", (("listener", "api_onion"),)) in after.samples
    finally:
        server.stop()
