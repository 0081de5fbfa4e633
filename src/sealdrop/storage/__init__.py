"""Persistence: the database (SQLAlchemy 2, SQLite or PostgreSQL) and the blob store."""
