"""``python -m sealdrop`` is the ``sealdrop`` command."""

from sealdrop.cli.main import app

app(prog_name="sealdrop")
