"""The source interface: server-rendered pages that need no JavaScript."""
