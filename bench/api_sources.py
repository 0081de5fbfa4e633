"""Benchmark: list every source of a large instance through the journalist API, page by page.

Not a test: run it by hand (``.venv/bin/python bench/api_sources.py``; ``--help`` for options).
It builds an instance with N sources (default 10,000) that each sent one submission, logs an
admin in, then times ``GET /api/v1/sources`` from ``updated_since=0`` to the end:

- in-process (httpx.ASGITransport under anyio: the application without a network), and
- against a real ``sealdrop serve`` on loopback (uvicorn, a real socket), unless ``--no-server``.

It prints the machine, the page size, the number of pages and p50/p95/max per page against the
200 ms target, counts the SQL statements one page costs, and times the query pattern that
dominates it against a single grouped query. Results go to bench/results/api_sources.json
(git-ignored).

Rows go in through the repositories in big transactions, without the source KDF and with no blob
content: listing reads neither. The API lists only sources that have sent something, so each gets
one submission (with the sequence number, version and cleared ``pending_since`` that a real
submission gives it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import psutil
from sqlalchemy import event

from sealdrop.config import load_settings
from sealdrop.crypto import passwords
from sealdrop.crypto.keys import generate_identity, recipient_of
from sealdrop.ids import BlobKey, SourceId, new_id
from sealdrop.services.container import Services, build_services
from sealdrop.services.instance import init_instance
from sealdrop.storage.database import SqlDatabase
from sealdrop.storage.interfaces import NewSubmission
from sealdrop.testing import ServerProcess
from sealdrop.web.api.app import create_api_app

TARGET_MS = 200.0
BATCH = 1000  # rows per transaction while filling the instance
RESULTS = Path(__file__).resolve().parent / "results" / "api_sources.json"


def machine() -> dict[str, Any]:
    memory = psutil.virtual_memory()
    return {
        "cpu_count_logical": os.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "cpu_model": _cpu_model(),
        "memory_total_gib": round(memory.total / 1024**3, 1),
        "memory_available_gib": round(memory.available / 1024**3, 1),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fill(database: SqlDatabase, count: int) -> float:
    """Add ``count`` sources with one submission each; return the seconds it took."""
    reply_key = str(recipient_of(generate_identity()))
    today = dt.datetime.now(dt.UTC).date()
    started = time.perf_counter()
    for first in range(0, count, BATCH):
        with database.transaction() as repos:
            for n in range(first, min(first + BATCH, count)):
                source = repos.sources.add(
                    hashlib.sha256(f"bench {n}".encode()).digest(),
                    reply_key,
                    today,
                    f"bench source {n}",
                    None,
                )
                seq = repos.sources.reserve_sequence(source.id, 1)
                repos.sources.bump_version(source.id)
                repos.submissions.add(
                    source.id,
                    seq,
                    today,
                    NewSubmission("message", BlobKey(new_id()), 200, None, "0" * 64),
                )
        print(f"\r  filled {min(first + BATCH, count):>6}/{count}", end="", flush=True)
    print()
    return time.perf_counter() - started


def admin_token(services: Services) -> str:
    account = services.accounts.create("bench-admin", "admin", actor="bench")
    code = passwords.totp_code(account.totp_secret, time.time())
    return services.auth.login("bench-admin", account.passphrase, code).token


def summary(page_ms: list[float]) -> dict[str, float]:
    ordered = sorted(page_ms)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(p95, 2),
        "max_ms": round(ordered[-1], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
        "total_s": round(sum(ordered) / 1000, 3),
        "p50_vs_target": round(statistics.median(ordered) / TARGET_MS, 3),
        "p95_vs_target": round(p95 / TARGET_MS, 3),
        "max_vs_target": round(ordered[-1] / TARGET_MS, 3),
    }


Get = Callable[[dict[str, Any]], httpx.Response]


def list_all(get: Get, page_size: int, expected: int) -> tuple[list[float], int]:
    """Page through every source; return the milliseconds of each page and the pages' count."""
    page_ms: list[float] = []
    cursor: int | None = 0
    seen = 0
    while cursor is not None:
        started = time.perf_counter()
        response = get({"updated_since": cursor, "limit": page_size})
        page_ms.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        body = response.json()
        seen += len(body["sources"])
        cursor = body["next"]
    if seen != expected:
        raise RuntimeError(f"listed {seen} sources, expected {expected}")
    return page_ms, len(page_ms)


def in_process(app: Any, token: str, page_size: int, expected: int) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"}
    page_ms: list[float] = []

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            loop_ms: list[float] = []
            cursor: int | None = 0
            seen = 0
            while cursor is not None:
                started = time.perf_counter()
                response = await client.get(
                    "/api/v1/sources",
                    params={"updated_since": cursor, "limit": page_size},
                    headers=headers,
                )
                loop_ms.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                body = response.json()
                seen += len(body["sources"])
                cursor = body["next"]
            if seen != expected:
                raise RuntimeError(f"listed {seen} sources, expected {expected}")
            page_ms.extend(loop_ms)

    anyio.run(run)
    return page_ms


def over_loopback(server: ServerProcess, token: str, page_size: int, expected: int) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.api_url, headers=headers, timeout=120) as client:
        return list_all(lambda p: client.get("/api/v1/sources", params=p), page_size, expected)[0]


@contextmanager
def statement_counter(services: Services) -> Iterator[list[str]]:
    """Every SQL statement the services' engine runs inside the block."""
    statements: list[str] = []
    engine = services._database.engine

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def statements_per_page(services: Services, token: str, page_size: int) -> dict[str, Any]:
    """Count the SQL statements of one full page, by kind."""
    principal = services.auth.authenticate(token)
    with statement_counter(services) as statements:
        views, _ = services.inbox.sources(principal, 0, page_size, None)
    return {
        "sources_on_page": len(views),
        "statements": len(statements),
        # More than a couple here means a query per source (N+1).
        "statements_reading_submissions": sum("FROM submissions" in s for s in statements),
    }


def query_pattern(database: SqlDatabase, page_size: int, rounds: int = 20) -> dict[str, float]:
    """Two ways to get the submission counts of one page's sources: one
    ``submissions.for_source`` per source, loading every row (what Inbox._views did before
    ``count_by_source``), against the one grouped COUNT of ``submissions.count_by_source``."""
    with database.transaction() as repos:
        ids = [r.id for r in repos.sources.page(after_version=0, limit=page_size)]

    def per_source() -> None:
        with database.transaction() as repos:
            for source_id in ids:
                len(repos.submissions.for_source(SourceId(source_id)))

    def grouped() -> None:
        with database.transaction() as repos:
            repos.submissions.count_by_source([SourceId(i) for i in ids])

    def best_ms(call: Callable[[], None]) -> float:
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)
        return round(min(times), 2)

    return {
        "for_source_per_source_ms": best_ms(per_source),
        "one_grouped_count_ms": best_ms(grouped),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument(
        "--page-size", type=int, action="append", help="repeatable; default: 50 and 200"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="full listings timed per mode and page size"
    )
    parser.add_argument("--no-server", action="store_true", help="skip the loopback server run")
    parser.add_argument("--keep", action="store_true", help="keep the instance folder")
    parser.add_argument(
        "--database-url",
        help="an EMPTY PostgreSQL database (postgresql+psycopg://...); default: SQLite",
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    page_sizes = args.page_size or [50, 200]
    if args.database_url:
        # Read by init_instance, load_settings and the `sealdrop serve` child alike.
        os.environ["SEALDROP_DATABASE_URL"] = args.database_url

    info = machine()
    print("machine:", ", ".join(f"{k}={v}" for k, v in info.items()))
    workdir = Path(tempfile.mkdtemp(prefix="sealdrop-bench-"))
    results: dict[str, Any] = {
        "benchmark": "api_sources",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": info,
        "sources": args.sources,
        "target_ms_per_page": TARGET_MS,
        "runs": [],
    }
    try:
        instance = init_instance(workdir / "instance")
        settings = load_settings(instance)
        database = SqlDatabase(settings.database_url)
        backend = settings.database_url.split(":")[0]  # never the URL: it may hold a password
        results["database"] = backend
        print(f"building {args.sources} sources in {instance} ({backend})")
        results["fill_seconds"] = round(fill(database, args.sources), 2)
        services = build_services(settings)
        token = admin_token(services)
        # One application for every in-process run: FastAPI prepares each route on its first
        # request (~150 ms here), which a warm-up run absorbs.
        app = create_api_app(services)

        for size in page_sizes:
            results.setdefault("statements_per_page", {})[str(size)] = statements_per_page(
                services, token, size
            )
            results.setdefault("query_pattern", {})[str(size)] = query_pattern(database, size)
            in_process(app, token, size, args.sources)  # warm-up: routes, caches, connections
            page_ms = [
                ms for _ in range(args.repeat) for ms in in_process(app, token, size, args.sources)
            ]
            results["runs"].append(
                {
                    "mode": "in-process (ASGI)",
                    "page_size": size,
                    "pages": len(page_ms) // args.repeat,
                    "timed_pages": len(page_ms),
                    **summary(page_ms),
                }
            )
        if not args.no_server:
            server = ServerProcess(instance, log=workdir / "server.log").start()
            try:
                for size in page_sizes:
                    over_loopback(server, token, size, args.sources)  # warm-up
                    page_ms = [
                        ms
                        for _ in range(args.repeat)
                        for ms in over_loopback(server, token, size, args.sources)
                    ]
                    results["runs"].append(
                        {
                            "mode": "sealdrop serve (loopback)",
                            "page_size": size,
                            "pages": len(page_ms) // args.repeat,
                            "timed_pages": len(page_ms),
                            **summary(page_ms),
                        }
                    )
            finally:
                server.stop()
        services.close()
        database.close()
    finally:
        if args.keep:
            print(f"instance kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    report(results)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.results}")
    return 0


def report(results: dict[str, Any]) -> None:
    print(
        f"\nfilled {results['sources']} sources ({results['database']}) "
        f"in {results['fill_seconds']} s; target {TARGET_MS:.0f} ms per page"
    )
    header = f"{'mode':<28}{'page':>6}{'pages':>7}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}"
    print(header + f"{'p95/target':>12}")
    for run in results["runs"]:
        print(
            f"{run['mode']:<28}{run['page_size']:>6}{run['pages']:>7}{run['p50_ms']:>10}"
            f"{run['p95_ms']:>10}{run['max_ms']:>10}{run['p95_vs_target']:>12}"
        )
    for size, counted in results.get("statements_per_page", {}).items():
        pattern = results["query_pattern"][size]
        print(
            f"page of {size}: {counted['statements']} SQL statements "
            f"({counted['statements_reading_submissions']} reading submissions); counting the "
            f"page's submissions costs {pattern['for_source_per_source_ms']} ms one source at a "
            f"time vs {pattern['one_grouped_count_ms']} ms as one grouped COUNT"
        )


if __name__ == "__main__":
    raise SystemExit(main())
