"""An institution's tellers and backend against a real authd, for the transfer-policy tests:
customers with their agreement, an OTP device (HOTP with a known seed, so codes can be
computed), a security card (codes read back from the printer simulator) and designated
terminals."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

import grpc

from authd.security_card.feature import SecurityCardFeature
from authd.v1 import customer_pb2 as C
from authd.v1 import (
    customer_pb2_grpc,
    otp_pb2,
    otp_pb2_grpc,
    policy_pb2_grpc,
    security_card_pb2_grpc,
)
from authd.v1 import policy_pb2 as P
from authd.v1 import security_card_pb2 as S
from devices.otp.codes import hotp
from devices.security_card.printed import read_printed_card

SEED = bytes(range(1, 21))
HOME_PC = P.DeviceInfo(ip="203.0.113.7", mac="00:1A:2B:3C:4D:5E", hdd_serial="WD-WX11A12345",
                       os_version="Windows 11 23H2", browser_version="Edge 120")
NEW_PC = P.DeviceInfo(ip="198.51.100.9", mac="00:16:3e:aa:bb:cc", hdd_serial="ST-9ZX81234",
                      os_version="Windows 10 22H2", browser_version="Chrome 121")
PHONE = P.DeviceInfo(ip="2001:db8::5", phone_id="IMEI-356938035643809",
                     os_version="Android 14")


@dataclass
class OtpDevice:
    serial: str
    counter: int = 0

    def next_code(self) -> str:
        code = hotp(SEED, self.counter)
        self.counter += 1
        return code


@dataclass
class Bank:
    srv: Any
    institution: str = "bank-a"
    keys: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.teller = policy_pb2_grpc.PolicyServiceStub(
            self.srv.channel(self.institution, "branch", "teller-1"))
        self.backend = policy_pb2_grpc.PolicyServiceStub(
            self.srv.channel(self.institution, "backend", "ib-1"))
        self.otp_teller = otp_pb2_grpc.OtpServiceStub(
            self.srv.channel(self.institution, "branch", "teller-1"))
        self.cards_teller = security_card_pb2_grpc.SecurityCardServiceStub(
            self.srv.channel(self.institution, "branch", "teller-1"))
        self.cards_backend = security_card_pb2_grpc.SecurityCardServiceStub(
            self.srv.channel(self.institution, "backend", "ib-1"))
        self.registrations_teller = customer_pb2_grpc.BranchRegistrationServiceStub(
            self.srv.channel(self.institution, "branch", "teller-1"))

    # ------------------------------------------------------------------ customers

    def customer(self, customer_id: str, kind: int = P.CUSTOMER_KIND_PERSONAL,
                 register: bool = True, **agreements: bool) -> P.PolicyCustomer:
        found = self.teller.SetupCustomer(P.SetupCustomerRequest(
            customer_id=customer_id, kind=kind, operator_id="teller-kim",
            agreements=P.CustomerAgreements(**agreements)))
        if register:
            found = self.backend.RegisterInternetBanking(
                P.PolicyCustomerRef(customer_id=customer_id))
        return found

    def otp(self, customer_id: str, serial: str | None = None) -> OtpDevice:
        serial = serial or f"OTP-{uuid.uuid4().hex[:10]}"
        self.otp_teller.Enroll(otp_pb2.EnrollRequest(
            serial=serial, operator_id="teller-kim", seed=SEED, customer_id=customer_id,
            parameters=otp_pb2.OtpParameters(kind=otp_pb2.OTP_KIND_HOTP)))
        return OtpDevice(serial)

    def register_medium(self, customer_id: str, kind: int, serial: str,
                        public_key: bytes = b"") -> Any:
        """A token or smartcard registered at a branch for the customer, with the key it
        signs with (BranchRegistrationService.RegisterMedium)."""
        return self.registrations_teller.RegisterMedium(C.RegisterMediumRequest(
            kind=kind, serial=serial, customer_id=customer_id, operator_id="teller-kim",
            public_key=public_key))

    def card(self, customer_id: str, braille: bool = False) -> dict[int, str]:
        """Issue a printed card and read its codes back from the printer simulator (a braille
        card is embossed; its codes are read from the same card record for the test)."""
        medium = S.SECURITY_CARD_MEDIUM_BRAILLE if braille else S.SECURITY_CARD_MEDIUM_PRINTED
        self.cards_teller.IssueCard(S.IssueSecurityCardRequest(customer_id=customer_id,
                                                               medium=medium))
        feature = self.srv.app.require(SecurityCardFeature)
        if braille:
            from simulators.security_card.cardholder import read_card

            return dict(read_card(feature.simulated["embosser"].last_job().data).codes)
        return read_printed_card(feature.simulated["printer"].last_job().data.decode("utf-8"))

    def challenge(self, customer_id: str, codes: dict[int, str],
                  right: bool = True) -> P.SecurityCardPresented:
        ch = self.cards_backend.StartChallenge(
            S.StartSecurityCardChallengeRequest(customer_id=customer_id))
        answer = "".join(codes[ch.first.code_number][p - 1] for p in ch.first.digit_positions)
        answer += "".join(codes[ch.second.code_number][p - 1]
                          for p in ch.second.digit_positions)
        if not right:
            answer = "".join(str((int(d) + 1) % 10) for d in answer)
        return P.SecurityCardPresented(challenge_id=ch.challenge_id, answer=answer)

    def designate(self, customer_id: str, device: P.DeviceInfo = HOME_PC,
                  label: str = "home PC") -> P.DesignatedTerminal:
        return self.teller.DesignateTerminal(P.DesignateTerminalRequest(
            customer_id=customer_id, label=label, device=device))

    # ------------------------------------------------------------------ decisions

    def key(self) -> str:
        return f"key-{self.institution}-{uuid.uuid4().hex}"

    def transfer(self, customer_id: str, amount: int, *, device: P.DeviceInfo = HOME_PC,
                 otp: OtpDevice | None = None, code: str | None = None,
                 card: P.SecurityCardPresented | None = None, key: str | None = None,
                 to_account: str = "110-222-333333", receiving: int = P.RECEIVING_OTHER,
                 channel: int = P.CHANNEL_INTERNET_BANKING, **kw: Any) -> P.TransferDecision:
        request = P.AuthorizeTransferRequest(
            customer_id=customer_id, amount_krw=amount, receiving=receiving,
            to_account=to_account, channel=channel, device=device,
            idempotency_key=key or self.key(), **kw)
        if otp is not None:
            request.otp.CopyFrom(P.OtpPresented(serial=otp.serial,
                                                code=code or otp.next_code()))
        if card is not None:
            request.security_card.CopyFrom(card)
        return self.backend.AuthorizeTransfer(request, timeout=60)

    def view(self, customer_id: str) -> P.PolicyCustomer:
        return self.backend.GetCustomer(P.PolicyCustomerRef(customer_id=customer_id))


def status_of(call: Any) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def codes_of(decision: P.TransferDecision) -> list[str]:
    return [r.code for r in decision.reasons]
