"""HID OTP benchmark: provisioning and challenge-response round trips per second through authd
(gRPC, SQLite, durable commits) against the driver called directly on the simulated device.

    python -m bench hid_otp [--count N] [--delay-ms D]
    PYTHONPATH=. python bench/bench_hid_otp.py [--count N] [--delay-ms D]

Direct path: the real driver + protocol code over the simulator (program slot 1 with a
HOTP seed and slot 2 with an HMAC key; one HMAC-SHA1 challenge-response). Through authd:
ProvisionDevice (the same device work + seed from the PKCS#11 token + OTP center enrollment
+ audit, one durable transaction) and IdentifyDevice (challenge-response + audit record).
The server runs in this process (its own event loop thread); both share the CPU.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from authd.files import create_private
from devices.hid_otp import HidOtpSession, Slot, hmac_sha1_config, hotp_config
from drivers.hid import OtpHidConnection
from simulators.hid_otp import SimulatedOtpDevice, SimulatorBus


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def timed(count: int, op: Callable[[int], Any]) -> float:
    started = time.perf_counter()
    for i in range(count):
        op(i)
    return time.perf_counter() - started


def direct(count: int, delay: float) -> tuple[float, float]:
    bus = SimulatorBus()
    device = SimulatedOtpDevice(serial=40_000_000, processing_delay=delay)
    session = HidOtpSession(OtpHidConnection.open(bus, bus.plug(device)))
    code = b"\x01\x02\x03\x04\x05\x06"
    seed, key = os.urandom(20), os.urandom(20)

    def provision(_: int) -> None:
        session.serial()
        session.put_configuration(Slot.ONE, hotp_config(seed, access_code=code), access_code=code)
        session.put_configuration(Slot.TWO, hmac_sha1_config(key, access_code=code),
                                  access_code=code)

    provision_s = timed(count, provision)
    challenge = os.urandom(32)
    hmac_s = timed(count, lambda _: session.calculate_hmac_sha1(Slot.TWO, challenge))
    return rate(count, provision_s), rate(count, hmac_s)


def through_authd(count: int, delay: float, root: Path) -> tuple[float, float]:
    from authd import config as configmod
    from authd.client import dev_channel
    from authd.hid_otp.feature import HidOtpFeature
    from authd.server import BackgroundServer
    from authd.v1 import hid_otp_pb2, hid_otp_pb2_grpc
    from simulators.token.softhsm import SoftHsmEnvironment

    SoftHsmEnvironment(root / "softhsm").activate()
    pin = root / "kek.pin"
    create_private(pin, b"bench-hid-pin")
    cfg = configmod.load(None, environ={}, overrides={
        "data_dir": str(root / "data"),
        "simulators": True,
        "kek": {"pin_file": str(pin)},
        "server": {"insecure": True, "listen": "127.0.0.1:0"},
        "hid_otp": {"monitor_interval": 0},
    })
    server = BackgroundServer(cfg)
    try:
        bus: SimulatorBus = server.app.require(HidOtpFeature).bus
        serials = [50_000_000 + i for i in range(count)]
        for serial in serials:
            bus.plug(SimulatedOtpDevice(serial=serial, processing_delay=delay))
        channel = dev_channel(f"127.0.0.1:{server.port}", "bank-a", "branch", "bench")
        hid = hid_otp_pb2_grpc.HidOtpServiceStub(channel)
        hid.ListDevices(hid_otp_pb2.ListHidDevicesRequest())  # learn serials once, as a terminal
        provision_s = timed(count, lambda i: hid.ProvisionDevice(
            hid_otp_pb2.ProvisionHidDeviceRequest(device_serial=serials[i], operator_id="bench",
                                                  customer_id=f"C-{i}")))
        identify_s = timed(count, lambda i: hid.IdentifyDevice(
            hid_otp_pb2.IdentifyHidDeviceRequest(device_serial=serials[0])))
        channel.close()
        return rate(count, provision_s), rate(count, identify_s)
    finally:
        server.stop()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench hid")
    parser.add_argument("--count", type=int, default=200, help="operations per measurement")
    parser.add_argument("--delay-ms", type=float, default=0.0,
                        help="simulated device processing time per command")
    args = parser.parse_args(argv)
    delay = args.delay_ms / 1000
    root = Path(tempfile.mkdtemp(prefix="authd-bench-hid-"))
    try:
        d_prov, d_hmac = direct(args.count, delay)
        a_prov, a_ident = through_authd(args.count, delay, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"HID OTP over the simulated device ({args.count} ops each, device delay "
          f"{args.delay_ms:g} ms, {os.cpu_count()} cores shared by client and server)")
    print(f"{'operation':<28}{'direct/s':>12}{'authd/s':>12}{'authd/direct':>14}")
    for name, direct_rate, authd_rate in (
        ("provision (2 slots)", d_prov, a_prov),
        ("challenge-response", d_hmac, a_ident),
    ):
        ratio = authd_rate / direct_rate
        print(f"{name:<28}{direct_rate:>12,.0f}{authd_rate:>12,.0f}{ratio:>14.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
