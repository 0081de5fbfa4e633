"""scripts/demo installs only when it must, and passes its settings to `sealdrop demo`.

The real script runs in a copy of the project layout whose .venv/bin/python and sealdrop are
stubs that record how they were called: pip cannot reach the network in tests, and what is
checked is the script's decision, not pip."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[3] / "scripts" / "demo"

# pip: record the call; `pip install -e .` is what puts the sealdrop program into the venv.
PYTHON_STUB = """#!/bin/sh
echo "python $*" >> "$CALLS"
case "$*" in *"install -q -e ."*) cp "$SEALDROP_STUB" .venv/bin/sealdrop ;; esac
"""
SEALDROP_STUB = """#!/bin/sh
echo "sealdrop $*" >> "$CALLS"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, root / "scripts" / "demo")
    (root / "pyproject.toml").write_text('[project]\nname = "sealdrop"\n')
    venv_bin = root / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").write_text(PYTHON_STUB)
    (venv_bin / "python").chmod(0o755)
    (tmp_path / "sealdrop-stub").write_text(SEALDROP_STUB)
    (tmp_path / "sealdrop-stub").chmod(0o755)
    return root


def _run(project: Path, **env: str) -> list[str]:
    calls = project.parent / "calls.txt"
    calls.unlink(missing_ok=True)
    clean = {k: v for k, v in os.environ.items() if k not in ("PORT", "API_PORT", "DEMO_HOST")}
    subprocess.run(
        [str(project / "scripts" / "demo")],
        check=True,
        timeout=30,
        env={
            **clean,
            "CALLS": str(calls),
            "SEALDROP_STUB": str(project.parent / "sealdrop-stub"),
            **env,
        },
    )
    return calls.read_text().splitlines()


def test_demo_script_installs_once_and_again_only_when_pyproject_changes(project: Path) -> None:
    """The first run installs; a second run calls no pip at all (so it works offline); a
    changed pyproject.toml installs again."""
    first = _run(project)
    assert any("pip install -q -e ." in call for call in first)
    second = _run(project)
    assert not any("pip" in call for call in second)
    assert second == ["sealdrop demo demo --port 8080"]
    (project / "pyproject.toml").write_text('[project]\nname = "sealdrop"\nversion = "2"\n')
    third = _run(project)
    assert any("pip install -q -e ." in call for call in third)


def test_demo_script_passes_ports_and_host_to_sealdrop_demo(project: Path) -> None:
    """PORT, API_PORT and DEMO_HOST become `sealdrop demo`'s --port, --api-port and --host."""
    calls = _run(project, PORT="9000", API_PORT="9001", DEMO_HOST="127.0.0.2")
    assert calls[-1] == "sealdrop demo demo --port 9000 --api-port 9001 --host 127.0.0.2"
