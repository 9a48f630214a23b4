"""Demo step: an institution's backend asks which media its customer holds, in which state.

After the OTP, HID and token steps, bank A's customer A-0001042 holds an OTP generator (reported
lost at the end of the OTP step), a USB HID OTP device and an HSM token registered at the
branch. Bank A's backend asks the center; bank B's backend asks the same reference and learns
nothing (at bank B the customer has its own reference, B-88317).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import grpc

from authd.customer.cli import medium_lines
from authd.v1 import customer_pb2, customer_pb2_grpc

CUSTOMER = "A-0001042"  # bank A's reference (authd/demo_steps/otp.py, hid_otp.py, token.py)
OTHER_REFERENCE = "B-88317"  # the same person at bank B


@dataclass
class CustomerDemoContext:
    backend_channels: Mapping[str, grpc.Channel]  # institution -> internet-banking backend
    say: Callable[[str], None]


def run(ctx: CustomerDemoContext) -> None:
    say = ctx.say
    home, other = sorted(ctx.backend_channels)[:2]
    asks = {bank: customer_pb2_grpc.CustomerServiceStub(ch)
            for bank, ch in ctx.backend_channels.items()}
    say(f"[customers] {home}'s backend asks the center which media its customer {CUSTOMER} "
        "holds (the base of the security grade):")
    media = asks[home].ListCustomerMedia(customer_pb2.ListCustomerMediaRequest(
        customer_id=CUSTOMER)).media
    for medium in media:
        for line in medium_lines(medium):
            say(f"  {line}")
    if not media:
        say("  none (the OTP, HID and token steps register them)")
    foreign = asks[other].ListCustomerMedia(customer_pb2.ListCustomerMediaRequest(
        customer_id=CUSTOMER)).media
    own = asks[other].ListCustomerMedia(customer_pb2.ListCustomerMediaRequest(
        customer_id=OTHER_REFERENCE)).media
    if foreign:
        raise RuntimeError(f"{other} sees media of {home}'s customer")
    say(f"  {other}'s backend asking for {CUSTOMER}: nothing (another institution's "
        f"reference). Under its own reference {OTHER_REFERENCE}: "
        + ", ".join(f"{customer_pb2.MediumKind.Name(m.kind).removeprefix('MEDIUM_KIND_')} "
                    f"{m.serial}" for m in own) + " (its own registrations only).")
