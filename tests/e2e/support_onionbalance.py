"""Debian's Onionbalance on the private Tor network, and reading onion descriptors back.

Onionbalance's `--is-testnet` assumes chutney's 20 s voting interval: it derives the onion
time period (24 votes), the shared-random phase (12 votes) and the start of a shared-random run
from that number, hard-coded. The private network votes every 10 s (support_tor), so with the
stock program the front's blinded keys, and so its directories, would be those of another time
period: no client would ever find it. The runner below is Debian's onionbalance 0.2.2, unchanged
but for those four computations, given the network's interval, and the 45 s start-up delay,
given as an argument. Everything else (fetching the workers' descriptors, building and signing
the front's, HSPOST) is Onionbalance's own code.

Onionbalance's test-network intervals (onionbalance/hs_v3/params.py, `_TESTNET`): it fetches the
workers' descriptors every 20 s, counts a worker whose descriptor is older than 20 s as down,
checks whether to publish every 10 s (and at each consensus), and republishes at least every
20 s. On the real network: 10 min, 1 h, 5 min and 1 h.
"""

from __future__ import annotations

import queue
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import stem.control
from stem.descriptor.hidden_service import HiddenServiceDescriptorV3, InnerLayer
from support_tor import VOTING_INTERVAL, TorProcess

ONIONBALANCE = Path("/usr/sbin/onionbalance")
# Debian's onionbalance is a package of the system Python, not of the test virtualenv.
SYSTEM_PYTHON = "/usr/bin/python3"
START_DELAY_SECONDS = 2

RUNNER = """
import sys
voting, delay = int(sys.argv.pop(1)), int(sys.argv.pop(1))
import stem.util
from onionbalance.common import argparser
from onionbalance.hs_v3 import consensus, manager, params
Consensus = consensus.Consensus
Consensus.get_time_period_length = lambda self: 24 * voting // 60
Consensus._get_srv_phase_duration = lambda self: 12 * voting // 60
def current_run(self):
    start = stem.util.datetime_to_unix(self.consensus.valid_after)
    return int(start - (start // voting) % 24 * voting)
Consensus.get_start_time_of_current_srv_run = current_run
Consensus.get_start_time_of_previous_srv_run = (
    lambda self: self.get_start_time_of_current_srv_run() - 24 * voting
)
params.INITIAL_CALLBACK_DELAY = delay
sys.exit(manager.main(argparser.get_common_argparser().parse_args()))
"""


def start_onionbalance(config: Path, control_socket: Path, log: Path) -> subprocess.Popen[bytes]:
    """Onionbalance for the private network, talking to the tor at ``control_socket``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                SYSTEM_PYTHON,
                "-u",  # unbuffered: its log is read while it runs
                "-c",
                RUNNER,
                str(VOTING_INTERVAL),
                str(START_DELAY_SECONDS),
                "--is-testnet",
                "--socket",
                str(control_socket),
                "--config",
                str(config),
                "--verbosity",
                "info",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def fetch_descriptor(
    client: TorProcess, address: str, timeout: float = 60.0
) -> HiddenServiceDescriptorV3 | None:
    """Fetch ``address``'s descriptor afresh from a directory (HSFETCH, not tor's cache; tor
    keeps it in its cache, so its next connection uses it). Each HSFETCH asks one directory, and
    one may not have it yet (or no longer): ask again until one has, for up to ``timeout``."""
    onion = address.removesuffix(".onion")
    deadline = time.monotonic() + timeout
    found: queue.Queue[str] = queue.Queue()

    def on_content(event: stem.response.events.HSDescContentEvent) -> None:
        if event.address == onion:
            found.put(str(event.descriptor) if event.descriptor is not None else "")

    with client.controller() as controller:
        controller.add_event_listener(on_content, stem.control.EventType.HS_DESC_CONTENT)
        try:
            while time.monotonic() < deadline:
                controller.msg(f"HSFETCH {onion}")
                try:
                    text = found.get(timeout=max(0.1, min(20.0, deadline - time.monotonic())))
                except queue.Empty:
                    continue
                # A directory without it answers with an empty document (a line break or two).
                if len(text) > 5:
                    return HiddenServiceDescriptorV3.from_str(text)
                time.sleep(0.5)
            return None
        finally:
            controller.remove_event_listener(on_content)


def inner_layer(descriptor: HiddenServiceDescriptorV3, address: str) -> InnerLayer:
    """The decrypted list of introduction points (no client authorization on these onions)."""
    return descriptor.decrypt(address.removesuffix(".onion"))


def intro_keys(layer: InnerLayer) -> set[str]:
    """The introduction points, by the key their service made for each (the certified key of
    auth_key_cert, which Onionbalance keeps when it re-signs a point for the front). Not by the
    relay's onion key, as Onionbalance compares them: in a network of seven relays two workers
    often pick the same relay as an introduction point."""
    return {bytes(point.auth_key_cert.key).hex() for point in layer.introduction_points}


def union(sets: Iterable[set[str]]) -> set[str]:
    return set().union(*sets)
