"""Where the managed tor keeps its files inside an instance, and the torrc Sealdrop writes for it.

    DIR/tor/                 0700; nothing in it is meant to be edited by hand
        torrc                written at every start (edit [tor] settings or extra_torrc instead)
        data/                tor's DataDirectory (consensus cache, state, control cookie)
        control.sock         control socket, cookie authentication (only this user can open it)
        source-onion/        HiddenServiceDir of the source onion: hostname, hs_ed25519_* keys
        api-onion/           HiddenServiceDir of the journalist API onion
            authorized_clients/NAME.auth    one reader device each (public half only)
        source.sock          tor forwards source onion connections here (PROXY header first)
        api.sock             tor forwards API onion connections here
        front-onion/         the Onionbalance front's key and configuration (tor/front.py)

Unix sockets rather than loopback ports: only this user can connect to them (the folder is
0700), so no other local program can forge the PROXY header that carries the circuit id, nor
reach the API listener that the onion serves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sealdrop.errors import TorError

# sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL.
MAX_SOCKET_PATH = 107

SOURCE_ONION_PORT = 80
API_ONION_PORT = 80


@dataclass(frozen=True, slots=True)
class TorLayout:
    root: Path

    @classmethod
    def of_instance(cls, instance_dir: Path) -> TorLayout:
        return cls(instance_dir.resolve() / "tor")

    @property
    def torrc(self) -> Path:
        return self.root / "torrc"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def control_socket(self) -> Path:
        return self.root / "control.sock"

    @property
    def source_onion_dir(self) -> Path:
        return self.root / "source-onion"

    @property
    def api_onion_dir(self) -> Path:
        return self.root / "api-onion"

    @property
    def front_onion_dir(self) -> Path:
        return self.root / "front-onion"

    @property
    def authorized_clients_dir(self) -> Path:
        return self.api_onion_dir / "authorized_clients"

    @property
    def source_socket(self) -> Path:
        return self.root / "source.sock"

    @property
    def api_socket(self) -> Path:
        return self.root / "api.sock"

    def source_onion_address(self) -> str | None:
        return _read_hostname(self.source_onion_dir)

    def api_onion_address(self) -> str | None:
        return _read_hostname(self.api_onion_dir)

    def prepare(self) -> None:
        """Create the folders owner-only (tor refuses group- or world-readable onion folders)."""
        for path in (self.root, self.data_dir, self.source_onion_dir, self.api_onion_dir):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.chmod(0o700)
        self.authorized_clients_dir.mkdir(mode=0o700, exist_ok=True)
        self.authorized_clients_dir.chmod(0o700)

    def check_paths(self) -> None:
        """Refuse paths that tor's configuration or a unix socket cannot hold."""
        for path in (self.control_socket, self.source_socket, self.api_socket):
            if len(os.fsencode(path)) > MAX_SOCKET_PATH:
                raise TorError(
                    f"the instance path is too long for a unix socket ({path}); "
                    f"move the instance to a shorter path (at most {MAX_SOCKET_PATH} bytes in all)"
                )
        text = str(self.root)
        if any(c.isspace() or c in "\"'\\#%" for c in text):
            raise TorError(
                f"the instance path {text!r} holds spaces, quotes, '#', '%' or backslashes, "
                "which torrc cannot carry safely; move the instance"
            )


def _read_hostname(onion_dir: Path) -> str | None:
    try:
        hostname = (onion_dir / "hostname").read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    # A v3 address: 56 base32 characters and ".onion".
    if len(hostname) != 62 or not hostname.endswith(".onion"):
        return None
    return hostname


def render_torrc(
    layout: TorLayout,
    owner_pid: int,
    extra_torrc: Path | None,
    onionbalance_front: str | None = None,
) -> str:
    """The managed tor's configuration. Written fresh at every start, so an upgrade of Sealdrop
    changes it and hand edits do not linger. With ``onionbalance_front`` the source onion is
    one instance behind that Onionbalance front (its folder's ``ob_config`` names the front)."""
    lines = [
        "# Written by `sealdrop serve` at every start: edits here are lost. Put extra lines in the",
        "# file named by [tor] extra_torrc instead.",
        f"DataDirectory {layout.data_dir}",
        f"ControlSocket {layout.control_socket}",
        "CookieAuthentication 1",
        # This tor only hosts onion services: it offers no SOCKS proxy to local programs.
        "SocksPort 0",
        # tor exits by itself if the Sealdrop process that started it dies, even by SIGKILL.
        f"__OwningControllerProcess {owner_pid}",
        # Notices go to our stdout pipe; Sealdrop keeps the last lines for error messages.
        "Log notice stdout",
        # No GeoIP lookups of anything: an onion service needs none.
        'GeoIPFile ""',
        'GeoIPv6File ""',
    ]
    if extra_torrc is not None:
        # Before the onion-service lines: HiddenService* options attach to the HiddenServiceDir
        # above them, so an included file cannot change Sealdrop's two services.
        lines.append(f"%include {extra_torrc}")
    lines += [
        "",
        "# The source onion service: anyone may reach it.",
        f"HiddenServiceDir {layout.source_onion_dir}",
        f"HiddenServicePort {SOURCE_ONION_PORT} unix:{layout.source_socket}",
        # Tor's proof-of-work defense: under an introduction flood, clients that solve a puzzle
        # are served first (tor 0.4.8 and newer).
        "HiddenServicePoWDefensesEnabled 1",
        # A PROXY protocol line in front of every connection names its circuit, so that
        # Sealdrop can slow one flooding circuit without touching the others.
        "HiddenServiceExportCircuitID haproxy",
    ]
    if onionbalance_front is not None:
        lines += [
            # A source that asked for the front address encrypts its introduction with keys
            # derived from the front's address; without this tor cannot read it and drops it.
            "HiddenServiceOnionbalanceInstance 1",
        ]
    lines += [
        "",
        "# The journalist API onion service: only devices in authorized_clients/ can find it.",
        f"HiddenServiceDir {layout.api_onion_dir}",
        f"HiddenServicePort {API_ONION_PORT} unix:{layout.api_socket}",
        "",
    ]
    return "\n".join(lines)
