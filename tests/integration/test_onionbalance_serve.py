"""`sealdrop serve` on a worker behind an Onionbalance front: the clearnet listener's
Onion-Location points at the front address, the one sources are given, not at this worker's own
onion. (The front itself, through Tor: tests/e2e/test_onionbalance.py.)"""

from __future__ import annotations

from pathlib import Path

import httpx
from support_http import setup_cli, start_server

FRONT = "speapn2j3z6sqxonugui2to65knbixh4elsqtqkbhnixewo2jgpan6qd.onion"


def test_onion_location_names_the_onionbalance_front(tmp_path: Path) -> None:
    """With [source] public_url and [tor] onionbalance_front set, a clearnet page's
    Onion-Location is the same page at the front address."""
    instance = tmp_path / "instance"
    setup_cli("init", instance)
    server_tmp = tmp_path / "server-tmp"
    server_tmp.mkdir()
    server = start_server(
        instance,
        server_tmp,
        source_public_url="https://drop.example.org",
        tor_onionbalance_front=FRONT,
    )
    try:
        response = httpx.get(server.url + "/", timeout=10)
    finally:
        server.stop()
    assert response.status_code == 200
    assert response.headers["onion-location"] == f"http://{FRONT}/"
