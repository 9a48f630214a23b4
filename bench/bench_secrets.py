"""Opening a sealed OTP seed: the token on every call, or a data key unwrapped once.

    python -m bench secrets [--n 20000]

Both keep the key-encryption key in the PKCS#11 token (SoftHSM2). ``token`` asks the token to
run AES-GCM for every open; ``data-key`` asks it once, at start, to unseal a data key and then
opens in process. The figure that matters is the cost added to each verification.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from authd.files import create_private
from bench.common import private_softhsm, table


def measure(mode: str, n: int, threads: int) -> tuple[float, float]:
    from authd import config as configmod
    from authd.secrets import open_secret_box
    from authd.storage import migrate, open_database

    root = Path(tempfile.mkdtemp(prefix="authd-bench-secrets-"))
    pin = root / "kek.pin"
    create_private(pin, b"bench-pin-1234")
    cfg = configmod.load(None, environ={}, overrides={
        "data_dir": str(root), "kek": {"mode": mode, "pin_file": str(pin),
                                       "token_label": "bench-kek"}})
    db = open_database(cfg.store_url)
    migrate(db)
    box = open_secret_box(cfg, db)
    blob = box.seal(b"12345678901234567890", b"otp-seed:BENCH")
    for _ in range(200):
        box.open(blob, b"otp-seed:BENCH")
    per_thread = n // threads

    def work() -> None:
        for _ in range(per_thread):
            box.open(blob, b"otp-seed:BENCH")

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    box.close()
    db.close()
    total = per_thread * threads
    return total / elapsed, elapsed / total * 1e6


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench secrets")
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args(argv)
    private_softhsm()
    rows = []
    base = {}
    for threads in (1, 4):
        for mode in ("data-key", "token"):
            rate, micros = measure(mode, args.n, threads)
            base.setdefault(threads, rate)
            rows.append([mode, threads, rate, micros, rate / base[threads]])
    print("Opening a sealed 20-byte seed (AES-256-GCM), key-encryption key in SoftHSM2")
    print(table(["mode", "threads", "opens/s", "µs/open", "ratio to data-key"], rows))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
