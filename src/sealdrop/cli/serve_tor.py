"""The managed tor as `serve` shows it: which tor runs, its bootstrap, the onion addresses."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

from sealdrop.config import Settings
from sealdrop.errors import TorError
from sealdrop.tor.control import Bootstrap
from sealdrop.tor.process import TorSupervisor, find_tor


def print_onions(supervisor: TorSupervisor, console: Console) -> None:
    source, api = supervisor.wait_for_addresses()
    if source:
        print(f"Source onion: http://{source}/", flush=True)
    if api:
        print(f"Journalist API onion: http://{api}/api/v1/", flush=True)
        console.print(
            "  reachable only by authorized reader devices: sealdrop access add DIR NAME",
            highlight=False,
        )
    if not (source and api):
        console.print(
            "[yellow]tor has not written the onion addresses yet; see `sealdrop status`[/]"
        )


def tor_path(settings: Settings, console: Console) -> str | None:
    """The tor program to run, or None to serve on the TCP listeners only."""
    if settings.tor_enabled == "no":
        return None
    path = find_tor(settings.tor_binary)
    if path is None:
        if settings.tor_enabled == "yes":
            raise TorError(
                f"tor ({settings.tor_binary}) is not installed and [tor] enabled = 'yes'. "
                "Install it (Debian: apt-get install tor) or set [tor] enabled = 'auto'"
            )
        console.print(
            "[yellow]tor is not installed: serving on the addresses below only, with no onion "
            "service. To reach sources through Tor, install it (Debian: apt-get install tor) "
            "and start again.[/]"
        )
    return path


class BootstrapDisplay:
    """Tor's bootstrap as a progress bar on a terminal, as plain lines otherwise (logs)."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def update(self, state: Bootstrap) -> None:
        if not self._console.is_terminal:
            self._console.print(f"Tor bootstrap: {state.percent}% {state.summary}", highlight=False)
            return
        if self._progress is None:
            self._progress = Progress(
                TextColumn("Tor"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.description}"),
                console=self._console,
            )
            self._task = self._progress.add_task("", total=100)
            self._progress.start()
        assert self._task is not None
        self._progress.update(self._task, completed=state.percent, description=state.summary)
        if state.percent >= 100:
            self._progress.stop()
            self._progress = None

    def restarted(self, code: int | None) -> None:
        self._console.print(f"[yellow]tor exited (status {code}); restarting it[/]")
