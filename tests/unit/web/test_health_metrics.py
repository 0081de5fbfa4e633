"""The health answer of every listener (web/health.py) and the metrics listener's application
(web/metrics.py), in-process: what they answer, with which headers, at what cost (no database
statement), and that the metrics' labels come from fixed sets only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event
from support_onion import exchange, get, onion_server, parse_response, proxy_line
from test_source_app import new_instance

from sealdrop import __version__
from sealdrop.services.container import Services
from sealdrop.services.monitoring import REFUSAL_REASONS, FolderSpace, Snapshot, TorState
from sealdrop.testing import FakeClock
from sealdrop.web.api.app import API_HEADERS, create_api_app
from sealdrop.web.app import create_source_app
from sealdrop.web.headers import SOURCE_HEADERS
from sealdrop.web.metrics import create_metrics_app
from support_pages import AsgiBrowser

BURST = 3
CIRCUIT = 0x3A7C_91E5


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """One instance; per circuit a burst of 3 and almost no refill (the clock does not move)."""
    built = new_instance(
        tmp_path_factory.mktemp("health") / "instance",
        FakeClock(),
        SEALDROP_CIRCUITS_BURST=str(BURST),
        SEALDROP_CIRCUITS_REQUESTS_PER_MINUTE="1",
    )
    yield built
    built.close()


@pytest.fixture
def statements(services: Services) -> Iterator[list[str]]:
    """Every SQL statement the instance's database runs while the test does."""
    seen: list[str] = []
    engine = services._database.engine

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def _says_nothing(response: Any, body: bytes = b"ok\n") -> None:
    assert response.status_code == 200
    assert response.content == body
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    everything = str(response.headers).lower()
    assert __version__ not in everything
    assert "sealdrop" not in everything
    assert "server" not in response.headers
    assert "date" not in response.headers


def test_source_health_is_a_bare_ok_with_the_page_headers_and_no_database_statement(
    services: Services, statements: list[str]
) -> None:
    """GET and HEAD /healthz on the source app answer 200 "ok" with every security header of
    the source pages, no version and no Server or Date header, and run no SQL statement."""
    browser = AsgiBrowser(create_source_app(services))
    for method in ("GET", "HEAD"):
        response = browser.request(method, "/healthz")
        assert response.status_code == 200
        for name, value in SOURCE_HEADERS:
            assert response.headers[name.decode()] == value.decode()
    _says_nothing(browser.get("/healthz"))
    assert statements == []
    # Only that one path: the pages are unchanged, and POST is not health.
    assert browser.post("/healthz").status_code in (403, 404, 405)


def test_api_health_is_a_bare_ok_with_the_api_headers_and_no_token(
    services: Services, statements: list[str]
) -> None:
    """GET /healthz on the API app needs no token and answers 200 "ok" with the API's headers,
    running no SQL statement; the API's own routes still want a token."""
    browser = AsgiBrowser(create_api_app(services))
    response = browser.get("/healthz")
    _says_nothing(response)
    for name, value in API_HEADERS:
        assert response.headers[name.decode()] == value.decode()
    assert statements == []
    assert browser.get("/api/v1/sources").status_code == 401


def test_health_over_the_onion_is_charged_to_the_circuit(services: Services) -> None:
    """On the source onion's listener a circuit's health requests count against its request
    budget like any page: after the burst it gets the 429 page, so a flood of them costs what a
    flood of refused pages costs."""
    app = create_source_app(services)
    with onion_server(app) as path:
        answers = [
            parse_response(exchange(path, proxy_line(CIRCUIT) + get("/healthz")))
            for _ in range(BURST + 2)
        ]
    assert [a.status for a in answers] == [200] * BURST + [429] * 2
    assert answers[0].body == b"ok\n"


def example_snapshot(**changes: Any) -> Snapshot:
    values: dict[str, Any] = {
        "started_at": 1_800_000_000.0,
        "taken_at": 1_800_000_900.0,
        "tor": TorState(enabled=True, running=True, bootstrap_percent=100),
        "accepted": 7,
        "refused": dict.fromkeys(REFUSAL_REASONS, 0) | {"too_large": 2},
        "uploads_peak": 1,
        "uploads_capacity": 32,
        "kdf_peak": 2,
        "kdf_capacity": 2,
        "connections_peak": {"source": 3, "api": 1},
        "connections_capacity": 512,
        "storage": {"blobs": FolderSpace(10, 100), "database": FolderSpace(20, 200)},
        "notices_sent": 4,
        "notices_failed": 1,
        "ready": False,
    }
    return Snapshot(**(values | changes))


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_metrics_app_serves_the_snapshot_health_and_nothing_else() -> None:
    """/metrics is the last snapshot in the text format (parsed by prometheus_client's own
    parser), with the API's headers; /healthz is "ok"; any other path is 404; before the first
    snapshot /metrics is empty rather than an error."""
    latest: list[Snapshot | None] = [None]
    browser = AsgiBrowser(create_metrics_app(lambda: latest[0]))
    assert browser.get("/metrics").status_code == 200
    assert _samples(browser.get("/metrics").text) == {}
    latest[0] = example_snapshot()
    response = browser.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    for name, value in API_HEADERS:
        assert response.headers[name.decode()] == value.decode()
    samples = _samples(response.text)
    assert samples[("sealdrop_intake_accepted_total", ())] == 7
    assert samples[("sealdrop_intake_refused_total", (("reason", "too_large"),))] == 2
    assert samples[("sealdrop_storage_free_bytes", (("folder", "blobs"),))] == 10
    assert samples[("sealdrop_tor_bootstrap_percent", ())] == 100
    assert samples[("sealdrop_notices_failed_total", ())] == 1
    assert samples[("sealdrop_snapshot_time_seconds", ())] == 1_800_000_900
    assert samples[("sealdrop_ready", ())] == 0
    _says_nothing(browser.get("/healthz"))
    assert browser.get("/").status_code == 404
    assert browser.get("/metrics/x").status_code == 404


def test_the_metrics_have_no_process_collectors_and_only_fixed_labels() -> None:
    """Only sealdrop_* families (none of the library's process or GC collectors, whose CPU time
    read at each scrape would rise with each upload), and every label is one of three names
    with values from fixed sets."""
    text = AsgiBrowser(create_metrics_app(example_snapshot)).get("/metrics").text
    allowed = {
        "reason": set(REFUSAL_REASONS),
        "listener": {"source", "api", "source_onion", "api_onion"},
        "folder": {"blobs", "database"},
    }
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("sealdrop_"), family.name
        for sample in family.samples:
            for label, value in sample.labels.items():
                assert value in allowed[label], (sample.name, label, value)


@pytest.mark.parametrize("make_app", [create_source_app, create_api_app], ids=["source", "api"])
def test_readiness_answers_from_the_last_check_without_a_statement_of_its_own(
    services: Services, statements: list[str], make_app: Any
) -> None:
    """GET /readyz answers 503 "not ready" until the server's check found its database and blob
    store reachable, then 200 "ready", bare like /healthz; the request itself runs no SQL (the
    check does, in its own thread, every 10 s, without taking SQLite's write lock)."""
    browser = AsgiBrowser(make_app(services))
    readiness = services.readiness
    readiness._problem = "not checked yet"  # as at the start of a server
    statements.clear()
    waiting = browser.get("/readyz")
    assert (waiting.status_code, waiting.text) == (503, "not ready\n")
    assert statements == []
    assert readiness.check() is None
    # The check's one query, in a read-only transaction: no write lock taken on SQLite.
    assert statements[-1] == "SELECT 1"
    assert "BEGIN IMMEDIATE" not in statements
    statements.clear()
    ready = browser.get("/readyz")
    assert (ready.status_code, ready.text) == (200, "ready\n")
    _says_nothing(ready, b"ready\n")
    assert browser.request("HEAD", "/readyz").status_code == 200
    assert statements == []
