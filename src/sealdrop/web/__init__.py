"""The ASGI edge: the source interface (HTML) and, later, the journalist API (JSON)."""
