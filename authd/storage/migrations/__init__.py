"""Schema migrations: ``NNNN_<area>.sql`` files applied in order, once, on both stores.

The SQL is portable; ``BLOB`` becomes ``BYTEA`` on PostgreSQL. Statements are separated by
``;`` at the end of a line.
"""

from __future__ import annotations

import re
import time
from importlib import resources

from authd.storage.database import Database, Tx

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_PG_LOCK_KEY = 0x61757468  # "auth"


def available() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files(__package__).iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    return sorted(found)


def _statements(sql: str, dialect: str) -> list[str]:
    if dialect == "postgresql":
        sql = re.sub(r"\bBLOB\b", "BYTEA", sql)
    body = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*$", body, flags=re.M) if s.strip()]


def migrate(db: Database) -> list[int]:
    """Apply every migration not yet applied; returns the versions applied now."""

    def apply(tx: Tx) -> list[int]:
        if tx.dialect == "postgresql":
            tx.execute("SELECT pg_advisory_xact_lock(?)", (_PG_LOCK_KEY,))
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at DOUBLE PRECISION NOT NULL)"
        )
        done = {row[0] for row in tx.all("SELECT version FROM schema_migrations")}
        applied = []
        for version, name, sql in available():
            if version in done:
                continue
            for statement in _statements(sql, tx.dialect):
                tx.execute(statement)
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, time.time()),
            )
            applied.append(version)
        return applied

    return db.run(apply)
