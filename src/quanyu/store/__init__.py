"""Operational store: SQLAlchemy 2 models on SQLite (embedded) or PostgreSQL (server mode)."""

from quanyu.store.engine import make_engine, reading
from quanyu.store.migrate import upgrade

__all__ = ["make_engine", "reading", "upgrade"]
