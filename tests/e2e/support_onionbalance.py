"""Debian's Onionbalance on the private Tor network, and reading onion descriptors back.

Onionbalance's `--is-testnet` assumes chutney's 20 s voting interval: it derives the onion
time period (24 votes), the shared-random phase (12 votes) and the start of a shared-random run
from that number, hard-coded. The private network votes every 10 s (support_tor), so with the
stock program the front's blinded keys, and so its directories, would be those of another time
period: no client would ever find it. The runner below is Debian's onionbalance 0.2.2, unchanged
but for those four computations, given the network's interval, and two delays given as
arguments: the 45 s start-up delay (also the delay after a SIGHUP's reload) and how often it
checks whether to publish. Everything else (fetching the workers' descriptors, deciding to
publish, building and signing the front's, HSPOST) is Onionbalance's own code.

Onionbalance's test-network intervals (onionbalance/hs_v3/params.py, `_TESTNET`): it fetches the
workers' descriptors every 20 s, counts a worker whose descriptor is older than 20 s as down,
checks whether to publish every 10 s, here 2 s (and at each consensus), and republishes at least
every 20 s. On the real network: 10 min, 1 h, 5 min and 1 h. The check only decides; it uploads
when the front's introduction points changed or its descriptor is 20 s old, as with 10 s. At its
start and after a reload (SIGHUP) Onionbalance asks for the workers' descriptors and checks once
right after the start-up delay; when the answers come later than that (a busy machine), the
front waits for the next check: up to 10 s more with the stock interval, 2 s here.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import stem.control
from stem.descriptor.hidden_service import HiddenServiceDescriptorV3, InnerLayer
from support_tor import VOTING_INTERVAL, TorProcess

log = logging.getLogger(__name__)

ONIONBALANCE = Path("/usr/sbin/onionbalance")
# Debian's onionbalance is a package of the system Python, not of the test virtualenv.
SYSTEM_PYTHON = "/usr/bin/python3"
START_DELAY_SECONDS = 2
PUBLISH_CHECK_SECONDS = 2

RUNNER = """
import sys
voting, delay, check = int(sys.argv.pop(1)), int(sys.argv.pop(1)), int(sys.argv.pop(1))
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
params.PUBLISH_DESCRIPTOR_CHECK_FREQUENCY_TESTNET = check
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
                str(PUBLISH_CHECK_SECONDS),
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
    one may not have it yet (or no longer): ask again until one has, for up to ``timeout``.

    A directory answers within a second here; an HSFETCH that got no answer in 4 s is sent
    again: when every directory was asked recently, tor does not ask one again for a while and
    the HSFETCH gets no answer at all (one such wait was for 20 s, this loop's old limit, while
    the front's new descriptor had long been published). An HS_DESC FAILED event (the
    directory has no such descriptor) is an answer too: asked again a second later."""
    onion = address.removesuffix(".onion")
    deadline = time.monotonic() + timeout
    found: queue.Queue[str | None] = queue.Queue()

    def on_content(event: stem.response.events.HSDescContentEvent) -> None:
        if event.address == onion:
            found.put(str(event.descriptor) if event.descriptor is not None else "")

    def on_desc(event: stem.response.events.HSDescEvent) -> None:
        if event.address != onion:
            return
        if str(event.action) == "FAILED":
            log.info("HSFETCH %s failed at %s: %s", onion[:8], event.directory, event.reason)
            found.put(None)
        elif str(event.action) == "RECEIVED":
            log.info("HSFETCH %s answered by %s", onion[:8], event.directory)

    with client.controller() as controller:
        controller.add_event_listener(on_content, stem.control.EventType.HS_DESC_CONTENT)
        controller.add_event_listener(on_desc, stem.control.EventType.HS_DESC)
        try:
            while time.monotonic() < deadline:
                controller.msg(f"HSFETCH {onion}")
                try:
                    text = found.get(timeout=max(0.1, min(4.0, deadline - time.monotonic())))
                except queue.Empty:
                    continue
                # A directory without it answers with an empty document (a line break or two).
                if text is not None and len(text) > 5:
                    return HiddenServiceDescriptorV3.from_str(text)
                time.sleep(0.5 if text is not None else 1.0)
                while not found.empty():  # a FAILED and an empty content for one request
                    found.get_nowait()
            return None
        finally:
            controller.remove_event_listener(on_content)
            controller.remove_event_listener(on_desc)


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
