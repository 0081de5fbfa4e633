"""Benchmark 7: uploads to post-quantum hybrid recipients against X25519 recipients, same run.

Two instances side by side, one with an X25519 organisation key (``age1…``), one with a hybrid
ML-KEM-768 + X25519 key (``age1pq1…``); one ``sealdrop serve`` each, the same limits. For each
size the same input file is posted to both through the real upload path (``curl -F`` to
``/submit``, timed until the 303: ciphertext fsynced, row committed), alternating X25519, hybrid,
X25519, ... so that a slow moment of a shared disk hits both alike; the best run of each counts.
Per path: MB/s, the server's CPU seconds per GiB, its RSS growth; each stored blob is decrypted
with its key and compared with the input (the hybrid one by our own decryptor). The target
(issue 18): hybrid ≥ 80% of the X25519 path's MB/s (the payload is the same STREAM construction;
only the header differs, and large files go through a child process on both paths: stock age for
X25519, ``python -m sealdrop.services.age_child`` for hybrid).

Also, in-process and exact: the header bytes each recipient adds (X25519 vs hybrid stanza).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import psutil
import targets
from benchlib import Instance, make_instance, size_label
from table import Row, _num, checked
from upload import SealdropTarget, make_input

from sealdrop.crypto import age_stream, keys
from sealdrop.services.instance import init_instance
from sealdrop.testing import sealdrop_command


def _hybrid_instance(folder: Path, log_dir: Path) -> Instance:
    """An instance switched to post-quantum keys (`[crypto] post_quantum = true`, as
    docs/operator.md's switch says) whose one organisation key is a hybrid one. Without the
    switch the key waits for it and the instance accepts nothing."""
    folder.mkdir(parents=True, exist_ok=True)
    path = init_instance(folder / "instance")
    toml = path / "sealdrop.toml"
    switched = toml.read_text().replace("# post_quantum = false", "post_quantum = true")
    if "\npost_quantum = true" not in switched:
        raise RuntimeError("sealdrop.toml as `init` writes it has no `# post_quantum = false`")
    toml.write_text(switched)
    identity = keys.generate_identity(post_quantum=True)
    subprocess.run(
        sealdrop_command(
            "recipients", "add", path, str(keys.recipient_of(identity)), "--name", "bench-pq"
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    return Instance(path, identity, log_dir)


def header_bytes_per_recipient() -> dict[str, int]:
    """How many header bytes one more recipient of each kind adds, measured on headers our writer
    makes (pyrage, the X25519 path's other writer, adds a random-length grease stanza)."""
    out: dict[str, int] = {}
    for name, post_quantum in (("x25519", False), ("hybrid", True)):
        sizes = []
        for count in (1, 2):
            recipients = [
                keys.recipient_of(keys.generate_identity(post_quantum=post_quantum))
                for _ in range(count)
            ]
            header, _ = age_stream.new_stream(recipients)
            sizes.append(len(header))
        out[name] = sizes[1] - sizes[0]
        out[f"{name}_header_one_recipient"] = sizes[0]  # intro, stanza, MAC line, payload nonce
    return out


def _cpu_with_children(pid: int) -> float:
    # The encrypting child (stock age, or our Python writer for hybrid recipients) is reaped by
    # the server, so its CPU time shows in the server's children_* times: counted, or the two
    # paths' CPU per GiB would leave out the very work they differ in.
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system + times.children_user + times.children_system)


def _upload(target: SealdropTarget, path: Path, digest: str, verify: bool) -> dict[str, Any]:
    pid = target.server.pid
    before = _cpu_with_children(pid)
    result = target.upload(path, digest, verify)
    cpu = _cpu_with_children(pid) - before
    result["cpu_seconds_with_child"] = round(cpu, 2)
    result["cpu_seconds_per_gib_with_child"] = round(cpu * (1 << 30) / path.stat().st_size, 2)
    return result


def run(
    workdir: Path, log_dir: Path, sizes: list[int], *, repeat: int = 1, verify: bool = True
) -> dict[str, Any]:
    folder = workdir / "pq"
    instances = {
        "x25519": make_instance(folder / "x25519", log_dir),
        "hybrid": _hybrid_instance(folder / "hybrid", log_dir),
    }
    results: dict[str, Any] = {"sizes": [], "repeat": repeat}
    results["header_bytes_per_recipient"] = header_bytes_per_recipient()
    print(f"  header bytes per recipient: {results['header_bytes_per_recipient']}", flush=True)
    try:
        for size in sizes:
            label = size_label(size)
            path = folder / f"input-{size}.bin"
            digest = make_input(path, size)
            runs: dict[str, list[dict[str, Any]]] = {"x25519": [], "hybrid": []}
            try:
                targets_by_kind = {
                    kind: SealdropTarget(instance, size) for kind, instance in instances.items()
                }
                for target in targets_by_kind.values():
                    target.__enter__()
                try:
                    for n in range(repeat):
                        for kind, target in targets_by_kind.items():
                            print(f"  {label} [{n + 1}/{repeat}]: {kind} ...", flush=True)
                            runs[kind].append(_upload(target, path, digest, verify))
                finally:
                    for target in targets_by_kind.values():
                        target.__exit__(None, None, None)
            finally:
                path.unlink(missing_ok=True)
            row: dict[str, Any] = {"size": size, "label": label, "runs": runs}
            for kind, done in runs.items():
                good = [r for r in done if r.get("verified")]
                row[kind] = max(good, key=lambda r: r["mbps"], default=None)
            x, h = row["x25519"], row["hybrid"]
            row["ratio"] = round(h["mbps"] / x["mbps"], 3) if x and h and x["mbps"] else None
            results["sizes"].append(row)
            print(
                f"  {label}: X25519 {x and x['mbps']} MB/s | hybrid {h and h['mbps']} MB/s | "
                f"hybrid/X25519 {row['ratio']}",
                flush=True,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return results


def rows(result: dict[str, Any]) -> list[Row]:
    """The table's rows: both paths side by side, the ratio against its target, header bytes."""
    out: list[Row] = []
    for size in result["sizes"]:
        bench = f"7 hybrid vs X25519 {size['label']}"
        key = f"pq.{size['label'].replace(' ', '')}"
        for kind, measure in (("x25519", "X25519 recipient"), ("hybrid", "hybrid recipient")):
            best = size.get(kind)
            if not best:
                out.append(Row(f"{key}.{kind}_mbps", bench, measure, "FAILED", None))
                continue
            shown = (
                f"{best['mbps']} MB/s, {best['cpu_seconds_per_gib_with_child']} CPU-s/GiB, "
                f"RSS +{best['rss_growth_mib']} MiB"
            )
            out.append(Row(f"{key}.{kind}_mbps", bench, measure, shown, best["mbps"]))
        ratio = size.get("ratio")
        out.append(
            checked(
                f"{key}.ratio", bench, "hybrid / X25519 MB/s", _num(ratio), ratio, targets.PQ_RATIO
            )
        )
    per = result.get("header_bytes_per_recipient", {})
    for kind in ("x25519", "hybrid"):
        if kind in per:
            measure = f"header bytes per {kind} recipient"
            out.append(Row(f"pq.header.{kind}", "7 header", measure, f"{per[kind]} B", per[kind]))
    return out
