"""Benchmarks 3 and 4: many source sessions at once, and a flood of wrong-codename logins.

Both use one instance and one population of confirmed sources, made first over HTTP like a
browser makes them (``/start``, ``/confirm``: two Argon2id derivations each). Making hundreds of
sources within a minute is beyond the instance's login limits (``logins.per_minute`` 60,
``logins.max_in_flight`` 8), so the population is made by a server started with those two limits
raised; that server is then stopped and both benchmarks run against a server with the instance's
default settings. Sessions live in the database, so they survive the restart.

3. Sessions: every session loops over what a source does between two visits (read the
   conversation, think, send a short message, get the "received" page, think, go to the home
   page, think), with a think time drawn uniformly from ``think`` seconds, for ``seconds`` seconds
   after a warm-up. The latency of each request (none of them runs the KDF) is recorded by route.
4. Flood: ``attackers`` browsers each fetch the login form (their own form cookie: a flood drops
   cookies to dodge the per-visitor limit) and then post a wrong codename, all at once; the next
   wave starts when all are answered (at most one wave a second), for ``seconds`` seconds.
   Meanwhile probes, in a process of their own (so that the flood's client work cannot delay
   them), read the home page and conversations of existing sessions; their latency is compared
   with the same probes before the flood. The server's RSS is sampled throughout and its
   kernel peak (VmHWM) read at the end. Before the flood: a control, the same waves with a bad
   form token (refused before the KDF: the same burst of requests without the KDF), whose probe
   latency is reported beside the flood's; then one wave of the flood that is not measured (the
   first logins start worker threads, load the word list). The RSS growth of the flood over the
   server after them is what the KDF adds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from benchlib import (
    MIB,
    Instance,
    MemoryWatch,
    Session,
    hidden_field,
    latency_summary,
    make_instance,
    new_source,
)

from sealdrop.config import load_settings
from sealdrop.crypto import codenames
from sealdrop.crypto.derive import ARGON2_MEMORY_KIB
from sealdrop.testing import ServerProcess

# What one derivation holds: the KDF's own memory cost.
KDF_MIB = ARGON2_MEMORY_KIB // 1024
SETUP_ENV = {"SEALDROP_LOGINS_PER_MINUTE": "1000000", "SEALDROP_LOGINS_MAX_IN_FLIGHT": "1000"}


_TLS: ssl.SSLContext | None = None


def _client(url: str, cookies: dict[str, str] | None = None) -> httpx.AsyncClient:
    global _TLS
    if _TLS is None:
        # One context for every client (plain HTTP here, but httpx makes one per client, and
        # loading the CA bundle each time would cost milliseconds of the measuring loop).
        _TLS = ssl.create_default_context()
    return httpx.AsyncClient(
        base_url=url,
        cookies=cookies,
        verify=_TLS,
        timeout=120,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


# -- the population ----------------------------------------------------------------------------


async def _populate(url: str, count: int, parallel: int) -> list[Session]:
    gate = asyncio.Semaphore(parallel)
    made = 0

    async def one() -> Session:
        nonlocal made
        async with gate, _client(url) as client:
            session = await new_source(client)
            made += 1
            if made % max(1, count // 5) == 0:
                print(f"  sources made: {made}/{count}", flush=True)
            return session

    return list(await asyncio.gather(*(one() for _ in range(count))))


def populate(instance: Instance, count: int) -> tuple[list[Session], dict[str, Any]]:
    server = instance.server(SETUP_ENV, name="setup").start()
    started = time.perf_counter()
    try:
        sessions = asyncio.run(_populate(server.url, count, parallel=16))
    finally:
        server.stop()
    info = {
        "sources": count,
        "seconds": round(time.perf_counter() - started, 1),
        "setup_settings": SETUP_ENV,
        "note": (
            "sources made by a server with logins.per_minute and logins.max_in_flight raised "
            "(each costs two Argon2id); the benchmarks then ran on a server with the defaults"
        ),
    }
    return sessions, info


# -- recording ---------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.samples: list[tuple[str, int, float]] = []
        self.on = True

    async def timed(self, route: str, call: Awaitable[httpx.Response]) -> httpx.Response:
        started = time.perf_counter()
        response = await call
        if self.on:
            self.samples.append(
                (route, response.status_code, (time.perf_counter() - started) * 1e3)
            )
        return response

    def summary(self) -> dict[str, Any]:
        by_route: dict[str, list[float]] = {}
        for route, _, ms in self.samples:
            by_route.setdefault(route, []).append(ms)
        statuses = Counter(f"{route} {status}" for route, status, _ in self.samples)
        return {
            "all": latency_summary([ms for _, _, ms in self.samples]),
            "by_route": {route: latency_summary(ms) for route, ms in sorted(by_route.items())},
            "statuses": dict(sorted(statuses.items())),
        }


async def _loop_lag(stop: asyncio.Event, lags: list[float]) -> None:
    """How late this (client) event loop wakes up: if the client itself is overloaded, the
    latencies it measures are inflated by about this much."""
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append((time.perf_counter() - started - 0.01) * 1e3)


# -- 3: sessions -------------------------------------------------------------------------------


async def _browse(
    url: str,
    sessions: list[Session],
    seconds: float,
    warmup: float,
    think: tuple[float, float],
    message: str,
) -> dict[str, Any]:
    rec = Recorder()
    rec.on = False
    stop_at = time.monotonic() + warmup + seconds
    clients = [_client(url, {"sealdrop_session": s.cookie}) for s in sessions]

    async def source(client: httpx.AsyncClient, csrf: str) -> None:
        await asyncio.sleep(random.uniform(0, think[1]))  # staggered arrivals
        while time.monotonic() < stop_at:
            await rec.timed("GET /conversation", client.get("/conversation"))
            await asyncio.sleep(random.uniform(*think))
            if time.monotonic() >= stop_at:
                break
            sent = await rec.timed(
                "POST /submit",
                client.post(
                    "/submit",
                    data={"csrf_token": csrf, "message": message},
                    files=[("files", ("", b"", "application/octet-stream"))],
                ),
            )
            if sent.status_code == 303:
                await rec.timed("GET /submitted", client.get("/submitted"))
            await asyncio.sleep(random.uniform(*think))
            if time.monotonic() >= stop_at:
                break
            await rec.timed("GET /", client.get("/"))
            await asyncio.sleep(random.uniform(*think))

    lags: list[float] = []
    stop = asyncio.Event()
    lag_task = asyncio.create_task(_loop_lag(stop, lags))
    try:
        tasks = [
            asyncio.create_task(source(c, s.csrf)) for c, s in zip(clients, sessions, strict=True)
        ]
        await asyncio.sleep(warmup)
        rec.on = True
        measured_from = time.monotonic()
        await asyncio.gather(*tasks)
        measured = time.monotonic() - measured_from
        paced = rec.summary()
        paced["requests_per_second"] = round(len(rec.samples) / measured, 1)
        paced["client_loop_lag"] = latency_summary(lags)
        return {"paced": paced}
    finally:
        stop.set()
        await lag_task
        for client in clients:
            await client.aclose()


def run_sessions(
    server: ServerProcess,
    sessions: list[Session],
    seconds: float,
    think: tuple[float, float] = (1.0, 3.0),
) -> dict[str, Any]:
    message = "A short tip about what happened at the harbour last night. " * 4
    with MemoryWatch(server.pid) as memory:
        result = asyncio.run(
            _browse(server.url, sessions, seconds, min(5.0, seconds / 3), think, message)
        )
    result.update(
        {
            "sessions": len(sessions),
            "seconds": seconds,
            "think_seconds": list(think),
            "server": memory.report(),
        }
    )
    paced = result["paced"]
    print(
        f"  {len(sessions)} sessions, {paced['requests_per_second']} req/s: "
        f"p50 {paced['all']['p50_ms']} ms, p99 {paced['all']['p99_ms']} ms "
        f"(client loop lag p99 {paced['client_loop_lag']['p99_ms']} ms)",
        flush=True,
    )
    return result


# -- 4: login flood ----------------------------------------------------------------------------


async def _probe(url: str, cookies: list[str], out: Path, stop_file: Path) -> None:
    """The probes, in a process of their own so that the flood's client work cannot delay them:
    four loops each reading the home page and then a conversation (of many sessions in turn,
    so that no session's own request budget, 60 a minute, is what slows a probe), every 50 ms;
    one line per request: wall-clock time, route, status, milliseconds."""
    clients = [_client(url, {"sealdrop_session": c}) for c in cookies]
    anonymous = [_client(url) for _ in range(4)]
    lines: list[str] = []

    async def loop(offset: int) -> None:
        n = offset
        while not stop_file.exists():
            for route, client in (
                ("GET /", anonymous[offset]),
                ("GET /conversation", clients[n % len(clients)]),
            ):
                path = route.split()[1]
                started = time.perf_counter()
                response = await client.get(path)
                ms = (time.perf_counter() - started) * 1e3
                lines.append(f"{time.time():.4f}\t{route}\t{response.status_code}\t{ms:.3f}")
            n += 4
            await asyncio.sleep(0.05)

    await asyncio.gather(*(loop(i) for i in range(4)))
    for client in [*clients, *anonymous]:
        await client.aclose()
    out.write_text("\n".join(lines) + "\n")


def _probe_main(argv: list[str]) -> None:
    url, cookie_file, out, stop_file = argv
    cookies = Path(cookie_file).read_text().split()
    asyncio.run(_probe(url, cookies, Path(out), Path(stop_file)))


def _split_probes(path: Path, phases: list[tuple[str, float, float]]) -> dict[str, Recorder]:
    recorders = {name: Recorder() for name, _, _ in phases}
    for line in path.read_text().splitlines():
        stamp, route, status, ms = line.split("\t")
        for name, start, end in phases:
            if start <= float(stamp) < end:
                recorders[name].samples.append((route, int(status), float(ms)))
    return recorders


async def _flood(
    url: str, pid: int, attackers: int, seconds: float, mark: Callable[[str], None]
) -> dict[str, Any]:
    lags: list[float] = []
    stop = asyncio.Event()
    # The attackers' browsers, made once (making an httpx client costs milliseconds of this
    # loop); before each wave their cookies are dropped, as a flood dodging the per-visitor
    # limit would.
    browsers = [_client(url) for _ in range(attackers)]

    async def attempt(client: httpx.AsyncClient, token: str, wrong: str) -> tuple[int, float]:
        started = time.perf_counter()
        response = await client.post("/login", data={"form_token": token, "codename": wrong})
        return response.status_code, (time.perf_counter() - started) * 1e3

    async def wave(control: bool = False) -> list[tuple[int, float]]:
        for client in browsers:
            client.cookies.clear()
        pages = await asyncio.gather(*(c.get("/login") for c in browsers))
        # The control: a bad form token is refused before the KDF.
        tokens = ["0" * 64 if control else hidden_field(p.text, "form_token") for p in pages]
        wrong = [str(codenames.generate()) for _ in range(attackers)]
        return await asyncio.gather(
            *(attempt(c, t, w) for c, t, w in zip(browsers, tokens, wrong, strict=True))
        )

    async def waves_for(seconds: float, control: bool = False) -> list[list[tuple[int, float]]]:
        out: list[list[tuple[int, float]]] = []
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            started = time.monotonic()
            out.append(await wave(control))
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
        return out

    lag_task = asyncio.create_task(_loop_lag(stop, lags))
    try:
        mark("control")
        control = await waves_for(max(3.0, seconds / 2), control=True)
        # One real wave, not measured: what a server loads on its first logins (the word list,
        # the KDF pool's threads) is then in the idle RSS that the flood starts from.
        mark("warm-up")
        await wave()
        await asyncio.sleep(1.0)
        with MemoryWatch(pid, interval=0.01) as memory:
            mark("during")
            flood = await waves_for(seconds)
            mark("after")
    finally:
        stop.set()
        await lag_task
        for client in browsers:
            await client.aclose()
    results = [r for w in flood for r in w]
    waves = [dict(Counter(str(status) for status, _ in w)) for w in flood]
    statuses = Counter(status for status, _ in results)
    return {
        "attackers": attackers,
        "waves": len(waves),
        "attempts": len(results),
        "status_400": statuses.get(400, 0),
        "status_429": statuses.get(429, 0),
        "status_other": {str(k): v for k, v in statuses.items() if k not in (400, 429)},
        "first_wave": waves[0] if waves else {},
        "per_wave": waves,
        "login_latency_400": latency_summary([ms for s, ms in results if s == 400]),
        "login_latency_429": latency_summary([ms for s, ms in results if s == 429]),
        "client_loop_lag": latency_summary(lags),
        "control_waves": len(control),
        "control_statuses": dict(Counter(str(s) for w in control for s, _ in w)),
        # Over the server after the control and the warm-up wave.
        "server": memory.report(),
    }


def run_flood(
    server: ServerProcess,
    sessions: list[Session],
    attackers: int,
    seconds: float,
    folder: Path,
    kdf_max_concurrent: int,
    baseline: float = 5.0,
) -> dict[str, Any]:
    cookies, out, stop_file = folder / "probe-cookies", folder / "probes.tsv", folder / "stop"
    cookies.write_text("\n".join(s.cookie for s in sessions))
    stop_file.unlink(missing_ok=True)
    probe = subprocess.Popen(
        [sys.executable, __file__, "probe", server.url, str(cookies), str(out), str(stop_file)]
    )
    marks: dict[str, float] = {}
    try:
        time.sleep(1.0)  # the probe process starting
        marks["before"] = time.time()
        time.sleep(baseline)
        result = asyncio.run(
            _flood(
                server.url, server.pid, attackers, seconds, lambda m: marks.update({m: time.time()})
            )
        )
    finally:
        stop_file.touch()
        probe.wait(60)
    phases = [
        ("before", marks["before"], marks["control"]),
        ("control", marks["control"], marks["warm-up"]),
        ("during", marks["during"], marks["after"]),
    ]
    probes = _split_probes(out, phases)
    for name, recorder in probes.items():
        result[f"probes_{name}"] = recorder.summary()
    bound = kdf_max_concurrent * KDF_MIB
    result["rss_bound_mib"] = bound
    server_mem = result["server"]
    print(
        f"  {result['attempts']} wrong logins in {result['waves']} waves of {attackers}: "
        f"{result['status_400']} x 400, {result['status_429']} x 429, other "
        f"{result['status_other'] or 0}; server RSS {server_mem['idle_rss_mib']} -> "
        f"{server_mem['peak_rss_mib']} MiB (+{server_mem['rss_growth_mib']}, bound {bound}); "
        f"other pages p99 {result['probes_before']['all']['p99_ms']} ms before, "
        f"{result['probes_control']['all']['p99_ms']} ms in the control, "
        f"{result['probes_during']['all']['p99_ms']} ms during",
        flush=True,
    )
    return result


# -- both --------------------------------------------------------------------------------------


def run(
    workdir: Path,
    log_dir: Path,
    *,
    sessions: int,
    session_seconds: float,
    attackers: int,
    flood_seconds: float,
    do_sessions: bool = True,
    do_flood: bool = True,
) -> dict[str, Any]:
    instance = make_instance(workdir / "concurrency", log_dir)
    print(f"  making {sessions} confirmed sources ...", flush=True)
    population, setup = populate(instance, sessions)
    out: dict[str, Any] = {"setup": setup}
    server = instance.server(name="measured").start()
    try:
        if do_sessions:
            print(f"  {sessions} sessions browsing for {session_seconds:.0f} s ...", flush=True)
            out["sessions"] = run_sessions(server, population, session_seconds)
        if do_flood:
            # A fresh server: the login budget of this minute untouched, the RSS its own.
            server.stop()
            server = instance.server(name="flood").start()
            print(
                f"  login flood: waves of {attackers} at once for {flood_seconds:.0f} s ...",
                flush=True,
            )
            # The pool size the server runs with (sealdrop.toml, or SEALDROP_KDF_MAX_CONCURRENT
            # passed through the environment): the RSS bound follows it.
            pool = load_settings(instance.path).kdf_max_concurrent
            out["flood"] = run_flood(
                server, population, attackers, flood_seconds, workdir / "concurrency", pool
            )
    finally:
        server.stop()
    with contextlib.suppress(OSError):
        out["instance_mib"] = round(
            sum(p.stat().st_size for p in instance.path.rglob("*") if p.is_file()) / MIB, 1
        )
    return out


if __name__ == "__main__" and sys.argv[1:2] == ["probe"]:
    _probe_main(sys.argv[2:])
