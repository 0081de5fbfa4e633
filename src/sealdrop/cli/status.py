"""``sealdrop status``: what an instance and its tor are doing, and whom new submissions are
encrypted to (above all: whether only to the demo key, which nobody but the demo can use)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from sealdrop import __version__
from sealdrop.cli.common import fail, open_services
from sealdrop.config import Settings
from sealdrop.errors import SealdropError
from sealdrop.services.demo import demo_identity_path, demo_recipient
from sealdrop.services.instance_state import InstanceState, read_instance_state
from sealdrop.tor import control
from sealdrop.tor.client_auth import list_devices
from sealdrop.tor.layout import TorLayout
from sealdrop.tor.process import find_tor

InstanceDir = Annotated[Path, typer.Argument(help="The instance folder.")]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON object.")]


# The keys of the JSON output are fixed (docs/operator.md, "Monitoring", lists them): a key
# whose value is not known is null, never missing, so a monitor's parser can rely on them.
_TOR_UNKNOWN = dict.fromkeys(
    ("version", "bootstrap_percent", "bootstrap_summary", "pow_defense", "circuit_limits")
)


def _tor(settings: Settings, layout: TorLayout) -> dict[str, Any]:
    if settings.tor_enabled == "no":
        return {"state": "disabled", **_TOR_UNKNOWN}
    if find_tor(settings.tor_binary) is None:
        return {"state": "not installed", **_TOR_UNKNOWN}
    state = control.read_status(layout)
    if not state.running:
        return {"state": "not running", **_TOR_UNKNOWN}
    return {
        "state": "running",
        "version": state.version,
        "bootstrap_percent": state.bootstrap.percent if state.bootstrap else 0,
        "bootstrap_summary": state.bootstrap.summary if state.bootstrap else "",
        "pow_defense": bool(state.pow_defense),
        "circuit_limits": bool(state.circuit_ids_exported),
    }


def gather(directory: Path) -> dict[str, Any]:
    """Everything `status` shows, as plain data (the --json output)."""
    services = open_services(directory)
    try:
        settings = services.settings
        organisation = [r.public_key for r in services.recipients.list()]
        keys = services.submissions.recipient_keys()
        accounts = len(services.accounts.list())
        accepting = services.submissions.accepting()
        waiting, without_hybrid = services.recipients.readiness()
        state = read_instance_state(settings)
    except SealdropError as exc:
        raise fail(exc) from None
    finally:
        services.close()
    demo = demo_recipient(settings.instance_dir)
    layout = TorLayout.of_instance(settings.instance_dir)
    tor = _tor(settings, layout)
    source, api = layout.source_onion_address(), layout.api_onion_address()
    tor_used = tor["state"] in ("running", "not running")
    return {
        "instance": str(settings.instance_dir),
        "database": settings.database_url.split(":", 1)[0].split("+")[0],
        "recipients": len(organisation),
        "device_keys": len(set(keys) - set(organisation)),
        "demo_key": demo in keys if demo else False,
        "only_demo_key": bool(demo) and keys == [demo],
        "accounts": accounts,
        "accepting": accepting,
        "post_quantum": settings.post_quantum,
        "keys_waiting": waiting,
        "without_hybrid_key": without_hybrid,
        "tor": tor,
        # As the text shows them: not while tor is disabled or not installed.
        "source_onion": f"http://{source}/" if source and tor_used else None,
        "api_onion": f"http://{api}/api/v1/" if api and tor_used else None,
        # Behind Onionbalance: the address sources are given (this host's onion is a worker).
        "onionbalance_front": f"http://{front}/"
        if (front := settings.tor_onionbalance_front)
        else None,
        "authorized_devices": len(list_devices(layout)),
        **_operations(settings, state),
    }


def _operations(settings: Settings, state: InstanceState) -> dict[str, Any]:
    """What a monitor watches besides the above: version, schema, disks, notices, metrics."""
    storage = {
        role: None
        if (space := state.storage.get(role)) is None
        else {"free_bytes": space.free_bytes, "total_bytes": space.total_bytes}
        for role in ("blobs", "database")
    }
    notices = state.notices
    last = notices.last_scheduled
    metrics = f"{_url(settings.metrics_host, settings.metrics_port)}metrics"
    return {
        "version": __version__,
        "schema_revision": state.schema_revision,
        "schema_current": state.schema_revision == state.schema_head,
        "storage": storage,
        "notifications": {
            "targets": notices.targets,
            "last_scheduled": None
            if last is None
            else dt.datetime.fromtimestamp(last, dt.UTC).isoformat(),
            "behind": notices.behind,
        },
        "metrics": metrics if settings.metrics_enabled else None,
    }


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _encrypted_to(out: Console, info: dict[str, Any]) -> None:
    recipients, devices = info["recipients"], info["device_keys"]
    out.print(
        f"New submissions are encrypted to: {recipients} organisation recipient(s), "
        f"{devices} reader device key(s)"
    )
    register = (
        "register real keys: `sealdrop reader init` on each journalist's own computer, or "
        "`sealdrop recipients add DIR age1…` for an offline organisation key"
    )
    if info["only_demo_key"]:
        identity = demo_identity_path(Path(info["instance"]))
        out.print(
            "[bold yellow]Warning: submissions are encrypted only to the demo key "
            f"({escape(str(identity))}), which lives on this server: {register}. Until then, "
            "only that key opens what arrives (age -d -i FILE BLOB).[/]"
        )
    elif info["demo_key"]:
        out.print(
            "[yellow]One of them is the demo key, which lives on this server; remove it with "
            "`sealdrop recipients remove` before real use.[/]"
        )
    elif recipients + devices == 0:
        out.print(f"[bold yellow]Warning: there is no key to encrypt to: {register}.[/]")


def _key_kinds(out: Console, info: dict[str, Any]) -> None:
    kind = "post-quantum (age1pq1…)" if info["post_quantum"] else "classic X25519 (age1…)"
    waiting = info["keys_waiting"]
    other = (
        "classic keys left from before the switch"
        if info["post_quantum"]
        else ("post-quantum keys waiting for a switch")
    )
    out.print(f"Keys: {kind}" + (f"; {waiting} {other}, not encrypted to" if waiting else ""))
    missing = info["without_hybrid_key"]
    if missing:
        names = escape(", ".join(missing))
        if info["post_quantum"]:
            out.print(f"[bold yellow]Warning: no post-quantum key, so nothing new for: {names}[/]")
        else:
            out.print(f"Before a switch to post-quantum keys, a hybrid key is needed for: {names}")


def status(directory: InstanceDir, as_json: AsJson = False) -> None:
    """Show what an instance is doing: database, whom submissions are encrypted to, intake, tor,
    onion addresses, PoW defense."""
    info = gather(directory)
    if as_json:
        print(json.dumps(info))
        return
    out = Console(highlight=False, soft_wrap=True)
    out.print(f"Instance: {escape(info['instance'])}")
    out.print(f"Database: reachable ({info['database']})")
    out.print(f"Recipients: {info['recipients']}   Journalist accounts: {info['accounts']}")
    _encrypted_to(out, info)
    out.print(f"Accepting submissions: {'yes' if info['accepting'] else 'no'}")
    _key_kinds(out, info)
    tor = info["tor"]
    if tor["state"] == "disabled":
        out.print("Tor: disabled (\\[tor] enabled = 'no')")
        return
    if tor["state"] == "not installed":
        out.print("Tor: not installed (Debian: apt-get install tor)")
        return
    if tor["state"] == "not running":
        out.print("Tor: not running (`sealdrop serve` starts it)")
    else:
        out.print(
            f"Tor: running, version {tor['version']}, bootstrapped {tor['bootstrap_percent']}% "
            f"{escape(tor['bootstrap_summary'])}"
        )
        out.print(f"Proof-of-work defense (source onion): {'on' if tor['pow_defense'] else 'OFF'}")
        out.print(f"Per-circuit limits: {'on' if tor['circuit_limits'] else 'OFF'}")
    out.print(f"Source onion: {info['source_onion'] or 'not created yet'}")
    if info["onionbalance_front"]:
        out.print(
            f"Onionbalance front: {info['onionbalance_front']} (give sources this address; the "
            "source onion above is this worker's own)"
        )
    out.print(f"Journalist API onion: {info['api_onion'] or 'not created yet'}")
    out.print(f"Authorized reader devices: {info['authorized_devices']}")
