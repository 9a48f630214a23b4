"""``authd kek rotate`` and ``authd kek status`` (docs/keys.md)."""

from __future__ import annotations

import argparse
import datetime as dt

from authd.config import Config
from authd.kek.keys import read_keys
from authd.kek.rotation import Rotation, count_sealed, expire, last_rotation
from authd.secrets import open_secret_box
from authd.storage import Database, migrate, open_database


def _open(cfg: Config) -> Database:
    db = open_database(cfg.store_url, 2)
    try:
        migrate(db)
    except BaseException:
        db.close()
        raise
    db.set_timeout(cfg.store.timeout_seconds)
    return db


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def cmd_rotate(cfg: Config, args: argparse.Namespace) -> int:
    db = _open(cfg)
    try:
        box = open_secret_box(cfg, db)  # the token, its PIN and every key checked first
        try:
            row = Rotation(cfg, db, box, say=lambda line: print(line, flush=True),
                           batch=args.batch_size).run()
        finally:
            box.close()
    finally:
        db.close()
    kept = "retired" if cfg.kek.keep_rotated_days > 0 else "destroyed"
    print(f"key-encryption key {row.to_key} is the store's key; {row.moved:,} sealed value(s) "
          f"moved from key {row.from_key}, which is {kept}", flush=True)
    return 0


def cmd_status(cfg: Config, args: argparse.Namespace) -> int:
    db = _open(cfg)
    try:
        keys = db.run(read_keys, write=False)
        rotation = db.run(last_rotation, write=False)
        counts = count_sealed(db)
    finally:
        db.close()
    if not keys:
        print("no key-encryption key recorded yet (the daemon records key 1 at its first start)")
    for key in keys:
        kept = ""
        if key.state == "retired" and key.retired_at is not None:
            kept = (f", retired {_when(key.retired_at)}, kept until "
                    f"{_when(key.retired_at + cfg.kek.keep_rotated_days * 86400)}")
        print(f"key {key.id}: {key.state}, label {key.key_label}, created {_when(key.created_at)}"
              + (f", destroyed {_when(key.destroyed_at)}" if key.destroyed_at else "") + kept)
    if rotation is not None:
        print(f"rotation {rotation.id}: key {rotation.from_key} to key {rotation.to_key}, "
              f"{rotation.state}, {rotation.moved:,} value(s) moved, started "
              f"{_when(rotation.started_at)}"
              + (f", finished {_when(rotation.finished_at)}" if rotation.finished_at else ""))
    for column, by_key in counts.items():
        if by_key:
            spread = ", ".join(f"key {k}: {n:,}" for k, n in sorted(by_key.items()))
            print(f"{column}: {spread}")
    return 0


def cmd_expire(cfg: Config, args: argparse.Namespace) -> int:
    db = _open(cfg)
    try:
        gone = expire(cfg, db, key_id=args.key)
    finally:
        db.close()
    if not gone:
        print("no retired key is due; nothing destroyed")
    for key_id in gone:
        print(f"key {key_id} destroyed on the token: backups taken before its rotation no "
              "longer open")
    return 0
