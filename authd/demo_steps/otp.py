"""Demo step: one OTP generator at three institutions, one lockout for all of them.

Enroll at A, register at B at a branch and at C online (certificate login plus the code on the
display as proof of possession; a wrong code is refused), 4 wrong codes at A and 6 at B lock it
at A, B and C; a right code is then refused; a branch unlocks it; it works again; a loss report
stops it everywhere (DOMAIN.md §2-3).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import grpc

from authd.otp.cli import status_lines, verify_lines
from authd.v1 import otp_pb2, otp_pb2_grpc
from simulators.otp.generator import DisplayToken


@dataclass
class OtpDemoContext:
    branch_channels: Mapping[str, grpc.Channel]  # institution -> teller terminal
    backend_channels: Mapping[str, grpc.Channel]  # institution -> internet-banking backend
    say: Callable[[str], None]
    serial: str = "OTP-DEMO-0001"


CUSTOMER_REFS = ("A-0001042", "B-88317", "C-7-2024")


def _wrong(code: str) -> str:
    return f"{(int(code) + 314159) % 10**len(code):0{len(code)}d}"


def run(ctx: OtpDemoContext) -> None:
    say = ctx.say
    a, b, c = sorted(ctx.branch_channels)[:3]
    branch = {k: otp_pb2_grpc.OtpServiceStub(v) for k, v in ctx.branch_channels.items()}
    backend = {k: otp_pb2_grpc.OtpServiceStub(v) for k, v in ctx.backend_channels.items()}

    def verify(bank: str, code: str, who: str) -> otp_pb2.VerifyResponse:
        r = backend[bank].Verify(otp_pb2.VerifyRequest(serial=ctx.serial, code=code))
        first = verify_lines(r)[0]
        say(f"  {bank} backend verifies {who}: {first}")
        return r

    # Each institution knows the customer by its own reference; none sees another's.
    ref = {bank: CUSTOMER_REFS[n % len(CUSTOMER_REFS)] for n, bank in enumerate((a, b, c))}
    say(f"[OTP] A teller at {a} enrolls OTP generator {ctx.serial} (TOTP, 60 s, 6 digits) "
        f"for its customer {ref[a]}; authd generates the seed in the HSM and seals it.")
    enrolled = branch[a].Enroll(otp_pb2.EnrollRequest(
        customer_id=ref[a], serial=ctx.serial, operator_id="teller-kim",
        parameters=otp_pb2.OtpParameters(kind=otp_pb2.OTP_KIND_TOTP)))
    token = DisplayToken.from_uri(enrolled.provisioning_uri, ctx.serial)
    branch[b].Register(otp_pb2.RegisterRequest(customer_id=ref[b], serial=ctx.serial,
                                               operator_id="teller"))
    say(f"  registered at {b} at a branch for its customer {ref[b]} (integrated OTP: one "
        "device, many institutions)")

    say(f"[OTP] The customer registers it at {c} online: a certificate login, and the code on "
        "the display proves possession of the device.")
    wrong = _wrong(token.show())
    try:
        backend[c].Register(otp_pb2.RegisterRequest(customer_id=ref[c],
                                                    serial=ctx.serial, code=wrong,
                                                    strong_authentication=True))
        raise RuntimeError("online registration accepted a wrong code")
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.PERMISSION_DENIED:
            raise
        say(f"  a mistyped code is refused ({exc.code().name}) and counts as a failure")
    right = token.show()
    online = backend[c].Register(otp_pb2.RegisterRequest(customer_id=ref[c],
                                                         serial=ctx.serial, code=right,
                                                         strong_authentication=True))
    say(f"  the code on the display ({right}) registers it at {c}; the failure counter is back "
        f"to {online.consecutive_failures}")

    say(f"[OTP] Someone types wrong codes: 4 at {a}, then 6 at {b}.")
    for _ in range(4):
        verify(a, wrong, "a wrong code")
    for _ in range(6):
        r = verify(b, wrong, "a wrong code")
    assert r.outcome == otp_pb2.VERIFY_OUTCOME_WRONG_CODE and r.attempts_left == 0
    next_code = token.code_at(time.time() + 60)
    for bank in (a, b, c):
        refused = verify(bank, next_code, "a RIGHT code")
        assert refused.outcome == otp_pb2.VERIFY_OUTCOME_LOCKED
    status = backend[c].GetStatus(otp_pb2.GetStatusRequest(serial=ctx.serial))
    for line in status_lines(status):
        say(f"  {line}")

    say(f"[OTP] The customer visits a branch of {c}; the teller checks the ID and unlocks.")
    branch[c].Unlock(otp_pb2.UnlockRequest(serial=ctx.serial, operator_id="teller-park",
                                           reason="customer identified in person"))
    ok = verify(a, next_code, "the code on the display")
    assert ok.outcome == otp_pb2.VERIFY_OUTCOME_ACCEPTED

    say(f"[OTP] The customer loses the device and reports it through {b}'s internet banking.")
    backend[b].ReportLost(otp_pb2.ReportLostRequest(serial=ctx.serial, reason="lost"))
    for bank in (a, b, c):
        lost = verify(bank, token.code_at(time.time() + 120), "a code from the lost device")
        assert lost.outcome == otp_pb2.VERIFY_OUTCOME_REPORTED_LOST
