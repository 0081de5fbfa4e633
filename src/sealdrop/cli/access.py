"""``sealdrop access``: which reader devices may reach the journalist API onion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from sealdrop.cli.common import err, fail
from sealdrop.config import load_settings
from sealdrop.errors import SealdropError
from sealdrop.tor import control
from sealdrop.tor.client_auth import add_device, list_devices, revoke_device
from sealdrop.tor.layout import TorLayout

access_app = typer.Typer(
    help="Reader devices allowed to reach the journalist API onion (v3 client authorization).",
    no_args_is_help=True,
)
InstanceDir = Annotated[Path, typer.Argument(help="The instance folder.")]
DeviceName = Annotated[str, typer.Argument(help="A name for the device, e.g. alice-laptop.")]


def _layout(directory: Path) -> TorLayout:
    try:
        settings = load_settings(directory)
    except SealdropError as exc:
        raise fail(exc) from None
    return TorLayout.of_instance(settings.instance_dir)


@access_app.command("add")
def access_add(directory: InstanceDir, name: DeviceName) -> None:
    """Authorize one reader device; print the line for its NAME.auth_private file, once."""
    layout = _layout(directory)
    try:
        line = add_device(layout, name)
    except SealdropError as exc:
        raise fail(exc) from None
    # The secret line goes to stdout alone, so that it can be piped into a file.
    print(line, flush=True)
    err.print(
        f"Put this line, alone, in a file named {escape(name)}.auth_private in the "
        "ClientOnionAuthDir of the tor on that device. Tor Browser instead asks for a key "
        "when the API's onion address is opened: give it only the part after the last colon. "
        "It is shown only this once; the server keeps only its public half.",
        highlight=False,
    )
    address = layout.api_onion_address()
    assert address is not None  # add_device needs it
    published = control.reload_and_publish(layout, address)
    if published is None:
        err.print("No `sealdrop serve` is running: the device is admitted from its next start.")
    elif published:
        err.print("tor has published the new list of devices: the device can connect now.")
    else:
        err.print(
            "[yellow]tor did not confirm publishing the new list of devices (is it still "
            "bootstrapping? see `sealdrop status`). The device is admitted once it does.[/]"
        )


@access_app.command("list")
def access_list(
    directory: InstanceDir,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List the authorized reader devices."""
    names = list_devices(_layout(directory))
    for name in names:
        print(json.dumps({"name": name}) if as_json else name)
    if not names:
        err.print("No reader device is authorized: the API onion admits nobody.")


@access_app.command("revoke")
def access_revoke(directory: InstanceDir, name: DeviceName) -> None:
    """Revoke one device's key, and restart tor so that it cannot connect even with the
    service descriptor it already holds."""
    layout = _layout(directory)
    try:
        revoke_device(layout, name)
    except SealdropError as exc:
        raise fail(exc) from None
    # A reload alone would stop new descriptor fetches but leave the current introduction
    # points usable by a device that cached the descriptor; a restarted tor picks new ones.
    if control.restart(layout):
        err.print(
            f"Revoked {escape(name)}. tor is restarting with new introduction points; the "
            "onions are unreachable for a few seconds to a minute while they are republished."
        )
    else:
        err.print(f"Revoked {escape(name)}. No `sealdrop serve` is running; nothing else to do.")
