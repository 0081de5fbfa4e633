"""Use cases: the only layer that composes crypto and storage."""
