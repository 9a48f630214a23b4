"""authctl hid ...: USB HID OTP generators at a branch terminal (branch role).

``authctl hid sim ...`` are simulator commands: stand-ins for the teller's hands (plug a device
in, pull it out, press its button). A daemon serves them only while it uses the simulated HID
bus; against real devices they answer that there is no simulator.
"""

from __future__ import annotations

import argparse
from typing import Any

import grpc

from authd.ctl import (
    EXIT_OK,
    EXIT_REFUSED,
    CommandError,
    add_secret_options,
    enum_label,
    read_secrets,
    when,
)
from authd.v1 import hid_otp_pb2, hid_otp_pb2_grpc

MAX_SERIAL = 0xFFFFFFFF


def device_serial(text: str) -> int:
    """argparse type: a device serial as printed on the device (decimal)."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a device serial is a number, not {text!r}") from None
    if not 0 < value <= MAX_SERIAL:
        raise argparse.ArgumentTypeError(f"a device serial is 1..{MAX_SERIAL}")
    return value


def device_lines(m: hid_otp_pb2.ListHidDevicesResponse) -> list[str]:
    if not m.devices:
        return ["no OTP HID device attached"]
    lines = []
    if m.from_branch_copy:
        lines.append("the center cannot be asked: provisioning records as this branch node last "
                     f"had them from the center ({m.center_error})")
    for d in m.devices:
        serial = str(d.device_serial) if d.device_serial else "(serial hidden)"
        head = f"device {serial}  {d.vendor_id:04x}:{d.product_id:04x}"
        if d.firmware:
            head += f"  firmware {d.firmware}"
        lines.append(head)
        lines.append(f"  path {d.path}")
        if d.error:
            lines.append(f"  could not be read: {d.error}")
            continue
        slots = [f"slot {n} {'configured' if on else 'empty'}"
                 for n, on in ((1, d.slot1_configured), (2, d.slot2_configured))]
        lines.append(f"  {', '.join(slots)}")
        as_of = f" (as of {when(d.record_as_of)})" if m.from_branch_copy else ""
        if m.from_branch_copy and not d.record_as_of:
            lines.append("  provisioned by authd or not: unknown here (the center never "
                         "answered for this device on this node)")
        elif d.provisioned:
            by = f" by {d.institution}" if d.institution else ""
            lines.append(f"  provisioned{by} as OTP device {d.otp_serial}{as_of}")
        else:
            lines.append(f"  not provisioned by authd{as_of}")
    return lines


def provisioned_lines(m: hid_otp_pb2.ProvisionHidDeviceResponse) -> list[str]:
    ident = "identification key set (slot 2)" if m.identification else "no identification key"
    return [f"device {m.device_serial} provisioned as OTP device {m.otp_serial} "
            f"at {m.institution} for customer {m.customer_id}",
            f"  {m.digits}-digit HOTP codes on a short press (slot 1), {ident}",
            f"  firmware {m.firmware}; the seed went only to the device and the OTP center",
            f"  registered at {m.institution}; other banks: authctl otp register {m.otp_serial}"]


def identify_lines(m: hid_otp_pb2.IdentifyHidDeviceResponse) -> list[str]:
    outcome = enum_label(hid_otp_pb2.HidIdentifyOutcome, m.outcome, "HID_IDENTIFY_OUTCOME_")
    lines = [f"{outcome.upper()}: device {m.device_serial}"]
    if m.outcome == hid_otp_pb2.HID_IDENTIFY_OUTCOME_IDENTIFIED:
        lines.append(f"  it holds the key authd gave it: OTP device {m.otp_serial}, "
                     f"provisioned by {m.institution} on {when(m.provisioned_at)}")
    elif m.outcome == hid_otp_pb2.HID_IDENTIFY_OUTCOME_MISMATCH:
        lines.append(f"  it answers, but not with the key authd gave OTP device {m.otp_serial}: "
                     f"do not trust it")
    elif m.outcome == hid_otp_pb2.HID_IDENTIFY_OUTCOME_NOT_PROVISIONED:
        lines.append("  authd did not provision this device")
    elif m.outcome == hid_otp_pb2.HID_IDENTIFY_OUTCOME_NO_IDENTIFICATION_KEY:
        lines.append(f"  OTP device {m.otp_serial} was provisioned without an identification key")
    if m.from_branch_copy:
        lines.append("  the center cannot be asked: as this branch node last had it from the "
                     f"center, as of {when(m.record_as_of)}; nothing was challenged "
                     f"({m.center_error})")
    return lines


def _stub(ctl: Any) -> hid_otp_pb2_grpc.HidOtpServiceStub:
    return hid_otp_pb2_grpc.HidOtpServiceStub(ctl.channel)


def _provision(ctl: Any, a: argparse.Namespace) -> None:
    access = ""
    if a.access_code_stdin or a.access_code_file:
        (access,) = read_secrets(a, ["current access code"], flag="access-code")
        access = access.strip()
    ctl.show(_stub(ctl).ProvisionDevice(hid_otp_pb2.ProvisionHidDeviceRequest(
        device_serial=a.device_serial, digits=a.digits, overwrite=a.overwrite,
        without_identification=a.without_identification, current_access_code=access,
        operator_id=a.operator, customer_id=a.customer), timeout=a.timeout), provisioned_lines)


def _identify(ctl: Any, a: argparse.Namespace) -> int:
    resp = _stub(ctl).IdentifyDevice(hid_otp_pb2.IdentifyHidDeviceRequest(
        device_serial=a.device_serial), timeout=a.timeout)
    ctl.show(resp, identify_lines)
    return EXIT_OK if resp.outcome == hid_otp_pb2.HID_IDENTIFY_OUTCOME_IDENTIFIED else EXIT_REFUSED


def _sim(call: Any) -> Any:
    """Run a simulator call; a daemon on real devices has no simulator service."""
    def run(ctl: Any, a: argparse.Namespace) -> Any:
        try:
            return call(hid_otp_pb2_grpc.HidSimulatorServiceStub(ctl.channel), ctl, a)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.UNIMPLEMENTED:
                raise CommandError("this daemon has no HID simulator: it drives real devices "
                                   "([hid_otp] backend = \"hidapi\")") from None
            raise
    return run


def _plug(stub: hid_otp_pb2_grpc.HidSimulatorServiceStub, ctl: Any, a: argparse.Namespace) -> None:
    ctl.show(stub.PlugDevice(hid_otp_pb2.PlugSimulatedHidDeviceRequest(
        device_serial=a.device_serial or 0, firmware=a.firmware or "",
        processing_delay_ms=a.delay_ms), timeout=a.timeout),
        lambda m: [f"simulated device {m.device_serial} plugged in at {m.path}"])


def _unplug(stub: hid_otp_pb2_grpc.HidSimulatorServiceStub, ctl: Any,
            a: argparse.Namespace) -> None:
    ctl.show(stub.UnplugDevice(hid_otp_pb2.UnplugSimulatedHidDeviceRequest(
        device_serial=a.device_serial), timeout=a.timeout),
        lambda m: [f"simulated device {a.device_serial} pulled out"])


def _press(stub: hid_otp_pb2_grpc.HidSimulatorServiceStub, ctl: Any, a: argparse.Namespace) -> None:
    resp = stub.PressButton(hid_otp_pb2.PressSimulatedHidButtonRequest(
        device_serial=a.device_serial, slot=2 if a.long else 1), timeout=a.timeout)
    ctl.show(resp, lambda m: [
        f"the simulated device typed: {m.typed}" if m.typed
        else f"the simulated device typed nothing (slot {2 if a.long else 1} types no code)"])


def add_commands(sub: Any) -> None:
    hid = sub.add_parser("hid", help="USB HID OTP devices at this terminal: list, provision, "
                                     "identify (and the simulator's hands)")
    cmds = hid.add_subparsers(dest="hid_command", required=True, metavar="ACTION")

    p = cmds.add_parser("list", help="(branch) the OTP HID devices attached to the terminal")
    p.set_defaults(run=lambda ctl, a: ctl.show(_stub(ctl).ListDevices(
        hid_otp_pb2.ListHidDevicesRequest(), timeout=a.timeout), device_lines))

    p = cmds.add_parser("provision", help="(branch) program a fresh seed, enroll and register "
                                          "the device: all or nothing")
    p.add_argument("device_serial", type=device_serial, help="the serial printed on the device")
    p.add_argument("--operator", required=True, help="teller's operator id (audited)")
    p.add_argument("--customer", required=True,
                   help="your institution's reference of the customer receiving the device")
    p.add_argument("--digits", type=int, choices=[6, 8], default=6)
    p.add_argument("--overwrite", action="store_true",
                   help="replace what is already in the slots authd uses")
    p.add_argument("--without-identification", action="store_true",
                   help="do not set the identification key (slot 2)")
    # the slots' current access code (12 hex digits), if someone else protected them
    add_secret_options(p, "access-code", "slots' current access code")
    p.set_defaults(run=_provision)

    p = cmds.add_parser("identify", help="(branch) check by challenge-response that the device "
                                         "is the one authd provisioned")
    p.add_argument("device_serial", type=device_serial)
    p.set_defaults(run=_identify)

    sim = cmds.add_parser("sim", help="SIMULATOR ONLY: plug, unplug, press a simulated device",
                          description="Simulator commands: the teller's hands on the simulated "
                                      "HID bus (daemons with [hid_otp] backend = \"simulator\").")
    scmds = sim.add_subparsers(dest="hid_sim_command", required=True, metavar="ACTION")
    p = scmds.add_parser("plug", help="plug a new simulated device in")
    p.add_argument("device_serial", type=device_serial, nargs="?",
                   help="its serial (default: one is picked)")
    p.add_argument("--firmware", help="e.g. 5.4.3")
    p.add_argument("--delay-ms", type=int, default=0, help="its processing delay")
    p.set_defaults(run=_sim(_plug))
    p = scmds.add_parser("unplug", help="pull a simulated device out")
    p.add_argument("device_serial", type=device_serial)
    p.set_defaults(run=_sim(_unplug))
    p = scmds.add_parser("press", help="press the button; shows what it typed")
    p.add_argument("device_serial", type=device_serial)
    p.add_argument("--long", action="store_true", help="a long press (slot 2)")
    p.set_defaults(run=_sim(_press))
