"""The demo instance of the README's first command."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

from sealdrop.config import load_settings
from sealdrop.services.container import build_services
from sealdrop.services.demo import new_demo_identity
from sealdrop.services.instance import init_instance

IDENTITY_FILE = "journalist-identity.DEMO-ONLY.txt"


def prepare_demo(directory: Path, port: int, console: Console) -> Path:
    directory = directory.resolve()
    instance = directory / "instance"
    if not (instance / "sealdrop.toml").exists():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        init_instance(instance, "127.0.0.1", port)
        identity_text, recipient = new_demo_identity()
        path = directory / IDENTITY_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write("# DEMO ONLY: a real journalist key never lives on the server.\n")
            out.write(f"# public key: {recipient}\n{identity_text}\n")
        services = build_services(load_settings(instance))
        try:
            services.recipients.add(recipient, "demo journalist")
        finally:
            services.close()
        console.print(f"Created a demo instance in {instance}")
    console.print(f"Demo journalist key: {directory / IDENTITY_FILE}", soft_wrap=True)
    console.print(
        f"  decrypt a stored blob with: age -d -i {directory / IDENTITY_FILE} BLOB",
        soft_wrap=True,
        highlight=False,
    )
    return instance
