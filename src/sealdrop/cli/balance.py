"""``sealdrop balance``: one source onion address over several worker hosts, with Onionbalance.

Sealdrop writes Onionbalance's configuration and keeps the front key; it does not run
Onionbalance. Onionbalance is a long-running program with its own tor (it needs a control port
to fetch the workers' descriptors and post the front's), best run by Debian's own service unit
on a host of the operator's choosing, and restarted, logged and upgraded like any other daemon.

``--watch`` is the same command kept running beside Onionbalance (tor/balance_watch.py): it
writes the same configuration from the same ``--worker`` list, leaving out the workers that stop
answering, so it is an option of ``balance`` rather than a noun of its own.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from sealdrop.cli.common import err, fail
from sealdrop.cli.logs import configure_logging
from sealdrop.config import load_settings
from sealdrop.errors import ConfigError, SealdropError
from sealdrop.tor.balance_watch import Watcher, check_health, pid_reloader, unit_reloader
from sealdrop.tor.front import ensure_front_key, front_address, write_onionbalance_config
from sealdrop.tor.layout import TorLayout


def balance(
    directory: Annotated[
        Path,
        typer.Argument(
            help="The instance folder (with --watch, a folder holding at least "
            "tor/front-onion/key.pem)."
        ),
    ],
    workers: Annotated[
        list[str] | None,
        typer.Option(
            "--worker",
            help="A worker host's source onion address (`sealdrop status` on that host shows "
            "it); repeat for each worker.",
        ),
    ] = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Keep running beside Onionbalance: check each worker through tor, take the "
            "dead ones out of the configuration and put them back when they answer, and "
            "signal Onionbalance to reload (docs/operator.md).",
        ),
    ] = False,
    onionbalance_config: Annotated[
        Path | None,
        typer.Option(
            help="With --watch: the configuration file Onionbalance reads (e.g. "
            "/etc/onionbalance/config.yaml; key.pem next to it). Default: the instance's "
            "tor/front-onion/onionbalance.yaml.",
        ),
    ] = None,
    onionbalance_pid: Annotated[
        str | None,
        typer.Option(help="With --watch: Onionbalance's pid, or a file holding it."),
    ] = None,
    onionbalance_unit: Annotated[
        str | None,
        typer.Option(help="With --watch: Onionbalance's systemd unit (e.g. onionbalance)."),
    ] = None,
    socks: Annotated[
        str, typer.Option(help="With --watch: this host's tor SOCKS port, HOST:PORT.")
    ] = "127.0.0.1:9050",
    interval: Annotated[
        float, typer.Option(min=1, help="With --watch: seconds between rounds of checks.")
    ] = 30.0,
    timeout: Annotated[
        float, typer.Option(min=1, help="With --watch: seconds a check may take.")
    ] = 60.0,
    failures: Annotated[
        int,
        typer.Option(min=1, help="With --watch: failed checks in a row that make a worker dead."),
    ] = 3,
) -> None:
    """Make the Onionbalance front key (once) and print the front address; with --worker,
    write Onionbalance's configuration for those workers (docs/operator.md); with --watch too,
    keep it naming only the workers that answer."""
    if watch:
        _watch(
            directory,
            workers or [],
            onionbalance_config,
            onionbalance_pid,
            onionbalance_unit,
            socks,
            interval,
            timeout,
            failures,
        )
        return
    if onionbalance_config or onionbalance_pid or onionbalance_unit:
        # Refused rather than ignored: without --watch nothing would be signalled or written
        # there, and the operator would believe otherwise.
        raise fail(ConfigError("--onionbalance-config/-pid/-unit are for --watch only"))
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


def _watch(
    directory: Path,
    workers: list[str],
    config: Path | None,
    pid: str | None,
    unit: str | None,
    socks: str,
    interval: float,
    timeout: float,
    failures: int,
) -> None:
    if not workers:
        raise fail(ConfigError("--watch needs the workers: name each with --worker"))
    if (pid is None) == (unit is None):
        raise fail(
            ConfigError(
                "--watch needs one way to reach Onionbalance: --onionbalance-pid or "
                "--onionbalance-unit"
            )
        )
    try:
        # Only the front key: not load_settings, which needs secrets.toml, and the Onionbalance
        # host has no business holding the instance's secrets (R41).
        layout = TorLayout.of_instance(directory)
        # Read only: the watcher never makes a key (that would be a new front address) and
        # writes nothing in the instance folder, only Onionbalance's configuration.
        front = front_address(layout)
        if front is None:
            raise ConfigError(
                f"no front key in {layout.front_onion_dir}: copy key.pem there from the "
                "instance where `sealdrop balance` made it"
            )
        watcher = Watcher(
            front=front,
            workers=workers,
            config=config or layout.front_onion_dir / "onionbalance.yaml",
            reload=pid_reloader(pid) if pid is not None else unit_reloader(unit or ""),
            check=lambda address: check_health(address, socks, timeout),
            failures_to_dead=failures,
        )
    except SealdropError as exc:
        raise fail(exc) from None
    # The SOCKS port's address is this host's own, not a visitor's: the logs may show it.
    configure_logging(keep=[socks])
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("sealdrop.balance").info(
        "watching %d workers for the front %s: a round every %.0f s, dead after %d failed "
        "checks, through tor at %s",
        len(watcher.workers),
        front,
        interval,
        failures,
        socks,
    )
    with contextlib.suppress(KeyboardInterrupt):
        watcher.run(interval)
