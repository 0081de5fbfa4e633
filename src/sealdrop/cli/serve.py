"""Running an instance: the source interface and the journalist API, each on its own listener,
in one process (one instance lock, one set of services)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from rich.console import Console
from starlette.types import ASGIApp

from sealdrop.cli.logs import configure_logging
from sealdrop.config import load_settings
from sealdrop.errors import ConfigError
from sealdrop.services.container import build_services
from sealdrop.services.instance import instance_lock, upgrade_database
from sealdrop.services.maintenance import Maintenance
from sealdrop.web.api.app import create_api_app
from sealdrop.web.app import create_source_app

# Tor Browser on a slow circuit can take long between chunks; a connection idle this long is cut.
KEEP_ALIVE_SECONDS = 30


class _Listener(uvicorn.Server):
    """A uvicorn server that leaves signals to us, so that one signal stops both listeners."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _listener(app: ASGIApp, host: str, port: int) -> _Listener:
    return _Listener(
        uvicorn.Config(
            app,
            host=host,
            port=port,
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
        )
    )


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


async def _run(listeners: list[_Listener]) -> None:
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for listener in listeners:
            listener.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    await asyncio.gather(*(listener.serve() for listener in listeners))


def serve_instance(
    directory: Path,
    host: str | None,
    port: int | None,
    api_host: str | None = None,
    api_port: int | None = None,
) -> None:
    console = Console(stderr=True)
    configure_logging()
    settings = load_settings(directory)
    with instance_lock(settings.instance_dir):
        upgrade_database(settings.instance_dir)
        services = build_services(settings)
        try:
            staged, orphans = services.submissions.recover()
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
            source_host = host or settings.source_host
            source_port = port if port is not None else settings.source_port
            journalist_host = api_host or settings.api_host
            journalist_port = api_port if api_port is not None else settings.api_port
            if (source_host, source_port) == (journalist_host, journalist_port):
                raise ConfigError("the source interface and the API need different ports")
            listeners = [
                _listener(create_source_app(services), source_host, source_port),
                _listener(create_api_app(services), journalist_host, journalist_port),
            ]
            maintenance = Maintenance(services.sessions, services.sources, services.auth)
            maintenance.start()
            print(f"Source interface: {_url(source_host, source_port)}", flush=True)
            print(f"Journalist API: {_url(journalist_host, journalist_port)}api/v1/", flush=True)
            try:
                asyncio.run(_run(listeners))
            finally:
                maintenance.stop()
        finally:
            services.close()
