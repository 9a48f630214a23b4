"""``authd token so-pin status|reset SERIAL``: the daemon's own count of wrong SO PINs of a
token (``token_so_pin_failures``, migration 0120), read and cleared on the node itself.

SoftHSM2 and many tokens never lock the SO PIN, so authd counts wrong ones and, at
``[token] pin_max_failures``, refuses ``UnblockPin`` without trying the SO PIN again. Clearing
that count gives a terminal new guesses at the SO PIN, so it is not part of the network API:
it is run by the node's administrator, with the node's configuration and store credentials,
names the operator and the reason, and leaves a record in the audit trail (docs/token.md,
"Clearing a locked SO PIN"). A running daemon reads the count from the store on every
``UnblockPin``, so it need not be stopped.
"""

from __future__ import annotations

import argparse
import getpass

from authd import validate
from authd.audit import AuditLog
from authd.config import Config
from authd.context import Caller, Role
from authd.storage import Database, Tx, open_database
from authd.token import repository as repo
from devices.errors import BadRequest, WrongState

SO_PIN_MIGRATION = 120
RESETTER = Caller(institution="-", role=Role.ADMIN, subject="authd token so-pin reset")
MAX_SERIAL = 32


def _serial(value: str) -> str:
    """A token serial as PKCS#11 reports it (``CK_TOKEN_INFO.serialNumber``, 16 characters on
    SoftHSM2): 1..32 printable characters."""
    value = value.strip()
    if not value or len(value) > MAX_SERIAL or not value.isprintable():
        raise BadRequest(f"the token serial must be 1..{MAX_SERIAL} printable characters",
                         field="serial")
    return value


def _open(cfg: Config) -> Database:
    db = open_database(cfg.store_url)
    try:
        row = db.run(lambda tx: tx.one("SELECT MAX(version) FROM schema_migrations"),
                     write=False)
    except Exception:
        db.close()
        raise WrongState("the configured store is not an authd store (run authd migrate)") \
            from None
    if row is None or row[0] is None or int(row[0]) < SO_PIN_MIGRATION:
        db.close()
        raise WrongState("the configured store does not count SO PINs yet (schema before "
                         f"{SO_PIN_MIGRATION}): run authd migrate")
    return db


def _limit(cfg: Config) -> int:
    from authd.token.settings import TokenSettings

    return int(cfg.settings(TokenSettings).pin_max_failures)


def _say(serial: str, failures: int, limit: int) -> str:
    if not limit:
        return f"token {serial}: {failures} wrong SO PIN(s) counted; counting is off"
    state = "locked: UnblockPin refuses the token" if failures >= limit else \
        f"{limit - failures} attempt(s) left"
    return f"token {serial}: {failures} wrong SO PIN(s) counted of {limit}, {state}"


def cmd_so_pin_status(cfg: Config, args: argparse.Namespace) -> int:
    serial = _serial(args.serial)
    db = _open(cfg)
    try:
        failures = db.run(lambda tx: repo.pin_failures(tx, serial, repo.SO_PIN), write=False)
    finally:
        db.close()
    print(_say(serial, failures, _limit(cfg)))
    return 0


def cmd_so_pin_reset(cfg: Config, args: argparse.Namespace) -> int:
    serial = _serial(args.serial)
    operator = validate.text(args.operator, "operator", required=True).strip()
    reason = validate.text(args.reason, "reason", required=True).strip()
    db = _open(cfg)
    audit = AuditLog()

    def reset(tx: Tx) -> int:
        before = repo.pin_failures(tx, serial, repo.SO_PIN)
        if before:
            repo.reset_pin_failures(tx, serial, repo.SO_PIN)
            audit.record(tx, action="token.so_pin_reset", target=f"token:{serial}",
                         outcome="ok", caller=RESETTER,
                         detail={"operator": operator, "reason": reason,
                                 "failures_before": before, "os_user": _os_user()})
        return before

    try:
        before = db.run(reset)
    finally:
        db.close()
    if not before:
        print(f"token {serial}: no wrong SO PIN counted; nothing changed")
    else:
        print(f"token {serial}: {before} wrong SO PIN(s) cleared by {operator}; UnblockPin "
              "tries the SO PIN again (recorded in the audit trail as token.so_pin_reset)")
    return 0


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
