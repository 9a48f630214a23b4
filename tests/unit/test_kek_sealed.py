"""Every value sealed under the key-encryption key is in authd/kek/sealed.py, so a rotation
moves it: a module that seals must be named there, and every column named there exists."""

from __future__ import annotations

import re
from pathlib import Path

from authd.kek.sealed import SEALED
from authd.storage import migrate, open_database

ROOT = Path(__file__).resolve().parents[2]
SEALS = re.compile(r"\bsecrets\.seal\(")


def test_every_module_that_seals_is_named() -> None:
    sealing = set()
    for path in (ROOT / "authd").rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[1] == "kek" or rel.name == "secrets.py":
            continue
        if SEALS.search(path.read_text("utf-8")):
            sealing.add(".".join(rel.with_suffix("").parts))
    assert sealing == {column.owner for column in SEALED}


def test_every_sealed_column_exists(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'authd.db'}")
    try:
        migrate(db)
        for c in SEALED:
            fields = ", ".join((c.key, c.column, *c.context))
            db.run(lambda tx, c=c, fields=fields: tx.all(
                f"SELECT {fields} FROM {c.table} LIMIT 0"), write=False)
    finally:
        db.close()
