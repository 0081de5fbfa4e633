"""crypto starts no process. The import-linter contract "crypto is pure" forbids the modules
(subprocess, threading, socket, …); the process functions of ``os``, which crypto imports for
``os.urandom``, can only be found in the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

import sealdrop.crypto

# os.system, os.popen, os.fork, os.exec*, os.spawn*, os.posix_spawn*, os.kill.
_PROCESS = ("system", "popen", "fork", "exec", "spawn", "posix_spawn", "kill")


def _process_calls(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            name = f"{node.value.id}.{node.attr}"
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            name = ",".join(f"os.{alias.name}" for alias in node.names)
        else:
            continue
        if any(f"os.{prefix}" in name for prefix in _PROCESS):
            found.append(f"line {node.lineno}: {name}")
    return sorted(found)


def test_the_check_finds_a_process_call() -> None:
    """The check itself sees os.system and `from os import popen`."""
    tree = ast.parse("import os\nos.system('x')\nfrom os import popen\n")
    assert _process_calls(tree) == ["line 2: os.system", "line 3: os.popen"]


def test_crypto_calls_no_process_function_of_os() -> None:
    """No module of sealdrop.crypto uses os.system, os.popen, os.fork, os.exec*, os.spawn*."""
    package = Path(sealdrop.crypto.__file__).parent
    found = {
        path.name: calls
        for path in sorted(package.glob("*.py"))
        if (calls := _process_calls(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert found == {}
