"""Benchmark 1: one large file uploaded over loopback HTTP, end to end, against the disk's own
write ceiling and against OnionShare 2.7's receive mode, all in the same run.

For each size:

1. an input file of random bytes is written and fsynced (so that its write-back does not run
   during a timed step);
2. disk ceiling: the same number of bytes written in 1 MiB writes to a new file in the instance's
   filesystem, then fsynced; the time from open to the end of fsync;
3. Sealdrop: the file posted by ``curl -F`` to ``/submit`` of a real ``sealdrop serve``, as the
   source form sends it (csrf_token, message, files), timed until the 303, which the server sends
   only once the ciphertext is fsynced and the row committed; the server's RSS is sampled during
   the upload and its kernel peak (VmHWM) read after; the stored blob is then decrypted with the
   organisation key and its SHA-256 compared with the input's;
4. OnionShare: the same file posted by ``curl -F`` to ``/upload`` of ``onionshare-cli --receive
   --local-only``, as its web form sends it (file[], text), timed until its 302; the file it saved
   is compared with the input; then fsynced, as OnionShare would have to to answer only once
   the upload is durable (the "made durable" comparison);
5. at the smallest size, Sealdrop once more with its instance on tmpfs (no disk at all).

Every big file is deleted as soon as its step is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from benchlib import (
    BENCH,
    GIB,
    MIB,
    Instance,
    MemoryWatch,
    Session,
    make_instance,
    new_source,
    size_label,
)

ONIONSHARE_VERSION = "2.7"
ONIONSHARE_VENV = BENCH / ".venv-onionshare"
# waitress (OnionShare's HTTP server) refuses request bodies above its default
# max_request_body_size, 1 GiB, which OnionShare 2.7 does not change.
ONIONSHARE_BODY_CAP = GIB
# When OnionShare refuses the benchmark's sizes, both servers are also compared on this one.
COMPARE_SIZE = 1000 * MIB
WRITE_BLOCK = MIB


def mbps(size: int, seconds: float) -> float:
    return round(size / 1e6 / seconds, 1) if seconds > 0 else 0.0


# -- files -------------------------------------------------------------------------------------


def make_input(path: Path, size: int) -> str:
    """Random bytes (a 64 MiB random block, repeated), fsynced; returns their SHA-256."""
    block = os.urandom(64 * MIB)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            piece = block[: min(left, len(block))]
            out.write(piece)
            digest.update(piece)
            left -= len(piece)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def settle() -> None:
    """Start each timed step with no dirty pages of an earlier step still being written back."""
    os.sync()
    time.sleep(1.0)


def disk_ceiling(folder: Path, size: int) -> dict[str, Any]:
    """Write ``size`` bytes in 1 MiB writes to a new file in ``folder``, fsync it: MB/s."""
    path = folder / f"ceiling-{uuid.uuid4().hex}.bin"
    block = os.urandom(WRITE_BLOCK)
    settle()
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        left = size
        while left:
            left -= os.write(fd, block[: min(left, WRITE_BLOCK)])
        written = time.perf_counter()
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - started
    path.unlink()
    return {
        "seconds": round(seconds, 3),
        "mbps": mbps(size, seconds),
        "write_seconds": round(written - started, 3),
        "fsync_seconds": round(seconds - (written - started), 3),
    }


# -- the HTTP client ---------------------------------------------------------------------------


def post_file(
    url: str,
    fields_before: list[tuple[str, str]],
    file_field: str,
    path: Path,
    fields_after: list[tuple[str, str]],
    cookies: dict[str, str],
) -> dict[str, Any]:
    """POST ``path`` with ``curl -F`` (streamed, the fields in the given order, as a browser's
    form sends them) and time the whole request until the response."""
    command = ["curl", "--silent", "--show-error", "--output", "/dev/null"]
    # A browser never sends Expect: 100-continue; without this curl would wait for a 100.
    command += ["--header", "Expect:", "--write-out", "%{http_code} %{time_total}"]
    if cookies:
        command += ["--cookie", "; ".join(f"{k}={v}" for k, v in cookies.items())]
    for name, value in fields_before:
        command += ["--form-string", f"{name}={value}"]
    command += ["--form", f"{file_field}=@{path};type=application/octet-stream"]
    for name, value in fields_after:
        command += ["--form-string", f"{name}={value}"]
    command.append(url)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    code, _, total = done.stdout.strip().partition(" ")
    return {
        "status": int(code) if code.isdigit() else 0,
        "seconds": float(total) if total else wall,
        "error": done.stderr.strip() or None,
    }


# -- Sealdrop ----------------------------------------------------------------------------------


class SealdropTarget:
    def __init__(self, instance: Instance, max_size: int) -> None:
        self.instance = instance
        self.server = instance.server(
            {
                "SEALDROP_LIMITS_MAX_UPLOAD_BYTES": str(max_size + 16 * MIB),
                # The daily quota of one source, where the server has one: several large
                # uploads come from the same source here.
                "SEALDROP_LIMITS_SOURCE_DAILY_UPLOAD_BYTES": str(1024 * GIB),
            },
            name="upload",
        )
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def __enter__(self) -> SealdropTarget:
        self.server.start()
        session = asyncio.run(_new_source(self.server.url))
        self.cookies = {"sealdrop_session": session.cookie}
        self.csrf = session.csrf
        print(f"  Sealdrop server pid {self.server.pid} (for py-spy, see README)", flush=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def blobs(self) -> set[Path]:
        store = self.instance.path / "store"
        return {
            p
            for p in store.rglob("*")
            if p.is_file() and "staging" not in p.relative_to(store).parts
        }

    def upload(self, path: Path, sha256: str, verify: bool) -> dict[str, Any]:
        size = path.stat().st_size
        before = self.blobs()
        settle()
        with MemoryWatch(self.server.pid) as memory:
            sent = post_file(
                self.server.url + "/submit",
                [("csrf_token", self.csrf), ("message", "")],
                "files",
                path,
                [],
                self.cookies,
            )
        result: dict[str, Any] = {
            **sent,
            "seconds": round(sent["seconds"], 3),
            "mbps": mbps(size, sent["seconds"]),
            **memory.report(),
            "server_cpu_seconds_per_gib": round(memory.cpu_seconds * GIB / size, 2),
            "with_children_cpu_seconds_per_gib": round(memory.tree_cpu_seconds * GIB / size, 2),
        }
        new = sorted(self.blobs() - before, key=lambda p: p.stat().st_size)
        result["stored_bytes"] = new[-1].stat().st_size if new else 0
        if sent["status"] == 303 and new:
            if verify:
                started = time.perf_counter()
                result["verified"] = decrypt_sha256(new[-1], self.instance.identity) == sha256
                result["verify_seconds"] = round(time.perf_counter() - started, 1)
            else:
                # Not decrypted: at least the ciphertext must be as long as an age file of
                # the input (16 bytes of tag per 64 KiB chunk and a header).
                result["verified"] = result["stored_bytes"] >= size + 16 * -(-size // 65536)
        else:
            result["verified"] = False
        for blob in new:
            blob.unlink()
        return result


def decrypt_sha256(path: Path, identity: Any) -> str:
    from sealdrop.crypto.envelope import decrypt

    class Hasher:
        def __init__(self) -> None:
            self.digest = hashlib.sha256()

        def write(self, data: bytes) -> int:
            self.digest.update(data)
            return len(data)

    sink = Hasher()
    with path.open("rb") as src:
        decrypt(src, sink, [identity])
    return sink.digest.hexdigest()


# -- OnionShare --------------------------------------------------------------------------------


def onionshare_cli() -> Path:
    """onionshare-cli 2.7 in its own virtualenv (bench/.venv-onionshare), installed from PyPI on
    first use, so that its dependencies never touch the project's .venv."""
    requirement = f"onionshare-cli=={ONIONSHARE_VERSION}"
    exe = ONIONSHARE_VENV / "bin" / "onionshare-cli"
    marker = ONIONSHARE_VENV / f".installed-{requirement.replace('=', '-')}"
    if exe.exists() and marker.exists():
        return exe
    base = getattr(sys, "_base_executable", None) or sys.executable
    print(f"  installing {requirement} into {ONIONSHARE_VENV} ...")
    subprocess.run([base, "-m", "venv", "--clear", str(ONIONSHARE_VENV)], check=True)
    subprocess.run(
        [str(ONIONSHARE_VENV / "bin" / "pip"), "install", "--quiet", requirement],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    marker.touch()
    return exe


class OnionShareTarget:
    """``onionshare-cli --receive --local-only`` (no Tor) saving into a folder of the workdir."""

    def __init__(self, folder: Path, log_dir: Path) -> None:
        self.folder = folder
        self.data = folder / "received"
        self.home = folder / "home"  # its settings go to ~/.config/onionshare
        self.tmp = folder / "tmp"  # waitress spools large bodies to temporary files
        self.log = log_dir / "onionshare.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> OnionShareTarget:
        for path in (self.data, self.home, self.tmp):
            path.mkdir(parents=True, exist_ok=True)
        exe = onionshare_cli()
        env = {**os.environ, "HOME": str(self.home), "TMPDIR": str(self.tmp)}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(exe), "--receive", "--local-only", "--data-dir", str(self.data)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        # It prints "Give this address and private key to the sender:" and then the URL.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"onionshare-cli exited:\n{self.log.read_text()}")
            match = re.search(r"http://127\.0\.0\.1:\d+", self.log.read_text(errors="replace"))
            if match:
                self.url = match.group(0)
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(self.url + "/", timeout=2).status_code == 200:
                        return self
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"onionshare-cli did not start:\n{self.log.read_text()}")

    def __exit__(self, *exc: object) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(15)
        shutil.rmtree(self.folder, ignore_errors=True)

    def clean(self) -> None:
        for path in list(self.data.iterdir()) + list(self.tmp.iterdir()):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def upload(self, path: Path, sha256: str) -> dict[str, Any]:
        assert self.process is not None
        size = path.stat().st_size
        # Like a browser: the form page first (OnionShare keeps a Flask session cookie).
        cookies = dict(httpx.get(self.url + "/", timeout=10).cookies)
        settle()
        with MemoryWatch(self.process.pid) as memory:
            sent = post_file(self.url + "/upload", [], "file[]", path, [("text", "")], cookies)
        result: dict[str, Any] = {
            **sent,
            "seconds": round(sent["seconds"], 3),
            "mbps": mbps(size, sent["seconds"]),
            **memory.report(),
        }
        saved = [p for p in self.data.rglob("*") if p.is_file() and not p.name.endswith(".part")]
        # OnionShare answers before its file is on disk (it never fsyncs); Sealdrop answers only
        # once the upload is durable. The same guarantee for OnionShare costs this much more:
        # fsync of what it wrote and of the folder that names it, timed right after the answer.
        if sent["status"] == 302 and saved:
            synced = time.perf_counter()
            for item in saved:
                for target in (item, item.parent):
                    fd = os.open(target, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            durable = sent["seconds"] + time.perf_counter() - synced
            result["durable_seconds"] = round(durable, 3)
            result["durable_mbps"] = mbps(size, durable)
        result["stored_bytes"] = sum(p.stat().st_size for p in saved)
        result["verified"] = (
            sent["status"] == 302
            and len(saved) == 1
            and saved[0].stat().st_size == size
            and file_sha256(saved[0]) == sha256
        )
        if sent["status"] == 413 or (sent["status"] == 0 and size + 1024 > ONIONSHARE_BODY_CAP):
            result["refused"] = (
                "413: larger than waitress's max_request_body_size (1 GiB), OnionShare 2.7's limit"
            )
            result["mbps"] = 0.0  # refused at once: no throughput to speak of
        self.clean()
        return result


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


# -- the benchmark -----------------------------------------------------------------------------


def run(
    workdir: Path,
    log_dir: Path,
    sizes: list[int],
    *,
    repeat: int = 1,
    onionshare: bool = True,
    verify: bool = True,
    tmpfs: bool = True,
) -> dict[str, Any]:
    """Each size ``repeat`` times, the steps interleaved (disk, Sealdrop, OnionShare, disk, ...)
    so that a slow moment of a shared disk hits all three alike; the best run of each counts."""
    folder = workdir / "upload"
    instance = make_instance(folder, log_dir)
    results: dict[str, Any] = {
        "sizes": [],
        "repeat": repeat,
    }
    free = shutil.disk_usage(folder).free
    needed = 2 * max(sizes) + GIB
    if free < needed:
        raise RuntimeError(f"{folder}: {free / GIB:.1f} GiB free, {needed / GIB:.1f} GiB needed")
    try:
        with SealdropTarget(instance, max(sizes)) as sealdrop, contextlib.ExitStack() as stack:
            peer: OnionShareTarget | None = None
            if onionshare:
                try:
                    peer = stack.enter_context(OnionShareTarget(folder / "onionshare", log_dir))
                except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
                    # No PyPI, or it does not start: the rest of the benchmark still runs.
                    results["onionshare_error"] = f"{type(exc).__name__}: {exc}"[:2000]
                    print(f"  OnionShare unavailable: {results['onionshare_error']}", flush=True)
            refused: list[int] = []
            for size in sizes:
                label = size_label(size)
                row: dict[str, Any] = {"size": size, "label": label}
                path = folder / f"input-{size}.bin"
                try:
                    print(f"  {label}: writing the input file ...", flush=True)
                    sha256 = make_input(path, size)
                    runs: dict[str, list[dict[str, Any]]] = {"disk": [], "sealdrop": []}
                    if peer is not None:
                        runs["onionshare"] = []
                    for n in range(repeat):
                        step = f"  {label} [{n + 1}/{repeat}]:"
                        print(f"{step} disk ceiling ...", flush=True)
                        runs["disk"].append(disk_ceiling(folder, size))
                        print(f"{step} Sealdrop ...", flush=True)
                        runs["sealdrop"].append(sealdrop.upload(path, sha256, verify))
                        if peer is not None and not (refused and refused[-1] == size):
                            print(f"{step} OnionShare ...", flush=True)
                            runs["onionshare"].append(peer.upload(path, sha256))
                            if "refused" in runs["onionshare"][-1]:
                                refused.append(size)
                    _best(row, runs)
                    if tmpfs and size == min(sizes):
                        row["tmpfs"] = _on_tmpfs(path, log_dir)
                finally:
                    path.unlink(missing_ok=True)
                results["sizes"].append(row)
                _print_row(row)
            if peer is not None and refused and min(refused) > COMPARE_SIZE:
                # OnionShare refused the sizes asked for: compare both on one it accepts.
                size = COMPARE_SIZE
                label = size_label(size)
                row = {"size": size, "label": label, "comparison_only": True}
                path = folder / f"input-{size}.bin"
                try:
                    print(f"  {label} (OnionShare's largest): input file ...", flush=True)
                    sha256 = make_input(path, size)
                    runs = {"sealdrop": [], "onionshare": []}
                    for n in range(repeat):
                        print(f"  {label} [{n + 1}/{repeat}]: Sealdrop, OnionShare ...", flush=True)
                        runs["sealdrop"].append(sealdrop.upload(path, sha256, verify))
                        runs["onionshare"].append(peer.upload(path, sha256))
                    _best(row, runs)
                finally:
                    path.unlink(missing_ok=True)
                results["sizes"].append(row)
                _print_row(row)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return results


def _best(row: dict[str, Any], runs: dict[str, list[dict[str, Any]]]) -> None:
    """The fastest verified run of each; every run kept under ``runs``; the ratios."""
    row["runs"] = runs
    for name, done in runs.items():
        if not done:
            continue
        good = [r for r in done if r.get("verified", True)] or done
        row[name] = dict(max(good, key=lambda r: r["mbps"]))
        if name != "disk":
            row[name]["rss_growth_mib_max"] = max(r["rss_growth_mib"] for r in done)
    # Each ratio is taken within one repetition (runs made a minute apart, so a slow or fast
    # moment of the shared disk hits both sides), and the best of those counts: a ratio of the
    # fastest run of one side to the fastest of the other could pair runs minutes apart.
    for key, peer, peer_mbps, digits in (
        ("ratio_to_disk", "disk", "mbps", 3),
        ("ratio_to_onionshare", "onionshare", "mbps", 2),
        ("ratio_to_onionshare_durable", "onionshare", "durable_mbps", 2),
    ):
        ratio = _paired_ratio(runs.get("sealdrop", []), runs.get(peer, []), peer_mbps)
        if ratio is not None:
            row[key] = round(ratio, digits)


def _paired_ratio(
    ours: list[dict[str, Any]], theirs: list[dict[str, Any]], their_mbps: str
) -> float | None:
    """The best of Sealdrop / peer over the repetitions where both succeeded."""
    ratios = [
        mine["mbps"] / other[their_mbps]
        for mine, other in zip(ours, theirs, strict=False)
        if mine.get("status") == 303
        and mine.get("verified")
        and other.get("verified", True)
        and other.get(their_mbps)
    ]
    return max(ratios) if ratios else None


def _on_tmpfs(path: Path, log_dir: Path) -> dict[str, Any]:
    """The whole server with its instance on tmpfs (/dev/shm: no disk at all): what the code
    reaches when the disk is not what bounds it. Never fails the run."""
    shm = Path("/dev/shm")
    size = path.stat().st_size
    if not shm.is_dir() or shutil.disk_usage(shm).free < 2 * size + GIB:
        return {"error": "no room on /dev/shm"}
    print(f"  {size_label(size)}: Sealdrop with its instance on tmpfs ...", flush=True)
    folder = Path(tempfile.mkdtemp(prefix="sealdrop-bench-", dir=shm))
    try:
        instance = make_instance(folder / "upload-tmpfs", log_dir)
        with SealdropTarget(instance, size) as on_tmpfs:
            return on_tmpfs.upload(path, "", verify=False)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _new_source(url: str) -> Session:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        return await new_source(client)


def _print_row(row: dict[str, Any]) -> None:
    parts: list[str] = []
    if "disk" in row:
        parts.append(f"disk {row['disk']['mbps']} MB/s")
    s = row["sealdrop"]
    parts.append(
        f"Sealdrop {s['mbps']} MB/s (HTTP {s['status']}, verified={s['verified']}, "
        f"RSS +{s['rss_growth_mib_max']} MiB, server CPU {s['server_cpu_seconds_per_gib']} s/GiB, "
        f"with its age children {s.get('with_children_cpu_seconds_per_gib')} s/GiB)"
    )
    if "onionshare" in row:
        o = row["onionshare"]
        parts.append(
            f"OnionShare {o['mbps']} MB/s (HTTP {o['status']}, verified={o['verified']})"
            if "refused" not in o
            else f"OnionShare refused ({o['status']})"
        )
    if "tmpfs" in row:
        parts.append(f"on tmpfs {row['tmpfs'].get('mbps', row['tmpfs'].get('error'))} MB/s")
    print(f"  {row['label']}: " + ", ".join(parts), flush=True)
