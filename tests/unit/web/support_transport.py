"""An asyncio transport reduced to what LimitedHttpProtocol touches, for tests that feed the
protocol by hand (test_body_reads.py, test_framed_bodies.py)."""

from __future__ import annotations

# asyncio's own socket read size (selector transports).
ASYNCIO_READ_BYTES = 256 * 1024


class FakeTransport:
    """The little of an asyncio transport the protocol touches, keeping what it writes."""

    max_size = ASYNCIO_READ_BYTES

    def __init__(self) -> None:
        self.closed = False
        self.reading = True
        self.written = bytearray()

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 9000)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def write(self, data: bytes) -> None:
        self.written += data

    def set_protocol(self, protocol: object) -> None:
        pass
