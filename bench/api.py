"""Benchmark 5: every source of a large instance listed through the journalist API, page by page.

A fresh instance (SQLite, or the EMPTY PostgreSQL database ``database_url`` names) gets N sources
that each sent one submission, written through the repositories in transactions of 1,000 rows:
no codename KDF (20,000 Argon2id derivations would take hours) and no blob content, which listing
reads neither. The API lists only sources that have sent something, so each gets one submission,
with the sequence number and version a real one gives it. An admin logs in through the API as the
reader does; then ``GET /api/v1/sources?updated_since=…&limit=…`` is timed from 0 to the end
against a real ``sealdrop serve`` on loopback, for each page size: one listing as a warm-up, then
``repeat`` timed listings whose pages are pooled.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from benchlib import Instance, admin_token, make_instance, percentile

from sealdrop.config import load_settings
from sealdrop.crypto.keys import generate_identity, recipient_of
from sealdrop.ids import BlobKey, new_id
from sealdrop.storage.database import SqlDatabase
from sealdrop.storage.interfaces import NewSubmission

# A well-formed content digest for the rows (their blobs are never read).
DIGEST = "blake3:" + "0" * 64

BATCH = 1000  # rows per transaction while filling the instance


def fill(instance: Instance, count: int) -> float:
    """Add ``count`` sources with one submission each; return the seconds it took."""
    database = SqlDatabase(load_settings(instance.path).database_url)
    reply_key = str(recipient_of(generate_identity()))
    today = dt.datetime.now(dt.UTC).date()
    started = time.perf_counter()
    try:
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
                        NewSubmission("message", BlobKey(new_id()), 200, None, DIGEST),
                    )
    finally:
        database.close()
    return time.perf_counter() - started


def list_all(client: httpx.Client, page_size: int, expected: int) -> list[float]:
    """Page through every source; the milliseconds of each page."""
    page_ms: list[float] = []
    cursor: int | None = 0
    seen = 0
    while cursor is not None:
        started = time.perf_counter()
        response = client.get(
            "/api/v1/sources", params={"updated_since": cursor, "limit": page_size}
        )
        page_ms.append((time.perf_counter() - started) * 1000)
        body = response.raise_for_status().json()
        seen += len(body["sources"])
        cursor = body["next"]
    if seen != expected:
        raise RuntimeError(f"listed {seen} sources, expected {expected}")
    return page_ms


def run(
    workdir: Path,
    log_dir: Path,
    *,
    sources: int,
    repeat: int,
    page_sizes: tuple[int, ...] = (50, 200),
    database_url: str | None = None,
) -> dict[str, Any]:
    if database_url:
        # Read by init_instance, load_settings and the `sealdrop serve` child alike.
        os.environ["SEALDROP_DATABASE_URL"] = database_url
    try:
        instance = make_instance(workdir / "api", log_dir)
        backend = load_settings(instance.path).database_url.split(":")[0]  # never the URL
        print(f"  filling {sources:,} sources ({backend}) ...", flush=True)
        result: dict[str, Any] = {
            "sources": sources,
            "database": backend,
            "fill_seconds": round(fill(instance, sources), 1),
            "runs": [],
        }
        server = instance.server(name="api").start()
        try:
            headers = {"Authorization": f"Bearer {admin_token(instance.path, server.api_url)}"}
            with httpx.Client(base_url=server.api_url, headers=headers, timeout=120) as client:
                for size in page_sizes:
                    list_all(client, size, sources)  # warm-up: routes, caches, connections
                    page_ms = [ms for _ in range(repeat) for ms in list_all(client, size, sources)]
                    run = {
                        "page_size": size,
                        "pages": len(page_ms) // repeat,
                        "timed_pages": len(page_ms),
                        "p50_ms": round(statistics.median(page_ms), 2),
                        "p95_ms": round(percentile(page_ms, 95), 2),
                        "max_ms": round(max(page_ms), 2),
                    }
                    result["runs"].append(run)
                    print(
                        f"  page of {size}: {run['pages']} pages, p50 {run['p50_ms']} ms, "
                        f"p95 {run['p95_ms']} ms, max {run['max_ms']} ms",
                        flush=True,
                    )
        finally:
            server.stop()
    finally:
        if database_url:
            del os.environ["SEALDROP_DATABASE_URL"]
    return result
