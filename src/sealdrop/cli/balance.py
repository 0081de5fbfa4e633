"""``sealdrop balance``: one source onion address over several worker hosts, with Onionbalance.

Sealdrop writes Onionbalance's configuration and keeps the front key; it does not run
Onionbalance. Onionbalance is a long-running program with its own tor (it needs a control port
to fetch the workers' descriptors and post the front's), best run by Debian's own service unit
on a host of the operator's choosing, and restarted, logged and upgraded like any other daemon.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from sealdrop.cli.common import err, fail
from sealdrop.config import load_settings
from sealdrop.errors import SealdropError
from sealdrop.tor.front import ensure_front_key, write_onionbalance_config
from sealdrop.tor.layout import TorLayout


def balance(
    directory: Annotated[Path, typer.Argument(help="The instance folder.")],
    workers: Annotated[
        list[str] | None,
        typer.Option(
            "--worker",
            help="A worker host's source onion address (`sealdrop status` on that host shows "
            "it); repeat for each worker.",
        ),
    ] = None,
) -> None:
    """Make the Onionbalance front key (once) and print the front address; with --worker,
    write Onionbalance's configuration for those workers (docs/operator.md)."""
    try:
        settings = load_settings(directory)
        layout = TorLayout.of_instance(settings.instance_dir)
        front = ensure_front_key(layout)
        config = write_onionbalance_config(layout, workers) if workers else None
    except SealdropError as exc:
        raise fail(exc) from None
    # The address alone on stdout, so that it can be captured by a script.
    print(front, flush=True)
    folder = escape(str(layout.front_onion_dir))
    if settings.tor_onionbalance_front != front:
        err.print(
            f'[yellow]Set \\[tor] onionbalance_front = "{front}" in sealdrop.toml on every '
            "worker host and restart their `sealdrop serve`: until then their tor refuses "
            "the sources who come through the front.[/]",
            highlight=False,
        )
    if config is None:
        err.print(
            "No --worker given: no Onionbalance configuration written. Name each worker's "
            "source onion address with --worker.",
            highlight=False,
        )
        return
    err.print(
        f"Wrote {escape(str(config))} for {len(workers or ())} workers. Copy {folder}/key.pem "
        "and that file to the host that runs Onionbalance (for Debian's service: "
        "/etc/onionbalance/config.yaml and key.pem next to it, readable by the onionbalance "
        "user only) and start it, e.g. `onionbalance -c /etc/onionbalance/config.yaml "
        "-s /run/tor/control`. key.pem is the front address: keep it as safe as the onion keys.",
        highlight=False,
    )
