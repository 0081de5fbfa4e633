"""Request bodies that ``LimitedHttpProtocol`` (web/connections.py) frames itself, past llhttp:
which ones, and where each ends (issue 17).

Why: llhttp copies every piece of body out of the socket's read into a new bytes object for
``on_body`` (~0.18 CPU-s/GiB of ``memmove``, bench/README.md). Framed here, each read after the
head reaches the app as the very bytes object asyncio read.

Which: only the plainest case, which llhttp has already checked before the head completes: one
``Content-Length`` of digits and no ``Transfer-Encoding`` (llhttp refuses both together,
duplicates and bad values), and a body large enough to be worth it; the protocol adds no
upgrade and the request being the one served now.

Where it ends: exactly at the declared length, the count llhttp would make, so the next
request begins where llhttp would begin it (a different end would be a request-smuggling bug:
docs/design.md, R45). The bytes after it go to a fresh parser.
"""

from __future__ import annotations

from typing import Final

# Smaller bodies (forms, pages, small resumable chunks) take the parser's path as before.
FRAMED_BODY_MIN_BYTES: Final = 1024 * 1024


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The ``Content-Length`` of a head (lower-cased names) whose body may be framed past the
    parser; None when the parser keeps it."""
    lengths = [value for name, value in headers if name == b"content-length"]
    if any(name == b"transfer-encoding" for name, _ in headers) or len(lengths) != 1:
        return None
    value = lengths[0]
    if not value.isdigit() or int(value) < FRAMED_BODY_MIN_BYTES:
        return None
    return int(value)


class FramedBody:
    """The count of a body framed past the parser: how much of it is still due."""

    def __init__(self, due: int) -> None:
        self.due = due

    def take(self, data: bytes) -> tuple[bytes, bytes]:
        """(the body's part of one read, the bytes after the body). The body's part is ``data``
        itself unless the body ends inside it (a pipelined request follows): then one copy,
        once per body."""
        if len(data) <= self.due:
            self.due -= len(data)
            return data, b""
        piece, rest = data[: self.due], data[self.due :]
        self.due = 0
        return piece, rest

    @property
    def complete(self) -> bool:
        return self.due == 0
