"""The metrics listener's application: the last snapshot in the Prometheus text format.

Built with the official client library (``prometheus_client``), on a registry of its own that
holds one collector: the snapshot's values (services/monitoring.py). The library's default
collectors are left out on purpose: the process's CPU time and memory, read at every scrape,
would rise with each upload being encrypted, and so date single submissions to the scrape
interval (docs/design.md R37). Every family is a total or a peak for the whole instance; labels
come from fixed sets, never from a request or a row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import make_asgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from starlette.types import ASGIApp, Receive, Scope, Send

from sealdrop.services.monitoring import Snapshot
from sealdrop.web.api.app import API_HEADERS
from sealdrop.web.app import ContainErrors
from sealdrop.web.connections import send_plain
from sealdrop.web.headers import SecurityHeaders
from sealdrop.web.health import Health

METRICS_PATH = "/metrics"


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def families(snapshot: Snapshot) -> list[Metric]:
    """The metric families of one snapshot (also the list docs/operator.md documents)."""
    tor = snapshot.tor
    refused = CounterMetricFamily(
        "sealdrop_intake_refused",
        "Submissions refused since the server started, by reason.",
        labels=["reason"],
    )
    for reason, count in sorted(snapshot.refused.items()):
        refused.add_metric([reason], count)
    connections = GaugeMetricFamily(
        "sealdrop_connections_peak",
        "Most connections open at once on a listener since the previous snapshot.",
        labels=["listener"],
    )
    for name, peak in sorted(snapshot.connections_peak.items()):
        connections.add_metric([name], peak)
    free = GaugeMetricFamily(
        "sealdrop_storage_free_bytes",
        "Free bytes (for the server's user) on the filesystem of a storage folder.",
        labels=["folder"],
    )
    size = GaugeMetricFamily(
        "sealdrop_storage_size_bytes",
        "Size in bytes of the filesystem of a storage folder.",
        labels=["folder"],
    )
    for folder, space in sorted(snapshot.storage.items()):
        free.add_metric([folder], space.free_bytes)
        size.add_metric([folder], space.total_bytes)
    return [
        _gauge(
            "sealdrop_start_time_seconds",
            "When the server process started (Unix time).",
            snapshot.started_at,
        ),
        _gauge(
            "sealdrop_snapshot_time_seconds",
            "When the values published were taken (Unix time); they change only then.",
            snapshot.taken_at,
        ),
        _gauge(
            "sealdrop_ready",
            "1 if the server's last check reached its database and blob store (GET /readyz).",
            int(snapshot.ready),
        ),
        _gauge("sealdrop_tor_enabled", "1 if this server runs tor.", int(tor.enabled)),
        _gauge(
            "sealdrop_tor_running", "1 if its tor answers on the control port.", int(tor.running)
        ),
        _gauge(
            "sealdrop_tor_bootstrap_percent",
            "Tor's bootstrap progress (100: connected to the Tor network).",
            tor.bootstrap_percent,
        ),
        CounterMetricFamily(
            "sealdrop_intake_accepted",
            "Submissions stored since the server started.",
            value=snapshot.accepted,
        ),
        refused,
        _gauge(
            "sealdrop_uploads_peak",
            "Most submissions being received at once since the previous snapshot.",
            snapshot.uploads_peak,
        ),
        _gauge(
            "sealdrop_uploads_capacity",
            "How many large submissions are received at once; more wait.",
            snapshot.uploads_capacity,
        ),
        _gauge(
            "sealdrop_kdf_peak",
            "Most codename derivations running or waiting at once since the previous snapshot.",
            snapshot.kdf_peak,
        ),
        _gauge(
            "sealdrop_kdf_capacity",
            "How many codename derivations run at once ([sources] kdf_max_concurrent).",
            snapshot.kdf_capacity,
        ),
        connections,
        _gauge(
            "sealdrop_connections_capacity",
            "Connections one listener serves at once; beyond it, new ones get 503.",
            snapshot.connections_capacity,
        ),
        free,
        size,
        CounterMetricFamily(
            "sealdrop_notices_sent",
            "Notices to journalists delivered since the server started.",
            value=snapshot.notices_sent,
        ),
        CounterMetricFamily(
            "sealdrop_notices_failed",
            "Notice deliveries that failed since the server started (each attempt counts).",
            value=snapshot.notices_failed,
        ),
    ]


class SnapshotCollector(Collector):
    """Publishes whatever snapshot ``latest()`` returns; nothing before the first one."""

    def __init__(self, latest: Callable[[], Snapshot | None]) -> None:
        self._latest = latest

    def collect(self) -> Iterable[Metric]:
        snapshot = self._latest()
        return families(snapshot) if snapshot is not None else []


def create_metrics_app(latest: Callable[[], Snapshot | None]) -> ASGIApp:
    """``GET /metrics`` (the Prometheus text format) and ``GET /healthz``; nothing else."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(latest))
    exporter = make_asgi_app(registry, disable_compression=True)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == METRICS_PATH and scope["method"] in ("GET", "HEAD"):
            await exporter(scope, receive, send)
            return
        await send_plain(send, 404, b"not found\n")

    return ContainErrors(SecurityHeaders(Health(app), API_HEADERS))
