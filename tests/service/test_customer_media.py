"""CustomerService.ListCustomerMedia: every medium an institution's customer holds, in which
state, and nothing of other institutions; through a real gRPC channel on SQLite and
PostgreSQL, with the media registered the way branches and backends do it."""

from __future__ import annotations

import time
import uuid
from typing import Any

import grpc
import pytest

from authd.v1 import customer_pb2 as pb
from authd.v1 import customer_pb2_grpc as pb_grpc
from authd.v1 import otp_pb2, otp_pb2_grpc, token_pb2, token_pb2_grpc
from authd.v1 import security_card_pb2 as card_pb
from authd.v1 import security_card_pb2_grpc as card_grpc
from simulators.otp.generator import DisplayToken
from simulators.token.softhsm import SoftHsmToken, process_env
from tests.answers import answer_of

CARD_GUID = "00000000000000000000000012345678"
BRANCH = otp_pb2.REGISTRATION_CHANNEL_BRANCH
ONLINE = otp_pb2.REGISTRATION_CHANNEL_ONLINE


class Bank:
    def __init__(self, srv: Any, institution: str) -> None:
        self.name = institution
        teller = srv.channel(institution, "branch", "teller-1")
        backend = srv.channel(institution, "backend", "ib")
        self.otp = otp_pb2_grpc.OtpServiceStub(teller)
        self.otp_online = otp_pb2_grpc.OtpServiceStub(backend)
        self.cards = card_grpc.SecurityCardServiceStub(teller)
        self.card_checks = card_grpc.SecurityCardServiceStub(backend)
        self.tokens = token_pb2_grpc.TokenServiceStub(teller)
        self.held = pb_grpc.BranchRegistrationServiceStub(teller)
        self.customers = pb_grpc.CustomerServiceStub(backend)
        self.customers_at_branch = pb_grpc.CustomerServiceStub(teller)

    def media(self, customer: str, include_ended: bool = False) -> list[pb.CustomerMedium]:
        return list(self.customers.ListCustomerMedia(pb.ListCustomerMediaRequest(
            customer_id=customer, include_ended=include_ended)).media)


def summary(media: list[pb.CustomerMedium]) -> list[tuple[Any, ...]]:
    return [(m.kind, m.serial, m.state) for m in media]


def unused_code(token: DisplayToken) -> str:
    near = {token.code_at(time.time() + 60 * k) for k in range(-3, 4)}
    return next(f"{n:06d}" for n in range(10**6) if f"{n:06d}" not in near)


@pytest.fixture
def token() -> SoftHsmToken:
    return process_env().init_token(f"cust-{uuid.uuid4().hex[:8]}")


def test_a_customers_media_and_their_states(server: Any, store_url: str,
                                            token: SoftHsmToken) -> None:
    srv = server(store_url=store_url, token={"poll_interval": 0.1, "rescan_interval": 0.1})
    a, b = Bank(srv, "bank-a"), Bank(srv, "bank-b")
    assert a.media("A-1") == []

    # An OTP generator: issued by bank-a to its customer A-1, registered online at bank-b for
    # bank-b's customer B-1 (the same person under bank-b's reference).
    enrolled = a.otp.Enroll(otp_pb2.EnrollRequest(
        serial="OTP-CM-0001", customer_id="A-1", operator_id="kim",
        parameters=otp_pb2.OtpParameters(kind=otp_pb2.OTP_KIND_TOTP)))
    generator = DisplayToken.from_uri(enrolled.provisioning_uri, "OTP-CM-0001")
    b.otp_online.Register(otp_pb2.RegisterRequest(
        serial="OTP-CM-0001", customer_id="B-1", code=generator.show(),
        strong_authentication=True))
    # A security card, replaced once; a braille card for another customer.
    first = a.cards.IssueCard(card_pb.IssueSecurityCardRequest(
        customer_id="A-1", medium=card_pb.SECURITY_CARD_MEDIUM_PRINTED)).card
    second = a.cards.ReplaceCard(card_pb.ReplaceSecurityCardRequest(
        serial=first.serial, reason="lost")).card
    braille = a.cards.IssueCard(card_pb.IssueSecurityCardRequest(
        customer_id="A-2", medium=card_pb.SECURITY_CARD_MEDIUM_BRAILLE)).card
    # An HSM token registered at the branch (the customer logs in at the terminal) and a
    # smartcard recorded at the center.
    session = a.tokens.Login(token_pb2.TokenLoginRequest(token_serial=token.serial,
                                                         pin=token.pin)).session
    tok = a.tokens.RegisterToken(token_pb2.RegisterTokenRequest(
        session=session, customer_id="A-1", operator="kim", terminal="T-3"))
    card = a.held.RegisterMedium(pb.RegisterMediumRequest(
        kind=pb.MEDIUM_KIND_SMARTCARD, serial=CARD_GUID, customer_id="A-1", operator_id="kim"))

    media = a.media("A-1")
    assert summary(media) == [
        (pb.MEDIUM_KIND_OTP, "OTP-CM-0001", pb.MEDIUM_STATE_ACTIVE),
        (pb.MEDIUM_KIND_SECURITY_CARD, second.serial, pb.MEDIUM_STATE_ACTIVE),
        (pb.MEDIUM_KIND_HSM_TOKEN, token.serial, pb.MEDIUM_STATE_ACTIVE),
        (pb.MEDIUM_KIND_SMARTCARD, CARD_GUID, pb.MEDIUM_STATE_ACTIVE),
    ]
    otp, sec, hsm, ic = media
    assert (otp.channel, otp.issued_here, otp.branch_registered, otp.attempts_left) == (
        BRANCH, True, False, 10)
    assert (sec.channel, sec.issued_here, sec.attempts_left) == (BRANCH, True, 3)
    assert (hsm.branch_registered, hsm.terminal, hsm.registration_id) == (True, "T-3", tok.id)
    assert (ic.branch_registered, ic.registration_id) == (True, card.id)
    assert a.customers_at_branch.ListCustomerMedia(pb.ListCustomerMediaRequest(
        customer_id="A-1")).media == media  # a branch sees what its institution sees
    assert summary(a.media("A-2")) == [
        (pb.MEDIUM_KIND_BRAILLE_SECURITY_CARD, braille.serial, pb.MEDIUM_STATE_ACTIVE)]

    # Bank-b sees its own registration of the same OTP only: online, not issued there.
    (at_b,) = b.media("B-1")
    assert (at_b.kind, at_b.serial, at_b.channel, at_b.issued_here) == (
        pb.MEDIUM_KIND_OTP, "OTP-CM-0001", ONLINE, False)

    # States follow the media: 10 wrong codes at bank-b lock the OTP for bank-a too; 3 wrong
    # answers restrict the card; the token's registration ends.
    wrong = unused_code(generator)
    for _ in range(10):
        b.otp_online.Verify(otp_pb2.VerifyRequest(serial="OTP-CM-0001", code=wrong))
    for _ in range(3):
        challenge = a.card_checks.StartChallenge(card_pb.StartSecurityCardChallengeRequest(
            serial=second.serial))
        for answer in ("0000", "1111"):  # one of them is wrong, perhaps both
            result = a.card_checks.VerifyAnswer(card_pb.VerifySecurityCardAnswerRequest(
                challenge_id=challenge.challenge_id, answer=answer))
            if result.outcome == card_pb.SECURITY_CARD_OUTCOME_WRONG_ANSWER:
                break
    a.tokens.DeregisterToken(token_pb2.DeregisterTokenRequest(
        token_serial=token.serial, customer_id="A-1", operator="kim", reason="lost"))
    media = a.media("A-1")
    assert summary(media) == [
        (pb.MEDIUM_KIND_OTP, "OTP-CM-0001", pb.MEDIUM_STATE_LOCKED),
        (pb.MEDIUM_KIND_SECURITY_CARD, second.serial, pb.MEDIUM_STATE_RESTRICTED),
        (pb.MEDIUM_KIND_SMARTCARD, CARD_GUID, pb.MEDIUM_STATE_ACTIVE),
    ]
    assert (media[0].consecutive_failures, media[0].attempts_left) == (10, 0)
    assert (media[1].consecutive_failures, media[1].attempts_left) == (3, 0)
    # What ended is listed on request.
    history = a.media("A-1", include_ended=True)
    assert summary(history) == [
        (pb.MEDIUM_KIND_OTP, "OTP-CM-0001", pb.MEDIUM_STATE_LOCKED),
        (pb.MEDIUM_KIND_SECURITY_CARD, first.serial, pb.MEDIUM_STATE_REPLACED),
        (pb.MEDIUM_KIND_SECURITY_CARD, second.serial, pb.MEDIUM_STATE_RESTRICTED),
        (pb.MEDIUM_KIND_HSM_TOKEN, token.serial, pb.MEDIUM_STATE_DEREGISTERED),
        (pb.MEDIUM_KIND_SMARTCARD, CARD_GUID, pb.MEDIUM_STATE_ACTIVE),
    ]
    assert history[1].replaced_by == second.serial
    assert not history[3].branch_registered and history[3].updated_at >= history[3].registered_at

    # A reissue by bank-a: bank-b (registered too) sees the new device; the old one ended.
    a.otp.Unlock(otp_pb2.UnlockRequest(serial="OTP-CM-0001", operator_id="kim", reason="ID"))
    a.otp.Replace(otp_pb2.ReplaceRequest(old_serial="OTP-CM-0001", new_serial="OTP-CM-0002",
                                         reason=otp_pb2.REPLACE_REASON_REISSUE,
                                         operator_id="kim"))
    assert summary(b.media("B-1")) == [
        (pb.MEDIUM_KIND_OTP, "OTP-CM-0002", pb.MEDIUM_STATE_ACTIVE)]
    old_at_b = b.media("B-1", include_ended=True)[0]
    assert (old_at_b.serial, old_at_b.state, old_at_b.replaced_by) == (
        "OTP-CM-0001", pb.MEDIUM_STATE_REPLACED, "OTP-CM-0002")


def test_another_institutions_customer_looks_unknown(server: Any, store_url: str) -> None:
    """Bank-a's customer reference asked at bank-b: the answer of a reference nobody gave, and
    no trace of bank-a's media, registrations or references."""
    srv = server(store_url=store_url)
    a, b = Bank(srv, "bank-a"), Bank(srv, "bank-b")
    a.otp.Enroll(otp_pb2.EnrollRequest(
        serial="OTP-CM-0003", customer_id="SHARED-1", operator_id="kim",
        parameters=otp_pb2.OtpParameters(kind=otp_pb2.OTP_KIND_TOTP)))
    a.cards.IssueCard(card_pb.IssueSecurityCardRequest(
        customer_id="SHARED-1", medium=card_pb.SECURITY_CARD_MEDIUM_BRAILLE))
    for kind in (pb.MEDIUM_KIND_HSM_TOKEN, pb.MEDIUM_KIND_SMARTCARD):
        a.held.RegisterMedium(pb.RegisterMediumRequest(
            kind=kind, serial=CARD_GUID, customer_id="SHARED-1", operator_id="kim"))
    assert len(a.media("SHARED-1")) == 4
    for include_ended in (False, True):
        for stub in (b.customers, b.customers_at_branch):
            answers = [answer_of(lambda c=customer, s=stub, e=include_ended: s.ListCustomerMedia(
                pb.ListCustomerMediaRequest(customer_id=c, include_ended=e)),
                hide=[customer]) for customer in ("SHARED-1", "NOBODY-9")]
            assert answers[0] == answers[1] and answers[0][0] == "OK"
            assert "bank-a" not in str(answers[0])


def test_bad_requests_and_roles(server: Any) -> None:
    srv = server()
    customers = pb_grpc.CustomerServiceStub(srv.channel("bank-a", "backend", "ib"))
    for customer in ("", "C 1", "C-1\n", "x" * 65):
        with pytest.raises(grpc.RpcError) as err:
            customers.ListCustomerMedia(pb.ListCustomerMediaRequest(customer_id=customer))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "customer_id" in (err.value.details() or "")
    ops = pb_grpc.CustomerServiceStub(srv.channel("ops", "admin", "ops-1"))
    with pytest.raises(grpc.RpcError) as err:
        ops.ListCustomerMedia(pb.ListCustomerMediaRequest(customer_id="C-1"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_branch_only_node_has_no_customer_service(server: Any) -> None:
    srv = server(roles=["branch"])
    assert "authd.v1.CustomerService" not in srv.app.service_names
    center = server(roles=["center"])
    assert {"authd.v1.CustomerService", "authd.v1.BranchRegistrationService"} <= set(
        center.app.service_names)
