"""What `serve` does to the interpreter before it serves."""

from __future__ import annotations

import gc

from sealdrop.cli import serve


def test_startup_objects_are_left_out_of_later_garbage_collections() -> None:
    """Everything alive when serving begins is frozen (moved to the permanent generation), so
    a full collection while serving walks only what was made since; garbage made afterwards is
    still collected."""
    gc.unfreeze()
    # Count what is alive: garbage left by earlier tests in this process (which ones depends on
    # how pytest-xdist shares the tests out) would be freed, not frozen.
    gc.collect()
    before = len(gc.get_objects())
    try:
        serve._freeze_startup_objects()
        frozen = gc.get_freeze_count()
        assert frozen >= before * 0.9
        assert len(gc.get_objects()) < before * 0.1

        class Cycle:
            pass

        made = Cycle()
        made.self = made  # type: ignore[attr-defined]
        del made
        assert gc.collect() >= 1  # a cycle made after the freeze is found and freed
    finally:
        gc.unfreeze()
