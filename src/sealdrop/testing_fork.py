"""A forking launcher for the ``sealdrop serve`` processes of Sealdrop's own tests.

Nothing in the running product imports this module. Each ``sealdrop serve`` a test starts as a
new interpreter spends ~1 CPU-second importing SQLAlchemy, Alembic, FastAPI, pydantic and the app
before it does anything, and the suite starts ~100 of them on a two-core machine whose every core
is busy: a tenth of the suite's CPU. A ``Forker`` starts one interpreter per test process (pytest
worker) that imports the command line once and then forks a child for each server the tests ask
for. The child is a real, separate ``sealdrop`` process: its own pid, environment, working folder,
standard streams and exit status; it runs the same ``sealdrop`` command line (``cli.main.app``)
with the arguments given, exits through the interpreter's normal shutdown (atexit, threads), and
its own children (``age``, the derivation processes, workers) are started by ``sys.executable``
as always. What it skips is only the imports, which it shares copy-on-write with the forker.

What differs from a new interpreter, and why that is safe here: state that modules compute when
imported is computed once, in the forker, with the forker's environment. Sealdrop reads its
settings and environment when a command runs, never at import (``tempfile``'s cached folder is
reset so that a test's TMPDIR holds); ``random`` is reseeded by Python in each fork and the rest
draws from ``os.urandom``. The forker is single-threaded, so each fork holds no lock another
thread held. The start of a fresh interpreter stays tested where it is the point: the CLI tests
run ``python -m sealdrop`` (``run_cli``), the reader's tests run it in a pipe and on a terminal,
``serve --workers`` starts its workers as new interpreters, and the benchmarks use ``Popen``.

One visible difference: a forked server's command line (``ps``, /proc/PID/cmdline) is the
forker's, ``python -m sealdrop.testing_fork FD``, since nothing is executed anew.

Protocol over a Unix socket pair: each request is one length-prefixed JSON message, a spawn
carries the child's standard stream descriptors with it (SCM_RIGHTS); each answer is one message.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import IO, Any

_HEADER = struct.Struct("!I")
_MAX_FDS = 3


def _send(sock: socket.socket, message: Mapping[str, Any], fds: Sequence[int] = ()) -> None:
    body = json.dumps(message).encode()
    data = _HEADER.pack(len(body)) + body
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.sendall(data)


def _receive(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One message and the descriptors that came with it; (None, []) at the end of the stream."""
    data, fds, _flags, _address = socket.recv_fds(sock, 65536, _MAX_FDS)
    if not data:
        return None, fds
    while len(data) < _HEADER.size:
        more = sock.recv(65536)
        if not more:
            raise EOFError("the forker's stream ended inside a message")
        data += more
    (length,) = _HEADER.unpack(data[: _HEADER.size])
    body = data[_HEADER.size :]
    while len(body) < length:
        more = sock.recv(length - len(body))
        if not more:
            raise EOFError("the forker's stream ended inside a message")
        body += more
    return json.loads(body), fds


def forking_wanted() -> bool:
    """Whether the tests fork their servers: yes unless SEALDROP_TEST_FRESH_SERVERS=1, which
    starts each as a new interpreter (to rule the fork out when a server test fails)."""
    return os.environ.get("SEALDROP_TEST_FRESH_SERVERS") != "1"


class ForkedProcess:
    """A forked ``sealdrop`` child, with what the tests use of ``subprocess.Popen``. Its parent is
    the forker, which reaps it when asked (``poll``): until then its pid cannot be reused, so
    signals sent while ``returncode`` is None reach this process and no other."""

    def __init__(self, forker: Forker, pid: int, args: list[str]) -> None:
        self._forker = forker
        self.pid = pid
        self.args = args
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._forker.reap(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            time.sleep(0.02)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Forker:
    """The forking interpreter, started at the first spawn; one per test process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None

    def _start(self) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        self._sock = ours
        return ours

    def _ask(self, message: Mapping[str, Any], fds: Sequence[int] = ()) -> dict[str, Any]:
        with self._lock:
            sock = self._sock or self._start()
            _send(sock, message, fds)
            answer, extra = _receive(sock)
            for fd in extra:
                os.close(fd)
        if answer is None:
            raise RuntimeError("the forker ended")
        if "error" in answer:
            raise RuntimeError(f"the forker could not start the command: {answer['error']}")
        return answer

    def spawn(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        stdout: IO[bytes],
        cwd: str | None = None,
        program: str = "sealdrop",
    ) -> ForkedProcess:
        """``sealdrop ARGS`` in a forked child: stdin from /dev/null, stdout and stderr to
        ``stdout`` (an open file), the environment exactly ``env``. (``program="describe"``: a
        child that prints what it was given instead, for the tests of this module.)"""
        argv = [str(a) for a in args]
        request = {"op": "spawn", "program": program, "args": argv, "env": dict(env)}
        request["cwd"] = cwd or os.getcwd()
        with open(os.devnull, "rb") as devnull:
            answer = self._ask(request, [devnull.fileno(), stdout.fileno(), stdout.fileno()])
        return ForkedProcess(self, int(answer["pid"]), [program, *argv])

    def reap(self, pid: int) -> int | None:
        """The exit status of a child that has ended (then reaped), None while it runs."""
        code = self._ask({"op": "reap", "pid": pid})["returncode"]
        return None if code is None else int(code)

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()  # the forker reads the end of its stream and exits
                self._sock = None
            if self._process is not None:
                try:
                    self._process.wait(10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
                self._process = None


def _serve_requests(sock: socket.socket) -> tuple[dict[str, Any], list[int]] | None:
    """The forker's loop. Returns in a forked child (its request and descriptors), or None when
    the test process closed the stream."""
    while True:
        message, fds = _receive(sock)
        if message is None:
            return None
        if message["op"] == "spawn":
            try:
                pid = os.fork()
            except OSError as exc:
                for fd in fds:
                    os.close(fd)
                _send(sock, {"error": str(exc)})
                continue
            if pid == 0:
                return message, fds
            for fd in fds:
                os.close(fd)
            _send(sock, {"pid": pid})
        elif message["op"] == "reap":
            try:
                done, status = os.waitpid(int(message["pid"]), os.WNOHANG)
            except ChildProcessError:
                _send(sock, {"error": f"no child {message['pid']}"})
                continue
            code = os.waitstatus_to_exitcode(status) if done else None
            _send(sock, {"returncode": code})


def _run_child(message: dict[str, Any], fds: list[int]) -> int:
    """In the forked child: become ``sealdrop ARGS`` with the given streams and environment."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in set(fds):
        if fd > 2:
            os.close(fd)
    os.environ.clear()
    os.environ.update(message["env"])
    tempfile.tempdir = None  # computed again from this child's TMPDIR at its first use
    os.chdir(message["cwd"])
    sys.argv = [message["program"], *message["args"]]
    try:
        _PROGRAMS[message["program"]](message["args"])
    except SystemExit as exc:
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def _sealdrop(args: list[str]) -> None:
    from sealdrop.cli.main import app

    app(args=args, prog_name="sealdrop")


def _describe(args: list[str]) -> None:
    """What the child was given, as JSON on stdout; then exits with the status in ``args``, or
    waits for a signal (``args`` = ["pause"])."""
    seen = {
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "environ": dict(os.environ),
        "tempdir": tempfile.gettempdir(),
        "stdin": sys.stdin.read(),
        "pid": os.getpid(),
    }
    print(json.dumps(seen), flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    if args == ["pause"]:
        signal.pause()
    sys.exit(int(args[0]) if args else 0)


_PROGRAMS = {"sealdrop": _sealdrop, "describe": _describe}

# What a server imports only once it runs (measured with ``python -X importtime``): FastAPI
# imports pydantic.v1 when it builds the API's routes (~0.1 s), typer its adapters, and so on.
_IMPORTED_LATER = ("pydantic.v1", "typer._adapters", "jinja2.ext", "_strptime", "encodings.idna")


def _main(fd: int) -> int:
    # Everything a server imports, once, before the first fork.
    import sealdrop.cli.main
    import sealdrop.cli.serve  # noqa: F401

    for name in _IMPORTED_LATER:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    # The imported objects are moved out of the collector's sight, as a fork server should: a
    # collection in a child would otherwise walk them all and so write to (copy) every page
    # they share with this process.
    gc.freeze()

    sock = socket.socket(fileno=fd)
    request = _serve_requests(sock)
    if request is None:
        return 0
    sock.close()  # the child's: only the forker answers the test process
    return _run_child(*request)


if __name__ == "__main__":
    sys.exit(_main(int(sys.argv[1])))
