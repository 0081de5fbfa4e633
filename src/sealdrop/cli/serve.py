"""Running an instance: the source interface and the journalist API, each on its own listener,
in one process, or in several workers sharing the listeners (cli/workers.py)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from sealdrop.cli.listen import (
    SERVE_API,
    SERVE_SOURCE,
    Knobs,
    bind_tcp,
    bind_unix,
    connection_limits,
    listener,
    raise_file_limit,
    run_listeners,
)
from sealdrop.cli.logs import configure_logging, endpoint
from sealdrop.cli.metrics import SERVE_METRICS, ServerProbes, refresh_warning
from sealdrop.cli.serve_tor import BootstrapDisplay, print_onions
from sealdrop.cli.serve_tor import tor_path as tor_path_of
from sealdrop.cli.workers import (
    Bound,
    Supervisor,
    WorkerSpec,
    per_worker,
    watch_parent,
    worker_command,
)
from sealdrop.config import Settings, load_settings
from sealdrop.errors import ConfigError
from sealdrop.services.container import Services, build_services
from sealdrop.services.instance import serving, upgrade_database
from sealdrop.services.maintenance import Maintenance
from sealdrop.services.monitoring import IntakeTally, SnapshotTimer
from sealdrop.tor.layout import TorLayout
from sealdrop.tor.process import TorSupervisor
from sealdrop.web.api.app import create_api_app
from sealdrop.web.api.errors import busy as api_busy
from sealdrop.web.app import create_source_app
from sealdrop.web.metrics import create_metrics_app
from sealdrop.web.onion import ProxyProtocol, onion_listener
from sealdrop.web.refusals import RefusalLog


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve_instance(
    directory: Path,
    host: str | None,
    port: int | None,
    api_host: str | None = None,
    api_port: int | None = None,
    source_knobs: Knobs = SERVE_SOURCE,
    api_knobs: Knobs = SERVE_API,
    workers: int = 1,
    inherit: str | None = None,
) -> None:
    """Serve an instance until SIGINT or SIGTERM. ``*_knobs``: what the caller's user changes
    an address with, named when a listener cannot bind. ``workers``: processes serving the same
    listeners (cli/workers.py; PostgreSQL + S3 only); ``inherit``: set by the parent of workers
    for each of them."""
    console = Console(stderr=True)
    settings = load_settings(directory)
    source_host = host or settings.source_host
    source_port = port if port is not None else settings.source_port
    journalist_host = api_host or settings.api_host
    journalist_port = api_port if api_port is not None else settings.api_port
    if (source_host, source_port) == (journalist_host, journalist_port):
        raise ConfigError("the source interface and the API need different ports")
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    own = [endpoint(source_host, source_port), endpoint(journalist_host, journalist_port)]
    if settings.metrics_enabled:
        own.append(endpoint(settings.metrics_host, settings.metrics_port))
    # The logs may name the server's own listeners (not its peers).
    configure_logging(keep=own)
    addresses = (source_host, source_port, journalist_host, journalist_port)
    if inherit is not None:
        spec = WorkerSpec.parse(inherit)
        _serve_worker(per_worker(settings, spec.count), spec, addresses, console)
        return
    with serving(settings, workers), contextlib.ExitStack() as sockets:
        # Every TCP socket is bound before anything else is done or said: a port in use is one
        # error line, with nothing announced, no upload recovered and no tor started.
        bound = Bound(
            bind_tcp(source_host, source_port, source_knobs),
            bind_tcp(journalist_host, journalist_port, api_knobs),
        )
        sockets.callback(_close_all, bound.source)
        sockets.callback(_close_all, bound.api)
        # Off by default: no socket at all unless [metrics] enabled.
        if settings.metrics_enabled:
            bound.metrics = bind_tcp(settings.metrics_host, settings.metrics_port, SERVE_METRICS)
            sockets.callback(_close_all, bound.metrics)
        upgrade_database(settings.instance_dir)
        services = build_services(per_worker(settings, workers))
        try:
            # Before anything is served: a switch to post-quantum keys that would leave someone
            # without a key of the instance's kind is refused, not carried out silently.
            services.recipients.check_switch()
            # Once, by the parent, before any worker accepts an upload.
            _recover(services, console)
            tor_path = tor_path_of(settings, console)
            layout = TorLayout.of_instance(settings.instance_dir)
            supervisor: TorSupervisor | None = None
            if tor_path is not None:
                layout.check_paths()
                layout.prepare()
                bound.source_onion = [bind_unix(layout.source_socket)]
                sockets.callback(_close_all, bound.source_onion)
                bound.api_onion = [bind_unix(layout.api_socket)]
                sockets.callback(_close_all, bound.api_onion)
                display = BootstrapDisplay(console)
                supervisor = TorSupervisor(
                    layout,
                    tor_path,
                    settings.tor_extra_torrc,
                    on_progress=display.update,
                    on_restart=display.restarted,
                    onionbalance_front=settings.tor_onionbalance_front,
                )
            if workers > 1:
                # The parent serves nothing itself: its connections go now, before forking.
                services.close()
                _supervise(workers, bound, addresses, supervisor, settings, console)
                return
            tor_layout = layout if tor_path is not None else None
            _serve(settings, services, bound, addresses, tor_layout, supervisor, console)
        finally:
            services.close()


def _recover(services: Services, console: Console) -> None:
    staged, orphans = services.submissions.recover()
    # Resumable uploads in progress survive a restart; only expired ones go.
    staged += services.resumable.sweep()
    if staged or orphans:
        console.print(f"Removed {staged} unfinished upload(s) and {orphans} orphan blob(s).")
    if not services.submissions.accepting():
        console.print(
            "[yellow]No recipient keys are registered (or intake is off): sources will "
            "be told that submissions are not accepted. Add one with `sealdrop "
            "recipients add`, or a journalist's reader registers its key.[/]"
        )


def _announce(
    addresses: tuple[str, int, str, int], settings: Settings, metrics: bool, console: Console
) -> None:
    source_host, source_port, journalist_host, journalist_port = addresses
    print(f"Source interface: {_url(source_host, source_port)}", flush=True)
    print(f"Journalist API: {_url(journalist_host, journalist_port)}api/v1/", flush=True)
    if metrics:
        print(f"Metrics: {_url(settings.metrics_host, settings.metrics_port)}metrics", flush=True)
        if warning := refresh_warning(settings):
            console.print(f"[yellow]{escape(warning)}[/]")


def _supervise(
    count: int,
    bound: Bound,
    addresses: tuple[str, int, str, int],
    tor: TorSupervisor | None,
    settings: Settings,
    console: Console,
) -> None:
    source_host, source_port, journalist_host, journalist_port = addresses
    argv = [
        str(settings.instance_dir),
        "--host",
        source_host,
        "--port",
        str(source_port),
        "--api-host",
        journalist_host,
        "--api-port",
        str(journalist_port),
    ]
    specs = {i: bound.spec(i, count, tor is not None) for i in range(1, count + 1)}
    workers = Supervisor(
        count, lambda i: worker_command(argv, specs[i]), specs[1].all_fds(), console
    )
    try:
        _announce(addresses, settings, bool(bound.metrics), console)
        console.print(f"{count} workers", highlight=False)
        if tor is not None:
            tor.start()
            print_onions(tor, console)
        workers.run()
    finally:
        if tor is not None:
            tor.stop()


def _serve_worker(
    settings: Settings, spec: WorkerSpec, addresses: tuple[str, int, str, int], console: Console
) -> None:
    """One of the workers of `serve --workers`: serves the inherited listeners."""
    bound = Bound.inherited(spec)
    services = build_services(settings)
    try:
        watch_parent(lambda: signal.raise_signal(signal.SIGTERM))
        layout = TorLayout.of_instance(settings.instance_dir)
        tor_layout = layout if spec.tor else None
        _serve(settings, services, bound, addresses, tor_layout, None, console, announce=False)
    finally:
        services.close()
        for sockets in (bound.source, bound.api, bound.metrics):
            _close_all(sockets)


def _serve(
    settings: Settings,
    services: Services,
    bound: Bound,
    addresses: tuple[str, int, str, int],
    layout: TorLayout | None,
    supervisor: TorSupervisor | None,
    console: Console,
    announce: bool = True,
) -> None:
    """Serve ``bound`` in this process until SIGINT or SIGTERM. ``layout``: the managed tor's
    (None: no tor); ``supervisor``: the tor this process starts (None in a worker: its parent
    runs tor); ``announce``: print the addresses (a worker's parent did)."""
    source_host, source_port, journalist_host, journalist_port = addresses
    known: list[str] = []

    def onion_address() -> str | None:
        # Asked on every clearnet request once public_url is set: read the hostname
        # file until tor has written it, then remember it (it never changes). Behind
        # Onionbalance, the front address: the one sources are given.
        if settings.tor_onionbalance_front is not None:
            return settings.tor_onionbalance_front
        if not known and layout is not None:
            address = layout.source_onion_address()
            if address is not None:
                known.append(address)
        return known[0] if known else None

    probes = ServerProbes(settings, services, IntakeTally(), layout)
    refusals = RefusalLog(logging.getLogger("sealdrop.web"))
    source_app = create_source_app(services, onion_address, probes.tally, refusals)
    api_app = create_api_app(services)
    limits = connection_limits(settings)
    # Five listeners at most (with metrics), plus database connections, uploads and tor's
    # control port.
    raise_file_limit(5 * limits.max_connections + 1024)
    listeners = [
        (listener(source_app, limits, source_host, source_port), bound.source),
        (
            listener(api_app, limits, journalist_host, journalist_port, busy=api_busy),
            bound.api,
        ),
    ]
    for name, (server, _) in zip(("source", "api"), listeners, strict=True):
        probes.watch(name, server)
    if bound.source_onion:
        assert layout is not None
        listeners += [
            # Only tor connects here, and it puts a PROXY line naming the circuit first.
            (
                listener(
                    onion_listener(source_app),
                    limits,
                    uds=layout.source_socket,
                    http=ProxyProtocol,
                ),
                bound.source_onion,
            ),
            (
                listener(api_app, limits, uds=layout.api_socket, busy=api_busy),
                bound.api_onion,
            ),
        ]
        probes.watch("source_onion", listeners[2][0])
        probes.watch("api_onion", listeners[3][0])
    # Several workers: only the one holding the housekeeping lock runs it (and the notices).
    maintenance = Maintenance(
        services.sessions,
        services.sources,
        services.auth,
        retention=services.retention,
        leader=services.leadership.held,
        quota=services.upload_quota,
    )
    maintenance.start()
    services.readiness.start()  # GET /readyz: the database and the blob store, every 10 s
    metrics = SnapshotTimer(probes.snapshot, settings.metrics_refresh_seconds)
    if bound.metrics:
        metrics_app = create_metrics_app(lambda: metrics.latest)
        metrics_at = (settings.metrics_host, settings.metrics_port)
        listeners.append((listener(metrics_app, limits, *metrics_at), bound.metrics))
    try:
        if announce:
            _announce(addresses, settings, bool(bound.metrics), console)
        if supervisor is not None:
            supervisor.start()
            print_onions(supervisor, console)
        if bound.metrics:
            # After tor started: the first snapshot is the state at start.
            metrics.start()
        _freeze_startup_objects()
        asyncio.run(run_listeners(listeners, services.notifier.run))
    finally:
        if supervisor is not None:
            supervisor.stop()
        metrics.stop()
        maintenance.stop()
        services.readiness.stop()
        refusals.flush()


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
