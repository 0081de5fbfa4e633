"""A pull-style reader of a streaming multipart/form-data body.

python-multipart is a push parser (it calls us back as bytes arrive); age encryption pulls (it
calls ``read``). This adapter turns one into the other inside a worker thread: a part's ``read``
feeds the parser one more body chunk whenever it has nothing buffered. So a part is encrypted
while it streams in, and at most one body chunk of plaintext is in memory at any time.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from sealdrop.errors import MalformedUpload, UploadTooLarge

# A 10,000-character file name (up to 40 KB of UTF-8) must fit in a part's headers: the name is
# kept, sealed, exactly as sent; python-multipart's default of 4 KiB would refuse it.
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS_PER_PART = 16

_Event = tuple[str, Any]


class BodyLimit:
    """Wraps a chunk source and refuses more than ``limit`` bytes in total, while streaming."""

    def __init__(
        self,
        next_chunk: Callable[[], bytes],
        limit: int,
        too_large: Callable[[], Exception] | None = None,
    ) -> None:
        self._next_chunk = next_chunk
        self._limit = limit
        # What to raise beyond the limit: UploadTooLarge, or the daily quota's own error when
        # the quota is what limits this request.
        self._too_large = too_large or (lambda: UploadTooLarge(limit))
        self.received = 0

    def __call__(self) -> bytes:
        chunk = self._next_chunk()
        self.received += len(chunk)
        if self.received > self._limit:
            raise self._too_large()
        return chunk


class Part:
    """One form field or file, readable once, in order."""

    def __init__(self, reader: MultipartReader, headers: dict[bytes, bytes]) -> None:
        self._reader = reader
        disposition, options = parse_options_header(headers.get(b"content-disposition", b""))
        if disposition != b"form-data" or b"name" not in options:
            raise MalformedUpload("part without a form-data name")
        self.name = options[b"name"].decode("utf-8", "replace")
        raw_filename = _raw_filename(headers.get(b"content-disposition", b""))
        # Browsers send file names as raw UTF-8; invalid bytes become U+FFFD. The name is never
        # used as a path: it is only sealed into the metadata ciphertext, exactly as sent.
        self.filename = None if raw_filename is None else raw_filename.decode("utf-8", "replace")
        content_type = headers.get(b"content-type", b"application/octet-stream")
        self.content_type = content_type.decode("latin-1")[:255]
        self._buffer = b""
        self._offset = 0
        self.finished = False

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes of this part (all that is left if size < 0); b"" at its end."""
        if size < 0:
            return b"".join(iter(lambda: self.read(1 << 16), b""))
        while self._offset >= len(self._buffer):
            if self.finished:
                return b""
            event, data = self._reader.next_event()
            if event == "data":
                self._buffer, self._offset = data, 0
            elif event == "end":
                self.finished = True
            else:
                raise MalformedUpload("part ended unexpectedly")
        chunk = self._buffer[self._offset : self._offset + size]
        self._offset += len(chunk)
        return chunk

    def read_small(self, limit: int) -> bytes:
        """The whole part, for short fields such as a token; refuses more than ``limit`` bytes."""
        data = b""
        while chunk := self.read(limit + 1 - len(data)):
            data += chunk
            if len(data) > limit:
                raise MalformedUpload(f"field {self.name!r} is too long")
        return data

    def drain(self) -> None:
        """Skip the rest of this part (nothing of it is kept)."""
        while self.read(1 << 16):
            pass


class MultipartReader:
    def __init__(self, next_chunk: Callable[[], bytes], boundary: bytes) -> None:
        self._next_chunk = next_chunk
        self._events: deque[_Event] = deque()
        self._field = b""
        self._value = b""
        self._headers: dict[bytes, bytes] = {}
        self._ended = False
        callbacks: Any = {
            "on_part_begin": self._on_part_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": lambda: self._events.append(("end", None)),
            "on_end": self._on_end,
        }
        try:
            self._parser = MultipartParser(
                boundary,
                callbacks,
                max_header_count=MAX_HEADERS_PER_PART,
                max_header_size=MAX_HEADER_BYTES,
            )
        except (FormParserError, ValueError):
            raise MalformedUpload("bad multipart boundary") from None

    def parts(self) -> Iterator[Part]:
        """Each part in order. A part left unread is skipped before the next one is given."""
        while True:
            event, data = self.next_event()
            if event == "done":
                return
            if event != "headers":
                raise MalformedUpload("unexpected data between parts")
            part = Part(self, data)
            yield part
            part.drain()

    def next_event(self) -> _Event:
        while not self._events:
            if self._ended:
                return ("done", None)
            chunk = self._next_chunk()
            if not chunk:
                # The body ended before the closing boundary: a truncated upload.
                raise MalformedUpload("the form data ended early")
            try:
                self._parser.write(chunk)
            except (FormParserError, ValueError):
                raise MalformedUpload("the form data is not valid multipart") from None
        return self._events.popleft()

    def _on_part_begin(self) -> None:
        self._headers = {}

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field = self._value = b""

    def _on_headers_finished(self) -> None:
        self._events.append(("headers", self._headers))

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if end > start:
            self._events.append(("data", bytes(data[start:end])))

    def _on_end(self) -> None:
        self._ended = True
        self._events.append(("done", None))


# The filename parameter exactly as sent. Browsers follow the WHATWG form encoding: they replace
# '"', CR and LF by %22, %0D and %0A and escape nothing else (a backslash is sent as itself), so
# the quoted value is taken literally. python-multipart's own parser would unescape backslashes
# and cut "C:\\dir\\name" down to "name"; we keep what was sent and leave naming to the reader.
_FILENAME = re.compile(rb';\s*filename\s*=\s*(?:"([^"]*)"|([^;]*))', re.IGNORECASE)


def _raw_filename(disposition: bytes) -> bytes | None:
    match = _FILENAME.search(disposition)
    if match is None:
        return None
    quoted, bare = match.groups()
    return quoted if quoted is not None else bare.strip()


def boundary_of(content_type: str) -> bytes:
    """The boundary of a multipart/form-data Content-Type, or MalformedUpload."""
    try:
        kind, options = parse_options_header(content_type)
    except UnicodeError:
        raise MalformedUpload("expected multipart/form-data") from None
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary or len(boundary) > 200:
        raise MalformedUpload("expected multipart/form-data")
    return boundary
