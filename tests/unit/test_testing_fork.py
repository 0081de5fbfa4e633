"""The forking launcher of the tests' servers (sealdrop/testing_fork.py): a forked child must be
a process of its own as a new interpreter would be, or the server tests would check something
other than what they say (a server writing to the forker's TMPDIR would pass "nothing plaintext in
the server's TMPDIR" without looking)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sealdrop.services.instance import init_instance
from sealdrop.testing import ServerProcess
from sealdrop.testing_fork import Forker


@pytest.fixture
def forker() -> Iterator[Forker]:
    forker = Forker()
    yield forker
    forker.close()


def test_a_forked_child_has_exactly_its_environment_folder_streams_and_status(
    forker: Forker, tmp_path: Path
) -> None:
    """The child sees only the environment it was given (not the forker's), works in its folder,
    takes TMPDIR from that environment, reads an empty stdin, writes stdout and stderr to the
    file, and its exit status comes back."""
    tmpdir = tmp_path / "server-tmp"
    tmpdir.mkdir()
    env = {"PATH": os.environ["PATH"], "TMPDIR": str(tmpdir), "ONLY_HERE": "yes"}
    log = tmp_path / "log"
    with log.open("ab") as out:
        child = forker.spawn(["3"], env=env, stdout=out, cwd=str(tmp_path), program="describe")
    assert child.wait(30) == 3
    first, second = log.read_text().splitlines()
    seen = json.loads(first)
    assert seen["environ"] == env
    assert seen["cwd"] == str(tmp_path)
    assert seen["tempdir"] == str(tmpdir)
    assert seen["stdin"] == ""
    assert seen["argv"] == ["describe", "3"]
    assert seen["pid"] == child.pid != os.getpid()
    assert second == "to stderr"


def test_a_forked_child_is_polled_signalled_and_reaped_like_a_popen(
    forker: Forker, tmp_path: Path
) -> None:
    """poll() is None while it runs, wait() times out as Popen's does, SIGTERM and SIGKILL reach
    it and come back as negative statuses, and each child is its own process."""
    children = []
    for _ in range(2):
        with (tmp_path / "log").open("ab") as out:
            children.append(forker.spawn(["pause"], env={}, stdout=out, program="describe"))
    first, second = children
    assert first.pid != second.pid
    assert first.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        first.wait(0.2)
    first.terminate()
    assert first.wait(30) == -signal.SIGTERM
    assert second.poll() is None
    second.kill()
    assert second.wait(30) == -signal.SIGKILL
    second.kill()  # reaped already: nothing is sent, nothing fails


def test_a_forked_server_serves_and_stops_cleanly(
    forker: Forker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sealdrop serve` forked from the forker answers on both listeners and exits 0 on SIGTERM,
    leaving its log where a new interpreter's would be."""
    instance = init_instance(tmp_path / "instance")
    monkeypatch.setattr(ServerProcess, "forker", forker)
    server = ServerProcess(instance)
    server.start()
    try:
        assert httpx.get(server.url + "/", timeout=10).status_code == 200
        assert httpx.get(server.api_url + "/healthz", timeout=10).text == "ok\n"
    finally:
        server.stop()
    assert server.process is not None
    assert server.process.returncode == 0
    assert "Source interface: http://127.0.0.1:" in server.log()
