"""The redaction step every server log record passes through (invariant 6)."""

from __future__ import annotations

import io
import logging

from sealdrop.cli.logs import Redact, redact


def _emit(
    logger_name: str,
    msg: str,
    *args: object,
    exc: BaseException | None = None,
    keep: list[str] | None = None,
) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(Redact(keep or []))
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        if exc is None:
            logger.info(msg, *args)
        else:
            try:
                raise exc
            except BaseException:
                logger.exception(msg, *args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_client_addresses_are_redacted() -> None:
    """IPv4, IPv6 and host:port pairs (as uvicorn prints them) never reach the log."""
    out = _emit("uvicorn.error", "%s:%d - request from %s", "127.0.0.1", 43512, "2001:db8::1")
    assert "127.0.0.1" not in out
    assert "43512" not in out
    assert "2001:db8" not in out
    assert "[address]" in out


def test_tracebacks_are_reduced_to_the_exception_class() -> None:
    """An exception's text (which may quote request data) is dropped; its class name is kept."""
    out = _emit("x", "failed", exc=ValueError("codename plaza idiom tidal …"))
    assert "plaza" not in out
    assert "Traceback" not in out
    assert "ValueError" in out


def test_long_lines_are_cut() -> None:
    """A log line cannot carry a long fragment of a request."""
    assert len(redact("a" * 10_000)) < 400


# Lines as the server's components write them (formats copied from uvicorn 0.55 and tor 0.4.9).
TOR_VERSION = (
    "tor: Tor 0.4.9.11 running on Linux with Libevent 2.1.12-stable, OpenSSL 3.0.19, Zlib "
    "1.2.13, Liblzma 5.4.1, Libzstd 1.5.4 and Glibc 2.36 as libc."
)
OWN = ["127.0.0.1:8080", "[::1]:8081"]


def test_tors_version_is_not_taken_for_an_address() -> None:
    """tor's start line keeps its version number (a dotted quad after "Tor"), and so does
    status-like text "version 0.4.9.11"."""
    out = _emit("sealdrop.tor", "%s", TOR_VERSION)
    assert "Tor 0.4.9.11 running" in out
    assert "version 0.4.9.11" in redact("Tor: running, version 0.4.9.11")


def test_the_servers_own_listeners_are_shown() -> None:
    """uvicorn's start line names the listener's own address and port, which stay visible
    when they are the configured listeners (IPv4 and IPv6)."""
    line = "Uvicorn running on %s://%s:%d (Press CTRL+C to quit)"
    out = _emit("uvicorn.error", line, "http", "127.0.0.1", 8080, keep=OWN)
    assert "Uvicorn running on http://127.0.0.1:8080 " in out
    out = _emit("uvicorn.error", "Uvicorn running on %s://[%s]:%d", "http", "::1", 8081, keep=OWN)
    assert "http://[::1]:8081" in out


def test_peer_addresses_are_redacted_even_on_the_listeners_own_host() -> None:
    """A peer's address in uvicorn's h11 connection line is redacted, IPv4 and IPv6, even when
    it shares the listener's host (a loopback client) or follows a version-like word; so is a
    relay address in a tor warning."""
    for peer in (("127.0.0.1", 43512), ("203.0.113.9", 8080), ("2001:db8::7", 51000)):
        out = _emit("uvicorn.error", "%s:%d - HTTP connection lost", *peer, keep=OWN)
        assert str(peer[0]) not in out
        assert str(peer[1]) not in out
        assert "[address] - HTTP connection lost" in out
    relay = (
        "tor: Problem bootstrapping. Stuck at 10% (conn_done): Connected to a relay. (DONE; "
        "DONE; count 1; recommendation warn; host 9695DFC35FFEB861329B9F1AB04C46397020CE31 "
        "at 128.31.0.34:9101)"
    )
    out = _emit("sealdrop.tor", "%s", relay, keep=OWN)
    assert "128.31" not in out
    assert "9101" not in out
    assert "Tor 203.0.113.9:80" not in redact("Tor 203.0.113.9:80")
