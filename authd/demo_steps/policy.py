"""Demo step: transfer decisions (DOMAIN §4, §5; EFT art. 7, 12(3), 14).

A customer with an OTP transfers from the designated home PC: approved. The same customer on a
new PC answers the security card: authd asks for additional authentication (SMS, ARS, two
channels); the OTP is exempt (EFT art. 14(1)6 사), and so is the card once the SMS is done. A
security-card customer hits the general grade's limits. A double-clicked transfer is answered
once: the second click gets the first decision back and nothing is counted twice.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from authd.policy.cli import customer_lines, decision_lines
from authd.v1 import otp_pb2, otp_pb2_grpc, policy_pb2_grpc, security_card_pb2_grpc
from authd.v1 import policy_pb2 as P
from authd.v1 import security_card_pb2 as S
from devices.security_card.printed import read_printed_card
from simulators.otp.generator import DisplayToken
from simulators.security_card.embosser import EmbosserSimulator

HOME_PC = P.DeviceInfo(ip="203.0.113.7", mac="00:1a:2b:3c:4d:5e", hdd_serial="WD-WX11A12345",
                       os_version="Windows 11 23H2", browser_version="Edge 120")
NEW_PC = P.DeviceInfo(ip="198.51.100.9", mac="00:16:3e:aa:bb:cc", hdd_serial="ST-9ZX81234",
                      os_version="Windows 10 22H2", browser_version="Chrome 121")


@dataclass
class PolicyDemoContext:
    teller: grpc.Channel
    backend: grpc.Channel
    say: Callable[[str], None]
    printer: EmbosserSimulator  # where the bank's printed security cards go


def run(ctx: PolicyDemoContext) -> None:
    say = ctx.say
    teller = policy_pb2_grpc.PolicyServiceStub(ctx.teller)
    backend = policy_pb2_grpc.PolicyServiceStub(ctx.backend)
    otp_teller = otp_pb2_grpc.OtpServiceStub(ctx.teller)
    cards_teller = security_card_pb2_grpc.SecurityCardServiceStub(ctx.teller)
    cards_backend = security_card_pb2_grpc.SecurityCardServiceStub(ctx.backend)
    suffix = uuid.uuid4().hex[:6].upper()
    kim, park = f"CUST-KIM-{suffix}", f"CUST-PARK-{suffix}"

    def show(d: P.TransferDecision, indent: str = "  ") -> None:
        for line in decision_lines(d):
            say(indent + line)

    def transfer(customer: str, amount: int, device: P.DeviceInfo, to: str, *,
                 code: str = "", serial: str = "", card: P.SecurityCardPresented | None = None,
                 key: str = "", **kw: object) -> P.TransferDecision:
        request = P.AuthorizeTransferRequest(
            customer_id=customer, amount_krw=amount, receiving=P.RECEIVING_OTHER,
            to_account=to, channel=P.CHANNEL_INTERNET_BANKING, device=device,
            idempotency_key=key or f"demo-{uuid.uuid4().hex}", **kw)  # type: ignore[arg-type]
        if code:
            request.otp.CopyFrom(P.OtpPresented(serial=serial, code=code))
        if card is not None:
            request.security_card.CopyFrom(card)
        return backend.AuthorizeTransfer(request)

    def card_for(customer: str) -> dict[int, str]:
        cards_teller.IssueCard(S.IssueSecurityCardRequest(
            customer_id=customer, medium=S.SECURITY_CARD_MEDIUM_PRINTED))
        return read_printed_card(ctx.printer.last_job().data.decode("utf-8"))

    def answer(customer: str, codes: dict[int, str]) -> P.SecurityCardPresented:
        ch = cards_backend.StartChallenge(S.StartSecurityCardChallengeRequest(
            customer_id=customer))
        digits = "".join(codes[ch.first.code_number][p - 1] for p in ch.first.digit_positions)
        digits += "".join(codes[ch.second.code_number][p - 1]
                          for p in ch.second.digit_positions)
        return P.SecurityCardPresented(challenge_id=ch.challenge_id, answer=digits)

    say(f"[policy] A teller records {kim}'s electronic-finance agreement, enrolls an OTP "
        "generator and designates the customer's home PC by its device information.")
    teller.SetupCustomer(P.SetupCustomerRequest(customer_id=kim, kind=P.CUSTOMER_KIND_PERSONAL,
                                                operator_id="teller-kim"))
    serial = f"OTP-POL-{suffix}"
    enrolled = otp_teller.Enroll(otp_pb2.EnrollRequest(
        serial=serial, operator_id="teller-kim", customer_id=kim,
        parameters=otp_pb2.OtpParameters(kind=otp_pb2.OTP_KIND_HOTP)))
    token = DisplayToken.from_uri(enrolled.provisioning_uri, serial)
    teller.DesignateTerminal(P.DesignateTerminalRequest(customer_id=kim, label="home PC",
                                                        device=HOME_PC))
    kim_codes = card_for(kim)
    backend.RegisterInternetBanking(P.PolicyCustomerRef(customer_id=kim))
    for line in customer_lines(backend.GetCustomer(P.PolicyCustomerRef(customer_id=kim))):
        say("  " + line)

    say("[policy] 3,000,000 KRW from the designated home PC with the OTP:")
    d = transfer(kim, 3_000_000, HOME_PC, "110-222-333333", code=token.press(), serial=serial)
    show(d)
    assert d.outcome == P.DECISION_APPROVED

    say("[policy] The same transfer from a new PC, answered with the security card:")
    d = transfer(kim, 3_000_000, NEW_PC, "110-222-444444", card=answer(kim, kim_codes))
    show(d)
    assert d.outcome == P.DECISION_ADDITIONAL_AUTHENTICATION_REQUIRED
    say("  ... the backend sends an SMS, the customer confirms, the order comes again:")
    d = transfer(kim, 3_000_000, NEW_PC, "110-222-444444", card=answer(kim, kim_codes),
                 additional_done=P.ADDITIONAL_SMS)
    show(d)
    assert d.outcome == P.DECISION_APPROVED
    say("  From the new PC with the OTP instead: the OTP is exempt (EFT art. 14(1)6 사).")
    d = transfer(kim, 1_000_000, NEW_PC, "110-222-555555", code=token.press(), serial=serial)
    show(d)
    assert d.outcome == P.DECISION_APPROVED

    say(f"[policy] {park} holds only a security card: the general grade, 10,000,000 KRW per "
        "transfer and 50,000,000 KRW a day.")
    teller.SetupCustomer(P.SetupCustomerRequest(customer_id=park,
                                                kind=P.CUSTOMER_KIND_PERSONAL,
                                                operator_id="teller-lee"))
    park_codes = card_for(park)
    teller.DesignateTerminal(P.DesignateTerminalRequest(customer_id=park, label="office PC",
                                                        device=HOME_PC))
    backend.RegisterInternetBanking(P.PolicyCustomerRef(customer_id=park))
    d = transfer(park, 20_000_000, HOME_PC, "220-1", card=answer(park, park_codes))
    show(d)
    assert d.outcome == P.DECISION_OVER_LIMIT
    for i in range(5):
        d = transfer(park, 10_000_000, HOME_PC, f"220-{i + 2}", card=answer(park, park_codes))
        assert d.outcome == P.DECISION_APPROVED, d.message
    say(f"  five transfers of 10,000,000 KRW approved; used today {d.used_today_krw:,} KRW")
    d = transfer(park, 1_000, HOME_PC, "220-9", card=answer(park, park_codes))
    show(d)
    assert d.outcome == P.DECISION_OVER_LIMIT

    say(f"[policy] {kim} double-clicks 'send': two identical requests with one idempotency "
        "key arrive at once.")
    key, code = f"demo-double-{suffix}", token.press()
    answers: list[P.TransferDecision] = []
    start = threading.Barrier(2)

    def click() -> None:
        start.wait()
        answers.append(transfer(kim, 2_000_000, HOME_PC, "110-777-888888", code=code,
                                serial=serial, key=key))

    clicks = [threading.Thread(target=click) for _ in range(2)]
    for t in clicks:
        t.start()
    for t in clicks:
        t.join()
    answers.sort(key=lambda a: a.outcome)
    for a in answers:
        show(a)
    assert [a.outcome for a in answers] == [P.DECISION_APPROVED, P.DECISION_DUPLICATE]
    assert answers[1].first_decision.decision_id == answers[0].decision_id
    used = backend.GetCustomer(P.PolicyCustomerRef(customer_id=kim)).used_today_krw
    say(f"  answered once: {kim} used {used:,} KRW today (3,000,000 + 3,000,000 + 1,000,000 "
        "+ 2,000,000)")
    assert used == 9_000_000
