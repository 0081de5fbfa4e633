"""The table of bench/run: one row per measure, each held against its target in
bench/targets.py; printed, and compared with a reference run."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from targets import (
    API_P95,
    FLOOD_P99,
    FLOOD_RSS,
    PAGE_BYTES,
    PAGE_REQUESTS,
    SESSIONS_P99,
    UPLOAD_CPU,
    UPLOAD_RSS,
    UPLOAD_VS_DISK,
    UPLOAD_VS_ONIONSHARE,
    Target,
)

BENCHMARKS = ("upload", "pages", "sessions", "flood", "api", "resumable", "pq", "scale")


@dataclass
class Row:
    """One line of the table. ``value`` is the number compared with the reference; ``ratio`` is
    measured / target (see targets.Target)."""

    key: str
    bench: str
    measure: str
    shown: str
    value: float | None = None
    target: str = ""
    ratio: float | None = None
    ok: bool | None = None


def checked(
    key: str,
    bench: str,
    measure: str,
    shown: str,
    value: float | None,
    target: Target,
    limit: float | None = None,
) -> Row:
    """A row whose measure is held against ``target`` (with ``limit`` instead of its stated
    bound when the instance's settings decide it)."""
    ratio, ok = target.check(value, limit)
    return Row(key, bench, measure, shown, value, target.shown(limit), ratio, ok)


def upload_rows(result: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    if "onionshare_error" in result:
        rows.append(
            Row("upload.onionshare", "1 upload", "OnionShare 2.7 receive", "unavailable (see JSON)")
        )
    for size in result["sizes"]:
        label = size["label"]
        bench = f"1 upload {label}"
        key = f"upload.{label.replace(' ', '')}"
        s = size["sealdrop"]
        if size.get("comparison_only"):
            bench += " (OnionShare's max)"
            key += ".compare"
        shown = f"{s['mbps']} MB/s" if s.get("verified") else f"FAILED (HTTP {s['status']})"
        rows.append(Row(f"{key}.sealdrop_mbps", bench, "Sealdrop end to end", shown, s["mbps"]))
        cpu = s["server_cpu_seconds_per_gib"]
        rows.append(
            checked(
                f"{key}.sealdrop_cpu",
                bench,
                "  server CPU per GiB (all threads)",
                f"{cpu} s ({s['server_cpu_percent']}% of a core)",
                cpu,
                UPLOAD_CPU,
            )
        )
        if "with_children_cpu_seconds_per_gib" in s:
            rows.append(
                Row(
                    f"{key}.sealdrop_cpu_tree",
                    bench,
                    "  with its age children (the whole upload's CPU)",
                    f"{s['with_children_cpu_seconds_per_gib']} s",
                    s["with_children_cpu_seconds_per_gib"],
                )
            )
        if "disk" in size:
            mbps = size["disk"]["mbps"]
            rows.append(
                Row(f"{key}.disk_mbps", bench, "disk write+fsync ceiling", f"{mbps} MB/s", mbps)
            )
            ratio = size.get("ratio_to_disk")
            rows.append(
                checked(
                    f"{key}.ratio_disk",
                    bench,
                    "Sealdrop / disk ceiling",
                    _num(ratio),
                    ratio,
                    UPLOAD_VS_DISK,
                )
            )
        rows += _onionshare_rows(key, bench, size)
        if not size.get("comparison_only"):
            growth = s["rss_growth_mib_max"]
            rows.append(
                checked(
                    f"{key}.rss_growth",
                    bench,
                    f"server RSS growth (idle {s['idle_rss_mib']} MiB)",
                    f"{growth} MiB (peak {s['peak_rss_mib']} MiB)",
                    growth,
                    UPLOAD_RSS,
                )
            )
        tmpfs = size.get("tmpfs") or size.get("diagnostics", {}).get("server_tmpfs")
        if tmpfs is not None:
            shown = (
                f"{tmpfs['mbps']} MB/s, {tmpfs['server_cpu_seconds_per_gib']} CPU-s/GiB"
                if "mbps" in tmpfs
                else tmpfs.get("error", "n/a")
            )
            measure = "  Sealdrop, instance on tmpfs (no disk)"
            rows.append(Row(f"{key}.server_tmpfs", bench, measure, shown, tmpfs.get("mbps")))
    return rows


def _onionshare_rows(key: str, bench: str, size: dict[str, Any]) -> list[Row]:
    if "onionshare" not in size:
        return []
    o = size["onionshare"]
    measure = "OnionShare 2.7 receive"
    if "refused" in o:
        shown = f"refused (HTTP {o['status']}: > 1 GiB)"
        return [Row(f"{key}.onionshare_mbps", bench, measure, shown)]
    shown = f"{o['mbps']} MB/s" if o.get("verified") else f"FAILED (HTTP {o['status']})"
    ratio = size.get("ratio_to_onionshare")
    rows = [
        Row(f"{key}.onionshare_mbps", bench, measure, shown, o["mbps"]),
        checked(
            f"{key}.ratio_onionshare",
            bench,
            "Sealdrop / OnionShare",
            _num(ratio),
            ratio,
            UPLOAD_VS_ONIONSHARE,
        ),
    ]
    if o.get("durable_mbps"):
        durable = size.get("ratio_to_onionshare_durable")
        rows += [
            Row(
                f"{key}.onionshare_durable_mbps",
                bench,
                "  OnionShare, then fsync of its file (durable)",
                f"{o['durable_mbps']} MB/s",
                o["durable_mbps"],
            ),
            Row(
                f"{key}.ratio_onionshare_durable",
                bench,
                "  Sealdrop / OnionShare made durable",
                _num(durable),
                durable,
            ),
        ]
    return rows


def page_rows(result: dict[str, Any]) -> list[Row]:
    rows = []
    for name, p in result["pages"].items():
        bytes_ratio, bytes_ok = PAGE_BYTES.check(p["bytes"])
        _, requests_ok = PAGE_REQUESTS.check(p["requests"])
        favicon = " +favicon" if "implicit_favicon" in p else ""
        rows.append(
            Row(
                f"pages.{name}",
                "2 page weight",
                f"{name} [{p['status']}]",
                f"{p['bytes']:,} B, {p['requests']} req{favicon}",
                p["bytes"],
                f"{PAGE_BYTES.shown()}, {PAGE_REQUESTS.shown()} req",
                bytes_ratio,
                bytes_ok and requests_ok,
            )
        )
    return rows


def session_rows(result: dict[str, Any]) -> list[Row]:
    paced = result["paced"]
    bench = f"3 {result['sessions']} sessions"
    p99 = paced["all"]["p99_ms"]
    refused = sum(v for k, v in paced["statuses"].items() if k.endswith(" 429"))
    errors = sum(v for k, v in paced["statuses"].items() if not k.endswith((" 200", " 303")))
    think = "–".join(f"{t:g}" for t in result["think_seconds"])
    rows = [
        Row(
            "sessions.rate",
            bench,
            f"paced load (think {think} s)",
            f"{paced['requests_per_second']} req/s, {paced['all']['count']} req, "
            f"{errors} not 200/303 ({refused} x 429)",
            paced["requests_per_second"],
        ),
        Row(
            "sessions.p50",
            bench,
            "non-KDF pages p50",
            f"{paced['all']['p50_ms']} ms",
            paced["all"]["p50_ms"],
        ),
        checked("sessions.p99", bench, "non-KDF pages p99", f"{p99} ms", p99, SESSIONS_P99),
    ]
    for route, s in paced["by_route"].items():
        rows.append(
            Row(
                f"sessions.p99.{route}",
                bench,
                f"  {route} p50 / p99",
                f"{s['p50_ms']} / {s['p99_ms']} ms",
                s["p99_ms"],
            )
        )
    lag = paced["client_loop_lag"]["p99_ms"]
    rows.append(Row("sessions.client_lag", bench, "client event-loop lag p99", f"{lag} ms", lag))
    return rows


def flood_rows(result: dict[str, Any]) -> list[Row]:
    bench = f"4 login flood x{result['attackers']}"
    growth = result["server"]["rss_growth_mib"]
    # The pool's own memory is the bound; a few MiB more for the flood's requests themselves.
    bound = result["rss_bound_mib"] + 8
    during = result["probes_during"]["all"]["p99_ms"]
    other = sum(result["status_other"].values())
    first = result["first_wave"]
    latency = result["login_latency_400"]
    return [
        Row(
            "flood.statuses",
            bench,
            f"answers to {result['attempts']} wrong logins ({result['waves']} waves)",
            f"{result['status_400']} x 400, {result['status_429']} x 429, {other} other "
            f"(1st wave: {first.get('400', 0)} x 400, {first.get('429', 0)} x 429)",
            result["status_400"],
        ),
        checked(
            "flood.rss_growth",
            bench,
            "server RSS growth over the warm server (KDF pool)",
            f"{growth} MiB",
            growth,
            FLOOD_RSS,
            bound,
        ),
        Row(
            "flood.p99_before",
            bench,
            "other pages p99, before the flood",
            f"{result['probes_before']['all']['p99_ms']} ms",
            result["probes_before"]["all"]["p99_ms"],
        ),
        Row(
            "flood.p99_control",
            bench,
            "other pages p99, control (same requests, no KDF)",
            f"{result['probes_control']['all']['p99_ms']} ms",
            result["probes_control"]["all"]["p99_ms"],
        ),
        checked(
            "flood.p99_during",
            bench,
            "other pages p99, during the flood",
            f"{during} ms",
            during,
            FLOOD_P99,
        ),
        Row(
            "flood.login_400_p50",
            bench,
            "a wrong login answered 400: p50 / p99",
            f"{latency['p50_ms']} / {latency['p99_ms']} ms",
            latency["p50_ms"],
        ),
    ]


def api_rows(result: dict[str, Any]) -> list[Row]:
    return [
        checked(
            f"api.page{run['page_size']}.p95",
            f"5 API {result['sources']:,} sources",
            f"page of {run['page_size']} ({run['pages']} pages): p50 / p95",
            f"{run['p50_ms']} / {run['p95_ms']} ms",
            run["p95_ms"],
            API_P95,
        )
        for run in result.get("runs", [])
        # Results of before 2026-12 also hold in-process runs: the table shows the server's.
        if "loopback" in run.get("mode", "loopback")
    ]


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}"


def print_table(rows: list[Row]) -> None:
    headers = ("benchmark", "measure", "measured", "target", "meas/target", "")
    cells = [
        (
            row.bench,
            row.measure,
            row.shown,
            row.target or "—",
            "" if row.ratio is None else f"{row.ratio:.2f}",
            {True: "ok", False: "MISS", None: ""}[row.ok],
        )
        for row in rows
    ]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)]
    line = "  ".join("-" * w for w in widths)
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print(line)
    previous = None
    for row, cell in zip(rows, cells, strict=True):
        shown = list(cell)
        if row.bench == previous:
            shown[0] = ""  # the benchmark's name on its first line only
        elif previous is not None:
            print()
        previous = row.bench
        print("  ".join(c.ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip())
    print(line)


def compare(rows: list[Row], reference: dict[str, Any]) -> None:
    before = {r["key"]: r for r in reference.get("table", [])}
    print(
        f"\nCompared with the reference of {reference.get('when')} (commit "
        f"{reference.get('git', {}).get('commit')}, {reference['machine'].get('cpu_model')}, "
        f"{reference['machine'].get('cpu_count_logical')} cores, load "
        f"{reference['machine'].get('load_average')}):"
    )
    lines = []
    for row in rows:
        old = before.get(row.key)
        if old is None or row.value is None or old.get("value") in (None, 0):
            continue
        change = 100 * (row.value - old["value"]) / old["value"]
        lines.append((row.bench, row.measure, old["shown"], row.shown, f"{change:+.0f}%"))
    if not lines:
        print("  no measure in common")
        return
    headers = ("benchmark", "measure", "reference", "now", "change")
    widths = [max([len(h)] + [len(x[i]) for x in lines]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for x in lines:
        print("  ".join(c.ljust(w) for c, w in zip(x, widths, strict=True)).rstrip())


def resumable_rows(result: dict[str, Any]) -> list[Row]:
    """Resumable (tus) against the plain form, same file, same run, side by side."""
    rows: list[Row] = []
    for size in result["sizes"]:
        bench = f"resumable vs form {size['label']}"
        key = f"resumable.{size['label'].replace(' ', '')}"
        for name, measure in (("form", "plain form (/submit)"), ("resumable", "tus (/uploads)")):
            best = size.get(name)
            shown = f"{best['mbps']} MB/s" if best else "FAILED"
            rows.append(Row(f"{key}.{name}_mbps", bench, measure, shown, best and best["mbps"]))
        ratio = size.get("ratio")
        rows.append(Row(f"{key}.ratio", bench, "tus / form", _num(ratio), ratio))
    return rows


def pq_rows(result: dict[str, Any]) -> list[Row]:
    """Hybrid against X25519 recipients (bench/pq.py, which builds the rows)."""
    import pq  # here, not at the top: pq imports this module

    return pq.rows(result)


def scale_rows(result: dict[str, Any]) -> list[Row]:
    """S3 against the filesystem (same file, same run); pages with 1 and 2 workers."""
    rows: list[Row] = []
    upload = result.get("upload")
    if upload:
        bench = f"8 scale, upload {upload['size'] // 2**20} MiB"
        for name, measure in (("filesystem", "to the filesystem"), ("s3", "to SeaweedFS (S3)")):
            r = upload["best"][name]
            rows.append(
                Row(
                    f"scale.upload.{name}",
                    bench,
                    measure,
                    f"{r['mbps']} MB/s, RSS +{r['rss_growth_mib']} MiB"
                    + ("" if r.get("verified") else " FAILED"),
                    r["mbps"],
                )
            )
            rows.append(
                Row(
                    f"scale.upload.{name}.cpu",
                    bench,
                    "  server CPU-s/GiB (with its age children)",
                    f"{r['server_cpu_seconds_per_gib']} ({r['with_children_cpu_seconds_per_gib']})",
                    r["server_cpu_seconds_per_gib"],
                )
            )
        ratio = upload.get("s3_over_filesystem")
        rows.append(Row("scale.upload.ratio", bench, "S3 / filesystem", _num(ratio), ratio))
    pages = result.get("pages")
    if pages:
        bench = f"8 scale, {pages['sessions']} sessions"
        by_pace: dict[str, dict[int, dict[str, Any]]] = {}
        for run in pages["runs"]:
            think = "–".join(f"{t:g}" for t in run["think_seconds"])
            by_pace.setdefault(think, {})[run["workers"]] = run
            rows.append(
                Row(
                    f"scale.pages.{think}.{run['workers']}",
                    bench,
                    f"think {think} s, {run['workers']} worker(s)",
                    f"{run['requests_per_second']} req/s, p99 {run['p99_ms']} ms, "
                    f"server {run['server_cpu_percent']}% of a core",
                    run["requests_per_second"],
                )
            )
        for think, runs in by_pace.items():
            if 1 in runs and 2 in runs and runs[1]["requests_per_second"]:
                ratio = round(runs[2]["requests_per_second"] / runs[1]["requests_per_second"], 2)
                rows.append(
                    Row(
                        f"scale.pages.{think}.ratio",
                        bench,
                        f"  think {think} s: 2 workers / 1 (req/s)",
                        _num(ratio),
                        ratio,
                    )
                )
    flood = result.get("flood")
    if flood:
        rows += scale_flood_rows(flood)
    return rows


def scale_flood_rows(flood: dict[str, Any]) -> list[Row]:
    """Benchmark 4's flood against 1 and 2 workers: each run, then the median p99 during the
    flood of each worker count held against benchmark 4's target."""
    bench = f"8 scale, login flood x{flood['attackers']}"
    rows: list[Row] = []
    during: dict[int, list[float]] = {}
    for n, run in enumerate(flood["runs"], 1):
        p99 = {phase: run[f"probes_{phase}"]["all"]["p99_ms"] for phase in PHASES}
        during.setdefault(run["workers"], []).append(p99["during"])
        rows.append(
            Row(
                f"scale.flood.{n}",
                bench,
                f"{run['workers']} worker(s): other pages p99 before / control / during",
                " / ".join(f"{p99[phase]}" for phase in PHASES)
                + f" ms; {run['status_400']} x 400, {run['status_429']} x 429, "
                f"RSS +{run['server']['rss_growth_mib']} MiB",
                p99["during"],
            )
        )
    for workers, values in sorted(during.items()):
        median = statistics.median(values)
        rows.append(
            checked(
                f"scale.flood.p99.{workers}",
                bench,
                f"  {workers} worker(s): median p99 during the flood",
                f"{median:g} ms",
                median,
                FLOOD_P99,
            )
        )
    return rows


PHASES = ("before", "control", "during")


def rows_of(results: dict[str, Any]) -> list[Row]:
    """The table's rows, from the results of a run (this one or a saved one)."""
    build = {
        "upload": upload_rows,
        "pages": page_rows,
        "sessions": session_rows,
        "flood": flood_rows,
        "api": api_rows,
        "resumable": resumable_rows,
        "pq": pq_rows,
        "scale": scale_rows,
    }
    return [
        row
        for name in BENCHMARKS
        if name in results["benchmarks"]
        for row in build[name](results["benchmarks"][name])
    ]
