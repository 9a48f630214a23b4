"""The demo: authd on the embedded default (SQLite, SoftHSM2 key-encryption key, mTLS with a
development CA) with its simulators switched on, and a day at a branch.

    python -m authd.demo [--data-dir DIR] [--keep]
    python -m authd.demo --split      # the same day over a center and two branch nodes

``--split`` runs the deployment banks run: a center of two nodes sharing one store (SQLite
here; PostgreSQL in production), and the branch nodes of bank A and bank B, each a process
with its own simulated devices and its own certificate, reaching the center over mTLS. The
tellers of A and B work at their branch node; bank C's teller, which has no branch node here,
calls the center directly, as every backend does.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


Steps = list[tuple[str, str, Callable[[], None]]]
STEPS = ("otp", "hid_otp", "security_card", "policy", "token", "certificate", "customer",
         "smartcard", "failover")


@dataclass(frozen=True)
class Devices:
    """The simulated devices of the day: the branch's embosser and card printer, the
    smartcard readers (a private pcscd, or why there is none), the certificate authority."""

    embosser: Any
    printer: Any
    readers: object
    ca: Any

    def certificate_settings(self) -> dict[str, Any]:
        """The ``[certificate]`` section naming the simulated CA."""
        return {"ca_url": self.ca.info["ca_url"],
                "ca_certificates": self.ca.info["ca_certificate"], "cache_max_seconds": 2}


def the_day(tellers: dict[str, grpc.Channel], backends: dict[str, grpc.Channel],
            devices: Devices, softhsm_dir: Path, work_dir: Path) -> Steps:
    """The steps of a day, for tellers and backends wherever they are served."""
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

    steps: Steps = [
        ("otp", "OTP generator at three institutions",
         lambda: otp.run(otp.OtpDemoContext(tellers, backends, say))),
        ("hid_otp", "USB HID OTP device provisioned at a branch",
         lambda: hid_otp.run(hid_otp.DemoContext(tellers["bank-a"], backends, say))),
        ("security_card", "Braille security card",
         lambda: security_card.run(security_card.SecurityCardDemoContext(
             tellers["bank-a"], backends["bank-a"], say, devices.embosser))),
        ("policy", "Transfer decisions: grades, limits, terminals, duplicates",
         lambda: policy.run(policy.PolicyDemoContext(
             tellers["bank-a"], backends["bank-a"], say, devices.printer))),
        ("token", "HSM security token (PKCS#11, SoftHSM2)",
         lambda: token.run(token.TokensDemoContext(
             tellers["bank-a"], backends["bank-a"], SoftHsmEnvironment(softhsm_dir),
             devices.ca, say))),
        ("certificate", "Certificate on the HSM token, revoked at the CA",
         lambda: certificate.run(certificate.CertificateDemoContext(
             tellers["bank-a"], backends["bank-a"], SoftHsmEnvironment(softhsm_dir),
             devices.ca, say))),
        ("customer", "Which media a customer holds",
         lambda: customer.run(customer.CustomerDemoContext(backends, say))),
    ]
    if isinstance(devices.readers, smartcard.PrivatePcscd):
        pcscd = devices.readers
        steps.append(("smartcard", "Smartcard (virtual PIV card through pcscd)",
                      lambda: smartcard.run(smartcard.SmartcardDemoContext(
                          tellers["bank-b"], say, work_dir, pcscd.port(0)))))
    elif devices.readers is not None:
        say(f"\nsmartcards: {devices.readers}; step skipped")
    return steps


def run_steps(steps: Steps, skip: set[str]) -> list[bool]:
    return [step(title, fn) for key, title, fn in steps if key not in skip]


def embedded_day(data_dir: Path, devices: Devices, skip: set[str]) -> list[bool]:
    """One authd holding both roles: the embedded default."""
    config = data_dir / "authd.toml"
    config.write_text(
        f'data_dir = "{data_dir}"\n'
        "simulators = true\n"
        "[server]\n"
        'listen = "127.0.0.1:0"\n'
        "[security_card]\n"
        f'embosser = "{devices.embosser.address}"\n'
        f'printer = "{devices.printer.address}"\n'
        "[certificate]\n"
        f'ca_url = "{devices.ca.info["ca_url"]}"\n'
        f'ca_certificates = "{devices.ca.info["ca_certificate"]}"\n'
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
        return run_steps(the_day(tellers, backends, devices, data_dir / "softhsm", data_dir),
                         skip)
    finally:
        for ch in channels:
            ch.close()
        say("\nStopping authd with SIGTERM (in-flight calls finish first)")
        code = daemon.stop()
        say(f"authd exited with status {code}")


def split_day(data_dir: Path, devices: Devices, skip: set[str]) -> list[bool]:
    """A center of two nodes on one store, and the branch nodes of bank A and bank B."""
    from authd.demo_steps.topology import (
        ServeProcess,
        branch_config,
        center_config,
        create_pki,
        terminal_name,
    )
    from authd.files import create_private
    from drivers.pkcs11.softhsm import SoftHsmEnvironment

    pki = create_pki(data_dir / "pki", BANKS)
    # The center's nodes share the store, and the token holding its key-encryption key.
    center_hsm = SoftHsmEnvironment(data_dir / "center-softhsm")
    center_hsm.ensure()
    center_env = {"SOFTHSM2_CONF": str(center_hsm.conf)}
    (data_dir / "center").mkdir(parents=True, exist_ok=True)
    store = f"sqlite:///{data_dir / 'center' / 'authd.db'}"
    nodes: list[ServeProcess] = []
    channels: list[grpc.Channel] = []

    def open_as(address: str, name: str) -> grpc.Channel:
        ch = identity_channel(address, pki, name)
        channels.append(ch)
        return ch

    # The PIN of the center's key-encryption-key token, outside every node's data directory.
    kek_pin = data_dir / "center" / "kek.pin"
    if not kek_pin.exists():
        create_private(kek_pin, secrets.token_hex(16).encode())
    try:
        say(f"Starting the center: two nodes sharing {store}, mTLS with a development CA "
            f"in {pki}")
        for n in range(2):
            raw = center_config(pki, kek={"pin_file": str(kek_pin)},
                                certificate=devices.certificate_settings())
            nodes.append(ServeProcess(f"center-{n}", data_dir / f"center-{n}", raw,
                                      store_url=store, env=center_env))
        centers = list(nodes)
        urls = [c.address for c in centers]
        say(f"  center nodes at {', '.join(urls)}")
        branches = {}
        for bank in ("bank-a", "bank-b"):
            say(f"Starting {bank}'s branch node (certificate O={bank}, OU=branch, "
                f"CN={terminal_name(bank)}), its link to the center: {', '.join(urls)}")
            raw = branch_config(pki, bank, urls, security_card={
                "embosser": devices.embosser.address, "printer": devices.printer.address},
                certificate=devices.certificate_settings())
            # Each branch node keeps its own SoftHSM2 tokens in its data directory.
            branches[bank] = ServeProcess(f"branch-{bank}", data_dir / f"branch-{bank}", raw,
                                          drop_env=("SOFTHSM2_CONF",))
            nodes.append(branches[bank])
        tellers = {bank: open_as(node.address, f"{bank}-teller")
                   for bank, node in branches.items()}
        tellers["bank-c"] = open_as(urls[0], "bank-c-teller")
        backends = {bank: open_as(urls[0], f"{bank}-backend") for bank in BANKS}
        say("The tellers of bank-a and bank-b work at their branch node; bank-c's teller and "
            "every backend call the center")
        steps = the_day(tellers, backends, devices, data_dir / "branch-bank-a" / "softhsm",
                        data_dir / "branch-bank-b")
        steps.append(("failover", "A center node stops; the branch goes on through the other",
                      lambda: _failover(centers[0], tellers["bank-a"])))
        return run_steps(steps, skip)
    finally:
        for ch in channels:
            ch.close()
        say("\nStopping every node with SIGTERM (in-flight calls finish first)")
        for node in reversed(nodes):
            if node.alive:
                say(f"  {node.name} exited with status {node.stop()}")


def _failover(center: Any, teller: grpc.Channel) -> None:
    from authd.v1 import hid_otp_pb2, hid_otp_pb2_grpc

    center.stop()
    say(f"  {center.name} stopped")
    sim = hid_otp_pb2_grpc.HidSimulatorServiceStub(teller)
    hid = hid_otp_pb2_grpc.HidOtpServiceStub(teller)
    serial = sim.PlugDevice(hid_otp_pb2.PlugSimulatedHidDeviceRequest()).device_serial
    result = hid.ProvisionDevice(hid_otp_pb2.ProvisionHidDeviceRequest(
        device_serial=serial, operator_id="teller-lee", customer_id="A-0001077"), timeout=60)
    say(f"  bank-a's branch node provisions device {serial} as {result.otp_serial} through "
        f"the other center node")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m authd.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="where authd keeps its state (default: a new "
                                           "temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--split", action="store_true",
                        help="run the day over a center of two nodes and two branch nodes")
    parser.add_argument("--skip", action="append", default=[], choices=list(STEPS),
                        help="leave a step out (repeatable)")
    args = parser.parse_args(argv)
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(
        prefix="authd-demo-"))
    if data_dir.exists() and any(data_dir.iterdir()):
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)

    from authd.demo_steps.certificate import CaProcess
    from authd.demo_steps.smartcard import start_readers
    from simulators.security_card.embosser import EmbosserSimulator
    from simulators.smartcard import PrivatePcscd

    results: list[bool] = []
    readers: PrivatePcscd | str | None = None
    if "smartcard" not in args.skip:
        readers = start_readers(data_dir / "pcscd")  # before the daemons: they inherit it
    ca = CaProcess(data_dir / "ca")
    try:
        with EmbosserSimulator() as embosser, EmbosserSimulator() as printer:
            day = split_day if args.split else embedded_day
            results = day(data_dir, Devices(embosser, printer, readers, ca), set(args.skip))
    finally:
        ca.stop()
        if isinstance(readers, PrivatePcscd):
            readers.stop()
    if not args.keep and not args.data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)
    failed = results.count(False)
    say(f"\nDemo: {len(results) - failed} step(s) passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
