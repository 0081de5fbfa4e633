"""How the reader reaches its server: the checks before anything is sent, and the client of a
profile's saved login (the CLI and the UI both start here)."""

from __future__ import annotations

import httpx

from sealdrop.errors import ReaderError, TokenExpired
from sealdrop.reader.client import ApiClient
from sealdrop.reader.profile import Profile

__all__ = ["check_connection", "open_client"]


def check_connection(server: str, proxy: str | None) -> None:
    """Refuse a server and proxy pair that would fail, or leak, before anything is sent.

    Only ``socks5h://`` proxies: the name is then resolved by Tor, never by the local resolver
    (an onion name cannot be resolved locally, and a clearnet name looked up locally would tell
    the network which server the journalist uses)."""
    host = httpx.URL(server).host
    if proxy is not None:
        scheme = httpx.URL(proxy).scheme
        if scheme != "socks5h":
            raise ReaderError(
                f"the proxy must be a Tor SOCKS port given as socks5h://HOST:PORT (not {scheme}://)"
                ", for example socks5h://127.0.0.1:9050, or 9150 for Tor Browser's tor"
            )
    elif host.endswith(".onion"):
        raise ReaderError(
            "an .onion server is reached through Tor: add --proxy socks5h://127.0.0.1:9050 "
            "(the SOCKS port of your tor; 9150 for Tor Browser's)"
        )


def open_client(profile: Profile) -> ApiClient:
    """A client of the profile's server (through its proxy, if any) holding the saved token;
    TokenExpired when there is none or it has expired."""
    config = profile.load_config()
    token = profile.load_token()
    if token is None:
        raise TokenExpired("no valid token")
    client = ApiClient(config.server, proxy=config.proxy)
    client.use_token(token)
    return client
