"""Benchmark 8, part 3 (issue 17): the login flood of benchmark 4 against 1 and 2 workers.

Benchmark 4 floods one server process (SQLite, the filesystem). Issue 17 asks whether several
processes keep the other pages quick during a flood. Here the same flood (``concurrency.run_flood``:
probes in a process of their own, a control of the same waves refused before the KDF, then 100
browsers posting wrong codenames in waves) runs against ``sealdrop serve --workers N`` on
PostgreSQL + SeaweedFS, N = 1 and 2 alternately, ``repeat`` times each, on one instance and one
population of sources.

With N workers each runs ``kdf.max_concurrent / N`` derivation processes (at least one:
``cli.workers.per_worker``), so the pool's memory and the RSS bound are the same for both. The
instance's login budget per minute lives in the database and outlasts a restart: each flood waits
until the previous one is a minute old, so that every run starts with a full budget, as
benchmark 4's fresh server does.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import concurrency
from benchlib import make_instance
from scale import BUCKET, Workers, env_set, postgres, seaweedfs

from sealdrop.cli.workers import per_worker
from sealdrop.config import load_settings

# The login budget refills in a minute (logins.per_minute tokens, one a second by default).
BUDGET_REFILL_SECONDS = 62.0


def run(
    workdir: Path,
    log_dir: Path,
    *,
    sessions: int,
    attackers: int,
    seconds: float,
    repeat: int,
    workers: tuple[int, ...] = (1, 2),
) -> dict[str, Any]:
    folder = workdir / "scale-flood"
    result: dict[str, Any] = {"attackers": attackers, "seconds": seconds, "runs": []}
    with postgres() as database_url, seaweedfs() as weed:
        env = {"SEALDROP_DATABASE_URL": database_url, **weed.env(BUCKET, "flood")}
        try:
            with env_set(env):
                instance = make_instance(folder, log_dir)
                print(f"  making {sessions} confirmed sources (PostgreSQL + S3) ...", flush=True)
                population, _ = concurrency.populate(instance, sessions)
                settings = load_settings(instance.path)
                last_flood = time.monotonic()  # populate spent the budget too
                for n in range(repeat):
                    for count in workers:
                        since = time.monotonic() - last_flood
                        time.sleep(max(0.0, BUDGET_REFILL_SECONDS - since))
                        print(
                            f"  [{n + 1}/{repeat}] {count} worker(s): waves of {attackers} "
                            f"for {seconds:.0f} s ...",
                            flush=True,
                        )
                        server = Workers(instance, count, env).start()
                        try:
                            # The serve command's own division of the pool between workers.
                            pool = per_worker(settings, count).kdf_max_concurrent * count
                            flood = concurrency.run_flood(
                                server, population, attackers, seconds, folder, pool
                            )
                        finally:
                            server.stop()
                            last_flood = time.monotonic()
                        result["runs"].append({"workers": count, **flood})
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return result
