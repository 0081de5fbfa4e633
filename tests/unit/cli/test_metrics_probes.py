"""What `serve` samples for its metrics (cli/metrics.py: ServerProbes), over a real instance's
services: the intake tally, the derivation pool, each listener's connections, the storage
folders, tor's state, the notice sender; and the warning for a short refresh interval."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sealdrop.cli.listen import connection_limits, listener
from sealdrop.cli.metrics import ServerProbes, refresh_warning
from sealdrop.config import load_settings
from sealdrop.errors import UploadTooLarge
from sealdrop.services.container import Services, build_services
from sealdrop.services.instance import init_instance
from sealdrop.services.monitoring import IntakeTally
from sealdrop.tor.layout import TorLayout
from sealdrop.web.connections import ListenerConfig


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    built = build_services(load_settings(init_instance(tmp_path / "instance")))
    yield built
    built.close()


async def _nothing(scope: object, receive: object, send: object) -> None:
    return None


def test_a_snapshot_reads_every_part_of_the_running_server(services: Services) -> None:
    """The snapshot carries the tally's totals, the uploads' and the listeners' peaks since the
    previous one, the pool's and the listeners' capacities, both storage folders of an SQLite
    instance, and the notice sender's counts; a second snapshot starts the peaks afresh."""
    probes = ServerProbes(services.settings, services, IntakeTally(), tor=None)
    server = listener(_nothing, connection_limits(services.settings))
    probes.watch("source", server)
    assert isinstance(server.config, ListenerConfig)
    server.config.occupancy.enter()
    server.config.occupancy.leave()
    with probes.tally.counting():
        pass
    with pytest.raises(UploadTooLarge), probes.tally.counting():
        raise UploadTooLarge(1)
    services.notifier.failed += 2

    first = probes.snapshot()
    assert (first.accepted, first.refused["too_large"]) == (1, 1)
    assert first.uploads_peak == 1
    assert first.connections_peak == {"source": 1}
    assert first.connections_capacity == services.settings.max_connections
    assert first.kdf_capacity == services.settings.kdf_max_concurrent
    assert set(first.storage) == {"blobs", "database"}
    assert first.storage["blobs"].free_bytes > 0
    assert (first.notices_sent, first.notices_failed) == (0, 2)
    assert first.tor.enabled is False
    assert first.started_at == int(first.started_at)

    second = probes.snapshot()
    assert (second.uploads_peak, second.connections_peak) == (0, {"source": 0})
    assert second.accepted == 1  # totals since the start


def test_a_tor_that_does_not_answer_counts_as_not_running(services: Services) -> None:
    """With tor managed but no control socket (tor not started, or dead), the snapshot says
    enabled, not running, bootstrap 0, instead of failing."""
    layout = TorLayout.of_instance(services.settings.instance_dir)
    probes = ServerProbes(services.settings, services, IntakeTally(), tor=layout)
    tor = probes.snapshot().tor
    assert (tor.enabled, tor.running, tor.bootstrap_percent) == (True, False, 0)


def test_a_short_refresh_interval_is_warned_about(tmp_path: Path) -> None:
    """Only with the metrics on and a refresh under 900 s does serve warn (and the warning says
    how finely submissions are dated)."""
    instance = init_instance(tmp_path / "instance")
    assert refresh_warning(load_settings(instance)) is None
    on = {"SEALDROP_METRICS_ENABLED": "true"}
    assert refresh_warning(load_settings(instance, env=on)) is None
    short = load_settings(instance, env=on | {"SEALDROP_METRICS_REFRESH_SECONDS": "60"})
    warning = refresh_warning(short)
    assert warning is not None
    assert "within 60 seconds" in warning
