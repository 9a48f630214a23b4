"""Importing a manufacturer's PSKC seed file: reading and checking it, and the transaction.

    python -m bench pskc [--devices 3000] [--store sqlite|postgresql]

Makes a file of N HOTP key packages with python-pskc (in plain, under a pre-shared key, and
under a PBKDF2 key of 100,000 iterations), then measures in process, without gRPC: the read
and check of the whole file (``OtpService.read_seed_file``: XML, decryption, MACs), and the one
transaction that enrolls every device (sealing each seed under the KEK, one audit record
each), on a fresh store. Also says how large a file of N packages is: a file travels in one
gRPC message of at most 4 MiB.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

from bench.common import load1, private_softhsm, table

HOTP = "urn:ietf:params:xml:ns:keyprov:pskc:hotp"


def make_file(n: int, protection: str) -> tuple[bytes, dict[str, object]]:
    import pskc

    container = pskc.PSKC()
    secret: dict[str, object] = {}
    if protection == "pre_shared_key":
        key = os.urandom(16)
        container.encryption.setup_preshared_key(key=key)
        container.mac.setup(algorithm="hmac-sha1")
        secret = {"key": key}
    elif protection == "password":
        container.encryption.setup_pbkdf2("bench-password", iterations=100_000)
        container.mac.setup(algorithm="hmac-sha1")
        secret = {"password": "bench-password"}
    for i in range(n):
        container.add_key(serial=f"BENCH-{i:07d}", algorithm=HOTP, response_length=6,
                          response_encoding="DECIMAL", secret=os.urandom(20), counter=0,
                          manufacturer="Acme")
    out = io.BytesIO()
    container.write(out)
    return out.getvalue(), secret


def measure(n: int, protection: str, store: str) -> list[object]:
    from authd import config as configmod
    from authd.audit import AuditLog
    from authd.context import Caller, Role
    from authd.otp.service import OtpService
    from authd.secrets import open_secret_box
    from authd.storage import migrate, open_database
    from devices.otp.rules import Policy

    data, secret = make_file(n, protection)
    root = Path(tempfile.mkdtemp(prefix="authd-bench-pskc-"))
    pin = root / "kek.pin"
    pin.write_text("bench-pin-1234")
    url = f"sqlite:///{root / 'authd.db'}"
    cluster = None
    if store == "postgresql":
        from tests.pgcluster import start_pg_cluster

        os.chmod(root, 0o777)  # the PostgreSQL cluster runs as the postgres user
        cluster = start_pg_cluster(root / "pg")
        url = cluster.url(cluster.create_database())
    cfg = configmod.load(None, environ={}, overrides={
        "data_dir": str(root), "store": {"url": url},
        "kek": {"pin_file": str(pin), "token_label": "bench-pskc"}})
    db = open_database(cfg.store_url)
    migrate(db)
    box = open_secret_box(cfg, db)
    center = OtpService(box, AuditLog(), Policy())
    caller = Caller("bank-a", Role.BRANCH, "bench")
    started = time.perf_counter()
    seeds = center.read_seed_file(data, key=secret.get("key"),  # type: ignore[arg-type]
                                  password=secret.get("password"))  # type: ignore[arg-type]
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    db.run(lambda tx: center.import_devices(tx, seeds=seeds, caller=caller, operator="bench",
                                            dry_run=False))
    write_s = time.perf_counter() - started
    box.close()
    db.close()
    if cluster is not None and cluster._stop:
        cluster._stop()
    return [store, protection, n, f"{len(data) / 1024 / 1024:.2f}", f"{read_s:.2f}",
            f"{write_s:.2f}", f"{n / (read_s + write_s):,.0f}", f"{load1():.1f}"]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench pskc")
    parser.add_argument("--devices", type=int, default=3000)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args(argv)
    private_softhsm()
    rows = [measure(args.devices, p, args.store)
            for p in ("none", "pre_shared_key", "password")]
    print(table(["store", "protection", "packages", "file MiB", "read+check s",
                 "transaction s", "devices/s", "load1"], rows))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
