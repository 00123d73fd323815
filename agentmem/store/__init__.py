"""Persistence: SQLModel tables, engine set-up, migrations, full-text search, transfer."""

from .store import ContextRow, Store, Writer

__all__ = ["ContextRow", "Store", "Writer"]
