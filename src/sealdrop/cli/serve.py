"""Running the source interface under uvicorn."""

from __future__ import annotations

from pathlib import Path

import uvicorn
from rich.console import Console

from sealdrop.cli.logs import configure_logging
from sealdrop.config import load_settings
from sealdrop.services.container import build_services
from sealdrop.services.instance import instance_lock, upgrade_database
from sealdrop.services.maintenance import Maintenance
from sealdrop.web.app import create_source_app

# Tor Browser on a slow circuit can take long between chunks; a connection idle this long is cut.
KEEP_ALIVE_SECONDS = 30


def serve_instance(directory: Path, host: str | None, port: int | None) -> None:
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
            if not services.recipients.list():
                console.print(
                    "[yellow]No recipients are registered: sources will be told that submissions "
                    "are not accepted. Add one with `sealdrop recipients add`.[/]"
                )
            bind_host = host or settings.source_host
            bind_port = port if port is not None else settings.source_port
            config = uvicorn.Config(
                create_source_app(services),
                host=bind_host,
                port=bind_port,
                server_header=False,
                date_header=False,
                access_log=False,
                log_config=None,
                timeout_keep_alive=KEEP_ALIVE_SECONDS,
                lifespan="off",
            )
            server = uvicorn.Server(config)
            maintenance = Maintenance(services.sessions, services.sources)
            maintenance.start()
            shown = f"[{bind_host}]" if ":" in bind_host else bind_host
            print(f"Source interface: http://{shown}:{bind_port}/", flush=True)
            try:
                server.run()
            finally:
                maintenance.stop()
        finally:
            services.close()
