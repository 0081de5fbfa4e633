"""Sealdrop's own tor: the onion services, their client authorization, and tor's supervision."""
