"""A hook of the test session (imported into tests/conftest.py, where pytest finds it; kept here so
that tests/unit/test_testing.py can run it in a session of its own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


# The private Tor network (tests/e2e/conftest.py) is session-scoped so that its tests share one,
# but its nine tor processes burn ~19% of a core while idle (a consensus every 10 s): kept to the
# session's end, they cost over a minute of CPU in a full run after the Tor tests are done, taken
# from the CPU-bound rest of the suite. So the network stops as soon as the next test this process
# runs does not use it (under --dist loadgroup the Tor tests are one group, run back to back in one
# worker; in a run that interleaves them, a later Tor test simply starts a new network).
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    yield  # the item's own teardown first: the module fixtures that use the network end first
    if "tor_network" not in getattr(item, "fixturenames", ()):
        return
    if nextitem is not None and "tor_network" in getattr(nextitem, "fixturenames", ()):
        return
    fixture_info = getattr(item, "_fixtureinfo", None)
    definitions = fixture_info.name2fixturedefs.get("tor_network", ()) if fixture_info else ()
    for definition in definitions:
        # Runs the fixture's own teardown (log keeping included) and forgets its value, so that
        # a later request starts the fixture again.
        definition.finish(item._request)  # type: ignore[attr-defined]
