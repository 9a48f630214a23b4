"""The demo: authd on the embedded default (SQLite, SoftHSM2 key-encryption key, mTLS with a
development CA) with its simulators switched on, and a day at a branch.

    python -m authd.demo [--data-dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from authd.client import identity_channel

BANKS = ("bank-a", "bank-b", "bank-c")


def say(text: str) -> None:
    print(text, flush=True)


class Daemon:
    """``authd serve --config FILE`` in the background, as an operator would run it."""

    def __init__(self, config: Path, data_dir: Path) -> None:
        self.log_path = data_dir / "authd.log"
        self.log = open(self.log_path, "ab")  # noqa: SIM115
        # The demo's daemon keeps its SoftHSM2 tokens in its own data directory.
        env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
        self.proc = subprocess.Popen([sys.executable, "-m", "authd.cli", "serve", "--config",
                                      str(config)], stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("authd listening on port "):
            self.proc.kill()
            raise SystemExit(f"authd did not start; see {self.log_path}")
        self.port = int(line.rsplit(" ", 1)[1])

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(30)
        self.log.close()
        return code


def step(title: str, fn: Callable[[], None]) -> bool:
    say(f"\n=== {title} ===")
    started = time.perf_counter()
    try:
        fn()
    except Exception as exc:  # a demo step failing must not hide the others
        say(f"!!! {title} failed: {type(exc).__name__}: {exc}")
        return False
    say(f"--- {title}: done in {time.perf_counter() - started:.1f} s")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m authd.demo", description=__doc__)
    parser.add_argument("--data-dir", help="where authd keeps its state (default: a new "
                                           "temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["otp", "hid_otp", "security_card", "policy", "token",
                                 "certificate", "customer", "smartcard"],
                        help="leave a step out (repeatable)")
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(
        prefix="authd-demo-"))
    if data_dir.exists() and any(data_dir.iterdir()):
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)

    from authd.demo_steps.smartcard import start_readers
    from simulators.smartcard import PrivatePcscd

    results: list[bool] = []
    readers: PrivatePcscd | str | None = None
    if "smartcard" not in args.skip:
        readers = start_readers(data_dir / "pcscd")  # before the daemon: it inherits the socket
    try:
        results = _run_steps(args, data_dir, readers)
    finally:
        if isinstance(readers, PrivatePcscd):
            readers.stop()
    if not args.keep and not args.data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)
    failed = results.count(False)
    say(f"\nDemo: {len(results) - failed} step(s) passed, {failed} failed")
    return 1 if failed else 0


def _run_steps(args: argparse.Namespace, data_dir: Path, readers: object) -> list[bool]:
    from authd.demo_steps.certificate import CaProcess
    from simulators.security_card.embosser import EmbosserSimulator

    results: list[bool] = []
    ca = CaProcess(data_dir / "ca")
    with EmbosserSimulator() as embosser, EmbosserSimulator() as printer:
        config = data_dir / "authd.toml"
        config.write_text(
            f'data_dir = "{data_dir}"\n'
            "simulators = true\n"
            "[server]\n"
            'listen = "127.0.0.1:0"\n'
            "[security_card]\n"
            f'embosser = "{embosser.address}"\n'
            f'printer = "{printer.address}"\n'
            "[certificate]\n"
            f'ca_url = "{ca.info["ca_url"]}"\n'
            f'ca_certificates = "{ca.info["ca_certificate"]}"\n'
            "cache_max_seconds = 2\n")
        say(f"Starting authd (embedded default: SQLite, SoftHSM2 key-encryption key, mTLS with a "
            f"development CA) in {data_dir}")
        daemon = Daemon(config, data_dir)
        address = f"localhost:{daemon.port}"
        pki = data_dir / "pki"
        say(f"authd is listening on {address}; client certificates in {pki}")
        channels: list[grpc.Channel] = []

        def open_as(name: str) -> grpc.Channel:
            ch = identity_channel(address, pki, name)
            channels.append(ch)
            return ch

        tellers = {b: open_as(f"{b}-teller") for b in BANKS}
        backends = {b: open_as(f"{b}-backend") for b in BANKS}
        try:
            from authd.demo_steps import (
                certificate,
                customer,
                hid_otp,
                otp,
                policy,
                security_card,
                smartcard,
                token,
            )
            from simulators.token.softhsm import SoftHsmEnvironment

            steps: list[tuple[str, str, Callable[[], None]]] = [
                ("otp", "OTP generator at three institutions",
                 lambda: otp.run(otp.OtpDemoContext(tellers, backends, say))),
                ("hid_otp", "USB HID OTP device provisioned at a branch",
                 lambda: hid_otp.run(hid_otp.DemoContext(tellers["bank-a"], backends, say))),
                ("security_card", "Braille security card",
                 lambda: security_card.run(security_card.SecurityCardDemoContext(
                     tellers["bank-a"], backends["bank-a"], say, embosser))),
                ("policy", "Transfer decisions: grades, limits, terminals, duplicates",
                 lambda: policy.run(policy.PolicyDemoContext(
                     tellers["bank-a"], backends["bank-a"], say, printer))),
                ("token", "HSM security token (PKCS#11, SoftHSM2)",
                 lambda: token.run(token.TokensDemoContext(
                     tellers["bank-a"], backends["bank-a"],
                     SoftHsmEnvironment(data_dir / "softhsm"), ca, say))),
                ("certificate", "Certificate on the HSM token, revoked at the CA",
                 lambda: certificate.run(certificate.CertificateDemoContext(
                     tellers["bank-a"], backends["bank-a"],
                     SoftHsmEnvironment(data_dir / "softhsm"), ca, say))),
            ]
            steps.append(("customer", "Which media a customer holds",
                          lambda: customer.run(customer.CustomerDemoContext(backends, say))))
            if isinstance(readers, smartcard.PrivatePcscd):
                pcscd = readers
                steps.append(("smartcard", "Smartcard (virtual PIV card through pcscd)",
                              lambda: smartcard.run(smartcard.SmartcardDemoContext(
                                  tellers["bank-b"], say, data_dir, pcscd.port(0)))))
            elif readers is not None:
                say(f"\nsmartcards: {readers}; step skipped")
            for key, title, fn in steps:
                if key not in args.skip:
                    results.append(step(title, fn))
        finally:
            for ch in channels:
                ch.close()
            say("\nStopping authd with SIGTERM (in-flight calls finish first)")
            code = daemon.stop()
            say(f"authd exited with status {code}")
            ca.stop()
    return results


if __name__ == "__main__":
    sys.exit(main())
