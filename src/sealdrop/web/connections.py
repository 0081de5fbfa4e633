"""Connection limits of every listener: slow clients are cut off, and connections are capped.

uvicorn times out only an idle kept-alive connection. A client that connects and sends nothing,
or sends its request head one byte at a time (slowloris), or stops in the middle of a body, would
hold a connection, a file descriptor and (during an upload) a staged blob for ever, and a few
hundred of them exhaust the process. ``LimitedHttpProtocol`` is uvicorn's httptools protocol with:

- a **head timeout**: the complete request head (request line and headers) must arrive within
  ``head_timeout`` seconds of the connection opening or of the end of the previous response;
- a **body progress check**: while a request body is being received, every ``body_timeout``
  seconds must bring at least ``body_min_bytes`` bytes, unless the server itself stopped reading
  (flow control while the app is busy, or a client waiting for ``100 Continue``); a stalled or
  trickling body closes the connection, and the app sees a disconnect (an upload then discards
  what it staged);
- a **connection cap**: beyond ``max_connections`` open connections on one listener, a new
  connection's request gets a short 503 and the connection is closed;
- a **head size cap**: a request head still incomplete after ``MAX_HEAD_BYTES`` is answered 431
  and the connection closed (h11 had this cap built in; llhttp, httptools' parser, has none).

and, for cost per byte (issue 17): a request body is read from the socket ``BODY_READ_BYTES``
at a time, and each piece reaches the app as the parser's own bytes object, not copied twice; a
large body framed by ``Content-Length`` goes past the parser altogether (web/framed_body.py).

Why httptools (llhttp, in C) and not h11 (pure Python): every byte of a body goes through
the parser, and with h11 an upload cost the server ~0.2 CPU-seconds per GiB more, of ~3
(bench/README.md: interleaved runs of benchmark 1); cost per byte decides how many uploads a
core takes. llhttp is Node.js's parser; like h11 it refuses a request with both Content-Length
and Transfer-Encoding (request smuggling).

A timed-out connection is closed without a response, and nothing is logged: a flood of slow
connections must not fill the log (and a log line per connection would record when sources
visit).

Use it with ``ListenerConfig``, which carries the limits to each protocol instance; with a plain
``uvicorn.Config`` the defaults apply.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Any, Final

import httptools
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT, FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sealdrop.services.monitoring import Level
from sealdrop.web.framed_body import FramedBody, declared_length

BUSY_RETRY_AFTER_SECONDS: Final = 60
# What h11 (uvicorn's default parser) allowed a request head: the request line and headers of
# every page and API call are a few hundred bytes; a cookie-stuffed browser stays far below.
MAX_HEAD_BYTES: Final = 16 * 1024
_BUSY_BODY: Final = b"This site is busy. Please try again in a few minutes.\n"
# Socket reads while a request body streams in (asyncio reads 256 KiB otherwise). Each read is
# one trip through the parser, uvicorn, Starlette, the hand-over to the upload's worker thread
# and the multipart parser, ~100 µs of Python whatever its size: 1 MiB reads make a quarter of
# the trips per GiB (bench/README.md, issue 17). Heads and bodiless requests keep the default.
BODY_READ_BYTES: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Timeouts in seconds; the cap counts the connections open on one listener."""

    head_timeout: float = 30.0
    body_timeout: float = 60.0
    body_min_bytes: int = 1024
    max_connections: int = 512


class ListenerConfig(uvicorn.Config):
    """A ``uvicorn.Config`` that also carries the connection limits of its listener, and the
    answer to a connection beyond its cap (``busy``: an ASGI app; plain text by default, the
    API listeners answer in the API's JSON)."""

    def __init__(
        self, app: Any, *, limits: ConnectionLimits, busy: ASGIApp | None = None, **options: Any
    ) -> None:
        super().__init__(app, **options)
        self.connection_limits = limits
        self.busy_app: ASGIApp = busy or _busy
        # Open connections, for the metrics (which publish the peak between two snapshots).
        self.occupancy = Level()


class _WatchedFlow(FlowControl):
    """uvicorn's read/write flow control, remembering whether reading was paused lately: while
    the server does not read, a client cannot send, and must not be judged slow for it."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__(transport)
        self.paused_lately = False

    def pause_reading(self) -> None:
        super().pause_reading()
        self.paused_lately = True


async def send_plain(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A short plain-text answer from below the application (no page templates there), with
    the headers every source page has (invariant 7): nothing to sniff, frame, cache or load."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"cache-control", b"no-store"),
                (b"x-content-type-options", b"nosniff"),
                (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
                (b"referrer-policy", b"no-referrer"),
                *(extra or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _busy(scope: Scope, receive: Receive, send: Send) -> None:
    # The connection closes after it.
    retry = str(BUSY_RETRY_AFTER_SECONDS).encode("ascii")
    await send_plain(send, 503, _BUSY_BODY, [(b"connection", b"close"), (b"retry-after", retry)])


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head timeout, a body progress check, a connection cap
    and a head size cap.

    Use as ``ListenerConfig(app, limits=..., http=LimitedHttpProtocol, ...)``.
    """

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.limits = (
            config.connection_limits if isinstance(config, ListenerConfig) else ConnectionLimits()
        )
        self._busy_app = config.busy_app if isinstance(config, ListenerConfig) else _busy
        self._occupancy = config.occupancy if isinstance(config, ListenerConfig) else Level()
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._continue_pending = False
        self._window_bytes = 0
        # Where the client is in its current request, from the parser's callbacks: sending a
        # head, sending a body, or done (its request complete, the app working or answering).
        self._phase: Phase = Phase.HEAD
        self._head_bytes = 0
        # The current request's Content-Length when its body may be framed here, what the
        # parser has passed of that body, and (once framing here) the count of the rest.
        self._declared: int | None = None
        self._parsed_body = 0
        self._framed: FramedBody | None = None
        self._deaf = False  # after a framed body that closes the connection: bytes are dropped

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._occupancy.enter()
        self.flow = _WatchedFlow(transport)
        if len(self.connections) > self.limits.max_connections:
            # Refused with a response rather than at accept(): the client learns to come back
            # later instead of seeing a reset, and the answer costs no app work.
            self.app = self._busy_app
        self._follow_request_state()

    def connection_lost(self, exc: Exception | None) -> None:
        self._occupancy.leave()
        self._stop_head_timer()
        self._stop_body_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._deaf:
            return
        if self._framed is None and self._phase is Phase.BODY and self._declared is not None:
            # The head and what came with it were parsed; the rest of the body is framed here.
            self._framed = FramedBody(self._declared - self._parsed_body)
        if self._framed is not None:
            self._framed_body_received(self._framed, data)
            return
        if self._phase is Phase.BODY:
            self._window_bytes += len(data)
        else:
            # Counted before parsing: a chunk that completes a head may carry the start of a
            # body too, so a head is bounded by the cap plus one read (256 KiB), never more.
            self._head_bytes += len(data)
        super().data_received(data)
        if self.transport.is_closing():
            self._follow_request_state()
            return
        if self._phase is Phase.HEAD and self._head_bytes > MAX_HEAD_BYTES:
            self._refuse_head()
            return
        self._follow_request_state()

    # -- parser callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = Phase.HEAD

    def on_headers_complete(self) -> None:
        self._phase = Phase.BODY
        self._head_bytes = 0
        self._set_read_size(BODY_READ_BYTES)
        super().on_headers_complete()
        self._declared = self._framed_length()
        self._parsed_body = 0

    def _framed_length(self) -> int | None:
        """The Content-Length of a request whose body is framed here (web/framed_body.py), or
        None: not for an upgrade, nor for a request queued behind a pipelined response."""
        if self.parser.should_upgrade() or self.pipeline or self.cycle.scope is not self.scope:
            return None
        return declared_length(self.headers)

    def _framed_body_received(self, framed: FramedBody, data: bytes) -> None:
        """A read of a body framed here: handed on whole (no copy) up to the declared length;
        the message then ends as llhttp would end it, and any bytes after it are the next
        request's, for a fresh parser."""
        self._unset_keepalive_if_required()  # as uvicorn's data_received: a read is activity
        piece, rest = framed.take(data)
        self._window_bytes += len(piece)
        if piece:
            self.on_body(piece)
        if framed.complete:
            self._end_framed_body()
            if rest and not self.transport.is_closing():
                self.data_received(rest)
                return
        self._follow_request_state()

    def _end_framed_body(self) -> None:
        """End the message, then let a fresh parser take the connection's next bytes.

        Keep-alive and pipelining stay as they were, rather than answering ``Connection: close``
        and reading no more: an app that answers before the body ends (413) has the rest of
        the body read and dropped as before, so its answer reaches the client instead of being
        lost to the reset a close with unread bytes sends. The new parser starts where llhttp's
        own would after ``on_message_complete``; where llhttp would ignore what follows (the
        request said ``Connection: close``, or HTTP/1.0 without keep-alive), so does this.
        """
        keep_alive = self.parser.should_keep_alive()
        self._framed = None
        self._declared = None
        self.on_message_complete()
        if keep_alive:
            self.parser = httptools.HttpRequestParser(self)
            # As uvicorn sets it on its own parser: answer the first of pipelined requests.
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        else:
            self._deaf = True

    def on_body(self, body: bytes) -> None:
        if self._framed is None:
            self._parsed_body += len(body)
        cycle = self.cycle
        if cycle.body or cycle.response_complete or self.parser.should_upgrade():
            super().on_body(body)
            return
        # Nothing buffered: keep the parser's own bytes object instead of copying it into
        # uvicorn's bytearray, which ``receive`` would copy again (``bytes(b)`` of a bytes
        # object is that object). Two copies of every body byte fewer; a second piece arriving
        # before the app reads is appended by uvicorn as before (bytes + bytes).
        cycle.body = body  # type: ignore[assignment]
        if len(body) > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        cycle.message_event.set()

    def on_message_complete(self) -> None:
        self._phase = Phase.DONE
        self._declared = None
        self._set_read_size(None)
        super().on_message_complete()

    def _set_read_size(self, size: int | None) -> None:
        """The size of the transport's socket reads (asyncio's ``max_size``); None: its own."""
        transport: Any = self.transport
        if size is None:
            transport.__dict__.pop("max_size", None)
        elif hasattr(transport, "max_size"):
            transport.max_size = size

    def on_response_complete(self) -> None:
        # With no request of this connection waiting (pipelined, already parsed), the next
        # head is due from now on.
        if self._phase is Phase.DONE and not self.pipeline:
            self._phase = Phase.HEAD
        super().on_response_complete()
        self._follow_request_state()

    # -- timers --------------------------------------------------------------------------------

    def _follow_request_state(self) -> None:
        """Run the timer that fits where the client is in its request."""
        if self.transport.is_closing():
            self._stop_head_timer()
            self._stop_body_timer()
            return
        answering = self.cycle is not None and not self.cycle.response_complete
        if self._phase is Phase.HEAD and not answering:
            # Waiting for a request head. Armed once per request, not on every byte: bytes
            # trickling in must not push the deadline back.
            self._stop_body_timer()
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self.limits.head_timeout, self._cut)
        elif self._phase is Phase.BODY:
            self._stop_head_timer()
            if self._body_timer is None:
                self._start_body_window()
        else:
            # The request is complete (the app is working or answering): no client deadline
            # runs. A next head sent meanwhile (pipelining) is timed once this response ends.
            self._stop_head_timer()
            self._stop_body_timer()

    def _start_body_window(self) -> None:
        self._window_bytes = 0
        self._watched_flow().paused_lately = self.flow.read_paused
        # A window in which we were still to send "100 Continue" is never held against the
        # client: it may have begun its body only a moment before the window ended.
        self._continue_pending = self.cycle is not None and self.cycle.waiting_for_100_continue
        self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_window_ended)

    def _body_window_ended(self) -> None:
        self._body_timer = None
        if self.transport.is_closing() or self._phase is not Phase.BODY:
            return
        waited_on_us = (
            self._watched_flow().paused_lately
            or self._continue_pending
            or (self.cycle is not None and self.cycle.waiting_for_100_continue)
        )
        if not waited_on_us and self._window_bytes < self.limits.body_min_bytes:
            self._cut()
            return
        self._start_body_window()

    def _watched_flow(self) -> _WatchedFlow:
        flow = self.flow
        assert isinstance(flow, _WatchedFlow)
        return flow

    def _cut(self) -> None:
        """Close a connection whose client is too slow. No response: it has not finished
        asking, and the app (if it runs) sees a disconnect."""
        self._head_timer = None
        self._stop_body_timer()
        if not self.transport.is_closing():
            self.transport.close()

    def _refuse_head(self) -> None:
        """A head beyond the cap: a short 431, then the connection closes (nothing is logged:
        the head is the client's, and a log line per attempt would fill the log)."""
        self._stop_head_timer()
        self.transport.write(_HEAD_TOO_LARGE)
        self.transport.close()

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _stop_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None


class Phase(enum.Enum):
    HEAD = "head"
    BODY = "body"
    DONE = "done"


_HEAD_TOO_LARGE: Final = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 0\r\n"
    b"cache-control: no-store\r\n"
    b"x-content-type-options: nosniff\r\n"
    b"connection: close\r\n\r\n"
)
