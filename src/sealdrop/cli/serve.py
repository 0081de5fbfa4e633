"""Running an instance: the source interface and the journalist API, each on its own listener,
in one process (one instance lock, one set of services)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import resource
import signal
import socket
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn
from starlette.types import ASGIApp

from sealdrop.cli.listen import SERVE_API, SERVE_SOURCE, Knobs, bind_tcp, bind_unix
from sealdrop.cli.logs import configure_logging, endpoint
from sealdrop.cli.metrics import SERVE_METRICS, ServerProbes, refresh_warning
from sealdrop.config import Settings, load_settings
from sealdrop.errors import ConfigError, TorError
from sealdrop.services.container import build_services
from sealdrop.services.instance import instance_lock, upgrade_database
from sealdrop.services.maintenance import Maintenance
from sealdrop.services.monitoring import IntakeTally, SnapshotTimer
from sealdrop.tor.control import Bootstrap
from sealdrop.tor.layout import TorLayout
from sealdrop.tor.process import TorSupervisor, find_tor
from sealdrop.web.api.app import create_api_app
from sealdrop.web.api.errors import busy as api_busy
from sealdrop.web.app import create_source_app
from sealdrop.web.connections import ConnectionLimits, LimitedHttpProtocol, ListenerConfig
from sealdrop.web.metrics import create_metrics_app
from sealdrop.web.onion import ProxyProtocol, onion_listener

# Tor Browser on a slow circuit can take long between chunks; a connection idle this long is cut.
KEEP_ALIVE_SECONDS = 30


class _Listener(uvicorn.Server):
    """A uvicorn server that leaves signals to us, so that one signal stops both listeners."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listener(
    app: ASGIApp,
    limits: ConnectionLimits,
    host: str = "127.0.0.1",
    port: int = 0,
    uds: Path | None = None,
    http: type[LimitedHttpProtocol] = LimitedHttpProtocol,
    busy: ASGIApp | None = None,
    **extra: Any,
) -> _Listener:
    """One listener exactly as `serve` configures it (the tests of the listeners use this
    too, so that what they check is the server's own configuration). ``extra``: more
    uvicorn options, for tests (a log level, say)."""
    return _Listener(
        ListenerConfig(
            app,
            # Every listener cuts slow clients off and caps its connections (web/connections.py).
            limits=limits,
            busy=busy,
            host=host,
            port=port,
            # The onion listeners are unix sockets in the instance's 0700 tor folder.
            uds=str(uds) if uds is not None else None,
            http=http,
            ws="none",  # no websockets anywhere; nothing should upgrade a connection
            server_header=False,
            date_header=False,
            access_log=False,
            log_config=None,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            lifespan="off",
            # Behind Tor every client connects from 127.0.0.1, which uvicorn would trust for
            # X-Forwarded-* headers: any visitor could set the scheme (and so the cookies'
            # Secure flag) and a client address. Trust no proxy headers at all.
            proxy_headers=False,
            forwarded_allow_ips="",
            **extra,
        )
    )


def connection_limits(settings: Settings) -> ConnectionLimits:
    return ConnectionLimits(
        head_timeout=settings.head_timeout_seconds,
        body_timeout=settings.body_timeout_seconds,
        body_min_bytes=settings.body_min_bytes,
        max_connections=settings.max_connections,
    )


def _raise_file_limit(wanted: int) -> None:
    """Raise the soft limit on open files towards the hard one: each connection, upload and
    database connection takes a descriptor, and the usual soft limit (1,024) is below what
    the connection caps of the listeners allow together."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


async def _run(
    listeners: list[tuple[_Listener, list[socket.socket]]],
    background: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> None:
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for listener, _ in listeners:
            listener.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    # The scheduled notices: a task beside the listeners, never on a request's path.
    task = asyncio.create_task(background()) if background is not None else None
    try:
        # Each listener serves the sockets bound before anything was announced.
        await asyncio.gather(*(listener.serve(sockets) for listener, sockets in listeners))
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _print_onions(supervisor: TorSupervisor, console: Console) -> None:
    source, api = supervisor.wait_for_addresses()
    if source:
        print(f"Source onion: http://{source}/", flush=True)
    if api:
        print(f"Journalist API onion: http://{api}/api/v1/", flush=True)
        console.print(
            "  reachable only by authorized reader devices: sealdrop access add DIR NAME",
            highlight=False,
        )
    if not (source and api):
        console.print(
            "[yellow]tor has not written the onion addresses yet; see `sealdrop status`[/]"
        )


def _tor_path(settings: Settings, console: Console) -> str | None:
    """The tor program to run, or None to serve on the TCP listeners only."""
    if settings.tor_enabled == "no":
        return None
    path = find_tor(settings.tor_binary)
    if path is None:
        if settings.tor_enabled == "yes":
            raise TorError(
                f"tor ({settings.tor_binary}) is not installed and [tor] enabled = 'yes'. "
                "Install it (Debian: apt-get install tor) or set [tor] enabled = 'auto'"
            )
        console.print(
            "[yellow]tor is not installed: serving on the addresses below only, with no onion "
            "service. To reach sources through Tor, install it (Debian: apt-get install tor) "
            "and start again.[/]"
        )
    return path


class _BootstrapDisplay:
    """Tor's bootstrap as a progress bar on a terminal, as plain lines otherwise (logs)."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def update(self, state: Bootstrap) -> None:
        if not self._console.is_terminal:
            self._console.print(f"Tor bootstrap: {state.percent}% {state.summary}", highlight=False)
            return
        if self._progress is None:
            self._progress = Progress(
                TextColumn("Tor"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.description}"),
                console=self._console,
            )
            self._task = self._progress.add_task("", total=100)
            self._progress.start()
        assert self._task is not None
        self._progress.update(self._task, completed=state.percent, description=state.summary)
        if state.percent >= 100:
            self._progress.stop()
            self._progress = None

    def restarted(self, code: int | None) -> None:
        self._console.print(f"[yellow]tor exited (status {code}); restarting it[/]")


def serve_instance(
    directory: Path,
    host: str | None,
    port: int | None,
    api_host: str | None = None,
    api_port: int | None = None,
    source_knobs: Knobs = SERVE_SOURCE,
    api_knobs: Knobs = SERVE_API,
) -> None:
    """Serve an instance until SIGINT or SIGTERM. ``*_knobs``: what the caller's user changes
    an address with, named when a listener cannot bind."""
    console = Console(stderr=True)
    settings = load_settings(directory)
    source_host = host or settings.source_host
    source_port = port if port is not None else settings.source_port
    journalist_host = api_host or settings.api_host
    journalist_port = api_port if api_port is not None else settings.api_port
    if (source_host, source_port) == (journalist_host, journalist_port):
        raise ConfigError("the source interface and the API need different ports")
    own = [endpoint(source_host, source_port), endpoint(journalist_host, journalist_port)]
    if settings.metrics_enabled:
        own.append(endpoint(settings.metrics_host, settings.metrics_port))
    # The logs may name the server's own listeners (not its peers).
    configure_logging(keep=own)
    with instance_lock(settings.instance_dir), contextlib.ExitStack() as sockets:
        # Every TCP socket is bound before anything else is done or said: a port in use is one
        # error line, with nothing announced, no upload recovered and no tor started.
        source_sockets = bind_tcp(source_host, source_port, source_knobs)
        sockets.callback(_close_all, source_sockets)
        api_sockets = bind_tcp(journalist_host, journalist_port, api_knobs)
        sockets.callback(_close_all, api_sockets)
        # Off by default: no socket at all unless [metrics] enabled.
        metrics_sockets = []
        if settings.metrics_enabled:
            metrics_sockets = bind_tcp(settings.metrics_host, settings.metrics_port, SERVE_METRICS)
            sockets.callback(_close_all, metrics_sockets)
        upgrade_database(settings.instance_dir)
        services = build_services(settings)
        try:
            staged, orphans = services.submissions.recover()
            # Resumable uploads in progress survive a restart; only expired ones go.
            staged += services.resumable.sweep()
            if staged or orphans:
                console.print(
                    f"Removed {staged} unfinished upload(s) and {orphans} orphan blob(s)."
                )
            if not services.submissions.accepting():
                console.print(
                    "[yellow]No recipient keys are registered (or intake is off): sources will "
                    "be told that submissions are not accepted. Add one with `sealdrop "
                    "recipients add`, or a journalist's reader registers its key.[/]"
                )
            tor_path = _tor_path(settings, console)
            layout = TorLayout.of_instance(settings.instance_dir)

            known: list[str] = []

            def onion_address() -> str | None:
                # Asked on every clearnet request once public_url is set: read the hostname
                # file until tor has written it, then remember it (it never changes).
                if not known and tor_path is not None:
                    address = layout.source_onion_address()
                    if address is not None:
                        known.append(address)
                return known[0] if known else None

            probes = ServerProbes(
                settings, services, IntakeTally(), layout if tor_path is not None else None
            )
            source_app = create_source_app(services, onion_address, probes.tally)
            api_app = create_api_app(services)
            limits = connection_limits(settings)
            # Five listeners at most (with metrics), plus database connections, uploads and tor's
            # control port.
            _raise_file_limit(5 * limits.max_connections + 1024)
            listeners = [
                (listener(source_app, limits, source_host, source_port), source_sockets),
                (
                    listener(api_app, limits, journalist_host, journalist_port, busy=api_busy),
                    api_sockets,
                ),
            ]
            supervisor: TorSupervisor | None = None
            for name, (server, _) in zip(("source", "api"), listeners, strict=True):
                probes.watch(name, server)
            if tor_path is not None:
                layout.check_paths()
                layout.prepare()
                onion_sockets = [bind_unix(layout.source_socket)]
                sockets.callback(_close_all, onion_sockets)
                api_onion_sockets = [bind_unix(layout.api_socket)]
                sockets.callback(_close_all, api_onion_sockets)
                listeners += [
                    # Only tor connects here, and it puts a PROXY line naming the circuit first.
                    (
                        listener(
                            onion_listener(source_app),
                            limits,
                            uds=layout.source_socket,
                            http=ProxyProtocol,
                        ),
                        onion_sockets,
                    ),
                    (
                        listener(api_app, limits, uds=layout.api_socket, busy=api_busy),
                        api_onion_sockets,
                    ),
                ]
                probes.watch("source_onion", listeners[2][0])
                probes.watch("api_onion", listeners[3][0])
                display = _BootstrapDisplay(console)
                supervisor = TorSupervisor(
                    layout,
                    tor_path,
                    settings.tor_extra_torrc,
                    on_progress=display.update,
                    on_restart=display.restarted,
                )
            maintenance = Maintenance(
                services.sessions, services.sources, services.auth, retention=services.retention
            )
            maintenance.start()
            metrics = SnapshotTimer(probes.snapshot, settings.metrics_refresh_seconds)
            if metrics_sockets:
                metrics_app = create_metrics_app(lambda: metrics.latest)
                metrics_at = (settings.metrics_host, settings.metrics_port)
                listeners.append((listener(metrics_app, limits, *metrics_at), metrics_sockets))
            try:
                print(f"Source interface: {_url(source_host, source_port)}", flush=True)
                print(
                    f"Journalist API: {_url(journalist_host, journalist_port)}api/v1/", flush=True
                )
                if metrics_sockets:
                    print(f"Metrics: {_url(*metrics_at)}metrics", flush=True)
                    if warning := refresh_warning(settings):
                        console.print(f"[yellow]{escape(warning)}[/]")
                if supervisor is not None:
                    supervisor.start()
                    _print_onions(supervisor, console)
                if metrics_sockets:
                    # After tor started: the first snapshot is the state at start.
                    metrics.start()
                _freeze_startup_objects()
                asyncio.run(_run(listeners, services.notifier.run))
            finally:
                if supervisor is not None:
                    supervisor.stop()
                metrics.stop()
                maintenance.stop()
        finally:
            services.close()


def _close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def _freeze_startup_objects() -> None:
    """Leave what was built at startup (about 150,000 objects: the app, its schemas, templates,
    word lists, SQLAlchemy's mappings) out of every later garbage collection. They live as long
    as the process, yet each full collection walked them all: measured under 200 sessions, a
    full collection stopped the server for 80-126 ms a few times a minute, the slowest pages of
    benchmark 3; frozen, the same collections take a few milliseconds. Garbage made while
    serving is collected as before."""
    gc.collect()
    gc.freeze()
