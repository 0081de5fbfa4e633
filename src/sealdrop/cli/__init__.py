"""The ``sealdrop`` command line."""
