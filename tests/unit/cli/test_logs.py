"""The redaction step every server log record passes through (invariant 6)."""

from __future__ import annotations

import io
import logging

from sealdrop.cli.logs import Redact, redact


def _emit(logger_name: str, msg: str, *args: object, exc: BaseException | None = None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(Redact())
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
