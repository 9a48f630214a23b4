"""Demo step: a teller provisions a new USB HID OTP device for a customer; the customer
presses it and the codes verify at two institutions.

Runs against a daemon with the simulated HID bus (the embedded default): the simulator
service stands in for the teller's hands (plugging the device in) and the customer's thumb.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import grpc

from authd.v1 import (
    hid_otp_pb2,
    hid_otp_pb2_grpc,
    otp_pb2,
    otp_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
)

# The customer as each institution knows them (each its own reference).
HOME_CUSTOMER = "A-0001042"
OTHER_CUSTOMER = "B-88317"

@dataclass
class DemoContext:
    branch_channel: grpc.Channel  # the teller's terminal (branch role of one institution)
    backend_channels: Mapping[str, grpc.Channel]  # institution -> internet-banking backend
    say: Callable[[str], None]


def run(ctx: DemoContext) -> None:
    say = ctx.say
    me = system_pb2_grpc.SystemServiceStub(ctx.branch_channel).WhoAmI(
        system_pb2.WhoAmIRequest())
    home = me.institution
    others = [name for name in ctx.backend_channels if name != home]
    if home not in ctx.backend_channels or not others:
        raise ValueError("the HID demo needs the branch's own backend and one more institution")
    other = others[0]
    hid = hid_otp_pb2_grpc.HidOtpServiceStub(ctx.branch_channel)
    sim = hid_otp_pb2_grpc.HidSimulatorServiceStub(ctx.branch_channel)

    say(f"[HID OTP] A teller at {home} plugs a new USB OTP device into the branch terminal.")
    try:
        plugged = sim.PlugDevice(hid_otp_pb2.PlugSimulatedHidDeviceRequest())
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
            say("[HID OTP] This daemon drives real HID devices; the demo step needs the simulator.")
            return
        raise
    serial = plugged.device_serial
    for device in hid.ListDevices(hid_otp_pb2.ListHidDevicesRequest()).devices:
        if device.device_serial == serial:
            say(f"  attached: serial {serial}, firmware {device.firmware}, "
                f"slots configured: {device.slot1_configured}/{device.slot2_configured}")

    result = hid.ProvisionDevice(hid_otp_pb2.ProvisionHidDeviceRequest(
        device_serial=serial, operator_id=f"{me.subject}/teller", customer_id=HOME_CUSTOMER))
    say(f"  provisioned: seed generated inside authd, programmed into the device and enrolled "
        f"as {result.otp_serial} (HOTP, {result.digits} digits), registered at "
        f"{result.institution} for its customer {result.customer_id}.")

    other_backend = otp_pb2_grpc.OtpServiceStub(ctx.backend_channels[other])
    proof = sim.PressButton(hid_otp_pb2.PressSimulatedHidButtonRequest(
        device_serial=serial)).typed
    other_backend.Register(otp_pb2.RegisterRequest(
        customer_id=OTHER_CUSTOMER, serial=result.otp_serial, strong_authentication=True,
        code=proof))
    say(f"  the customer registers the same device at {other} online: certificate login, "
        f"and the code the device types ({proof}) proves possession.")

    for institution in (home, other):
        typed = sim.PressButton(hid_otp_pb2.PressSimulatedHidButtonRequest(
            device_serial=serial)).typed
        backend = otp_pb2_grpc.OtpServiceStub(ctx.backend_channels[institution])
        verdict = backend.Verify(otp_pb2.VerifyRequest(serial=result.otp_serial, code=typed))
        outcome = otp_pb2.VerifyOutcome.Name(verdict.outcome).removeprefix("VERIFY_OUTCOME_")
        say(f"  the customer presses the button: it types {typed}; {institution} says {outcome}.")
        if verdict.outcome != otp_pb2.VERIFY_OUTCOME_ACCEPTED:
            raise RuntimeError(f"{institution} did not accept the device's code: {outcome}")

    ident = hid.IdentifyDevice(hid_otp_pb2.IdentifyHidDeviceRequest(device_serial=serial))
    name = hid_otp_pb2.HidIdentifyOutcome.Name(ident.outcome).removeprefix("HID_IDENTIFY_OUTCOME_")
    say(f"  back at the branch, a challenge-response identifies the device: {name}.")
