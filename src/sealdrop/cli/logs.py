"""Server logging with a redaction step (invariant 6).

Sealdrop's own log lines carry only fixed text and error class names. Libraries are less careful
(uvicorn may print a client address or a traceback whose text quotes request data), so every
record passes through ``Redact`` before it is written:

- tracebacks are dropped, only the exception's class name is kept;
- IPv4/IPv6 addresses and ``host:port`` pairs become ``[address]``;
- over-long lines are cut, so a logged request fragment cannot carry a whole message.
"""

from __future__ import annotations

import logging
import re
import sys

_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b")
# Full forms (at least four groups, so a clock time such as 12:30:45 is left alone) and any
# compressed form containing "::".
_IPV6 = re.compile(
    r"\[?(?:(?:[0-9a-fA-F]{1,4}:){3,7}[0-9a-fA-F]{1,4}|[0-9a-fA-F:]*::[0-9a-fA-F:]*)\]?(?::\d+)?"
)
MAX_LINE = 300


def redact(text: str) -> str:
    text = _IPV6.sub("[address]", _IPV4.sub("[address]", text))
    return text if len(text) <= MAX_LINE else text[:MAX_LINE] + "…[cut]"


class Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:
            message += f" ({record.exc_info[0].__name__})"
        record.msg = redact(message)
        record.args = None
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """Plain logs on stderr, redacted; no access log at all."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(Redact())
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
    # stem reports every control-connection event at INFO and DEBUG; only its warnings matter.
    logging.getLogger("stem").setLevel(logging.WARNING)
