"""State: SQLite (embedded default) and PostgreSQL (many center nodes), one schema."""

from authd.storage.database import Database, Tx, open_database
from authd.storage.migrations import migrate

__all__ = ["Database", "Tx", "migrate", "open_database"]
