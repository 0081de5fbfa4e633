"""How the reader reaches its server: through a Tor SOCKS proxy for an onion, remembered in the
profile, refused before anything is sent when it would fail or leak."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sealdrop.errors import ReaderError
from sealdrop.reader.connection import check_connection
from sealdrop.reader.profile import Profile, ReaderConfig

ONION = "http://" + "b" * 56 + ".onion"


def test_an_onion_server_without_a_proxy_is_refused_with_the_fix() -> None:
    """An .onion address cannot be resolved without Tor: the error names the --proxy to add."""
    with pytest.raises(ReaderError, match=r"--proxy socks5h://127\.0\.0\.1:9050"):
        check_connection(ONION, None)


@pytest.mark.parametrize(
    "proxy", ["socks5://127.0.0.1:9050", "http://127.0.0.1:8118", "https://proxy.example"]
)
def test_only_socks5h_proxies_are_accepted(proxy: str) -> None:
    """socks5:// may resolve names locally (a leak of which server is used); HTTP proxies see
    the traffic: only socks5h://, where Tor resolves the name, is accepted."""
    with pytest.raises(ReaderError, match="socks5h://"):
        check_connection(ONION, proxy)


def test_accepted_pairs() -> None:
    """An onion through socks5h, a clearnet or loopback server with or without a proxy."""
    check_connection(ONION, "socks5h://127.0.0.1:9050")
    check_connection("https://api.example.org", "socks5h://127.0.0.1:9150")
    check_connection("http://127.0.0.1:8081", None)


def test_the_proxy_is_remembered_and_old_profiles_still_load(tmp_path: Path) -> None:
    """config.json keeps the proxy; a config written before the proxy existed loads as None."""
    profile = Profile(tmp_path / "reader").ensure()
    profile.save_config(ReaderConfig(ONION, "alice", "socks5h://127.0.0.1:9050"))
    assert profile.load_config().proxy == "socks5h://127.0.0.1:9050"
    profile.config_path.write_text(json.dumps({"server": ONION, "username": "alice"}))
    assert profile.load_config() == ReaderConfig(ONION, "alice", None)
    profile.config_path.write_text(json.dumps({"server": ONION, "username": "a", "proxy": 9}))
    with pytest.raises(ReaderError, match="malformed"):
        profile.load_config()
