"""v3 onion client authorization for the journalist API onion: one key pair per reader device.

Tor encrypts the API onion's descriptor to every public key in ``authorized_clients/``; a client
without a matching private key cannot even learn the service's introduction points. The private
half is printed once for the device and never stored on the server.

An onion service whose ``authorized_clients/`` is empty is public. So that the API onion is never
public, not even before the first device is added, the folder always holds one placeholder key
whose private half was thrown away at creation: it admits nobody.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from sealdrop.errors import Conflict, NotFound, TorError
from sealdrop.tor.layout import TorLayout

PLACEHOLDER = "sealdrop-nobody"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
_SUFFIX = ".auth"


def _b32(raw: bytes) -> str:
    # Tor writes and reads these keys as unpadded RFC 4648 base32.
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def _new_pair() -> tuple[str, str]:
    private = X25519PrivateKey.generate()
    private_raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public_raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return _b32(public_raw), _b32(private_raw)


def _write_private_file(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())


def ensure_placeholder(layout: TorLayout) -> None:
    """Make sure the API onion admits nobody until a real device is added."""
    layout.prepare()
    path = layout.authorized_clients_dir / f"{PLACEHOLDER}{_SUFFIX}"
    if not path.exists():
        public, _discarded = _new_pair()
        _write_private_file(path, f"descriptor:x25519:{public}\n")


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name) or name == PLACEHOLDER:
        raise TorError(
            "a device name is 1 to 40 letters, digits, '-' or '_' "
            f"(and not {PLACEHOLDER!r}), for example alice-laptop"
        )
    return name


def add_device(layout: TorLayout, name: str) -> str:
    """Authorize one reader device; return the line for its ``NAME.auth_private`` file.

    Needs the API onion address, which tor creates at the first ``serve`` with tor."""
    check_name(name)
    address = layout.api_onion_address()
    if address is None:
        raise TorError(
            "the journalist API onion does not exist yet: run `sealdrop serve` once with tor "
            "installed, so that tor creates it, then add devices"
        )
    ensure_placeholder(layout)
    path = layout.authorized_clients_dir / f"{name}{_SUFFIX}"
    if path.exists():
        raise Conflict(f"a device named {name!r} is already authorized; revoke it first")
    public, private = _new_pair()
    _write_private_file(path, f"descriptor:x25519:{public}\n")
    return f"{address.removesuffix('.onion')}:descriptor:x25519:{private}"


def list_devices(layout: TorLayout) -> list[str]:
    folder = layout.authorized_clients_dir
    if not folder.is_dir():
        return []
    names = (p.name.removesuffix(_SUFFIX) for p in folder.glob(f"*{_SUFFIX}"))
    return sorted(n for n in names if n != PLACEHOLDER)


def revoke_device(layout: TorLayout, name: str) -> None:
    check_name(name)
    path = layout.authorized_clients_dir / f"{name}{_SUFFIX}"
    try:
        path.unlink()
    except FileNotFoundError:
        raise NotFound(f"no device named {name!r} is authorized") from None
