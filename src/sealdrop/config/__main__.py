"""``python -m sealdrop.config docs/configuration.md``: rewrite that document's settings table
from the declaration (config/settings.py). A test fails while the two differ."""

from __future__ import annotations

import sys
from pathlib import Path

from sealdrop.config import with_settings_table


def main(arguments: list[str]) -> int:
    if len(arguments) != 1:
        print("usage: python -m sealdrop.config docs/configuration.md", file=sys.stderr)
        return 2
    document = Path(arguments[0])
    document.write_text(with_settings_table(document.read_text(encoding="utf-8")), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
