"""Persistence: SQLModel tables, engine set-up, migrations, full-text search, transfer."""

from .ranked import Top
from .rows import ContextRow
from .store import Store
from .writer import Writer

__all__ = ["ContextRow", "Store", "Top", "Writer"]
