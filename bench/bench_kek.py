"""``python -m bench kek``: how long an online key-encryption-key rotation takes, and what it
costs the verifications that run meanwhile (docs/keys.md, "Rotation").

For each store (SQLite, PostgreSQL on this machine) and size (10,000 and 100,000 OTP devices
by default, plus one idempotency key with its two sealed values per ten devices), a center
node (``authd serve``) serves while h2load offers unary Verify calls at a fixed rate:

1. *before*: the rate answered and its p99 with no rotation;
2. *during*: the same load while ``authd kek rotate``'s steps run in this process (key 1 to
   key 2), measured in 1-s h2load runs from the start of the re-sealing passes until the
   rotation ends; the rotation's re-sealing rate is values moved / seconds of those passes
   (the wait for every node to see the new key is printed apart);
3. *quiet*: a second rotation (key 2 to key 3) with no load, for the rotation's own rate.

Every figure is printed with the 1-minute load average beside it; ``--repeat`` rotations of
each kind give the spread."""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from authd.files import create_private
from bench import h2load
from bench.bench_otp import (
    INSTITUTIONS,
    NO_LOCKOUT,
    NO_REFUSAL_LIMIT,
    VERIFY,
    enroll_devices,
    native_jobs,
)
from bench.common import load1, private_softhsm, scrape, table

REFRESH = 0.5  # [kek] refresh_seconds of the node and the rotation
STORE_TIMEOUT = 2.0  # [store] timeout_seconds: the rotation waits 2 x 0.5 + 2 + 1 s


def config_for(data_dir: Path, store_url: str, pin_file: Path, label: str) -> Any:
    from authd import config as configmod

    return configmod.load(None, environ={}, overrides={
        "data_dir": str(data_dir), "store": {"url": store_url, "timeout_seconds": STORE_TIMEOUT},
        "kek": {"pin_file": str(pin_file), "key_label": label, "refresh_seconds": REFRESH,
                "keep_rotated_days": 0},
        "server": {"insecure": True, "listen": "127.0.0.1:0"}})


def add_idempotency_keys(cfg: Any, count: int) -> None:
    """``count`` remembered changes, each with its sealed request and answer."""
    from authd.idempotency import answer_aad, request_aad
    from authd.secrets import open_secret_box
    from authd.storage import open_database

    db = open_database(cfg.store_url)
    box = open_secret_box(cfg, db)
    now = time.time()
    try:
        for base in range(0, count, 5_000):
            rows = []
            for i in range(base, min(count, base + 5_000)):
                key = f"bench-idem-{i:07d}"
                rows.append((key, INSTITUTIONS[i % 3], "/authd.v1.OtpService/Enroll",
                             box.seal(b"r" * 120, request_aad(key)),
                             box.seal(b"a" * 200, answer_aad(key)), now))
            db.run(functools.partial(_insert_keys, rows=rows))
    finally:
        box.close()
        db.close()


def _insert_keys(tx: Any, rows: Sequence[tuple[object, ...]]) -> None:
    tx.executemany("INSERT INTO idempotency_keys (id, institution, method, sealed_request,"
                   " sealed_answer, created_at) VALUES (?, ?, ?, ?, ?, ?)", rows)


class Timed:
    """A rotation's lines, with when each was said."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []

    def __call__(self, line: str) -> None:
        self.lines.append((time.monotonic(), line))

    def at(self, prefix: str) -> float:
        return next(t for t, line in self.lines if line.startswith(prefix))


def rotate(cfg: Any, rewrapping: threading.Event | None = None) -> dict[str, float]:
    """One rotation of the store, in this process; its phases in seconds. ``rewrapping`` is
    set when the re-sealing passes begin."""
    from authd.kek.rotation import Rotation, RotationRow
    from authd.secrets import open_secret_box
    from authd.storage import open_database

    class TimedRotation(Rotation):
        rewrap_started = 0.0

        def _wait_for_nodes(self, row: RotationRow) -> None:
            super()._wait_for_nodes(row)
            self.rewrap_started = time.monotonic()
            if rewrapping is not None:
                rewrapping.set()

    db = open_database(cfg.store_url, 2)
    db.set_timeout(cfg.store.timeout_seconds)
    box = open_secret_box(cfg, db)
    said = Timed()
    try:
        rotation = TimedRotation(cfg, db, box, say=said)
        t0 = time.monotonic()
        row = rotation.run()
        t1 = time.monotonic()
    finally:
        box.close()
        db.close()
    seconds = max(1e-6, said.at("every sealed value") - rotation.rewrap_started)
    return {"moved": float(row.moved), "total": t1 - t0, "wait": rotation.rewrap_started - t0,
            "rewrap": seconds, "per_s": row.moved / seconds, "load": load1()}


def run_into(out: dict[str, dict[str, float]], cfg: Any, rewrapping: threading.Event) -> None:
    try:
        out["r"] = rotate(cfg, rewrapping)
    finally:
        rewrapping.set()


def rated(base: str, jobs: list[h2load.Job], ok_calls: Any, seconds: float, rps: int
          ) -> h2load.H2Run:
    each = max(1, -(-rps // len(jobs)))
    return h2load.run_counted(base + VERIFY, jobs, ok_calls, duration=seconds, streams=8,
                              rps=each)


def summary(runs: list[h2load.H2Run]) -> dict[str, float]:
    latencies = [x for r in runs for x in r.latencies]
    answered = sum(r.answered for r in runs)
    elapsed = sum(r.elapsed for r in runs)
    probe = h2load.H2Run(0, 0, 0, elapsed, latencies, answered=answered)
    return {"rate": answered / elapsed if elapsed else 0.0, "p50": probe.ms(50),
            "p99": probe.ms(99), "failed": float(sum(r.failed for r in runs))}


def bench_one(kind: str, store_url: str, root: Path, pin_file: Path, devices: int,
              args: Any) -> list[list[object]]:
    from tests.nodes import Node
    from tests.pgcluster import free_port

    label = f"bench-kek-{os.urandom(4).hex()}"
    cfg = config_for(root / "rotator", store_url, pin_file, label)
    took = enroll_devices(cfg, devices)
    add_idempotency_keys(cfg, devices // 10)
    print(f"[{kind} {devices:,}] enrolled in {took:.1f} s", flush=True)
    metrics_port = free_port()
    node = Node(root / "node", store_url, {
        "AUTHD_KEK__PIN_FILE": str(pin_file), "AUTHD_KEK__KEY_LABEL": f'"{label}"',
        "AUTHD_KEK__REFRESH_SECONDS": str(REFRESH), "AUTHD_KEK__KEEP_ROTATED_DAYS": "0",
        "AUTHD_STORE__TIMEOUT_SECONDS": str(STORE_TIMEOUT), "AUTHD_LOG_LEVEL": "WARNING",
        "AUTHD_ROLES": '["center"]', "AUTHD_OTP__LOCKOUT_THRESHOLD": str(NO_LOCKOUT),
        "AUTHD_SERVER__METRICS_LISTEN": f'"127.0.0.1:{metrics_port}"', **NO_REFUSAL_LIMIT})
    rows: list[list[object]] = []
    try:
        def ok_calls() -> int:
            return int(scrape(metrics_port, "authd_rpcs_total", method=VERIFY, code="OK"))

        jobs = native_jobs(devices, time.time(), 4, 64)
        base = f"http://{node.address}"
        for n in range(args.repeat):
            before = summary([rated(base, jobs, ok_calls, args.seconds, args.rps)])
            before["load"] = load1()
            result: dict[str, dict[str, float]] = {}
            rewrapping = threading.Event()
            thread = threading.Thread(target=run_into, args=(result, cfg, rewrapping))
            thread.start()
            during_runs = []
            rewrapping.wait()
            while thread.is_alive():  # 1-s runs while the re-sealing passes last
                during_runs.append(rated(base, jobs, ok_calls, 1.0, args.rps))
            thread.join()
            during = summary(during_runs)
            during["load"] = load1()
            loaded = result["r"]
            quiet = rotate(cfg)
            tag = f"{kind}, {devices:,} devices, run {n + 1}"
            rows.append([tag, "verify before", f"{before['rate']:,.0f}/s",
                         f"{before['p99']:.1f}", "-", "-", f"{before['load']:.2f}"])
            rows.append([tag, "verify during rotation", f"{during['rate']:,.0f}/s",
                         f"{during['p99']:.1f}", "-", "-", f"{during['load']:.2f}"])
            rows.append([tag, "rotation under that load", f"{loaded['per_s']:,.0f} values/s",
                         "-", f"{loaded['moved']:,.0f} in {loaded['rewrap']:.1f} s",
                         f"{loaded['total']:.1f} (wait {loaded['wait']:.1f})",
                         f"{loaded['load']:.2f}"])
            rows.append([tag, "rotation alone", f"{quiet['per_s']:,.0f} values/s", "-",
                         f"{quiet['moved']:,.0f} in {quiet['rewrap']:.1f} s",
                         f"{quiet['total']:.1f} (wait {quiet['wait']:.1f})",
                         f"{quiet['load']:.2f}"])
            print("\n".join("  ".join(map(str, r)) for r in rows[-4:]), flush=True)
            if during["failed"] or before["failed"]:
                print(f"  failed calls: before {before['failed']:.0f}, during "
                      f"{during['failed']:.0f}", flush=True)
    finally:
        node.terminate()
    return rows


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench kek")
    parser.add_argument("--devices", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=2, help="rotations of each kind")
    parser.add_argument("--rps", type=int, default=500,
                        help="unary verifications a second offered meanwhile")
    parser.add_argument("--seconds", type=float, default=5.0, help="the 'before' window")
    args = parser.parse_args(argv)
    if not h2load.available():
        raise SystemExit("h2load not found: install Debian's nghttp2-client (scripts/setup.sh)")
    private_softhsm()
    top = Path(tempfile.mkdtemp(prefix="authd-bench-kek-"))
    if os.geteuid() == 0:
        shutil.chown(top, "postgres")
        os.chmod(top, 0o777)
    pin_file = top / "kek.pin"
    create_private(pin_file, os.urandom(8).hex().encode())
    stores = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    rows: list[list[object]] = []
    try:
        for kind in stores:
            for devices in args.devices:
                root = top / f"{kind}-{devices}"
                root.mkdir()
                if os.geteuid() == 0:
                    os.chmod(root, 0o777)
                cluster = None
                if kind == "sqlite":
                    url = f"sqlite:///{root / 'bench.db'}"
                else:
                    from tests.pgcluster import start_pg_cluster

                    cluster = start_pg_cluster(root / "pg")
                    url = cluster.url(cluster.create_database())
                try:
                    rows.extend(bench_one(kind, url, root, pin_file, devices, args))
                finally:
                    if cluster is not None and cluster._stop:
                        cluster._stop()
    finally:
        shutil.rmtree(top, ignore_errors=True)
    print()
    print(f"Key-encryption-key rotation (data-key mode, SoftHSM2), {args.rps:,} unary "
          f"verifications/s offered by h2load meanwhile, {os.cpu_count()} cores shared; "
          "p99 in ms; load1 = 1-minute load average")
    print(table(["store", "what", "rate", "p99 ms", "values", "seconds", "load1"], rows))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
