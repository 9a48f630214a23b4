"""What one verification's audit record costs: the insert, its bytes, sealing and verifying.

    python -m bench audit [--records 60000] [--batch 128] [--store sqlite|postgresql|both]

Inserts ``otp.verify`` records as the OTP engine does (one record per verification, ``batch``
verifications per durable commit) into a store that holds only the audit trail, twice:

- ``before``: the layout up to migration 0030 (a random 32-hex-digit text key, ``keep_until``,
  indexes on the key, on (target, at) and on keep_until; detail JSON with spaces);
- ``after``: the current layout (integer key from a sequence, time in integer microseconds,
  who-did-what as one code into ``audit_kinds``, one index on target, compact detail), written
  as the engine writes a batch's records: ``AuditLog.row`` for each, one ``AuditLog.insert``
  per transaction (one statement on PostgreSQL);
- ``each``: the current layout, one ``AuditLog.record`` (one statement) per record, as the
  engine wrote them before its records went in together.

Figures per record: CPU of this process and of the PostgreSQL server (the work a verification
pays for, less sensitive to other load than wall time), wall time, bytes of table and indexes,
bytes of PostgreSQL WAL; for ``after`` also the sealer's CPU per record (reading, hashing,
signing one block per round, off the verification path) and ``authd audit verify``'s.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import table, tree_cpu_seconds

LEGACY_SCHEMA = [
    "CREATE TABLE audit_log (id TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL,"
    " institution TEXT NOT NULL, role TEXT NOT NULL, subject TEXT NOT NULL,"
    " action TEXT NOT NULL, target TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL,"
    " keep_until DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX audit_log_target ON audit_log (target, at)",
    "CREATE INDEX audit_log_keep ON audit_log (keep_until)",
]
LAYOUTS = ("before", "each", "after")
INSTITUTIONS = ("bank-a", "bank-b", "bank-c")
OUTCOMES = ("accepted",) * 7 + ("wrong_code",) * 3


def workload(n: int) -> list[tuple[str, str, str, int]]:
    rng = random.Random(13)
    return [(f"BENCH-{rng.randrange(100_000):06d}", INSTITUTIONS[i % 3], OUTCOMES[i % 10],
             0 if OUTCOMES[i % 10] == "accepted" else rng.randrange(1, 9)) for i in range(n)]


def legacy_insert(tx: Any, serial: str, bank: str, outcome: str, failures: int) -> None:
    import json

    now = time.time()
    tx.execute(
        "INSERT INTO audit_log (id, at, institution, role, subject, action, target, outcome,"
        " detail, keep_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (os.urandom(16).hex(), now, bank, "backend", "ib-backend-01", "otp.verify", serial,
         outcome, json.dumps({"failures": failures}, sort_keys=True, ensure_ascii=False),
         now + 5 * 365.25 * 86400))


def sizes(db: Any) -> tuple[int, int]:
    """(table bytes, index bytes) of the audit trail (blocks included)."""
    if db.dialect == "sqlite":
        rows = db.run(lambda tx: tx.all(
            "SELECT name, SUM(pgsize) FROM dbstat WHERE name LIKE 'audit%'"
            " OR name LIKE 'sqlite_autoindex_audit%' GROUP BY name"), write=False)
        tables = {"audit_log", "audit_blocks", "audit_prunes", "audit_kinds"}
        return (sum(int(s) for n, s in rows if n in tables),
                sum(int(s) for n, s in rows if n not in tables))
    row = db.run(lambda tx: tx.one(
        "SELECT SUM(pg_table_size(c.oid)), SUM(pg_indexes_size(c.oid)) FROM pg_class c"
        " WHERE c.relname IN ('audit_log', 'audit_blocks', 'audit_prunes', 'audit_kinds')"),
        write=False)
    return int(row[0] or 0), int(row[1] or 0)


def wal_lsn(db: Any) -> int:
    if db.dialect != "postgresql":
        return 0
    row = db.run(lambda tx: tx.one("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn"),
                 write=False)
    return int(row[0])


def measure(layout: str, url: str, server_pid: int | None, records: list[Any], batch: int,
            root: Path) -> dict[str, float]:
    from authd.audit import AuditLog
    from authd.context import Caller, Role
    from authd.storage import migrate, open_database

    db = open_database(url)
    if layout == "before":
        db.run(lambda tx: [tx.execute(s) for s in LEGACY_SCHEMA])
    else:
        migrate(db)
    log = AuditLog()
    callers = {b: Caller(b, Role.BACKEND, "ib-backend-01") for b in INSTITUTIONS}

    def write(tx: Any, chunk: list[Any]) -> None:
        if layout == "before":
            for serial, bank, outcome, failures in chunk:
                legacy_insert(tx, serial, bank, outcome, failures)
            return
        if layout == "each":
            for serial, bank, outcome, failures in chunk:
                log.record(tx, action="otp.verify", target=serial, outcome=outcome,
                           caller=callers[bank], detail={"failures": failures})
            return
        log.insert(tx, [log.row(tx, action="otp.verify", target=serial, outcome=outcome,
                                caller=callers[bank], detail={"failures": failures})
                        for serial, bank, outcome, failures in chunk])

    n = len(records)
    wal0 = wal_lsn(db)
    server0 = tree_cpu_seconds(server_pid) if server_pid else 0.0
    cpu0, t0 = time.process_time(), time.perf_counter()
    for i in range(0, n, batch):
        chunk = records[i:i + batch]
        db.run(functools.partial(write, chunk=chunk), pipeline=True)  # as the OTP engine
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    server = (tree_cpu_seconds(server_pid) - server0) if server_pid else 0.0
    wal = wal_lsn(db) - wal0
    table_bytes, index_bytes = sizes(db)
    out = {"cpu_us": cpu / n * 1e6, "server_us": server / n * 1e6, "wall_us": wall / n * 1e6,
           "table_b": table_bytes / n, "index_b": index_bytes / n, "wal_b": wal / n}
    if layout == "after":
        out.update(seal_and_verify(db, root, n))
    db.close()
    return out


def seal_and_verify(db: Any, root: Path, n: int) -> dict[str, float]:
    from authd.audit.chain import Sealer
    from authd.audit.settings import AuditSettings
    from authd.audit.signing import FileSigner, KeyRing
    from authd.audit.verify import verify

    signer = FileSigner(root / f"audit-{db.dialect}.key")
    sealer = Sealer(db, signer, AuditSettings())
    cpu0 = time.process_time()
    sealer.seal()
    seal_cpu = time.process_time() - cpu0
    cpu0 = time.process_time()
    report = verify(db, KeyRing([signer.public_key], "bench"))
    verify_cpu = time.process_time() - cpu0
    if not report.ok or report.records != n:
        raise SystemExit(f"verification of the benchmark's own trail failed: {report.counts}")
    table_bytes, index_bytes = sizes(db)
    return {"seal_us": seal_cpu / n * 1e6, "verify_us": verify_cpu / n * 1e6,
            "sealed_table_b": table_bytes / n, "sealed_index_b": index_bytes / n}


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    import statistics

    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def postmaster_pid(cluster: Any) -> int:
    return int((Path(cluster.directory) / "postmaster.pid").read_text().split()[0])


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench audit")
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--batch", type=int, default=128, help="records per durable commit")
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3, help="runs per layout (median)")
    args = parser.parse_args(argv)
    from tests.pgcluster import start_pg_cluster

    root = Path(tempfile.mkdtemp(prefix="authd-bench-audit-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    records = workload(args.records)
    rows: list[list[object]] = []
    load0 = os.getloadavg()
    try:
        for kind in (["sqlite", "postgresql"] if args.store == "both" else [args.store]):
            cluster = start_pg_cluster(root / "pg") if kind == "postgresql" else None
            try:
                runs: dict[str, list[dict[str, float]]] = {name: [] for name in LAYOUTS}
                for _ in range(args.repeat):  # alternating, so drifting load hits all alike
                    for layout in LAYOUTS:
                        url = (cluster.url(cluster.create_database()) if cluster
                               else f"sqlite:///{root / f'{layout}-{len(runs[layout])}.db'}")
                        pid = postmaster_pid(cluster) if cluster else None
                        runs[layout].append(measure(layout, url, pid, records, args.batch, root))
                results = {layout: median_of(rs) for layout, rs in runs.items()}
                for layout in LAYOUTS:
                    r = results[layout]
                    rows.append([kind, layout, r["cpu_us"], r["server_us"],
                                 r["cpu_us"] + r["server_us"], r["wall_us"], r["table_b"],
                                 r["index_b"], r["table_b"] + r["index_b"], r["wal_b"]])
                    print(f"[{kind}] {layout}: {r}", flush=True)
                b, a = results["before"], results["after"]
                e = results["each"]
                rows.append([kind, "after / each", a["cpu_us"] / e["cpu_us"],
                             a["server_us"] / e["server_us"] if e["server_us"] else "",
                             (a["cpu_us"] + a["server_us"]) / (e["cpu_us"] + e["server_us"]),
                             a["wall_us"] / e["wall_us"], "", "", "",
                             a["wal_b"] / e["wal_b"] if e["wal_b"] else ""])
                rows.append([kind, "after / before",
                             a["cpu_us"] / b["cpu_us"],
                             a["server_us"] / b["server_us"] if b["server_us"] else "",
                             (a["cpu_us"] + a["server_us"]) / (b["cpu_us"] + b["server_us"]),
                             a["wall_us"] / b["wall_us"], a["table_b"] / b["table_b"],
                             a["index_b"] / b["index_b"],
                             (a["table_b"] + a["index_b"]) / (b["table_b"] + b["index_b"]),
                             a["wal_b"] / b["wal_b"] if b["wal_b"] else ""])
                rows.append([kind, "sealing (after, off the hot path)", a["seal_us"], "", "",
                             "", a["sealed_table_b"] - a["table_b"],
                             a["sealed_index_b"] - a["index_b"], "", ""])
                rows.append([kind, "authd audit verify (after)", a["verify_us"], "", "", "",
                             "", "", "", ""])
            finally:
                if cluster is not None and cluster._stop:
                    cluster._stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load1 = os.getloadavg()
    print()
    print(f"Audit record per OTP verification: {args.records:,} records, {args.batch} per "
          f"durable commit, median of {args.repeat} runs; load average {load0[0]:.2f} "
          f"before, {load1[0]:.2f} after ({os.cpu_count()} cores)")
    print(table(["store", "layout", "CPU µs", "server CPU µs", "total CPU µs", "wall µs",
                 "table B", "index B", "bytes", "WAL B"], rows))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
