"""Benchmark 6: resumable (tus, /uploads) against the plain form (/submit), same file, same run.

One instance, one server, one source. For each size the same input file is sent:

1. form: ``curl -F`` to ``/submit``, as the no-JavaScript form sends it (``upload.post_file``),
   timed until the 303 (ciphertext fsynced, row committed);
2. resumable: ``curl`` creates the upload (``POST /uploads``) and sends the whole file in one
   ``PATCH``, as the page's script does on an unbroken connection, timed from the creation to the
   204 of the PATCH that finishes it (the item is stored by then).

Runs alternate (form, resumable, form, ...) so a slow moment of a shared disk hits both alike;
the best of each counts. The ratio resumable / form is printed side by side. Not part of the
test suite.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from benchlib import Session, make_instance, new_source, size_label
from upload import make_input, mbps, post_file, settle


def _tus(url: str, session: Session, path: Path, size: int) -> dict[str, Any]:
    cookie = f"sealdrop_session={session.cookie}"
    common = ["--header", "Tus-Resumable: 1.0.0", "--header", f"X-CSRF-Token: {session.csrf}"]
    started = time.perf_counter()
    created = subprocess.run(
        [
            *("curl", "--silent", "--show-error", "--include", "--output", "-"),
            *("--cookie", cookie, *common, "--header", f"Upload-Length: {size}"),
            *("--request", "POST", f"{url}/uploads"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    location = next(
        (
            line.split(":", 1)[1].strip()
            for line in created.stdout.splitlines()
            if line.lower().startswith("location:")
        ),
        None,
    )
    if location is None:
        return {"status": 0, "seconds": 0.0, "error": created.stdout[:500] + created.stderr}
    sent = subprocess.run(
        [
            *("curl", "--silent", "--show-error", "--output", "/dev/null", "--cookie", cookie),
            *common,
            *("--header", "Upload-Offset: 0", "--header", "Expect:"),
            *("--header", "Content-Type: application/offset+octet-stream"),
            *("--write-out", "%{http_code}", "--request", "PATCH"),
            # --upload-file streams the file (--data-binary would read it all into memory).
            *("--upload-file", str(path), f"{url}{location}"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    status = int(sent.stdout) if sent.stdout.strip().isdigit() else 0
    return {"status": status, "seconds": round(seconds, 3), "error": sent.stderr.strip() or None}


def run(workdir: Path, log_dir: Path, sizes: list[int], *, repeat: int = 1) -> dict[str, Any]:
    folder = workdir / "resumable"
    instance = make_instance(folder, log_dir)
    results: dict[str, Any] = {"sizes": [], "repeat": repeat}
    # The largest size must fit the upload limit (2 GiB by default), and one source sends each
    # file twice (form, then tus): both raised as the upload benchmark does, or the 4 GiB run is
    # refused with 413 by both paths.
    limit = max(sizes, default=0) + 16 * 1024 * 1024
    settings = {
        "SEALDROP_LIMITS_MAX_UPLOAD_BYTES": str(limit),
        "SEALDROP_LIMITS_SOURCE_DAILY_UPLOAD_BYTES": str(1024 * 1024 * 1024 * 1024),
    }
    server = instance.server(settings, name="resumable").start()
    try:
        for size in sizes:
            label = size_label(size)
            path = folder / f"input-{size}.bin"
            make_input(path, size)
            runs: dict[str, list[dict[str, Any]]] = {"form": [], "resumable": []}
            try:
                for n in range(repeat):
                    # A new source per run: the daily quota of one would run out.
                    async def source() -> Session:
                        async with httpx.AsyncClient(base_url=server.url) as client:
                            return await new_source(client)

                    session = asyncio.run(source())
                    print(f"  {label} [{n + 1}/{repeat}]: form, resumable ...", flush=True)
                    settle()
                    form = post_file(
                        f"{server.url}/submit",
                        [("csrf_token", session.csrf), ("message", "")],
                        "files",
                        path,
                        [],
                        {"sealdrop_session": session.cookie},
                    )
                    runs["form"].append({**form, "mbps": mbps(size, form["seconds"])})
                    settle()
                    tus = _tus(server.url, session, path, size)
                    runs["resumable"].append({**tus, "mbps": mbps(size, tus["seconds"])})
            finally:
                path.unlink(missing_ok=True)
            ok_form = [r for r in runs["form"] if r["status"] == 303]
            ok_tus = [r for r in runs["resumable"] if r["status"] == 204]
            best_form = max(ok_form, key=lambda r: r["mbps"], default=None)
            best_tus = max(ok_tus, key=lambda r: r["mbps"], default=None)
            ratio = (
                round(best_tus["mbps"] / best_form["mbps"], 2)
                if best_form and best_tus and best_form["mbps"]
                else None
            )
            row = {"size": size, "label": label, "runs": runs, "form": best_form}
            row |= {"resumable": best_tus, "ratio": ratio}
            results["sizes"].append(row)
            shown_form = f"{best_form['mbps']} MB/s" if best_form else "FAILED"
            shown_tus = f"{best_tus['mbps']} MB/s" if best_tus else "FAILED"
            print(
                f"  {label}: form {shown_form} | resumable {shown_tus} | resumable/form {ratio}",
                flush=True,
            )
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return results
