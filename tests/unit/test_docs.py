"""README.md and docs/*.md against the code: the commands in README's table exist, relative links
and their #anchors resolve, and every SEALDROP_* variable named is one the code reads.

Each check collects every problem first and asserts on the whole list, so that one run shows
everything that drifted."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from sealdrop.cli.main import app
from sealdrop.config import S3_SECRET_ENV, SETTINGS, SMTP_PASSWORD_ENV

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
DOCUMENTS = [README, *sorted((REPO_ROOT / "docs").glob("*.md"))]


# -- reading markdown --------------------------------------------------------------------------

FENCE = re.compile(r"^\s*(```|~~~)")


def _prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of everything outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def _without_code_spans(line: str) -> str:
    return re.sub(r"(`+).*?\1", "", line)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: markup dropped, lower case, every character that is not
    a letter, digit, underscore, hyphen or space removed, each space turned into a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a markdown text, duplicates numbered as GitHub does (-1, -2 …)."""
    seen: Counter[str] = Counter()
    found = set()
    for _, line in _prose_lines(text):
        match = re.match(r"^#{1,6}\s+(.+?)\s*#*\s*$", line)
        if match is None:
            continue
        slug = github_slug(match.group(1))
        found.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    return found


LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def link_problems(document: Path, text: str) -> list[str]:
    """Relative links of ``text`` (the content of ``document``) that lead nowhere."""
    problems = []
    for number, line in _prose_lines(text):
        for target in LINK.findall(_without_code_spans(line)):
            if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", target):  # https:, mailto: …
                continue
            where = f"{document.relative_to(REPO_ROOT)}:{number}: ({target})"
            path, _, anchor = target.partition("#")
            linked = (document.parent / path).resolve() if path else document
            if not linked.exists():
                problems.append(f"{where} no such file")
            elif (
                anchor
                and linked.suffix == ".md"
                and anchor not in anchors(linked.read_text(encoding="utf-8"))
            ):
                problems.append(f"{where} no heading #{anchor} in {linked.name}")
    return problems


# -- the command table -------------------------------------------------------------------------

WORD = re.compile(r"[a-z][a-z0-9-]*")


def table_commands(text: str) -> Iterator[tuple[int, list[str], list[str]]]:
    """(line, subcommand path, options) of each command named in the first cell of a table row
    that starts with `sealdrop …`. An alternative in the same cell (`/ \\`enable DIR NAME\\``)
    without a group of its own belongs to the first command's group."""
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    for number, line in _prose_lines(text):
        if not line.startswith("| `sealdrop "):
            continue
        first_cell = line.split(" | ", 1)[0]
        group: list[str] = []
        for index, span in enumerate(re.findall(r"`([^`]+)`", first_cell)):
            words = span.split()
            if words[0] == "sealdrop":
                words = words[1:]
            path = []
            for word in words:
                if not WORD.fullmatch(word):
                    break
                path.append(word)
            if index == 0:
                group = path[:-1]
            elif path and path[0] not in root.commands:
                path = group + path
            yield number, path, re.findall(r"--[a-z][a-z0-9-]*", span)


# typer builds its commands with the click it vendors (typer._click): reached through typer only.
def _command(path: list[str]) -> Any:
    command: Any = typer.main.get_command(app)
    for word in path:
        if not isinstance(command, TyperGroup) or word not in command.commands:
            return None
        command = command.commands[word]
    return command


def command_problems(document: str, text: str) -> list[str]:
    """Commands in the tables of ``text`` whose `--help` fails, or that lack an option the row
    names."""
    runner = CliRunner()
    problems = []
    for number, path, options in table_commands(text):
        where = f"{document}:{number}: sealdrop {' '.join(path)}"
        result = runner.invoke(app, [*path, "--help"])
        command = _command(path)
        # A row with no subcommand (`sealdrop --version`) names options of the program itself.
        if result.exit_code != 0 or command is None:
            problems.append(f"{where}: --help exits {result.exit_code}")
            continue
        known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        problems += [f"{where}: no option {option}" for option in options if option not in known]
    return problems


# -- environment variables ---------------------------------------------------------------------


ENVIRON_LOOKUP = re.compile(r"os\.environ(?:\.get\(|\[)\s*\"(SEALDROP_[A-Z0-9_]+)\"")


def known_variables() -> set[str]:
    """The SEALDROP_* names the code reads: each setting's, from the declaration that loading
    uses (test_config checks that each one takes effect), each environment variable a
    command-line option takes its value from, and each one the code looks up itself."""
    names = {declared.env_name for declared in SETTINGS.values()}

    def walk(command: Any) -> None:
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            names.update([envvar] if isinstance(envvar, str) else envvar or [])
        if isinstance(command, TyperGroup):
            for sub in command.commands.values():
                walk(sub)

    walk(typer.main.get_command(app))
    # The secret that is not a setting (the SMTP relay's password).
    names.add(SMTP_PASSWORD_ENV)
    names.add(S3_SECRET_ENV)  # and the object store's secret key
    # And each name the code itself looks up in os.environ (the reader's data folder).
    for module in (REPO_ROOT / "src" / "sealdrop").rglob("*.py"):
        names.update(ENVIRON_LOOKUP.findall(module.read_text(encoding="utf-8")))
    return names


def variable_problems(document: str, text: str, known: set[str]) -> list[str]:
    """SEALDROP_* names in ``text`` that the code does not read. `SEALDROP_<SECTION>_<KEY>` is the
    documented pattern and is skipped; `SEALDROP_READER_*` must be the prefix of a known name;
    a name an example program in the same text reads itself (os.environ) is that program's."""
    own = set(ENVIRON_LOOKUP.findall(text))
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        for name, tail in re.findall(r"\b(SEALDROP_[A-Z0-9_]*)([*<]?)", line):
            if tail == "<" or name in own:
                continue
            if tail == "*":
                if not any(k.startswith(name) for k in known):
                    problems.append(f"{document}:{number}: no variable matches {name}*")
            elif name not in known:
                problems.append(f"{document}:{number}: {name} is read by nothing")
    return problems


# -- the documents as they are -----------------------------------------------------------------


def test_every_command_in_the_readme_table_exists() -> None:
    """Each `sealdrop …` row of README's command table (and of any table in docs/*.md),
    alternatives included, answers --help with exit status 0 and has every option the row names."""
    assert len(list(table_commands(README.read_text(encoding="utf-8")))) >= 15, (
        "README's command table was not found"
    )
    problems = []
    for document in DOCUMENTS:
        name = str(document.relative_to(REPO_ROOT))
        problems += command_problems(name, document.read_text(encoding="utf-8"))
    assert not problems, "\n".join(["", *problems])


def test_every_relative_link_in_the_documents_resolves() -> None:
    """Every relative link in README.md and docs/*.md leads to an existing file, and every #anchor
    to a heading of that file (GitHub's slugs)."""
    problems = []
    for document in DOCUMENTS:
        problems += link_problems(document, document.read_text(encoding="utf-8"))
    assert not problems, "\n".join(["", *problems])


def test_every_environment_variable_in_the_documents_is_read() -> None:
    """Every SEALDROP_* variable named in README.md and docs/*.md is one that the settings (or a
    command-line option) read."""
    known = known_variables()
    assert "SEALDROP_LIMITS_MAX_UPLOAD_BYTES" in known  # the settings are there
    problems = []
    for document in DOCUMENTS:
        name = str(document.relative_to(REPO_ROOT))
        problems += variable_problems(name, document.read_text(encoding="utf-8"), known)
    assert not problems, "\n".join(["", *problems])


# -- the checks themselves catch drift ---------------------------------------------------------


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("5. Threat model", "5-threat-model"),
        ("Admin: organisation recipients", "admin-organisation-recipients"),
        (
            "Floods: proof-of-work and per-circuit limits",
            "floods-proof-of-work-and-per-circuit-limits",
        ),
        ("Reader devices: client authorization", "reader-devices-client-authorization"),
        ("Logging in: `POST /api/v1/token`", "logging-in-post-apiv1token"),
    ],
)
def test_github_slug_follows_githubs_rules(heading: str, slug: str) -> None:
    """Headings become GitHub's anchors: lower case, punctuation removed, spaces to hyphens."""
    assert github_slug(heading) == slug


def test_a_repeated_heading_gets_a_numbered_anchor() -> None:
    """The second heading with the same text is #name-1, as on GitHub."""
    assert anchors("# A\n## Notes\n```\n# not a heading\n```\n## Notes\n") == {
        "a",
        "notes",
        "notes-1",
    }


def test_the_checks_report_every_made_up_command_link_and_variable() -> None:
    """A made-up command, option, link, anchor and variable are each reported, all in one run."""
    table = (
        "| `sealdrop user disable DIR NAME` / `frobnicate DIR` | x |\n"
        "| `sealdrop serve DIR [--no-such-option]` | x |\n"
        "| `sealdrop access list DIR` / `access revoke DIR NAME` | x |\n"
    )
    assert command_problems("README.md", table) == [
        "README.md:1: sealdrop user frobnicate: --help exits 2",
        "README.md:2: sealdrop serve: no option --no-such-option",
    ]
    document = REPO_ROOT / "docs" / "made-up.md"
    links = "[a](api.md#no-such-heading) [b](missing.md) `[c](missing.md)` [d](https://x.org/y)\n"
    assert link_problems(document, links) == [
        "docs/made-up.md:1: (api.md#no-such-heading) no heading #no-such-heading in api.md",
        "docs/made-up.md:1: (missing.md) no such file",
    ]
    names = "SEALDROP_LIMITS_MAX_UPLOAD_BYTES SEALDROP_NO_SUCH SEALDROP_NOPE_* SEALDROP_<SECTION>\n"
    assert variable_problems("x.md", names, known_variables()) == [
        "x.md:1: SEALDROP_NO_SUCH is read by nothing",
        "x.md:1: no variable matches SEALDROP_NOPE_*",
    ]
