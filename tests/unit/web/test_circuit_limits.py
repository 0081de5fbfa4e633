"""The real source app behind the real onion listener (uvicorn on a unix socket, raw sockets
writing tor's PROXY lines): one circuit that floods gets 429 pages while another circuit is
served, and no log line carries a circuit id."""

from __future__ import annotations

import re
from collections.abc import Iterator

import anyio
import httpx
import pytest
from support_onion import exchange, get, onion_server, parse_response, proxy_line
from test_source_app import new_instance

from sealdrop.services.container import Services
from sealdrop.testing import FakeClock
from sealdrop.web.app import create_source_app
from sealdrop.web.headers import SOURCE_HEADERS

BURST = 3
ONION = "a" * 56 + ".onion"
# Distinctive ids, so that any form of them in a log or a page is recognisable: the decimal id,
# its two 16-bit halves in hex as the PROXY line's address has them, and the low half in decimal
# (the PROXY line's source port). Whole words only: a random temp folder name in a log line
# could hold four such hex digits by chance.
CIRCUIT_A = 0x3A7C_91E5
CIRCUIT_B = 0x5D2B_C4F7


def traces(circuit: int) -> list[re.Pattern[str]]:
    forms = [str(circuit), f"{circuit >> 16:x}:{circuit & 0xFFFF:x}", str(circuit & 0xFFFF)]
    return [re.compile(rf"\b{re.escape(form)}\b", re.IGNORECASE) for form in forms]


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """An instance with one recipient, a per-circuit burst of 3 and almost no refill (1 a
    minute, and the clock does not move), published at an https:// address."""
    built = new_instance(
        tmp_path_factory.mktemp("circuits") / "instance",
        FakeClock(),
        SEALDROP_CIRCUITS_BURST=str(BURST),
        SEALDROP_CIRCUITS_REQUESTS_PER_MINUTE="1",
        SEALDROP_SOURCE_PUBLIC_URL="https://drop.example.org",
    )
    yield built
    built.close()


def test_a_flooding_circuit_gets_429_pages_while_another_is_served(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    """Circuit A (over several connections, as Tor Browser opens them) is served its burst and
    then refused with the usual 429 page, Retry-After and every security header; circuit B is
    still served. Nothing in the logs, down to uvicorn's trace level (which prints every
    scope), names either circuit, and the pages do not either."""
    caplog.set_level(1)
    app = create_source_app(services, onion_address=lambda: ONION)
    with onion_server(app, log_level="trace") as path:
        served = [parse_response(exchange(path, proxy_line(CIRCUIT_A) + get())) for _ in range(3)]
        refused = [parse_response(exchange(path, proxy_line(CIRCUIT_A) + get())) for _ in range(3)]
        other = parse_response(exchange(path, proxy_line(CIRCUIT_B) + get("/login")))

    assert [r.status for r in served] == [200] * BURST
    assert [r.status for r in refused] == [429] * 3
    assert other.status == 200

    page = refused[0]
    assert page.header("content-type") == ["text/html; charset=utf-8"]
    assert b"Too many attempts" in page.body
    assert int(page.header("retry-after")[0]) >= 1
    for response in [*served, *refused, other]:
        for name, value in SOURCE_HEADERS:
            assert response.header(name.decode()) == [value.decode()], name
        assert not response.header("server")
        assert not response.header("date")
        # Onion responses never get the clearnet headers, public_url or not.
        assert not response.header("strict-transport-security")
        assert not response.header("onion-location")
        for trace in traces(CIRCUIT_A) + traces(CIRCUIT_B):
            assert not trace.search(response.body.decode("utf-8")), trace

    # The trace logs ran (so the check below looked at something): uvicorn printed the scopes.
    assert "sealdrop.circuit" in caplog.text
    for trace in traces(CIRCUIT_A) + traces(CIRCUIT_B):
        assert not trace.search(caplog.text), trace
    assert "fc00:dead" not in caplog.text


def test_the_tcp_listener_is_not_limited_per_circuit(
    services: Services,
) -> None:
    """Requests without a circuit (the TCP listener, which has no PROXY line) are never charged
    to a circuit bucket: well past the burst they are all served, with the clearnet headers."""
    app = create_source_app(services, onion_address=lambda: ONION)

    async def many() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return [await client.get("/") for _ in range(BURST * 3)]

    responses = anyio.run(many)
    assert {r.status_code for r in responses} == {200}
    assert responses[0].headers["strict-transport-security"] == "max-age=63072000"
    assert responses[0].headers["onion-location"] == f"http://{ONION}/"
