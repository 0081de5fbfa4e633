"""How the reader reaches its server: through a Tor SOCKS proxy for an onion, remembered in the
profile, refused before anything is sent when it would fail or leak."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from sealdrop.errors import ReaderError, ServerUnreachable
from sealdrop.reader.client import ApiClient
from sealdrop.reader.connection import check_connection
from sealdrop.reader.profile import Profile, ReaderConfig
from support_notices import self_signed

ONION = "http://" + "b" * 56 + ".onion"


def test_an_onion_server_without_a_proxy_is_refused_with_the_fix() -> None:
    """An .onion address cannot be resolved without Tor: the error names the --proxy to add."""
    with pytest.raises(ReaderError, match=r"--proxy socks5h://127\.0\.0\.1:9050"):
        check_connection(ONION, None)


@pytest.mark.parametrize(
    "proxy", ["socks5://127.0.0.1:9050", "http://127.0.0.1:8118", "https://proxy.example"]
)
def test_only_socks5h_proxies_are_accepted(proxy: str) -> None:
    """socks5:// may resolve names locally (a leak of which server is used); HTTP proxies see
    the traffic: only socks5h://, where Tor resolves the name, is accepted."""
    with pytest.raises(ReaderError, match="socks5h://"):
        check_connection(ONION, proxy)


def test_accepted_pairs() -> None:
    """An onion through socks5h, a clearnet or loopback server with or without a proxy."""
    check_connection(ONION, "socks5h://127.0.0.1:9050")
    check_connection("https://api.example.org", "socks5h://127.0.0.1:9150")
    check_connection("http://127.0.0.1:8081", None)


def test_the_proxy_is_remembered_and_old_profiles_still_load(tmp_path: Path) -> None:
    """config.json keeps the proxy; a config written before the proxy existed loads as None."""
    profile = Profile(tmp_path / "reader").ensure()
    profile.save_config(ReaderConfig(ONION, "alice", "socks5h://127.0.0.1:9050"))
    assert profile.load_config().proxy == "socks5h://127.0.0.1:9050"
    profile.config_path.write_text(json.dumps({"server": ONION, "username": "alice"}))
    assert profile.load_config() == ReaderConfig(ONION, "alice", None)
    profile.config_path.write_text(json.dumps({"server": ONION, "username": "a", "proxy": 9}))
    with pytest.raises(ReaderError, match="malformed"):
        profile.load_config()


def _refusing_socks_server(code: int) -> tuple[socket.socket, threading.Thread]:
    """A SOCKS5 server on 127.0.0.1 that answers every CONNECT with ``code``, as tor's SocksPort
    does when it could not make the connection (tor itself cannot run in a unit test)."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with contextlib.suppress(OSError):
            connection, _ = server.accept()
            with connection:
                connection.recv(3)  # version, one method, "no authentication"
                connection.sendall(b"\x05\x00")
                request = connection.recv(262)  # CONNECT with a domain name and a port
                assert request[:2] == b"\x05\x01"
                connection.sendall(b"\x05" + bytes([code]) + b"\x00\x01" + bytes(6))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


@pytest.mark.parametrize(
    ("code", "says"),
    [
        (0x01, "tor could not reach the onion service"),  # general failure: tor gave up
        (0x06, "tor could not reach the onion service"),  # TTL expired: likewise
        (0xF5, "client key is missing or was revoked"),  # tor's extended onion errors
    ],
)
def test_a_tor_refusal_is_said_plainly(code: int, says: str) -> None:
    """tor's answer that it could not connect becomes a message about tor and the onion
    service, not httpx's class name ("connection failed: ProxyError", which a revoked device's
    reader printed after tor's ~45 s wait in the end-to-end test)."""
    server, thread = _refusing_socks_server(code)
    port = server.getsockname()[1]
    try:
        with (
            ApiClient(ONION, proxy=f"socks5h://127.0.0.1:{port}", timeout=10) as client,
            pytest.raises(ServerUnreachable) as refused,
        ):
            client.check_api()
    finally:
        server.close()
        thread.join(5)
    assert says in str(refused.value)
    assert "ProxyError" not in str(refused.value)


@pytest.mark.parametrize("answers", [b"", b"\x05\x00"], ids=["greeting", "connect"])
def test_a_tor_that_does_not_answer_the_socks_handshake_is_given_up_after_the_timeout(
    answers: bytes,
) -> None:
    """tor answers a CONNECT to an onion only once it reached it or gave up (2 minutes or more
    for a revoked client key): the reader gives up after its own timeout, whether the proxy is
    silent from the greeting on or after accepting it (httpx left the handshake unbounded)."""
    server = socket.create_server(("127.0.0.1", 0))
    release = threading.Event()

    def silent() -> None:
        with contextlib.suppress(OSError):
            connection, _ = server.accept()
            with connection:
                connection.recv(3)
                connection.sendall(answers)
                release.wait(30)  # holds the connection open, saying nothing more

    thread = threading.Thread(target=silent, daemon=True)
    thread.start()
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        port = server.getsockname()[1]
        try:
            with ApiClient(ONION, proxy=f"socks5h://127.0.0.1:{port}", timeout=1) as client:
                client.check_api()
            outcome.append(None)
        except BaseException as exc:  # handed to the test's thread
            outcome.append(exc)

    client_thread = threading.Thread(target=attempt, daemon=True)
    started = time.monotonic()
    client_thread.start()
    client_thread.join(15)  # without the bound, it would wait for as long as the proxy does
    waited = time.monotonic() - started
    release.set()
    server.close()
    thread.join(5)
    assert outcome, f"the reader still waited after {waited:.0f} s"
    assert isinstance(outcome[0], ServerUnreachable), outcome
    assert "connection failed: no answer in time (ReadTimeout); through tor" in str(outcome[0])
    assert "client key is missing or was revoked" in str(outcome[0])
    assert waited < 10


def test_the_clients_of_one_process_load_the_ca_bundle_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each reader command, and each background sync of the reader UI, makes an ApiClient; they
    share one TLS context, so the CA bundle is read and parsed once (~25 ms of CPU a client),
    with or without a proxy."""
    loads = []
    real = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args or kwargs)
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    for proxy in (None, "socks5h://127.0.0.1:9050", None):
        with ApiClient("https://reader.example", proxy=proxy):
            pass
    assert len(loads) <= 1


def _forwarding_socks_server() -> tuple[socket.socket, threading.Thread]:
    """A SOCKS5 server on 127.0.0.1 that accepts one CONNECT to an IPv4 address and relays the
    connection there, as tor's SocksPort does once it has a circuit."""
    server = socket.create_server(("127.0.0.1", 0))

    def relay(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def serve() -> None:
        with contextlib.suppress(OSError):
            connection, _ = server.accept()
            with connection:
                connection.recv(3)
                connection.sendall(b"\x05\x00")
                request = connection.recv(262)
                assert request[:4] == b"\x05\x01\x00\x01", request  # CONNECT to an IPv4
                target = (socket.inet_ntoa(request[4:8]), int.from_bytes(request[8:10], "big"))
                with socket.create_connection(target) as upstream:
                    connection.sendall(b"\x05\x00\x00\x01" + bytes(6))
                    back = threading.Thread(target=relay, args=(upstream, connection))
                    back.start()
                    relay(connection, upstream)
                    back.join(5)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


@pytest.mark.parametrize("through", ["direct", "socks"])
def test_the_shared_tls_context_still_verifies_certificates_and_names(
    tmp_path: Path, through: str
) -> None:
    """Sharing one context must not loosen it, directly or through tor's SOCKS port (where the
    reader builds its own transport, reader/socks.py): a server whose certificate no CA vouches
    for is refused before any request is sent, as httpx's own default context refuses it."""
    cert, key = self_signed(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received: list[bytes] = []

    def serve() -> None:
        connection, _ = listener.accept()
        with (
            contextlib.suppress(ssl.SSLError, OSError),
            connection,
            server_context.wrap_socket(connection, server_side=True) as tls,
        ):
            received.append(tls.recv(1024))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    proxy, relaying = _forwarding_socks_server() if through == "socks" else (None, None)
    try:
        proxy_url = None if proxy is None else f"socks5h://127.0.0.1:{proxy.getsockname()[1]}"
        client = ApiClient(f"https://127.0.0.1:{port}", proxy=proxy_url, timeout=10)
        with client, pytest.raises(ReaderError) as refused:
            client.check_api()
    finally:
        listener.close()
        thread.join(5)
        if proxy is not None and relaying is not None:
            proxy.close()
            relaying.join(5)
    causes: list[str] = []
    cause: BaseException | None = refused.value
    while cause is not None:
        causes.append(repr(cause))
        cause = cause.__cause__ or cause.__context__
    assert any("CERTIFICATE_VERIFY_FAILED" in c for c in causes), causes
    assert received == []  # nothing of a request went to the unverified server


def test_a_direct_server_that_does_not_answer_is_not_blamed_on_tor() -> None:
    """Without a proxy (an SSH tunnel, a VPN), a silent server is a plain timeout: the message
    names it and says nothing about tor or client keys."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        with (
            ApiClient(f"http://127.0.0.1:{port}", timeout=0.5) as client,
            pytest.raises(ServerUnreachable) as silent,
        ):
            client.check_api()  # the kernel accepts the connection; nobody ever answers
    finally:
        server.close()
    assert str(silent.value) == "connection failed: ReadTimeout"
