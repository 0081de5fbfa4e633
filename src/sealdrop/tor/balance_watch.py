"""Take dead workers out of the Onionbalance front, and put them back: ``sealdrop balance --watch``.

Onionbalance 0.2.2 cannot tell a dead worker: the onion-service directories keep serving the dead
worker's last descriptor for hours, Onionbalance keeps finding it, and the front keeps listing the
dead worker's introduction points, on which some sources' tors wait and fail (design.md R41). A
descriptor says nothing about liveness, so the watcher asks each worker the way a source would:
``GET /readyz`` on the worker's own source onion, through the local tor's SOCKS port, each check
on a circuit of its own (a fresh SOCKS username), so that every check goes through the worker's
introduction points as a new source's first request does, not over an old rendezvous circuit.
``/readyz``, not ``/healthz``: a worker that answers but cannot reach its database or blob store
(its own check, every 10 s: services/readiness.py) says 503 there, and fails sources as a dead
one would.

A worker is dead after ``failures`` consecutive failed checks (one failure is often only tor
being slow) and alive again after one success. Whenever the set of live workers changes, the
watcher rewrites Onionbalance's configuration with the live workers only and sends Onionbalance
a SIGHUP, on which it reloads its configuration and publishes the front without the dead ones.
It never writes a configuration without workers: when every check fails (often this host's own
tor is the trouble, not the workers), it keeps the last configuration, which a source may still
use, and logs an error at each round.

No source data is involved: the watcher sees onion addresses and status codes only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from sealdrop.errors import ConfigError, TorError
from sealdrop.tor.front import parse_onion_address, render_onionbalance_config

log = logging.getLogger("sealdrop.balance")

# The worker's readiness: 200 only while its database and blob store answer (web/health.py).
READY_PATH = "/readyz"


@dataclass
class _Health:
    failures: int = 0
    dead: bool = False


@dataclass
class Liveness:
    """Each worker's consecutive failed checks, and whether it counts as dead."""

    workers: Sequence[str]
    failures_to_dead: int
    _health: dict[str, _Health] = field(init=False)

    def __post_init__(self) -> None:
        if self.failures_to_dead < 1:
            raise ConfigError("a worker is dead after at least one failed check")
        # Every worker starts alive: the configuration names them all until checks say otherwise.
        self._health = {w: _Health() for w in self.workers}

    def presume_dead(self, worker: str) -> None:
        """Start ``worker`` as dead: it must answer once to be counted alive."""
        self._health[worker] = _Health(failures=self.failures_to_dead, dead=True)

    def record(self, worker: str, ok: bool) -> str | None:
        """Note one check; ``"dead"`` or ``"alive"`` when the worker's state changes."""
        health = self._health[worker]
        if ok:
            health.failures = 0
            if health.dead:
                health.dead = False
                return "alive"
            return None
        health.failures += 1
        if not health.dead and health.failures >= self.failures_to_dead:
            health.dead = True
            return "dead"
        return None

    def failures(self, worker: str) -> int:
        return self._health[worker].failures

    def alive(self) -> list[str]:
        return [w for w in self.workers if not self._health[w].dead]


def check_health(address: str, socks: str, timeout: float) -> str | None:
    """None when the worker answers ``GET /readyz`` with 200 through tor, else why not."""
    # A fresh SOCKS username: tor (IsolateSOCKSAuth, its default) builds a new circuit and a new
    # introduction for it, as for a new source; the password is not checked by tor.
    proxy = f"socks5h://watch-{secrets.token_hex(8)}:x@{socks}"
    try:
        with httpx.Client(proxy=proxy, timeout=timeout, follow_redirects=False) as client:
            status = client.get(f"http://{address}{READY_PATH}").status_code
    except Exception as exc:  # whatever the network sends, the check failed
        # Broad on purpose: tor's extended SOCKS replies (0xF0-0xF7, e.g. "onion descriptor not
        # found") are not in socksio's table and raise its ProtocolError, not an httpx error.
        if type(exc).__name__ == "ProtocolError" and str(exc) == "Malformed reply":
            return (
                "tor refused the connection (an onion-service error: no descriptor, or no "
                "introduction point answered)"
            )
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None if status == 200 else f"HTTP {status}"


def pid_reloader(value: str) -> Callable[[], None]:
    """SIGHUP to Onionbalance: ``value`` is its pid, or a file holding it (read at each reload, so
    a restarted Onionbalance is found)."""

    def reload() -> None:
        text = value
        if not value.strip().isdigit():
            try:
                text = Path(value).read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as exc:
                raise TorError(f"cannot read Onionbalance's pid from {value}: {exc}") from None
        _hup(text, value)

    return reload


def unit_reloader(unit: str) -> Callable[[], None]:
    """SIGHUP to the main process of a systemd unit (Debian's ``onionbalance``). Not
    ``systemctl reload``: Debian's unit reloads with ``onionbalance reload``, which 0.2.2 refuses.
    The pid is asked of systemd at each reload and signalled directly, which needs only the
    unit's user, not the privileges of ``systemctl kill``."""

    def reload() -> None:
        try:
            shown = subprocess.run(
                ["systemctl", "show", "--property=MainPID", "--value", unit],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise TorError(f"cannot ask systemd for {unit}'s pid: {exc}") from None
        _hup(shown, f"unit {unit}")

    return reload


def _hup(text: str, source: str) -> None:
    try:
        pid = int(text.strip())
    except ValueError:
        raise TorError(f"no Onionbalance pid in {source}: {text.strip()[:40]!r}") from None
    if pid <= 1:
        raise TorError(f"{source} names no running Onionbalance (pid {pid})")
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as exc:
        raise TorError(f"cannot signal Onionbalance (pid {pid}): {exc}") from None


def configured_workers(path: Path) -> set[str]:
    """The worker addresses that a configuration written by ``sealdrop balance`` names (empty
    when there is none, or it is not one of ours)."""
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError):
        return set()
    found = set()
    for line in lines:
        head, _, value = line.strip().partition("address:")
        if head == "- " and value.strip():
            with contextlib.suppress(ConfigError):
                found.add(parse_onion_address(value))
    return found


def write_config(path: Path, text: str) -> bool:
    """Replace Onionbalance's configuration atomically (it may read it at any moment); False
    when it already says ``text``."""
    with contextlib.suppress(OSError):
        if path.read_text(encoding="ascii") == text:
            return False
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)
    return True


@dataclass
class Watcher:
    """One round: check every worker at once, then make the configuration name the live ones."""

    front: str
    workers: Sequence[str]
    config: Path
    reload: Callable[[], None]
    check: Callable[[str], str | None]
    failures_to_dead: int = 3
    liveness: Liveness = field(init=False)
    rounds: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.workers = [parse_onion_address(w) for w in self.workers]
        # Checked now, so that a typo fails at start and not at the first change.
        render_onionbalance_config(self.front, self.workers)
        self.liveness = Liveness(self.workers, self.failures_to_dead)

    def start(self) -> None:
        """Start from the configuration found: a worker it already leaves out (a restarted
        watcher had taken it out) must answer once before it is put back, so that a restart
        does not return a dead worker to the front for ``failures_to_dead`` rounds. Without a
        readable configuration, every worker is presumed alive and named."""
        named = configured_workers(self.config)
        if named:
            for worker in self.workers:
                if worker not in named:
                    self.liveness.presume_dead(worker)
                    log.info("worker %s is not in %s: added once it answers", worker, self.config)
        self._apply(self.liveness.alive() or list(self.workers))

    def round(self) -> None:
        with ThreadPoolExecutor(max_workers=len(self.workers)) as pool:
            results = list(zip(self.workers, pool.map(self._checked, self.workers), strict=True))
        self.rounds += 1
        if self.rounds == 1:
            # Once, so that the operator sees the checks work (later rounds log only changes
            # and failures).
            answering = sum(problem is None for _, problem in results)
            log.info("first round: %d of %d workers answer", answering, len(results))
        for worker, problem in results:
            change = self.liveness.record(worker, problem is None)
            if change == "dead":
                log.warning(
                    "worker %s is dead: %d checks in a row failed (last: %s); taking it out of "
                    "the front",
                    worker,
                    self.liveness.failures(worker),
                    problem,
                )
            elif change == "alive":
                log.info("worker %s answers again; putting it back into the front", worker)
            elif problem is not None:
                log.info(
                    "worker %s: check failed (%d in a row): %s",
                    worker,
                    self.liveness.failures(worker),
                    problem,
                )
        alive = self.liveness.alive()
        if not alive:
            # Never zero workers: Onionbalance would publish nothing, and the front would go
            # dark even if the workers are fine and only this host's tor is failing.
            log.error(
                "EVERY worker failed %d checks in a row: the front keeps the workers it names "
                "now. Check the workers and this host's tor (SOCKS port).",
                self.failures_to_dead,
            )
            return
        self._apply(alive)

    def _checked(self, worker: str) -> str | None:
        # A check that raises is a failed check: the watcher must outlive anything the network
        # or tor sends back.
        try:
            return self.check(worker)
        except Exception as exc:
            return f"the check itself failed: {type(exc).__name__}: {exc}"

    def _apply(self, workers: list[str]) -> None:
        text = render_onionbalance_config(self.front, workers)
        if not write_config(self.config, text):
            return
        log.info(
            "wrote %s naming %d worker(s): %s; asking Onionbalance to reload (SIGHUP)",
            self.config,
            len(workers),
            ", ".join(workers),
        )
        try:
            self.reload()
        except TorError as exc:
            log.error("Onionbalance did not get the new configuration: %s", exc)

    def run(self, interval: float, sleep: Callable[[float], None] = time.sleep) -> None:
        """Check forever, a round every ``interval`` seconds (from the start of the last)."""
        self.start()
        while True:
            began = time.monotonic()
            self.round()
            sleep(max(0.0, interval - (time.monotonic() - began)))
