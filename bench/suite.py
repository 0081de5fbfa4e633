"""Sealdrop's benchmark suite (issue 7): one command, one table, ratios measured in the same run.

Run it as ``bench/run`` (``--help`` for the options; ``--quick`` for a check in a minute or two).

1. upload      1 GiB and 4 GiB over loopback HTTP: MB/s, server RSS, against the disk's write
               ceiling and OnionShare 2.7 (bench/upload.py)
2. pages       bytes on the wire and requests of every source page (bench/page_weight.py)
3. sessions    200 concurrent source sessions: latency of the pages (bench/concurrency.py)
4. flood       100 concurrent wrong-codename logins: RSS, 429s, other pages (bench/concurrency.py)
5. api         10,000 sources listed page by page through the journalist API (bench/api_sources.py)

Prints the machine and one table (each measure, its target, measured / target, verdict), writes
everything to bench/results/suite-<profile>.json, and compares with bench/reference/ when a
reference of the same profile is there (``--save-reference`` writes one).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib import BENCH, git_state, machine, now_iso, parse_size, size_label, system_cpu

BENCHMARKS = ("upload", "pages", "sessions", "flood", "api")
RESULTS = BENCH / "results"
REFERENCE = BENCH / "reference"

PROFILES: dict[str, dict[str, Any]] = {
    "full": {
        "upload_sizes": "1G,4G",
        "upload_repeat": 2,
        "sessions": 200,
        "session_seconds": 60,
        "attackers": 100,
        "flood_seconds": 20,
        "api_sources": 10_000,
        "api_repeat": 3,
    },
    "quick": {
        "upload_sizes": "256M",
        "upload_repeat": 1,
        "sessions": 50,
        "session_seconds": 15,
        "attackers": 100,
        "flood_seconds": 6,
        "api_sources": 10_000,
        "api_repeat": 1,
    },
}


# -- the table ---------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table. ``value`` is the number compared with the reference; ``ratio`` is
    measured / target (≥ 1 passes a "≥" target, ≤ 1 passes a "≤" or "<" one)."""

    key: str
    bench: str
    measure: str
    shown: str
    value: float | None = None
    target: str = ""
    ratio: float | None = None
    ok: bool | None = None


def at_least(value: float | None, target: float) -> tuple[float | None, bool | None]:
    if value is None:
        return None, False
    return round(value / target, 3), value >= target


def at_most(value: float | None, target: float, strict: bool = False) -> tuple[float | None, bool]:
    if value is None:
        return None, False
    return round(value / target, 3), value < target if strict else value <= target


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
        rows.append(
            Row(
                f"{key}.sealdrop_cpu",
                bench,
                "  server CPU per GiB (all threads)",
                f"{s['server_cpu_seconds_per_gib']} s ({s['server_cpu_percent']}% of a core)",
                s["server_cpu_seconds_per_gib"],
            )
        )
        if "disk" in size:
            d = size["disk"]
            rows.append(
                Row(
                    f"{key}.disk_mbps",
                    bench,
                    "disk write+fsync ceiling",
                    f"{d['mbps']} MB/s",
                    d["mbps"],
                )
            )
            ratio = size.get("ratio_to_disk")
            r, ok = at_least(ratio, 0.8)
            rows.append(
                Row(
                    f"{key}.ratio_disk",
                    bench,
                    "Sealdrop / disk ceiling",
                    _num(ratio),
                    ratio,
                    "≥ 0.80",
                    r,
                    ok,
                )
            )
        if "onionshare" in size:
            o = size["onionshare"]
            if "refused" in o:
                rows.append(
                    Row(
                        f"{key}.onionshare_mbps",
                        bench,
                        "OnionShare 2.7 receive",
                        f"refused (HTTP {o['status']}: > 1 GiB)",
                    )
                )
            else:
                shown = f"{o['mbps']} MB/s" if o.get("verified") else f"FAILED (HTTP {o['status']})"
                rows.append(
                    Row(f"{key}.onionshare_mbps", bench, "OnionShare 2.7 receive", shown, o["mbps"])
                )
                ratio = size.get("ratio_to_onionshare")
                r, ok = at_least(ratio, 3.0)
                rows.append(
                    Row(
                        f"{key}.ratio_onionshare",
                        bench,
                        "Sealdrop / OnionShare",
                        _num(ratio),
                        ratio,
                        "≥ 3",
                        r,
                        ok,
                    )
                )
                if o.get("durable_mbps"):
                    rows.append(
                        Row(
                            f"{key}.onionshare_durable_mbps",
                            bench,
                            "  OnionShare, then fsync of its file (durable)",
                            f"{o['durable_mbps']} MB/s",
                            o["durable_mbps"],
                        )
                    )
                    durable = size.get("ratio_to_onionshare_durable")
                    rows.append(
                        Row(
                            f"{key}.ratio_onionshare_durable",
                            bench,
                            "  Sealdrop / OnionShare made durable",
                            _num(durable),
                            durable,
                        )
                    )
        if not size.get("comparison_only"):
            growth = s["rss_growth_mib_max"]
            r, ok = at_most(growth, 64, strict=True)
            rows.append(
                Row(
                    f"{key}.rss_growth",
                    bench,
                    f"server RSS growth (idle {s['idle_rss_mib']} MiB)",
                    f"{growth} MiB (peak {s['peak_rss_mib']} MiB)",
                    growth,
                    "< 64 MiB",
                    r,
                    ok,
                )
            )
        for name, d in size.get("diagnostics", {}).items():
            what = {
                "in_process_disk": "diag: in-process, no HTTP (disk)",
                "server_tmpfs": "diag: server, instance on tmpfs",
                "in_process_tmpfs": "diag: in-process, no HTTP (tmpfs)",
            }.get(name, name)
            if "mbps" in d:
                cpu = d.get("server_cpu_seconds_per_gib", d.get("cpu_seconds_per_gib"))
                rows.append(
                    Row(
                        f"{key}.{name}",
                        bench,
                        what,
                        f"{d['mbps']} MB/s, {cpu} CPU-s/GiB",
                        d["mbps"],
                    )
                )
            else:
                rows.append(Row(f"{key}.{name}", bench, what, d.get("error", "n/a")))
    return rows


def page_rows(result: dict[str, Any]) -> list[Row]:
    rows = []
    for name, p in result["pages"].items():
        ok = p["bytes"] <= result["target_bytes"] and p["requests"] <= result["target_requests"]
        favicon = " +favicon" if "implicit_favicon" in p else ""
        rows.append(
            Row(
                f"pages.{name}",
                "2 page weight",
                f"{name} [{p['status']}]",
                f"{p['bytes']:,} B, {p['requests']} req{favicon}",
                p["bytes"],
                "≤ 16 KB, 1 req",
                round(p["bytes"] / result["target_bytes"], 3),
                ok,
            )
        )
    return rows


def session_rows(result: dict[str, Any]) -> list[Row]:
    paced, burst = result["paced"], result["burst"]
    n = result["sessions"]
    bench = f"3 {n} sessions"
    p99 = paced["all"]["p99_ms"]
    r, ok = at_most(p99, 50, strict=True)
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
        Row("sessions.p99", bench, "non-KDF pages p99", f"{p99} ms", p99, "< 50 ms", r, ok),
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
    rows.append(
        Row(
            "sessions.burst_p99",
            bench,
            f"burst: {n} conversations at once, p50 / p99",
            f"{burst['all']['p50_ms']} / {burst['all']['p99_ms']} ms",
            burst["all"]["p99_ms"],
        )
    )
    rows.append(
        Row(
            "sessions.client_lag",
            bench,
            "client event-loop lag p99",
            f"{paced['client_loop_lag']['p99_ms']} ms",
            paced["client_loop_lag"]["p99_ms"],
        )
    )
    return rows


def flood_rows(result: dict[str, Any]) -> list[Row]:
    bench = f"4 login flood x{result['attackers']}"
    server = result["server"]
    cold = result["server_from_cold"]
    growth = server["rss_growth_mib"]
    bound = result["rss_bound_mib"]
    # The pool's own memory is the bound; a few MiB more for the flood's requests themselves.
    r_mem, ok_mem = at_most(growth, bound + 8)
    during = result["probes_during"]["all"]["p99_ms"]
    r_p99, ok_p99 = at_most(during, 50, strict=True)
    other = sum(result["status_other"].values())
    first = result["first_wave"]
    return [
        Row(
            "flood.statuses",
            bench,
            f"answers to {result['attempts']} wrong logins ({result['waves']} waves)",
            f"{result['status_400']} x 400, {result['status_429']} x 429, {other} other "
            f"(1st wave: {first.get('400', 0)} x 400, {first.get('429', 0)} x 429)",
            result["status_400"],
        ),
        Row(
            "flood.rss_growth_cold",
            bench,
            f"server RSS growth over idle ({cold['idle_rss_mib']} MiB)",
            f"{cold['rss_growth_mib']} MiB (peak {cold['peak_rss_mib']} MiB)",
            cold["rss_growth_mib"],
        ),
        Row(
            "flood.rss_growth",
            bench,
            "  over the warm server (after control + 1 wave)",
            f"{growth} MiB",
            growth,
            f"≤ {bound}+8 MiB (KDF pool)",
            r_mem,
            ok_mem,
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
        Row(
            "flood.p99_during",
            bench,
            "other pages p99, during the flood",
            f"{during} ms",
            during,
            "< 50 ms (as 3)",
            r_p99,
            ok_p99,
        ),
        Row(
            "flood.login_400_p50",
            bench,
            "a wrong login answered 400: p50 / p99",
            f"{result['login_latency_400']['p50_ms']} / {result['login_latency_400']['p99_ms']} ms",
            result["login_latency_400"]["p50_ms"],
        ),
    ]


def api_rows(result: dict[str, Any]) -> list[Row]:
    rows = []
    for run in result.get("runs", []):
        if "loopback" not in run["mode"]:
            continue
        r, ok = at_most(run["p95_ms"], 200)
        rows.append(
            Row(
                f"api.page{run['page_size']}.p95",
                f"5 API {result['sources']:,} sources",
                f"page of {run['page_size']} ({run['pages']} pages): p50 / p95",
                f"{run['p50_ms']} / {run['p95_ms']} ms",
                run["p95_ms"],
                "p95 ≤ 200 ms",
                r,
                ok,
            )
        )
    return rows


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


# -- running -----------------------------------------------------------------------------------


def run_api(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    out = RESULTS / "api_sources-suite.json"
    command = [
        sys.executable,
        str(BENCH / "api_sources.py"),
        "--sources",
        str(args.api_sources),
        "--repeat",
        str(args.api_repeat),
        "--results",
        str(out),
    ]
    log = log_dir / "api_sources.log"
    with log.open("w") as f:
        done = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"api_sources.py failed (exit {done.returncode}); see {log}")
    result = json.loads(out.read_text())
    for run in result["runs"]:
        print(
            f"  {run['mode']:<28} page {run['page_size']:>4}: p50 {run['p50_ms']} ms, "
            f"p95 {run['p95_ms']} ms, max {run['max_ms']} ms",
            flush=True,
        )
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Benchmarks: " + ", ".join(BENCHMARKS),
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes and shorter runs")
    parser.add_argument("--only", help="comma-separated benchmarks to run (default: all)")
    parser.add_argument("--skip", help="comma-separated benchmarks to leave out")
    parser.add_argument("--upload-sizes", help="e.g. 1G,4G (full) or 256M (quick)")
    parser.add_argument("--upload-repeat", type=int, help="runs of each upload step; best counts")
    parser.add_argument("--no-onionshare", action="store_true", help="skip the OnionShare runs")
    parser.add_argument(
        "--no-verify", action="store_true", help="check stored sizes only, do not decrypt uploads"
    )
    parser.add_argument(
        "--no-diagnostics", action="store_true", help="skip the in-process and tmpfs upload runs"
    )
    parser.add_argument(
        "--profile", action="store_true", help="profile one upload with py-spy (installs it)"
    )
    parser.add_argument("--sessions", type=int, help="concurrent source sessions (3)")
    parser.add_argument("--session-seconds", type=float, help="measured seconds of browsing (3)")
    parser.add_argument("--attackers", type=int, help="concurrent wrong logins per wave (4)")
    parser.add_argument("--flood-seconds", type=float, help="seconds of flood (4)")
    parser.add_argument("--api-sources", type=int, help="sources listed through the API (5)")
    parser.add_argument("--api-repeat", type=int, help="timed listings per page size (5)")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=BENCH / ".work",
        help="where instances and big files go (its filesystem is what the upload measures)",
    )
    parser.add_argument(
        "--show",
        type=Path,
        metavar="JSON",
        help="print the table of a results file (and its comparison with the reference); run "
        "nothing",
    )
    parser.add_argument(
        "--save-reference",
        action="store_true",
        help="also write the results to bench/reference/ (commit it to compare later runs)",
    )
    args = parser.parse_args(argv)
    args.profile_name = "quick" if args.quick else "full"
    for key, value in PROFILES[args.profile_name].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    chosen = set(BENCHMARKS)
    if args.only:
        chosen = {b.strip() for b in args.only.split(",")}
    if args.skip:
        chosen -= {b.strip() for b in args.skip.split(",")}
    unknown = chosen - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    args.benchmarks = [b for b in BENCHMARKS if b in chosen]
    args.sizes = [parse_size(s) for s in args.upload_sizes.split(",")]
    return args


def rows_of(results: dict[str, Any]) -> list[Row]:
    """The table's rows, from the results of a run (this one or a saved one)."""
    build = {
        "upload": upload_rows,
        "pages": page_rows,
        "sessions": session_rows,
        "flood": flood_rows,
        "api": api_rows,
    }
    return [
        row
        for name in BENCHMARKS
        if name in results["benchmarks"]
        for row in build[name](results["benchmarks"][name])
    ]


def show(path: Path) -> int:
    results = json.loads(path.read_text())
    machine_info = results["machine"]
    print(
        f"{path}: {results['profile']} run of {results['when']}, "
        f"commit {results['git']['commit']}; "
        f"{machine_info['cpu_count_logical']} cores, {machine_info['cpu_model']}, "
        f"{machine_info['memory_total_gib']} GiB; {machine_info['workdir_filesystem']}; machine "
        f"CPU use over the run {results.get('machine_busy', {}).get('machine_cpu_percent')}%\n"
    )
    rows = rows_of(results)
    print_table(rows)
    reference = REFERENCE / f"suite-{results['profile']}.json"
    if reference.exists() and reference.resolve() != path.resolve():
        compare(rows, json.loads(reference.read_text()))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.show:
        return show(args.show)
    RESULTS.mkdir(exist_ok=True)
    log_dir = RESULTS / "logs"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir()
    workdir: Path = args.workdir.resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)

    info = machine(workdir)
    git = git_state()
    print(
        f"Sealdrop benchmarks ({args.profile_name}: {', '.join(args.benchmarks)}), "
        f"commit {git['commit']}"
        + (f" + {git['src_changes']} uncommitted file(s) in src/" if git["src_changes"] else "")
    )
    print(
        f"machine: {info['cpu_count_logical']} logical cores ({info['cpu_count_physical']} "
        f"physical), {info['cpu_model']}; {info['memory_total_gib']} GiB RAM "
        f"({info['memory_available_gib']} available); Python {info['python']}, "
        f"SQLite {info['sqlite']}; {info['platform']}"
    )
    print(
        f"work folder: {workdir}: {info['workdir_filesystem']}, {info['workdir_free_gib']} GiB "
        f"free; load average {info['load_average']}\n"
    )

    results: dict[str, Any] = {
        "suite": "sealdrop",
        "profile": args.profile_name,
        "when": now_iso(),
        "git": git,
        "machine": info,
        "settings": {
            k: (v if not isinstance(v, Path) else str(v))
            for k, v in vars(args).items()
            if k not in ("save_reference",)
        },
        "benchmarks": {},
        "errors": {},
    }
    rows: list[Row] = []
    started = time.monotonic()
    try:
        with system_cpu() as busy:
            for name in args.benchmarks:
                if name == "flood" and "sessions" in args.benchmarks:
                    continue  # run together with the sessions, on the same population
                print(f"[{name}]", flush=True)
                step = time.monotonic()
                try:
                    rows += run_one(name, args, workdir, log_dir, results)
                except Exception as exc:
                    results["errors"][name] = f"{type(exc).__name__}: {exc}"
                    print(f"  FAILED: {type(exc).__name__}: {exc}", flush=True)
                print(f"  ({time.monotonic() - step:.0f} s)\n", flush=True)
        results["machine_busy"] = busy
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    results["seconds"] = round(time.monotonic() - started, 1)
    results["table"] = [vars(row) for row in rows]
    print(
        f"Results ({args.profile_name}, {results['seconds']:.0f} s; the whole machine's CPU "
        f"use over the run: {busy['machine_cpu_percent']}% of {info['cpu_count_logical']} "
        f"cores, load average now {busy['load_average_1min']}):\n"
    )
    print_table(rows)
    missed = [r for r in rows if r.ok is False]
    print(
        f"\n{sum(r.ok is True for r in rows)} target(s) met, {len(missed)} missed"
        + (f"; failed: {', '.join(results['errors'])}" if results["errors"] else "")
    )

    out = RESULTS / f"suite-{args.profile_name}.json"
    out.write_text(json.dumps(results, indent=2, default=_json_default) + "\n")
    print(f"results: {out}; server logs: {log_dir}")
    reference = REFERENCE / f"suite-{args.profile_name}.json"
    if reference.exists():
        compare(rows, json.loads(reference.read_text()))
    else:
        print(f"no reference yet ({reference}): --save-reference writes one")
    if args.save_reference:
        REFERENCE.mkdir(exist_ok=True)
        reference.write_text(out.read_text())
        print(f"reference written: {reference}")
    return 1 if results["errors"] else 0


def run_one(
    name: str, args: argparse.Namespace, workdir: Path, log_dir: Path, results: dict[str, Any]
) -> list[Row]:
    if name == "upload":
        import upload

        print(
            f"  sizes {', '.join(size_label(s) for s in args.sizes)}, {args.upload_repeat} run(s) "
            "of each step; the best counts",
            flush=True,
        )
        result = upload.run(
            workdir,
            log_dir,
            args.sizes,
            repeat=args.upload_repeat,
            onionshare=not args.no_onionshare,
            verify=not args.no_verify,
            diagnostics=not args.no_diagnostics,
            profile=args.profile,
        )
        results["benchmarks"]["upload"] = result
        return upload_rows(result)
    if name == "pages":
        import page_weight

        result = page_weight.run(workdir, log_dir)
        results["benchmarks"]["pages"] = result
        return page_rows(result)
    if name in ("sessions", "flood"):
        import concurrency

        result = concurrency.run(
            workdir,
            log_dir,
            sessions=args.sessions,
            session_seconds=args.session_seconds,
            attackers=args.attackers,
            flood_seconds=args.flood_seconds,
            do_sessions="sessions" in args.benchmarks,
            do_flood="flood" in args.benchmarks,
        )
        print(f"  note: {result['setup']['note']}", flush=True)
        rows: list[Row] = []
        if "sessions" in result:
            results["benchmarks"]["sessions"] = {"setup": result["setup"], **result["sessions"]}
            rows += session_rows(result["sessions"])
        if "flood" in result:
            results["benchmarks"]["flood"] = {"setup": result["setup"], **result["flood"]}
            rows += flood_rows(result["flood"])
        return rows
    if name == "api":
        result = run_api(args, log_dir)
        results["benchmarks"]["api"] = result
        return api_rows(result)
    raise ValueError(name)


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value).__name__)


if __name__ == "__main__":
    raise SystemExit(main())
