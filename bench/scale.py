"""Benchmark 7, scale (issue 17): what an object store and a second worker give on this machine.

1. **Upload to S3 vs the filesystem**: the same file posted by ``curl -F`` to ``/submit`` of two
   servers of the same code, one keeping blobs in its folder, one in SeaweedFS (``weed server
   -s3`` on loopback, as the tests start it; both on SQLite), the two steps interleaved
   ``repeat`` times: MB/s until the 303, RSS growth, server CPU-s per GiB (the server process
   alone, and with the ``age`` children that encrypt). The blob stored in SeaweedFS is read back
   and decrypted with the organisation key.
2. **Pages with 1 and 2 workers**: ``sealdrop serve --workers N`` on PostgreSQL (a throwaway
   server, default durability) + SeaweedFS, ``sessions`` confirmed sources each looping over
   what benchmark 3's do (the conversation, a short message, the "received" page, the home page)
   at three paces (think times), for N = 1 and 2: requests per second and p99 at each pace, and
   the ratio of the two throughputs. The per-session request budget is raised for this (it is an
   abuse limit, not what is measured); the client runs on the same two cores. Skipped when
   ``sessions`` is 0 (``bench/run --only scale --scale-sessions 0``).
3. **The login flood with 1 and 2 workers** (``scale_flood.py``): benchmark 4's flood against
   ``serve --workers N`` on PostgreSQL + SeaweedFS.

``--scale-parts`` chooses among the three (default: all).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import concurrency
import psutil
from benchlib import GIB, MIB, Instance, MemoryWatch, make_instance, size_label
from upload import SealdropTarget, make_input, mbps, post_file, settle

from sealdrop.testing import ServerProcess, free_port, sealdrop_command

PACES = ((1.0, 3.0), (0.2, 0.6), (0.0, 0.05))
BUCKET = "sealdrop-bench"
# Per-session budget raised far above what the paces ask (60 a minute by default).
PAGES_ENV = {
    "SEALDROP_SESSIONS_REQUESTS_PER_MINUTE": "100000",
    "SEALDROP_SESSIONS_REQUEST_BURST": "100000",
}


@contextlib.contextmanager
def env_set(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block (read by init, settings and the servers)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server on 127.0.0.1 with default durability; its URL."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not candidates:
        raise RuntimeError("no PostgreSQL server binaries (Debian: apt-get install postgresql)")
    bindir = Path(candidates[-1]).parent
    tmp = Path(tempfile.mkdtemp(prefix="sealdrop-bench-pg-"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
    data, log, port = tmp / "data", tmp / "server.log", free_port()

    def run(*argv: str) -> None:
        subprocess.run(
            [*as_user, str(bindir / argv[0]), *argv[1:]],
            check=True,
            capture_output=True,
            env={**os.environ, "LC_ALL": "C"},
        )

    run("initdb", "-D", str(data), "-U", "bench", "--auth=trust", "-E", "UTF8")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {tmp} -c max_connections=200"
    run("pg_ctl", "start", "-w", "-t", "60", "-D", str(data), "-l", str(log), "-o", options)
    try:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=port, user="bench", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE sealdrop_bench")
        yield f"postgresql+psycopg://bench@127.0.0.1:{port}/sealdrop_bench"
    finally:
        run("pg_ctl", "stop", "-m", "fast", "-D", str(data))
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def seaweedfs() -> Iterator[Any]:
    from sealdrop.testing_s3 import SeaweedFS

    server = SeaweedFS().start()
    try:
        server.create_bucket(BUCKET)
        yield server
    finally:
        server.stop()


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and every descendant alive now, each with its reaped children
    (an age child, a worker that was restarted): a difference of two readings is what the whole
    tree used in between."""
    total = 0.0
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = process.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


# -- 1: upload to S3 vs the filesystem ---------------------------------------------------------


class S3Target(SealdropTarget):
    """The upload benchmark's server, its blobs in SeaweedFS under a prefix of its own."""

    def __init__(self, instance: Instance, max_size: int, weed: Any) -> None:
        self.prefix = f"upload-{uuid.uuid4().hex[:8]}"
        self.weed = weed
        self.client = weed.client()
        super().__init__(instance, max_size)
        self.server = instance.server(
            {
                "SEALDROP_LIMITS_MAX_UPLOAD_BYTES": str(max_size + 16 * MIB),
                "SEALDROP_LIMITS_SOURCE_DAILY_UPLOAD_BYTES": str(1024 * GIB),
                **weed.env(BUCKET, self.prefix),
            },
            name="upload-s3",
        )

    def keys(self) -> dict[str, int]:
        found: dict[str, int] = {}
        pages = self.client.get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=BUCKET, Prefix=self.prefix + "/"):
            for item in page.get("Contents", []):
                found[item["Key"]] = item["Size"]
        return found

    def upload(self, path: Path, sha256: str, verify: bool) -> dict[str, Any]:
        size = path.stat().st_size
        before = self.keys()
        settle()
        with MemoryWatch(self.server.pid) as memory:
            cpu_before = tree_cpu(self.server.pid)
            sent = post_file(
                self.server.url + "/submit",
                [("csrf_token", self.csrf), ("message", "")],
                "files",
                path,
                [],
                self.cookies,
            )
            cpu_tree = tree_cpu(self.server.pid) - cpu_before
        result: dict[str, Any] = {
            **sent,
            "seconds": round(sent["seconds"], 3),
            "mbps": mbps(size, sent["seconds"]),
            **memory.report(),
            "server_cpu_seconds_per_gib": round(memory.cpu_seconds * GIB / size, 2),
            "with_children_cpu_seconds_per_gib": round(cpu_tree * GIB / size, 2),
        }
        new = sorted(set(self.keys().items()) - set(before.items()), key=lambda kv: kv[1])
        result["stored_bytes"] = new[-1][1] if new else 0
        result["verified"] = False
        if sent["status"] == 303 and new:
            if verify:
                from sealdrop.crypto.envelope import decrypt

                body = self.client.get_object(Bucket=BUCKET, Key=new[-1][0])["Body"]
                sink = _Hasher()
                decrypt(body, sink, [self.instance.identity])
                result["verified"] = sink.digest.hexdigest() == sha256
            else:
                result["verified"] = result["stored_bytes"] >= size + 16 * -(-size // 65536)
        for key, _ in new:
            self.client.delete_object(Bucket=BUCKET, Key=key)
        return result


class _Hasher:
    def __init__(self) -> None:
        import hashlib

        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return len(data)


class FilesystemTarget(SealdropTarget):
    """The upload benchmark's own server, with the CPU of its age children counted too."""

    def upload(self, path: Path, sha256: str, verify: bool) -> dict[str, Any]:
        cpu_before = tree_cpu(self.server.pid)
        result = super().upload(path, sha256, verify)
        # The verification ran after the upload in this process, not in the server.
        cpu_tree = tree_cpu(self.server.pid) - cpu_before
        size = path.stat().st_size
        result["with_children_cpu_seconds_per_gib"] = round(cpu_tree * GIB / size, 2)
        return result


def run_upload(
    workdir: Path, log_dir: Path, size: int, repeat: int, verify: bool
) -> dict[str, Any]:
    folder = workdir / "scale-upload"
    runs: dict[str, list[dict[str, Any]]] = {"filesystem": [], "s3": []}
    with seaweedfs() as weed:
        fs_instance = make_instance(folder / "fs", log_dir)
        s3_instance = make_instance(folder / "s3", log_dir)
        path = folder / "input.bin"
        try:
            print(f"  {size_label(size)}: writing the input file ...", flush=True)
            sha256 = make_input(path, size)
            with (
                FilesystemTarget(fs_instance, size) as on_disk,
                S3Target(s3_instance, size, weed) as on_s3,
            ):
                for n in range(repeat):
                    step = f"  {size_label(size)} [{n + 1}/{repeat}]:"
                    print(f"{step} Sealdrop, filesystem ...", flush=True)
                    runs["filesystem"].append(on_disk.upload(path, sha256, verify))
                    print(f"{step} Sealdrop, SeaweedFS (S3) ...", flush=True)
                    runs["s3"].append(on_s3.upload(path, sha256, verify))
        finally:
            path.unlink(missing_ok=True)
            shutil.rmtree(folder, ignore_errors=True)
    best = {
        name: max(done, key=lambda r: r["mbps"] if r.get("verified") else -1)
        for name, done in runs.items()
    }
    ratios = [
        s3["mbps"] / fs["mbps"]
        for fs, s3 in zip(runs["filesystem"], runs["s3"], strict=True)
        if fs.get("verified") and s3.get("verified") and fs["mbps"]
    ]
    result = {"size": size, "runs": runs, "best": best}
    if ratios:
        result["s3_over_filesystem"] = round(max(ratios), 2)
    for name, r in best.items():
        print(
            f"  {name}: {r['mbps']} MB/s (HTTP {r['status']}, verified={r['verified']}, "
            f"RSS +{r['rss_growth_mib']} MiB, server {r['server_cpu_seconds_per_gib']} CPU-s/GiB, "
            f"with age {r['with_children_cpu_seconds_per_gib']})",
            flush=True,
        )
    return result


# -- 2: pages with 1 and 2 workers --------------------------------------------------------------


class Workers(ServerProcess):
    """``sealdrop serve --workers N`` (the parent binds, N workers serve)."""

    def __init__(self, instance: Instance, workers: int, env: Mapping[str, str]) -> None:
        tmp = instance.path.parent / "tmp"
        tmp.mkdir(exist_ok=True)
        super().__init__(
            instance.path,
            env={"TMPDIR": str(tmp), **env},
            log=instance.log_dir / f"scale-workers-{workers}.log",
        )
        self.workers = workers

    def start(self, timeout: float = 60.0) -> Workers:
        import httpx

        log = self._log_path.open("ab")
        self.process = subprocess.Popen(
            sealdrop_command(
                "serve",
                self.instance,
                "--port",
                str(self.port),
                "--api-port",
                str(self.api_port),
                "--workers",
                str(self.workers),
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self._env,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                httpx.get(self.url + "/", timeout=1.0).raise_for_status()
                return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not start in {timeout} s:\n{self.log()}")


def run_pages(
    workdir: Path, log_dir: Path, sessions: int, seconds: float, workers: tuple[int, ...] = (1, 2)
) -> dict[str, Any]:
    folder = workdir / "scale-pages"
    result: dict[str, Any] = {"sessions": sessions, "seconds": seconds, "paces": [], "runs": []}
    message = "A short tip about what happened at the harbour last night. " * 4
    with postgres() as database_url, seaweedfs() as weed:
        env = {"SEALDROP_DATABASE_URL": database_url, **weed.env(BUCKET, "pages"), **PAGES_ENV}
        try:
            with env_set(env):
                instance = make_instance(folder, log_dir)
                print(f"  making {sessions} confirmed sources (PostgreSQL + S3) ...", flush=True)
                population, _ = concurrency.populate(instance, sessions)
                for think in PACES:
                    for count in workers:
                        server = Workers(instance, count, env).start()
                        try:
                            cpu_before = tree_cpu(server.pid)
                            started = time.monotonic()
                            browsed = asyncio.run(
                                concurrency._browse(
                                    server.url, population, seconds, 5.0, think, message
                                )
                            )
                            cpu = tree_cpu(server.pid) - cpu_before
                            wall = time.monotonic() - started
                        finally:
                            server.stop()
                        paced = browsed["paced"]
                        run = {
                            "workers": count,
                            "think_seconds": list(think),
                            "requests_per_second": paced["requests_per_second"],
                            "p50_ms": paced["all"]["p50_ms"],
                            "p99_ms": paced["all"]["p99_ms"],
                            "statuses": paced["statuses"],
                            "client_loop_lag_p99_ms": paced["client_loop_lag"]["p99_ms"],
                            "server_cpu_percent": round(100 * cpu / wall, 1),
                        }
                        result["runs"].append(run)
                        print(
                            f"  think {think[0]}-{think[1]} s, {count} worker(s): "
                            f"{run['requests_per_second']} req/s, p50 {run['p50_ms']} ms, "
                            f"p99 {run['p99_ms']} ms, server tree {run['server_cpu_percent']}% "
                            f"of a core (client lag p99 {run['client_loop_lag_p99_ms']} ms)",
                            flush=True,
                        )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return result


def run(
    workdir: Path,
    log_dir: Path,
    *,
    size: int,
    repeat: int,
    verify: bool,
    sessions: int,
    seconds: float,
    parts: frozenset[str] = frozenset({"upload", "pages", "flood"}),
    attackers: int = 100,
    flood_seconds: float = 20.0,
    flood_repeat: int = 1,
) -> dict[str, Any]:
    """The parts asked for (``--scale-parts``): each takes minutes of a busy machine, and a
    change to the S3 write path, say, needs only the upload."""
    unknown = parts - {"upload", "pages", "flood"}
    if unknown:
        raise ValueError(f"unknown parts of the scale benchmark: {', '.join(sorted(unknown))}")
    result: dict[str, Any] = {}
    if "upload" in parts:
        result["upload"] = run_upload(workdir, log_dir, size, repeat, verify)
    # `--scale-sessions 0` also leaves the pages out (as before --scale-parts).
    if "pages" in parts and sessions > 0:
        result["pages"] = run_pages(workdir, log_dir, sessions, seconds)
    if "flood" in parts:
        import scale_flood  # it imports this module

        result["flood"] = scale_flood.run(
            workdir,
            log_dir,
            sessions=max(sessions, 20),
            attackers=attackers,
            seconds=flood_seconds,
            repeat=flood_repeat,
        )
    return result
