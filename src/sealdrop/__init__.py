"""Sealdrop: a self-hostable, Tor-native, end-to-end encrypted anonymous submission system."""

__version__ = "0.1.0"
