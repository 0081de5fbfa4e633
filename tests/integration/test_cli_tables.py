"""`sealdrop submissions list` prints ids and blob paths whole at 80 columns (piped, or a
narrow terminal), so that they can be pasted into other commands as docs/operator.md asks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from support_http import Source, stored

from sealdrop.testing import ServerProcess, sealdrop_command


def test_submission_ids_and_paths_are_whole_in_an_80_column_table(
    server: ServerProcess, source: Source, instance_dir: Path
) -> None:
    """A stored item's id, source and blob path appear whole in the table, with no ellipsis."""
    source.start()
    assert source.submit("a message").status_code == 303
    (item,) = stored(instance_dir)
    table = subprocess.run(
        sealdrop_command("submissions", "list", instance_dir),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "80"},
    ).stdout
    assert item["id"] in table
    assert item["path"] in table
    assert (item["pseudonym"] or item["source"]) in table
    assert "…" not in table
