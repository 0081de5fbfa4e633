"""A private Tor network on 127.0.0.1 for end-to-end tests: three directory authorities, four
relays, client tors with a SOCKS port, and a launcher for the tests' own onion-service tors.

Nothing here talks to the real Tor network: every process gets `TestingTorNetwork 1` and our own
`DirAuthority` lines, and every address is 127.0.0.1. Measured facts this builds on are in
/work/shared/notes/private-tor-network.md (timings, options that matter, pitfalls)."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import stem.connection
import stem.control
import stem.response.events

from sealdrop.testing import free_port

log = logging.getLogger(__name__)

TOR = Path("/usr/sbin/tor")
TOR_GENCERT = Path("/usr/bin/tor-gencert")

# The network's voting cycle: a fresh consensus every 10 s, so a test never waits long for one.
VOTING_INTERVAL = 10
AUTHORITIES = 3
RELAYS = 4
# Set SEALDROP_TEST_TOR_LOG=info (or debug) to have every tor also write ROOT/NAME.info.log.
DEBUG_LOG_LEVEL = os.environ.get("SEALDROP_TEST_TOR_LOG", "")

# Tor's SOCKS5 extended error codes (SocksPort flag ExtendedErrors), the ones onion tests meet.
SOCKS_ONION_DESCRIPTOR_NOT_FOUND = 0xF0
SOCKS_ONION_INTRO_FAILED = 0xF2
SOCKS_ONION_REND_FAILED = 0xF3
SOCKS_ONION_MISSING_CLIENT_AUTH = 0xF4
SOCKS_ONION_BAD_CLIENT_AUTH = 0xF5
SOCKS_ONION_INTRO_TIMED_OUT = 0xF7


class TorNetworkError(RuntimeError):
    """The private network (or one of its tors) did not come up; the message has the logs."""


def tor_is_installed() -> bool:
    return os.access(TOR, os.X_OK) and os.access(TOR_GENCERT, os.X_OK)


def empty_file(folder: Path) -> Path:
    """An empty torrc: tor cannot read /dev/null as one, and without an explicit (empty)
    --defaults-torrc a distribution's defaults file could sneak options in."""
    path = folder / "empty.torrc"
    path.touch()
    return path


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, logs: Iterable[Path] = ()
) -> None:
    """Poll `condition` until it holds; on timeout raise TorNetworkError with the logs' tails.
    How long each wait took is logged (pytest shows it with a failure, or --log-cli-level=INFO)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() > start + timeout:
            raise TorNetworkError(
                f"timed out after {timeout:.0f} s waiting for {what}\n"
                + "\n".join(f"--- {log} ---\n{tail(log)}" for log in logs)
            )
        time.sleep(0.2)
    log.info("%.1f s waiting for %s", time.monotonic() - start, what)


class Phases:
    """Logs how long each phase of a long test took, to find what it waits for: call it with
    what was just done (pytest shows the lines with a failure, or with --log-cli-level=INFO)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.start = self.last = time.monotonic()

    def __call__(self, done: str) -> None:
        now = time.monotonic()
        log.info(
            "%s: %.1f s %s (%.1f s in all)", self.name, now - self.last, done, now - self.start
        )
        self.last = now


class TorProcess:
    """One tor, run from a torrc file, its stdout (notice log) in `log`.

    About control connections: the torrc names this pytest process as
    `__OwningControllerProcess`, and stem's Controller then sends TAKEOWNERSHIP on every
    connection it authenticates from this process while that option is set; tor exits when an
    owning connection closes. So the first controller is kept open for the tor's whole life as
    *the* owner (tor also exits ~2 s after pytest dies, sooner than the pid check), which resets
    the option, and every later controller() is an ordinary one that may be closed freely.
    A reload re-reads the torrc, which sets the option again: use reload(), not a bare SIGHUP.
    """

    def __init__(
        self, name: str, torrc: Path, log: Path, control_socket: Path | None = None
    ) -> None:
        self.name, self.torrc, self.log = name, torrc, log
        self.control_socket = control_socket
        self._owner: stem.control.Controller | None = None
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                [str(TOR), "--defaults-torrc", str(empty_file(torrc.parent)), "-f", str(torrc)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def check_running(self) -> None:
        if not self.running():
            raise TorNetworkError(
                f"tor {self.name} exited with status {self.popen.returncode}\n"
                f"--- {self.log} ---\n{tail(self.log)}"
            )

    def _connect(self) -> stem.control.Controller:
        if self.control_socket is None:
            raise RuntimeError(f"tor {self.name} was launched without a control socket")
        controller = stem.control.Controller.from_socket_file(str(self.control_socket))
        try:
            controller.authenticate()  # cookie auth: stem reads the cookie path via PROTOCOLINFO
        except BaseException:
            controller.close()
            raise
        return controller

    def wait_for_control(self, timeout: float = 30.0) -> None:
        """Wait until the control socket accepts (and open the owning connection)."""

        def accepting() -> bool:
            self.check_running()
            try:
                self.owner()
            except (stem.SocketError, stem.connection.AuthenticationFailure):
                return False  # not listening yet, or the cookie file not yet written
            return True

        wait_for(accepting, timeout, f"the control socket of tor {self.name}", [self.log])

    def owner(self) -> stem.control.Controller:
        """The owning control connection (opened on first use, closed by stop(): do not close
        it yourself, tor would exit)."""
        if self._owner is None or not self._owner.is_alive():
            self._owner = self._connect()
        return self._owner

    def controller(self) -> stem.control.Controller:
        """A new authenticated controller (the caller closes it)."""
        self.owner()
        return self._connect()

    def reload(self) -> None:
        """SIGNAL RELOAD (what SIGHUP does): tor re-reads its torrc and onion-service keys."""
        owner = self.owner()
        owner.signal(stem.Signal.RELOAD)
        # The torrc's __OwningControllerProcess is back once the reload is done (at once, as
        # measured; polled to be sure): unset it again, see the class docstring.
        wait_for(
            lambda: owner.get_conf("__OwningControllerProcess") is not None,
            5.0,
            f"tor {self.name} to reload",
            [self.log],
        )
        owner.reset_conf("__OwningControllerProcess")

    def signal(self, signum: int) -> None:
        if self.running():
            self.popen.send_signal(signum)

    def _close_owner(self) -> None:
        if self._owner is not None:
            self._owner.close()
            self._owner = None

    def stop(self) -> None:
        stop_all([self])

    def kill(self) -> None:
        """SIGKILL: a crash, no clean shutdown (what stop() does too, see stop_all)."""
        stop_all([self])


def stop_all(processes: Iterable[TorProcess]) -> None:
    """SIGKILL every process at once. A clean shutdown (SIGTERM) buys nothing for a test tor,
    whose data directory is thrown away, and tor 0.4.9.11 sometimes deadlocks on SIGTERM (the
    note's pitfalls: 3 of ~45 stops): the grace then cost 10 s of every such stop, 16 s in one
    run's last teardown. A test that means a crash calls kill() all the same."""
    processes = list(processes)
    for process in processes:
        if process.running():
            process.popen.kill()
    for process in processes:
        process.popen.wait()
        process._close_owner()


@dataclass(frozen=True)
class Authority:
    name: str
    or_port: int
    dir_port: int
    v3ident: str  # the v3 identity key's fingerprint, from tor-gencert's certificate
    fingerprint: str  # the relay identity fingerprint, from tor --list-fingerprint

    def dir_authority_line(self) -> str:
        return (
            f"DirAuthority {self.name} orport={self.or_port} v3ident={self.v3ident} "
            f"127.0.0.1:{self.dir_port} {self.fingerprint}"
        )


def _private_dir(path: Path) -> Path:
    # tor refuses data directories (and control socket folders) that others can read.
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


class TorClient:
    """A client tor: a SOCKS port on 127.0.0.1 and a cookie-authenticated control socket."""

    def __init__(self, name: str, process: TorProcess) -> None:
        self.name = name
        self.process = process
        self.socks_port = 0  # known once tor has bound it (SocksPort auto)

    def socks_url(self, isolation: str = "") -> str:
        """A socks5h URL (the proxy resolves .onion names). With IsolateSOCKSAuth (tor's
        default), each distinct `isolation` becomes its own SOCKS username, so its own circuit."""
        if not isolation:
            return f"socks5h://127.0.0.1:{self.socks_port}"
        return f"socks5h://{quote(isolation, safe='')}:x@127.0.0.1:{self.socks_port}"

    def controller(self) -> stem.control.Controller:
        """An authenticated controller (the caller closes it)."""
        return self.process.controller()

    def stop(self) -> None:
        self.process.stop()


class PrivateTorNetwork:
    """Three directory authorities and four relays on 127.0.0.1, plus the client and onion tors
    the tests start on it. `root` must be short: unix socket paths must stay under 100 bytes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.authorities: list[Authority] = []
        self.processes: list[TorProcess] = []
        self.clients: list[TorClient] = []
        # When pytest dies, tor notices its owner is gone and exits (after ~12 s).
        self.owner_pid = os.getpid()
        self._starting: threading.Thread | None = None
        self._start_error: BaseException | None = None

    # --- torrc pieces -----------------------------------------------------------------------

    def _common_lines(self) -> list[str]:
        """What every tor of this network needs: the test-network switch, our authorities, and
        the options that save seconds (no GeoIP files) or matter (congestion control)."""
        return [
            "TestingTorNetwork 1",  # must come before other Testing* options
            *(authority.dir_authority_line() for authority in self.authorities),
            'GeoIPFile ""',
            'GeoIPv6File ""',
            "ConsensusParams cc_alg=2",
        ]

    def _client_lines(self) -> list[str]:
        """Extra lines for tors that only build circuits (clients, onion hosts): fetch directory
        data from the authorities (they are the guards), and do not wait for most of a network
        this small before building circuits."""
        entry_nodes = ",".join(authority.fingerprint for authority in self.authorities)
        return [f"EntryNodes {entry_nodes}", "PathsNeededToBuildCircuits 0.67"]

    def torrc_for_onion_host(self) -> str:
        """The lines another tor (e.g. Sealdrop's managed tor, which writes its own DataDirectory,
        ControlSocket, SocksPort 0 and HiddenService* lines) adds to host onion services on this
        network (once the network is up)."""
        self.ready()
        if not self.authorities:
            raise RuntimeError("start() the network first")
        return "\n".join([*self._common_lines(), *self._client_lines()]) + "\n"

    def launch(self, name: str, torrc: str, control_socket: Path | None = None) -> TorProcess:
        """Run a tor from `torrc` (written to ROOT/NAME.torrc; stdout to ROOT/NAME.log), owned
        by this pytest process and stopped by stop(). The caller's torrc sets DataDirectory
        (and the ControlSocket given as `control_socket`, for TorProcess.controller())."""
        path = self.root / f"{name}.torrc"
        lines = torrc.rstrip() + "\n"
        if "__OwningControllerProcess" not in torrc:
            lines += f"__OwningControllerProcess {self.owner_pid}\n"
        if DEBUG_LOG_LEVEL:  # e.g. SEALDROP_TEST_TOR_LOG=info: a second, detailed log
            lines += f"Log {DEBUG_LOG_LEVEL} file {self.root / f'{name}.{DEBUG_LOG_LEVEL}.log'}\n"
        path.write_text(lines)
        process = TorProcess(name, path, self.root / f"{name}.log", control_socket)
        self.processes.append(process)
        return process

    def _node_torrc(self, name: str, *extra: str) -> str:
        data = _private_dir(self.root / name)
        return "\n".join(
            [
                f"DataDirectory {data}",
                "Log notice stdout",
                "SafeLogging 0",  # the logs are for debugging a test network
                "ShutdownWaitLength 0",
                *self._common_lines(),
                *extra,
            ]
        )

    # --- start/stop -------------------------------------------------------------------------

    def _make_authority(self, index: int) -> Authority:
        name = f"a{index}"
        data = _private_dir(self.root / name)
        keys = _private_dir(data / "keys")
        or_port, dir_port = free_port(), free_port()
        subprocess.run(
            [
                str(TOR_GENCERT),
                "--create-identity-key",
                "--passphrase-fd",
                "0",
                "-m",
                "12",
                "-a",
                f"127.0.0.1:{dir_port}",
                "-i",
                str(keys / "authority_identity_key"),
                "-s",
                str(keys / "authority_signing_key"),
                "-c",
                str(keys / "authority_certificate"),
            ],
            input=b"\n",  # an empty passphrase
            check=True,
            capture_output=True,
            timeout=60,
        )
        certificate = (keys / "authority_certificate").read_text()
        v3ident = next(
            line.split()[1] for line in certificate.splitlines() if line.startswith("fingerprint ")
        )
        # Creates the relay identity key in DATA/keys and prints "NAME FINGERPRINT IN GROUPS".
        listed = subprocess.run(
            [
                str(TOR),
                "--defaults-torrc",
                str(empty_file(self.root)),
                "-f",
                str(empty_file(self.root)),
                "--quiet",
                "--list-fingerprint",
                "--DataDirectory",
                str(data),
                "--ORPort",
                str(or_port),
                "--Nickname",
                name,
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        fingerprint = "".join(listed.split()[1:])
        if len(fingerprint) != 40:
            raise TorNetworkError(f"unexpected tor --list-fingerprint output: {listed!r}")
        return Authority(name, or_port, dir_port, v3ident, fingerprint)

    def start(self, timeout: float = 120.0) -> None:
        """Start the authorities and relays; return once a consensus lists all seven as Running
        (clients and onion hosts started before that back off and come up much later)."""
        self.root.mkdir(parents=True, exist_ok=True)
        # Their keys side by side (tor-gencert and tor --list-fingerprint are processes).
        with ThreadPoolExecutor(AUTHORITIES) as pool:
            self.authorities = list(pool.map(self._make_authority, range(AUTHORITIES)))
        # The first vote lands ~7 s after launch (valid-after minus the 2 s vote and 2 s
        # distribution delays): the relays' and authorities' descriptors must reach every
        # authority before it, or the first consensus lacks them and the network is ready only a
        # voting interval (10 s) later. At ~4 s after launch they did on a quiet machine (8 s to
        # the full consensus), not on a busy one (four starts in a row took 18 s: descriptors
        # arrived in the very second of the vote).
        offset = int(time.time() + 11) % VOTING_INTERVAL
        for authority in self.authorities:
            torrc = self._node_torrc(
                authority.name,
                f"Nickname {authority.name}",
                "SocksPort 0",  # else 9050, taken by the first of them
                "AuthoritativeDirectory 1",
                "V3AuthoritativeDirectory 1",
                "ContactInfo sealdrop-tests@127.0.0.1",
                f"ORPort 127.0.0.1:{authority.or_port}",
                f"DirPort 127.0.0.1:{authority.dir_port}",
                "Address 127.0.0.1",
                "AssumeReachable 1",  # lists every connected relay as Running at once
                "ExitPolicy reject *:*",
                f"TestingV3AuthInitialVotingInterval {VOTING_INTERVAL}",
                "TestingV3AuthInitialVoteDelay 2",
                "TestingV3AuthInitialDistDelay 2",
                f"V3AuthVotingInterval {VOTING_INTERVAL}",
                "V3AuthVoteDelay 2",
                "V3AuthDistDelay 2",
                f"TestingV3AuthVotingStartOffset {offset}",
                # Every relay may be a guard and an onion-service directory from the start (the
                # real thresholds need hours of uptime).
                "TestingDirAuthVoteGuard *",
                "TestingDirAuthVoteHSDir *",
            )
            self.launch(authority.name, torrc)
        for index in range(RELAYS):
            name = f"r{index}"
            torrc = self._node_torrc(
                name,
                f"Nickname {name}",
                "SocksPort 0",
                f"ORPort 127.0.0.1:{free_port()}",
                "Address 127.0.0.1",
                "AssumeReachable 1",  # without it the first onion request took 38 s (the note)
                "ExitPolicy reject *:*",  # only onion services here: no exits needed
            )
            self.launch(name, torrc)

        def lists_everyone(consensus: Path) -> bool:
            try:
                text = consensus.read_text()
            except FileNotFoundError:
                return False
            flags = [line for line in text.splitlines() if line.startswith("s ")]
            usable = [line for line in flags if " Running" in line and " HSDir" in line]
            return len(usable) >= AUTHORITIES + RELAYS

        def full_consensus() -> bool:
            for process in self.processes:
                process.check_running()
            # Every authority, not just one: a client bootstrapping from one still serving an
            # older, partial consensus took 17 s instead of 1 to bootstrap.
            return all(
                lists_everyone(self.root / a.name / "cached-microdesc-consensus")
                for a in self.authorities
            )

        def bootstrapped(process: TorProcess) -> bool:
            return "Bootstrapped 100%" in process.log.read_text(errors="replace")

        def relays_bootstrapped() -> bool:
            # Until every relay (and authority) has bootstrapped, a client's first circuits
            # through them failed, and its own bootstrap stayed at 95% for 25-28 s (three of four
            # starts on a busy machine).
            return all(bootstrapped(process) for process in nodes)

        nodes = list(self.processes)  # the authorities, then the relays
        logs = [p.log for p in self.processes]
        wait_for(
            full_consensus,
            timeout,
            f"a consensus listing {AUTHORITIES + RELAYS} running relays",
            logs,
        )
        # Each relay asked for a consensus while there was none, and backs off after each "404
        # not yet": the last one bootstrapped 5-27 s after the first consensus (the microdesc
        # flavour it builds circuits from came last). A reload (SIGHUP: relays have no control
        # connection to own them) makes it fetch at once: 1-4 s in four of five starts.
        for process in nodes[AUTHORITIES:]:
            if not bootstrapped(process):
                process.signal(signal.SIGHUP)
        wait_for(relays_bootstrapped, timeout, "every relay and authority to bootstrap", logs)

    def start_client(self, name: str, client_auth_dir: Path | None = None) -> TorClient:
        """A client tor with a SOCKS port (ExtendedErrors: onion failures get tor's own reply
        codes) and a control socket; returns once it has bootstrapped to 100%."""
        return self.start_clients((name, client_auth_dir))[0]

    def start_clients(self, *clients: tuple[str, Path | None]) -> list[TorClient]:
        """Client tors as start_client() makes them, (name, client_auth_dir) each, launched at
        once so that they bootstrap side by side (1-2 s each, mostly waiting)."""
        self.ready()
        launched = [self._launch_client(name, auth_dir) for name, auth_dir in clients]
        for client in launched:
            wait_for_bootstrap(client.process, 60.0)
            with client.controller() as controller:
                listener = controller.get_info("net/listeners/socks").strip('"')
            client.socks_port = int(listener.rsplit(":", 1)[1])
        return launched

    def _launch_client(self, name: str, client_auth_dir: Path | None) -> TorClient:
        data = _private_dir(self.root / f"c-{name}")
        control_socket = data / "control"
        lines = [
            # auto: tor picks a free port itself, read back once it has bootstrapped (no race).
            "SocksPort 127.0.0.1:auto ExtendedErrors",
            f"ControlSocket {control_socket}",
            "CookieAuthentication 1",
            *self._client_lines(),
        ]
        if client_auth_dir is not None:
            lines.append(f"ClientOnionAuthDir {client_auth_dir}")
        process = self.launch(f"c-{name}", self._node_torrc(f"c-{name}", *lines), control_socket)
        client = TorClient(name, process)
        self.clients.append(client)
        return client

    def start_in_background(self) -> None:
        """start() in a thread: ~15-30 s, mostly waiting for the first votes and the relays'
        bootstrap, which a test's own preparation (an instance, accounts, keys) can overlap.
        torrc_for_onion_host() and start_clients() wait for it (ready())."""

        def run() -> None:
            try:
                self.start()
            except BaseException as exc:  # re-raised by ready(), in the test that needs it
                self._start_error = exc

        self._starting = threading.Thread(target=run, name="tor-network-start", daemon=True)
        self._starting.start()

    def ready(self) -> None:
        """Wait for start_in_background() to finish; raise what it raised."""
        if self._starting is not None:
            self._starting.join()
        if self._start_error is not None:
            raise TorNetworkError("the private Tor network did not start") from self._start_error

    def stop(self) -> None:
        """Stop every tor this network started (clients and onion hosts first: they would
        otherwise log about vanished relays); safe to call twice."""
        if self._starting is not None:
            self._starting.join()  # no tor may be launched after this stops them
        stop_all(reversed(self.processes))


def wait_for_bootstrap(process: TorProcess, timeout: float) -> None:
    """Wait until `process` (launched with a control socket) reports PROGRESS=100."""
    process.wait_for_control()

    def bootstrapped() -> bool:
        process.check_running()
        return "PROGRESS=100" in process.owner().get_info("status/bootstrap-phase")

    wait_for(bootstrapped, timeout, f"tor {process.name} to bootstrap", [process.log])


def wait_for_file(path: Path, timeout: float, process: TorProcess) -> str:
    """The text of a file tor writes after it started (an onion service's hostname file)."""

    def present() -> bool:
        process.check_running()
        return path.exists() and path.stat().st_size > 0

    wait_for(present, timeout, str(path), [process.log])
    return path.read_text().strip()


@dataclass(frozen=True)
class DescriptorEvent:
    action: str  # UPLOAD (started), UPLOADED, FAILED; CREATED when a descriptor is built
    address: str  # the onion address without .onion
    reason: str  # why a FAILED failed (UPLOAD_REJECTED: the directory refused it)
    at: float  # time.monotonic()


class DescriptorUploads:
    """An onion-service tor's HS_DESC events, to know when a (re)published descriptor is on the
    onion-service directories. A client that asks before then gets "descriptor not found"
    (0xF0), and tor then avoids re-asking those directories for a while."""

    def __init__(self, process: TorProcess) -> None:
        self.process = process
        self._lock = threading.Lock()
        self.events: list[DescriptorEvent] = []
        # On the owning connection: it lives as long as the tor, so no event is missed later.
        # Subscribe right after launch: the first upload comes seconds later, after bootstrap.
        process.wait_for_control()
        process.owner().add_event_listener(self._on_event, stem.control.EventType.HS_DESC)

    def _on_event(self, event: stem.response.events.HSDescEvent) -> None:
        record = DescriptorEvent(
            str(event.action), str(event.address), str(event.reason or ""), time.monotonic()
        )
        with self._lock:
            self.events.append(record)

    def mark(self) -> int:
        """A position in the event list; wait(since=mark) ignores what came before."""
        with self._lock:
            return len(self.events)

    def wait(self, address: str, since: int = 0, timeout: float = 60.0) -> None:
        """Wait until, after `since`, every upload of `address`'s descriptors that started has
        finished, at least one accepted; raise TorNetworkError if every one was refused."""
        address = address.removesuffix(".onion")

        def published() -> bool:
            self.process.check_running()
            with self._lock:
                events = [e for e in self.events[since:] if e.address == address]
            actions = [e.action for e in events]
            started, accepted = actions.count("UPLOAD"), actions.count("UPLOADED")
            if started == 0 or accepted + actions.count("FAILED") < started:
                return False
            if accepted == 0:
                reasons = sorted({e.reason for e in events if e.action == "FAILED"})
                raise TorNetworkError(
                    f"every onion-service directory refused the descriptor of {address}.onion "
                    f"({', '.join(reasons)}); tor will not retry for an hour or more"
                )
            return True

        wait_for(
            published,
            timeout,
            f"the descriptor of {address}.onion to be uploaded",
            [self.process.log],
        )

    def reload_and_wait(self, address: str, timeout: float = 30.0) -> None:
        """SIGNAL RELOAD the tor (e.g. after authorized_clients/ changed) and wait until it has
        republished `address`'s descriptors.

        A descriptor's revision counter counts whole seconds: republished within the second
        of the previous upload it equals the old one, every directory refuses it (400, "Invalid
        HS descriptor"), and tor retries only at its next scheduled upload, an hour or more
        later. So this waits until a new second has begun since the last upload event."""
        with self._lock:
            last = max((e.at for e in self.events if e.action == "UPLOADED"), default=0.0)
        time.sleep(max(0.0, last + 1.1 - time.monotonic()))
        mark = self.mark()
        self.process.reload()
        self.wait(address, since=mark, timeout=timeout)


# Onion-service "time periods" (each has its own blinded key, descriptor and directory
# positions) last 24 h on the real network; with TestingTorNetwork one lasts one shared-random
# protocol run, 24 votes = 4 min here, and starts 2 min (12 votes) past a multiple of 4 min
# since the epoch. At each change clients need the new period's descriptor: whatever they had
# cached stops mattering.
TIME_PERIOD_SECONDS = 24 * VOTING_INTERVAL
TIME_PERIOD_OFFSET_SECONDS = 12 * VOTING_INTERVAL


def seconds_until_time_period_change(now: float | None = None) -> float:
    """Seconds left in the current onion-service time period of this network."""
    now = time.time() if now is None else now
    elapsed = (now - TIME_PERIOD_OFFSET_SECONDS) % TIME_PERIOD_SECONDS
    return TIME_PERIOD_SECONDS - elapsed


def stay_within_one_time_period(seconds: float) -> None:
    """Sleep into the next time period (plus a margin for the switch) unless the current one
    lasts `seconds` more: for steps that rely on a client's cached descriptor."""
    left = seconds_until_time_period_change()
    if left < seconds:
        log.info("sleeping %.0f s into the next onion-service time period", left + 5.0)
        time.sleep(left + 5.0)


# --- a minimal SOCKS5 client: httpx hides tor's extended reply codes behind generic errors ---


class SocksError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"SOCKS5 reply 0x{code:02X}")
        self.code = code


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("SOCKS server closed the connection")
        data += chunk
    return data


def socks5_connect(
    socks_port: int, host: str, port: int, isolation: str = "", timeout: float = 60.0
) -> socket.socket:
    """A TCP stream to host:port through tor's SOCKS port (the name resolved by tor); each
    distinct `isolation` is a SOCKS username, so a circuit of its own. Raises SocksError."""
    sock = socket.create_connection(("127.0.0.1", socks_port), timeout=timeout)
    try:
        if isolation:
            sock.sendall(b"\x05\x01\x02")  # offer username/password only
            if _read_exactly(sock, 2) != b"\x05\x02":
                raise ConnectionError("tor refused username/password authentication")
            user = isolation.encode()
            sock.sendall(b"\x01" + bytes([len(user)]) + user + b"\x01x")
            if _read_exactly(sock, 2)[1] != 0:
                raise ConnectionError("tor rejected the SOCKS credentials")
        else:
            sock.sendall(b"\x05\x01\x00")
            if _read_exactly(sock, 2) != b"\x05\x00":
                raise ConnectionError("tor refused the no-authentication method")
        name = host.encode()
        sock.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack(">H", port))
        version, code, _, address_type = _read_exactly(sock, 4)
        # The bound address that follows: IPv4, domain name or IPv6, then the port.
        if address_type == 1:
            _read_exactly(sock, 4 + 2)
        elif address_type == 4:
            _read_exactly(sock, 16 + 2)
        else:
            _read_exactly(sock, _read_exactly(sock, 1)[0] + 2)
        if version != 5 or code != 0:
            raise SocksError(code)
    except BaseException:
        sock.close()
        raise
    return sock


CONNECTED = "connected"
NO_ANSWER = "no answer"
SOCKS_GENERAL_FAILURE = 0x01


def refusal(code: int) -> str:
    """How attempt_connection() reports a SOCKS refusal, e.g. "SOCKS 0xF5"."""
    return f"SOCKS 0x{code:02X}"


MISSING_KEY = refusal(SOCKS_ONION_MISSING_CLIENT_AUTH)
WRONG_KEY = refusal(SOCKS_ONION_BAD_CLIENT_AUTH)


def attempt_connection(
    client: TorClient,
    host: str,
    port: int,
    isolation: str,
    timeout: float = 60.0,
    use: Callable[[socket.socket], object] = lambda sock: None,
) -> str:
    """What a connection attempt through the client's SOCKS port came to: CONNECTED (once
    `use` has run on the stream), "SOCKS 0xF5"-style refusals, or NO_ANSWER within `timeout`
    (tor still trying).

    A general failure (0x01) is tor giving up on one circuit, which in so small a network
    happens now and then (a path through the same relay twice is refused; seen in a CI
    rehearsal for a client that was authorized): it says nothing about client authorization,
    whose answers are 0xF4/0xF5, so the attempt is made again, twice at most."""
    outcome = NO_ANSWER
    for _ in range(3):
        try:
            with socks5_connect(client.socks_port, host, port, isolation, timeout) as sock:
                use(sock)
        except SocksError as refused:
            outcome = refusal(refused.code)
            if refused.code == SOCKS_GENERAL_FAILURE:
                time.sleep(1.0)
                continue
            return outcome
        except TimeoutError:
            return NO_ANSWER
        return CONNECTED
    return outcome


# --- v3 onion client authorization keys -----------------------------------------------------


def onion_auth_base32(raw: bytes) -> str:
    """Tor's encoding of x25519 keys in .auth / .auth_private files: base32, no padding."""
    return base64.b32encode(raw).decode().rstrip("=").upper()


def remove_tree(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)
