"""rich reads ``[word]`` as a markup tag and drops it: "[api] host" printed as " host". Settings
are named by their sealdrop.toml section in brackets all over the CLI's help and messages, so
every mention must survive rendering (written ``\\[api]`` in the source)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from sealdrop.cli.main import app

SECTION = re.compile(r"\\?\[([a-z_0-9]+)\]")


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    # Typer builds on its own copy of click (typer._click): groups are the commands that have
    # subcommands.
    found = [path]
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            found += _commands(sub, (*path, name))
    return found


def _mentions(command: Any) -> set[str]:
    texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
    return {f"[{m}]" for text in texts for m in SECTION.findall(text)}


def test_every_bracketed_section_in_the_help_is_shown() -> None:
    """Each command's --help shows every "[section]" its help texts name, brackets included."""
    root = typer.main.get_command(app)
    checked = 0
    for path in _commands(root):
        command: Any = root
        for name in path:
            command = command.commands[name]
        wanted = _mentions(command)
        if not wanted:
            continue
        result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
        assert result.exit_code == 0, result.output
        shown = " ".join(result.output.replace("│", " ").split())
        for mention in wanted:
            assert mention in shown, f"sealdrop {' '.join(path)} --help lost {mention}"
            checked += 1
    assert checked >= 2  # init's [source], demo's [api]: the test looks at something


def test_status_names_the_tor_setting_when_tor_is_off(tmp_path: Path) -> None:
    """`sealdrop status` with tor turned off says which setting did it, "[tor] enabled"."""
    runner = CliRunner()
    instance = tmp_path / "instance"
    assert runner.invoke(app, ["init", str(instance)]).exit_code == 0
    result = runner.invoke(
        app, ["status", str(instance)], env={"SEALDROP_TOR_ENABLED": "no", "NO_COLOR": "1"}
    )
    assert result.exit_code == 0, result.output
    assert "Tor: disabled ([tor] enabled = 'no')" in result.output
