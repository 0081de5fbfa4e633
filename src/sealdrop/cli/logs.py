"""Server logging with a redaction step (invariant 6).

Sealdrop's own log lines carry only fixed text and error class names. Libraries are less careful
(uvicorn may print a client address or a traceback whose text quotes request data; tor names the
relays it talks to), so every record passes through ``Redact`` before it is written:

- tracebacks are dropped, only the exception's class name is kept;
- IPv4/IPv6 addresses and ``host:port`` pairs become ``[address]``: those of peers. Two kinds of
  address-like text are the server's own and are kept, since hiding them only hides what the
  operator configured: the ``host:port`` of the server's own listeners (``keep``, given by
  ``serve``; a peer never has exactly one of them, as its port would be the listener's), and a
  version number after "Tor" or "version" (tor's ``Tor 0.4.9.11 running``). A bare host is still
  redacted, even the listener's: a peer on the same loopback address shows only as that host;
- over-long lines are cut, so a logged request fragment cannot carry a whole message.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Collection, Iterable

_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b")
# Full forms (at least four groups, so a clock time such as 12:30:45 is left alone) and any
# compressed form containing "::".
_IPV6 = re.compile(
    r"\[?(?:(?:[0-9a-fA-F]{1,4}:){3,7}[0-9a-fA-F]{1,4}|[0-9a-fA-F:]*::[0-9a-fA-F:]*)\]?(?::\d+)?"
)
# What precedes a dotted version number that looks like an IPv4 address (tor: 0.4.9.11).
_VERSION_BEFORE = re.compile(r"\b(?:tor|version)\s*$", re.IGNORECASE)
MAX_LINE = 300


def endpoint(host: str, port: int) -> str:
    """``host:port`` as addresses are written in logs (IPv6 in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def redact(text: str, keep: Collection[str] = ()) -> str:
    """``text`` with peers' addresses replaced; ``keep``: the server's own ``host:port``s."""

    def ipv4(match: re.Match[str]) -> str:
        found = match.group(0)
        if found in keep:
            return found
        if ":" not in found and _VERSION_BEFORE.search(text, 0, match.start()):
            return found
        return "[address]"

    def ipv6(match: re.Match[str]) -> str:
        return match.group(0) if match.group(0) in keep else "[address]"

    text = _IPV6.sub(ipv6, _IPV4.sub(ipv4, text))
    return text if len(text) <= MAX_LINE else text[:MAX_LINE] + "…[cut]"


class Redact(logging.Filter):
    def __init__(self, keep: Iterable[str] = ()) -> None:
        super().__init__()
        self._keep = frozenset(keep)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:
            message += f" ({record.exc_info[0].__name__})"
        record.msg = redact(message, self._keep)
        record.args = None
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


def configure_logging(level: int = logging.INFO, keep: Iterable[str] = ()) -> None:
    """Plain logs on stderr, redacted; no access log at all. ``keep``: the ``host:port`` of the
    server's own listeners, which the logs may show."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(Redact(keep))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # python-multipart's warnings quote single bytes of request bodies.
    logging.getLogger("python_multipart").setLevel(logging.ERROR)
    logging.getLogger("multipart").setLevel(logging.ERROR)
    # Apprise logs the URLs it notifies, tokens and addresses included (services/notice_delivery).
    logging.getLogger("apprise").disabled = True
    # stem reports every control-connection event at INFO and DEBUG; only its warnings matter.
    logging.getLogger("stem").setLevel(logging.WARNING)
