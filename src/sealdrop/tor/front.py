"""One source onion address over several worker hosts: the Onionbalance front.

Each worker host runs ``sealdrop serve`` with its own tor and its own source onion service.
Onionbalance (a separate program, Debian's ``onionbalance``, v3) fetches the workers' descriptors,
takes their introduction points and publishes them under one more address, the *front*, signed
with the front's key. Sources are given the front address; whichever worker's introduction point
their tor picks serves them.

    DIR/tor/front-onion/     0700
        key.pem              the front's ed25519 identity key (PKCS#8 PEM, the format
                             Onionbalance reads), 0600, made once; whoever holds it can publish
                             a descriptor for the front address: keep it as safe as the onion keys
        hostname             the front address, derived from the key (for people and backups)
        onionbalance.yaml    Onionbalance's configuration, written by ``sealdrop balance``

A worker tor takes part only once it knows the front: ``HiddenServiceOnionbalanceInstance 1``
and an ``ob_config`` file naming the front (``MasterOnionAddress``) in its source onion folder,
written from ``[tor] onionbalance_front`` at every start. Without them the worker's tor could
not read the introductions of sources that asked for the front address (they are encrypted with
keys derived from the address the client asked for) and would drop them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)
from stem.descriptor.hidden_service import HiddenServiceDescriptorV3

from sealdrop.errors import ConfigError, TorError
from sealdrop.tor.layout import TorLayout

KEY_FILE = "key.pem"
HOSTNAME_FILE = "hostname"
CONFIG_FILE = "onionbalance.yaml"
OB_CONFIG_FILE = "ob_config"


def parse_onion_address(text: str) -> str:
    """A v3 onion address as ``<56 base32>.onion``; ConfigError for anything else (a v2 address,
    a typo: the checksum and version byte inside the address are checked)."""
    address = text.strip().lower().removeprefix("http://").rstrip("/").removesuffix(".onion")
    try:
        HiddenServiceDescriptorV3.identity_key_from_address(address)
    except ValueError:
        raise ConfigError(f"{text!r} is not a v3 onion address (56 letters and digits)") from None
    return f"{address}.onion"


def ensure_front_key(layout: TorLayout) -> str:
    """The front's address; the key is made on first use (0600, never replaced: a new key would
    be a new address that every source would have to learn again)."""
    folder = layout.front_onion_dir
    for path in (layout.root, folder):
        path.mkdir(mode=0o700, exist_ok=True)
        path.chmod(0o700)
    key_path = folder / KEY_FILE
    if not key_path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
        # O_EXCL: two commands at once never overwrite each other's key.
        with contextlib.suppress(FileExistsError):
            _write_new(key_path, pem)
    address = front_address(layout)
    assert address is not None
    (folder / HOSTNAME_FILE).write_text(address + "\n", encoding="ascii")
    return address


def front_address(layout: TorLayout) -> str | None:
    """The front address, from the key itself (not the hostname file, which anyone may edit);
    None when there is no front key."""
    try:
        pem = (layout.front_onion_dir / KEY_FILE).read_bytes()
    except FileNotFoundError:
        return None
    try:
        key = load_pem_private_key(pem, password=None)
    except ValueError:
        raise TorError(f"{layout.front_onion_dir / KEY_FILE} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise TorError(f"{layout.front_onion_dir / KEY_FILE} is not an ed25519 key")
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return str(HiddenServiceDescriptorV3.address_from_identity_key(public, suffix=True))


def render_onionbalance_config(front: str, workers: Sequence[str]) -> str:
    """Onionbalance's YAML: the front key (next to the file) and the workers' addresses.

    Written by hand rather than with a YAML library: every value is a checked onion address or
    a fixed file name, so nothing needs quoting."""
    if not workers:
        raise ConfigError("name at least one worker's source onion address (--worker)")
    addresses = [parse_onion_address(w) for w in workers]
    if front in addresses:
        raise ConfigError("the front address cannot also be a worker")
    if len(set(addresses)) != len(addresses):
        raise ConfigError("a worker address is named twice")
    lines = [
        f"# Written by `sealdrop balance`: the front {front}",
        "# and the source onions of the workers whose introduction points it publishes.",
        "services:",
        f"- key: {KEY_FILE}",
        "  instances:",
        *(f"  - address: {a.removesuffix('.onion')}" for a in addresses),
    ]
    return "\n".join(lines) + "\n"


def write_onionbalance_config(layout: TorLayout, workers: Sequence[str]) -> Path:
    front = ensure_front_key(layout)
    path = layout.front_onion_dir / CONFIG_FILE
    text = render_onionbalance_config(front, workers)
    tmp = path.with_suffix(".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    _write_new(tmp, text.encode("ascii"))
    tmp.replace(path)
    return path


def write_ob_config(layout: TorLayout, front: str | None) -> None:
    """The worker side: name the front in the source onion folder, or remove a stale name."""
    path = layout.source_onion_dir / OB_CONFIG_FILE
    if front is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    path.write_text(f"MasterOnionAddress {parse_onion_address(front)}\n", encoding="ascii")


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
