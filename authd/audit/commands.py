"""``authd audit verify|seal|head|public-key`` and ``authd prune-audit``: the trail from the
command line, against the configured store — running daemon or not.

Exit status of ``verify`` (and of ``prune-audit``): 0 the trail is intact; 1 it was tampered
with (the findings and the first bad record are printed); 2 it could not be checked (no store,
no trusted key, bad arguments).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from authd.audit import AuditLog
from authd.audit import prune as prunemod
from authd.audit.chain import Sealer, read_head, read_witness
from authd.audit.settings import AuditSettings
from authd.audit.signing import (
    KeyRing,
    configured_public_keys,
    open_signer,
    pem_of,
    read_public_key_file,
)
from authd.audit.verify import Report, verify
from authd.config import Config
from authd.storage import Database, open_database
from devices.errors import BadRequest, WrongState

EXIT_OK = 0
EXIT_TAMPERED = 1
AUDIT_MIGRATION = 30


def open_store(cfg: Config) -> Database:
    """The configured store, as it is (never migrated here): its schema must know the chain."""
    db = open_database(cfg.store_url)
    try:
        row = db.run(lambda tx: tx.one("SELECT MAX(version) FROM schema_migrations"),
                     write=False)
    except Exception:
        db.close()
        raise WrongState(f"{_where(cfg)} is not an authd store (run authd migrate)") \
            from None
    if row is None or row[0] is None or int(row[0]) < AUDIT_MIGRATION:
        db.close()
        raise WrongState(f"{_where(cfg)} has no audit chain yet (schema before "
                                 f"{AUDIT_MIGRATION}): run authd migrate")
    return db


def _where(cfg: Config) -> str:
    url = cfg.store_url
    return url.split("@")[-1] if url.startswith("postgres") else url


def trusted_keys(cfg: Config, settings: AuditSettings, files: list[str]) -> KeyRing:
    if files:
        return KeyRing([der for f in files for der in read_public_key_file(Path(f))],
                       ", ".join(f"key file {f}" for f in files))
    return configured_public_keys(cfg, settings)


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def render(report: Report, where: str) -> list[str]:
    lines = [f"audit trail of {where}: {report.blocks} block(s), {report.records:,} sealed "
             f"record(s) checked, {report.pruned:,} pruned, {report.unsealed:,} not sealed yet",
             f"trusted keys: {report.key_source}"]
    if report.head is not None:
        h = report.head
        lines.append(f"head: block {h.seq}, records up to {h.last_id}, sealed {_when(h.sealed_at)}"
                     f" by key {h.key_id}")
    if report.oldest_unsealed_at is not None:
        lines.append(f"oldest record not sealed yet: {_when(report.oldest_unsealed_at)}")
    if report.ok:
        lines.append("OK: every sealed record is as it was sealed")
        return lines
    first = report.first_bad_record
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(report.counts.items()))
    lines.append(f"TAMPERED ({counts})"
                 + (f": first bad record {first}" if first is not None else ""))
    for f in sorted(report.findings, key=lambda f: (f.record_id or 1 << 62, f.block_seq or 0)):
        lines.append(f"  {f.kind:<16} {f.message}")
    if sum(report.counts.values()) > len(report.findings):
        lines.append(f"  ... {sum(report.counts.values()) - len(report.findings)} more")
    return lines


def cmd_verify(cfg: Config, args: argparse.Namespace) -> int:
    settings = cfg.audit
    keys = trusted_keys(cfg, settings, args.public_key or [])
    witness: dict[str, Any] | None = None
    if not args.no_witness:
        path = Path(args.witness) if args.witness else settings.witness_path(cfg)
        if args.witness and not path.exists():
            raise BadRequest(f"witness file {path} not found")
        try:
            witness = read_witness(path)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    db = open_store(cfg)
    try:
        report = verify(db, keys, witness=witness, max_head_age=args.max_head_age,
                        clock_skew=settings.clock_skew)
    finally:
        db.close()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    else:
        print("\n".join(render(report, _where(cfg))))
    return EXIT_OK if report.ok else EXIT_TAMPERED


def cmd_seal(cfg: Config, args: argparse.Namespace) -> int:
    settings = cfg.audit
    db = open_store(cfg)
    signer = open_signer(cfg, settings)
    try:
        sealer = Sealer(db, signer, settings, witness=settings.witness_path(cfg))
        written = sealer.seal()
        sealer.keep_witness(force=True)
        head = db.run(read_head, write=False)
    finally:
        signer.close()
        db.close()
    print(f"sealed {sealer.stats.records:,} record(s) in {written} block(s); head: "
          + (f"block {head.seq}, records up to {head.last_id}" if head else "none"))
    return EXIT_OK


def cmd_public_key(cfg: Config, args: argparse.Namespace) -> int:
    settings = cfg.audit
    keys = configured_public_keys(cfg, settings)
    for key_id, der in keys.public_keys():
        print(f"# audit signing key {key_id} ({keys.source})")
        print(pem_of(der), end="")
    return EXIT_OK


def cmd_prune(cfg: Config, args: argparse.Namespace) -> int:
    settings = cfg.audit
    now = time.time()
    db = open_store(cfg)
    try:
        signer = open_signer(cfg, settings)
        try:
            keys = KeyRing([signer.public_key, *configured_public_keys(cfg, settings).ders()],
                           "the signing key")
            plan = prunemod.plan(db, settings, keys, now)
            if plan.problems:
                print("authd: the audit trail was tampered with; nothing was pruned:")
                for problem in plan.problems[:20]:
                    print(f"  {problem}")
                print("  run authd audit verify for the whole picture")
                return EXIT_TAMPERED
            years = ", ".join(f"{c} {settings.years(c):g} y" for c in sorted(plan.cutoffs))
            if args.dry_run:
                print(f"would remove {plan.count:,} audit record(s) past retention ({years})")
                return EXIT_OK
            removed = prunemod.apply(db, signer, plan, now)
            if removed:
                log = AuditLog()
                db.run(lambda tx: log.record(tx, action="audit.prune", target="audit",
                                             outcome="pruned", detail={"removed": removed}))
        finally:
            signer.close()
    finally:
        db.close()
    print(f"removed {removed:,} audit record(s) past their retention time ({years})")
    return EXIT_OK
