"""Sealdrop's benchmark suite (issue 7): one command, one table, ratios measured in the same run.

Run it as ``bench/run`` (``--help`` for the options; ``--quick`` for a check in a minute or two).

1. upload      1 GiB and 4 GiB over loopback HTTP: MB/s, server RSS, against the disk's write
               ceiling and OnionShare 2.7 (bench/upload.py)
2. pages       bytes on the wire and requests of every source page (bench/page_weight.py)
3. sessions    200 concurrent source sessions: latency of the pages (bench/concurrency.py)
4. flood       100 concurrent wrong-codename logins: RSS, 429s, other pages (bench/concurrency.py)
5. api         10,000 sources listed page by page through the journalist API (bench/api.py)
6. resumable   the same file by the plain form and by tus (/uploads): MB/s side by side
               (bench/resumable.py)
7. pq          the same upload to a post-quantum hybrid and to an X25519 recipient: MB/s,
               CPU-s/GiB, RSS growth, header bytes per recipient (bench/pq.py)
8. scale       an upload to SeaweedFS (S3) vs the filesystem; source pages with 1 and 2
               workers (serve --workers) on PostgreSQL + S3 (bench/scale.py)

Prints the machine and one table (each measure, its target from bench/targets.py, measured /
target, verdict), writes
everything to bench/results/suite-<profile>.json, and compares with bench/reference/ when a
reference of the same profile is there (``--save-reference`` writes one).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import targets
from benchlib import BENCH, git_state, machine, now_iso, parse_size, size_label, system_cpu
from table import BENCHMARKS, Row, compare, print_table, rows_of

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
        "scale_sessions": 100,
        "scale_seconds": 20,
        "scale_flood_repeat": 2,
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
        "scale_sessions": 20,
        "scale_seconds": 8,
        "scale_flood_repeat": 1,
    },
}


# -- running -----------------------------------------------------------------------------------


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
        "--no-tmpfs", action="store_true", help="skip the upload with the instance on tmpfs"
    )
    parser.add_argument("--sessions", type=int, help="concurrent source sessions (3)")
    parser.add_argument("--session-seconds", type=float, help="measured seconds of browsing (3)")
    parser.add_argument("--attackers", type=int, help="concurrent wrong logins per wave (4)")
    parser.add_argument("--flood-seconds", type=float, help="seconds of flood (4)")
    parser.add_argument("--api-sources", type=int, help="sources listed through the API (5)")
    parser.add_argument("--api-repeat", type=int, help="timed listings per page size (5)")
    parser.add_argument(
        "--api-database-url",
        help="list from an EMPTY PostgreSQL database (postgresql+psycopg://...) instead of "
        "SQLite (5)",
    )
    parser.add_argument("--scale-sessions", type=int, help="sessions of the workers' pages (8)")
    parser.add_argument(
        "--scale-seconds", type=float, help="measured seconds at each pace and worker count (8)"
    )
    parser.add_argument(
        "--scale-parts",
        default="upload,pages,flood",
        help="which parts of 8 run: upload (S3 vs filesystem), pages and flood (1 and 2 "
        "workers; the flood uses --attackers and --flood-seconds)",
    )
    parser.add_argument(
        "--scale-flood-repeat", type=int, help="floods with each worker count, alternated (8)"
    )
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
        "--write-targets",
        action="store_true",
        help="write the table of targets (bench/targets.py) into bench/README.md; run nothing",
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
    if args.write_targets:
        targets.write_readme()
        print(f"{targets.README}: targets written")
        return 0
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
                    produced = run_one(name, args, workdir, log_dir)
                    rows += rows_of({"benchmarks": produced})
                    results["benchmarks"].update(produced)
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
    if not targets.readme_is_current():
        print(
            "bench/README.md's table of targets differs from bench/targets.py: "
            "bench/run --write-targets"
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
    name: str, args: argparse.Namespace, workdir: Path, log_dir: Path
) -> dict[str, dict[str, Any]]:
    """Run one benchmark (sessions and flood: both, on one population); their results by name."""
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
            tmpfs=not args.no_tmpfs,
        )
        return {"upload": result}
    if name == "pages":
        import page_weight

        return {"pages": page_weight.run(workdir, log_dir)}
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
        return {
            name: {"setup": result["setup"], **result[name]}
            for name in ("sessions", "flood")
            if name in result
        }
    if name == "api":
        import api

        result = api.run(
            workdir,
            log_dir,
            sources=args.api_sources,
            repeat=args.api_repeat,
            database_url=args.api_database_url,
        )
        return {"api": result}
    if name == "resumable":
        import resumable

        result = resumable.run(workdir, log_dir, args.sizes, repeat=args.upload_repeat)
        return {"resumable": result}
    if name == "pq":
        import pq

        # The smallest upload size (1 GiB in the full profile, 256 MiB quick): issue 18's 1 GiB.
        result = pq.run(
            workdir,
            log_dir,
            [min(args.sizes)],
            repeat=args.upload_repeat,
            verify=not args.no_verify,
        )
        return {"pq": result}
    if name == "scale":
        import scale

        result = scale.run(
            workdir,
            log_dir,
            size=min(args.sizes),
            repeat=args.upload_repeat,
            verify=not args.no_verify,
            sessions=args.scale_sessions,
            seconds=args.scale_seconds,
            parts=frozenset(args.scale_parts.split(",")),
            attackers=args.attackers,
            flood_seconds=args.flood_seconds,
            flood_repeat=args.scale_flood_repeat,
        )
        return {"scale": result}
    raise ValueError(name)


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value).__name__)


if __name__ == "__main__":
    raise SystemExit(main())
