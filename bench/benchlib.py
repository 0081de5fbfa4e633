"""What the benchmarks of bench/suite.py share: the machine, instances and servers, a source's
browser reduced to HTTP, a journalist's login, memory sampling and percentiles.

Not a test helper and not part of the product: only the scripts in bench/ import it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import math
import os
import platform
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pyrage

from sealdrop.services.instance import init_instance
from sealdrop.testing import ServerProcess, sealdrop_command

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
MIB = 1024**2
GIB = 1024**3

# What a browser sends (Tor Browser's user agent, a language, the encodings it accepts), so that a
# server that compressed or negotiated would be measured as a browser sees it.
BROWSER_HEADERS = {
    "User-Agent": "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.5",
    "Accept-Encoding": "gzip, deflate, br",
}


# -- sizes and statistics ----------------------------------------------------------------------


def parse_size(text: str) -> int:
    """'256M', '1G', '1000MiB', '4GiB' or a byte count."""
    match = re.fullmatch(r"\s*(\d+)\s*([kmg]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"not a size: {text!r}")
    number, unit = match.groups()
    return int(number) * {"": 1, "k": 1024, "m": MIB, "g": GIB}[unit.lower()]


def size_label(size: int) -> str:
    if size % GIB == 0:
        return f"{size // GIB} GiB"
    if size % MIB == 0:
        return f"{size // MIB} MiB"
    return f"{size} B"


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 100 values is the 99th smallest)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(ms: list[float]) -> dict[str, float | int | None]:
    if not ms:
        return {"count": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "count": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2),
    }


# -- the machine -------------------------------------------------------------------------------


def machine(workdir: Path) -> dict[str, Any]:
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(str(workdir))
    return {
        "cpu_count_logical": os.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "cpu_model": _cpu_model(),
        "memory_total_gib": round(memory.total / GIB, 1),
        "memory_available_gib": round(memory.available / GIB, 1),
        "workdir": str(workdir),
        "workdir_filesystem": _filesystem_of(workdir),
        "workdir_free_gib": round(disk.free / GIB, 1),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _filesystem_of(path: Path) -> str:
    """'ext4 on /dev/vda (mounted at /)': the partition whose mount point holds ``path``."""
    best = None
    resolved = str(path.resolve())
    for part in psutil.disk_partitions(all=True):
        mount = part.mountpoint
        inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
        if inside and (best is None or len(mount) > len(best.mountpoint)):
            best = part
    if best is None:
        return "unknown"
    return f"{best.fstype} on {best.device} (mounted at {best.mountpoint})"


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
        ).stdout.strip()

    changed = [line[3:] for line in git("status", "--porcelain", "src").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD"), "src_changes": len(changed)}


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# -- instances and servers ---------------------------------------------------------------------


@dataclass
class Instance:
    path: Path
    identity: Any  # pyrage.x25519.Identity: the organisation key every submission goes to
    log_dir: Path

    def server(self, env: Mapping[str, str] | None = None, name: str = "server") -> ServerProcess:
        """A ``sealdrop serve`` of this instance (not started). Its temporary files go to the
        instance's own folder, on the same filesystem as its store."""
        tmp = self.path.parent / "tmp"
        tmp.mkdir(exist_ok=True)
        return ServerProcess(
            self.path,
            env={"TMPDIR": str(tmp), **(env or {})},
            log=self.log_dir / f"{self.path.parent.name}-{name}.log",
        )


def make_instance(folder: Path, log_dir: Path) -> Instance:
    """``sealdrop init`` a fresh instance in ``folder``/instance, with one organisation key."""
    folder.mkdir(parents=True, exist_ok=True)
    path = init_instance(folder / "instance")
    identity = pyrage.x25519.Identity.generate()
    subprocess.run(
        sealdrop_command("recipients", "add", path, str(identity.to_public()), "--name", "bench"),
        check=True,
        capture_output=True,
        timeout=120,
    )
    return Instance(path, identity, log_dir)


# -- a source's browser, and a journalist's login ----------------------------------------------

_CODENAME = re.compile(r'<p class="codename"[^>]*>([^<]+)</p>')


def hidden_field(page: str, name: str) -> str:
    """The value of a form's hidden token field (``form_token``, ``csrf_token``): the one scraper
    of bench/."""
    match = re.search(rf'name="{re.escape(name)}" value="([0-9a-f]+)"', page)
    if not match:
        raise RuntimeError(f"no {name} on the page")
    return match.group(1)


def codename_of(page: str) -> str:
    match = _CODENAME.search(page)
    if not match:
        raise RuntimeError("no codename on the page")
    return html.unescape(match.group(1))


@dataclass(frozen=True)
class Session:
    """A confirmed source's session: its cookie and the form token of its conversation."""

    cookie: str
    csrf: str


async def new_source(client: httpx.AsyncClient) -> Session:
    """Start and confirm a source on ``client`` (which keeps its cookies), as a browser does."""
    token = hidden_field(_ok(await client.get("/")).text, "form_token")
    started = _ok(await client.post("/start", data={"form_token": token}))
    codename = codename_of(started.text)
    csrf = hidden_field(_ok(await client.get("/confirm")).text, "csrf_token")
    done = await client.post("/confirm", data={"csrf_token": csrf, "codename": codename})
    if done.status_code != 303:
        raise RuntimeError(f"confirm answered {done.status_code}")
    page = _ok(await client.get("/conversation")).text
    return Session(client.cookies["sealdrop_session"], hidden_field(page, "csrf_token"))


def _ok(response: httpx.Response) -> httpx.Response:
    if response.status_code != 200:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: {response.status_code}"
        )
    return response


def admin_token(instance: Path, api_url: str) -> str:
    """An admin account made in the instance, logged in through the API as the reader does:
    its bearer token."""
    from sealdrop.config import load_settings
    from sealdrop.crypto import passwords
    from sealdrop.services.container import build_services

    services = build_services(load_settings(instance))
    try:
        account = services.accounts.create("bench-admin", "admin", actor="bench")
    finally:
        services.close()
    body = {
        "username": "bench-admin",
        "passphrase": account.passphrase,
        "totp": passwords.totp_code(account.totp_secret, time.time()),
    }
    answer = httpx.post(f"{api_url}/api/v1/token", json=body, timeout=60)
    answer.raise_for_status()
    return str(answer.json()["token"])


# -- memory ------------------------------------------------------------------------------------


def reset_peak_rss(pid: int) -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of a process (Linux: clear_refs 5)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def vm_hwm(pid: int) -> int | None:
    """The peak resident set size the kernel recorded for ``pid``, in bytes."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


@dataclass
class MemoryWatch:
    """Samples a process's RSS (with its children) in a thread, and reads the kernel's own peak
    (VmHWM, reset at the start) at the end: the sampled peak can miss a short spike, VmHWM
    cannot."""

    pid: int
    interval: float = 0.02
    idle: int = 0
    peak_sampled: int = 0
    peak_kernel: int | None = None
    cpu_seconds: float = 0.0
    # The same with the CPU of the children the server reaped meanwhile (the ``age`` processes
    # that encrypt each file, which write the staged file themselves): what the machine spent.
    tree_cpu_seconds: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _hwm_reset: bool = False
    _cpu_start: float = 0.0
    _tree_cpu_start: float = 0.0
    _started: float = 0.0
    seconds: float = 0.0

    def _rss(self) -> int:
        process = psutil.Process(self.pid)
        total: int = process.memory_info().rss
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return total

    def _cpu(self) -> float:
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)

    def _tree_cpu(self) -> float:
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system + times.children_user + times.children_system)

    def __enter__(self) -> MemoryWatch:
        self.idle = self._rss()
        self.peak_sampled = self.idle
        self._hwm_reset = reset_peak_rss(self.pid)
        self._cpu_start = self._cpu()
        self._tree_cpu_start = self._tree_cpu()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(psutil.Error):
                self.peak_sampled = max(self.peak_sampled, self._rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.seconds = time.monotonic() - self._started
        assert self._thread is not None
        self._thread.join()
        with contextlib.suppress(psutil.Error):
            self.peak_sampled = max(self.peak_sampled, self._rss())
            self.cpu_seconds = self._cpu() - self._cpu_start
            self.tree_cpu_seconds = self._tree_cpu() - self._tree_cpu_start
        self.peak_kernel = vm_hwm(self.pid) if self._hwm_reset else None

    @property
    def peak(self) -> int:
        return max(self.peak_sampled, self.peak_kernel or 0)

    def report(self) -> dict[str, Any]:
        return {
            "idle_rss_mib": round(self.idle / MIB, 1),
            "peak_rss_mib": round(self.peak / MIB, 1),
            "peak_rss_sampled_mib": round(self.peak_sampled / MIB, 1),
            "peak_rss_vmhwm_mib": (
                None if self.peak_kernel is None else round(self.peak_kernel / MIB, 1)
            ),
            "rss_growth_mib": round((self.peak - self.idle) / MIB, 1),
            "server_cpu_seconds": round(self.cpu_seconds, 2),
            "server_and_children_cpu_seconds": round(self.tree_cpu_seconds, 2),
            # Of one core: above 100 the server ran on more than one core at once.
            "server_cpu_percent": round(100 * self.cpu_seconds / self.seconds, 1)
            if self.seconds
            else 0.0,
        }


@contextlib.contextmanager
def system_cpu() -> Iterator[dict[str, float]]:
    """The whole machine's CPU use (percent of all cores) over the block, and the load average
    after it: how busy the machine was with this run and with everything else."""
    out: dict[str, float] = {}
    psutil.cpu_percent(None)
    started = time.monotonic()
    try:
        yield out
    finally:
        out["seconds"] = round(time.monotonic() - started, 1)
        out["machine_cpu_percent"] = psutil.cpu_percent(None)
        out["load_average_1min"] = round(os.getloadavg()[0], 2)
