"""The demo instance of the README's first command."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from sealdrop.cli.listen import Knobs
from sealdrop.config import load_settings
from sealdrop.services.container import build_services
from sealdrop.services.demo import (
    IDENTITY_FILE,
    demo_identity_text,
    new_demo_identity,
)
from sealdrop.services.instance import init_instance

# What changes the demo's addresses, named when a port is taken (scripts/demo passes its
# environment variables to these options).
DEMO_SOURCE = Knobs(host="--host (scripts/demo: DEMO_HOST=)", port="--port (scripts/demo: PORT=)")
DEMO_API = Knobs(
    host="[api] host in the demo's sealdrop.toml", port="--api-port (scripts/demo: API_PORT=)"
)


def prepare_demo(directory: Path, host: str, port: int, console: Console) -> Path:
    directory = directory.resolve()
    instance = directory / "instance"
    identity_path = directory / IDENTITY_FILE
    if not (instance / "sealdrop.toml").exists():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        init_instance(instance, host, port)
        identity_text, recipient = new_demo_identity()
        fd = os.open(identity_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(demo_identity_text(identity_text, recipient))
        services = build_services(load_settings(instance))
        try:
            services.recipients.add(recipient, "demo journalist")
        finally:
            services.close()
        console.print(f"Created a demo instance in {escape(str(instance))}")
    key = escape(str(identity_path))
    console.print(f"Demo journalist key: {key}", soft_wrap=True, highlight=False)
    console.print(
        "[yellow]Submissions are encrypted to the demo key, and to a journalist's reader device "
        "only once `sealdrop reader init` has registered it. Anything submitted before that "
        "can be read with the demo key alone (the reader cannot open it):[/]",
        soft_wrap=True,
        highlight=False,
    )
    console.print(
        f"  sealdrop submissions list {escape(str(instance))}   (the blob paths)\n"
        f"  age -d -i {key} BLOB",
        soft_wrap=True,
        highlight=False,
    )
    return instance
