"""The metrics of a running ``sealdrop serve``: what it samples, and its listener's address.

The sampling is wired here, at the edge, because it reads every part of the running server:
the source app's intake tally, the derivation pool, each listener's connections, the notice
sender, tor's control port and the storage folders. What is published, and when, is
services/monitoring.py (the snapshot and its timer) and web/metrics.py (the format).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import uvicorn

from sealdrop.cli.listen import Knobs
from sealdrop.config import Settings
from sealdrop.services.container import Services
from sealdrop.services.monitoring import (
    FolderSpace,
    IntakeTally,
    Level,
    Snapshot,
    TorState,
    folder_space,
    storage_folders,
)
from sealdrop.tor import control
from sealdrop.tor.layout import TorLayout
from sealdrop.web.connections import ListenerConfig
from sealdrop.web.source.routes import MAX_CONCURRENT_UPLOADS

log = logging.getLogger("sealdrop.monitoring")

SERVE_METRICS = Knobs(host="[metrics] host", port="[metrics] port")
# Below this, the metrics date submissions more finely than the design accepts (R37).
ADVISED_REFRESH_SECONDS = 900


def refresh_warning(settings: Settings) -> str | None:
    """What ``serve`` says when the metrics are on and refreshed more often than advised."""
    seconds = settings.metrics_refresh_seconds
    if not settings.metrics_enabled or seconds >= ADVISED_REFRESH_SECONDS:
        return None
    return (
        f"[metrics] refresh_seconds is {seconds}: the metrics date each submission to within "
        f"{seconds} seconds. Keep it at {ADVISED_REFRESH_SECONDS} or more on a real instance."
    )


@dataclass
class ServerProbes:
    """What a snapshot reads. ``tor``: the managed tor's layout, None when serve runs no tor."""

    settings: Settings
    services: Services
    tally: IntakeTally
    tor: TorLayout | None
    # Whole seconds: a process's start needs no finer date.
    started_at: float = field(default_factory=lambda: float(int(time.time())))
    listeners: dict[str, Level] = field(default_factory=dict)

    def watch(self, name: str, server: uvicorn.Server) -> None:
        """Count the connections of the listener ``server`` as ``name``."""
        config = server.config
        if isinstance(config, ListenerConfig):
            self.listeners[name] = config.occupancy

    def snapshot(self) -> Snapshot:
        settings = self.settings
        accepted, refused = self.tally.totals()
        folders = storage_folders(settings.blob_dir, settings.database_url, bool(settings.blobs))
        storage: Mapping[str, FolderSpace] = {
            role: space
            for role, path in folders.items()
            if (space := folder_space(path)) is not None
        }
        return Snapshot(
            started_at=self.started_at,
            taken_at=time.time(),
            tor=self._tor(),
            accepted=accepted,
            refused=refused,
            uploads_peak=self.tally.in_progress.take_peak(),
            uploads_capacity=MAX_CONCURRENT_UPLOADS,
            kdf_peak=self.services.kdf.busy.take_peak(),
            kdf_capacity=self.services.kdf.capacity,
            connections_peak={name: level.take_peak() for name, level in self.listeners.items()},
            connections_capacity=settings.max_connections,
            storage=storage,
            notices_sent=self.services.notifier.sent,
            notices_failed=self.services.notifier.failed,
            ready=self.services.readiness.ready(),
        )

    def _tor(self) -> TorState:
        if self.tor is None:
            return TorState(enabled=False, running=False, bootstrap_percent=0)
        try:
            status = control.read_status(self.tor)
        except Exception as exc:
            # A control port that answers nonsense counts as a tor that is not running.
            log.warning("tor status unreadable: %s", type(exc).__name__)
            return TorState(enabled=True, running=False, bootstrap_percent=0)
        percent = status.bootstrap.percent if status.bootstrap else 0
        return TorState(enabled=True, running=status.running, bootstrap_percent=percent)
