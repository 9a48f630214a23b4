"""A security card of another institution looks exactly like an unknown card on every
SecurityCardService call (status code, details, every response field); SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from authd.v1 import security_card_pb2 as pb
from authd.v1 import security_card_pb2_grpc as pb_grpc
from tests.answers import answer_of

UNKNOWN_SERIAL = "0000-0000-0001"
UNKNOWN_CHALLENGE = "0" * 31 + "1"
CUSTOMER = "cust-1"  # holds a card at bank-a only
NEW_CUSTOMER = "cust-9"  # holds no card anywhere
PRINTED = pb.SECURITY_CARD_MEDIUM_PRINTED
# Fields that differ between any two new cards (fresh serial, time, print job).
FRESH = {"serial", "issued_at", "updated_at", "job_id", "expires_at", "challenge_id"}


def stubs(srv: Any, institution: str) -> tuple[pb_grpc.SecurityCardServiceStub, ...]:
    return (pb_grpc.SecurityCardServiceStub(srv.channel(institution, "branch", "teller")),
            pb_grpc.SecurityCardServiceStub(srv.channel(institution, "backend", "ib")))


def card_elsewhere(srv: Any, state: str) -> tuple[str, str]:
    """bank-a's card of CUSTOMER in ``state``, and an open challenge of it (active only)."""
    branch, backend = stubs(srv, "bank-a")
    serial = branch.IssueCard(pb.IssueSecurityCardRequest(customer_id=CUSTOMER,
                                                          medium=PRINTED)).card.serial
    challenge = backend.StartChallenge(pb.StartSecurityCardChallengeRequest(serial=serial))
    if state == "restricted":
        for _ in range(3):
            ch = backend.StartChallenge(pb.StartSecurityCardChallengeRequest(serial=serial))
            backend.VerifyAnswer(pb.VerifySecurityCardAnswerRequest(
                challenge_id=ch.challenge_id, answer="0000"))
            backend.VerifyAnswer(pb.VerifySecurityCardAnswerRequest(
                challenge_id=ch.challenge_id, answer="1111"))
        assert backend.GetCard(pb.GetSecurityCardRequest(serial=serial)).state == \
            pb.SECURITY_CARD_STATE_RESTRICTED
    elif state == "revoked":
        branch.RevokeCard(pb.RevokeSecurityCardRequest(serial=serial, reason="closed"))
    return serial, challenge.challenge_id


def probes(srv: Any) -> dict[str, Callable[[str], Any]]:
    """Every call of bank-b, as a function of the card serial, customer or challenge asked."""
    branch, backend = stubs(srv, "bank-b")
    return {
        "ReplaceCard": lambda s: branch.ReplaceCard(pb.ReplaceSecurityCardRequest(
            serial=s, reason="lost")),
        "ReprintCard": lambda s: branch.ReprintCard(pb.ReprintSecurityCardRequest(
            serial=s, reason="jammed")),
        "RevokeCard": lambda s: branch.RevokeCard(pb.RevokeSecurityCardRequest(
            serial=s, reason="closed")),
        "ResetCard": lambda s: branch.ResetCard(pb.ResetSecurityCardRequest(
            serial=s, reason="ID checked")),
        "GetCard (branch)": lambda s: branch.GetCard(pb.GetSecurityCardRequest(serial=s)),
        "GetCard (backend)": lambda s: backend.GetCard(pb.GetSecurityCardRequest(serial=s)),
        "GetHolder": lambda c: backend.GetHolder(pb.GetSecurityCardHolderRequest(customer_id=c)),
        "StartChallenge (serial)": lambda s: backend.StartChallenge(
            pb.StartSecurityCardChallengeRequest(serial=s)),
        "StartChallenge (customer)": lambda c: backend.StartChallenge(
            pb.StartSecurityCardChallengeRequest(customer_id=c)),
        "VerifyAnswer": lambda ch: backend.VerifyAnswer(pb.VerifySecurityCardAnswerRequest(
            challenge_id=ch, answer="1234")),
        # last: it gives both customers a card at bank-b
        "IssueCard": lambda c: branch.IssueCard(pb.IssueSecurityCardRequest(
            customer_id=c, medium=PRINTED)),
    }


BY_CUSTOMER = {"IssueCard", "GetHolder", "StartChallenge (customer)"}


def without_fresh(answer: tuple[str, str, str]) -> tuple[str, str, Any]:
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in FRESH}
        return value

    code, details, fields = answer
    return code, details, strip(json.loads(fields)) if fields else ""


def test_every_call_is_probed():
    methods = set(pb.DESCRIPTOR.services_by_name["SecurityCardService"].methods_by_name)
    assert {name.split(" ")[0] for name in probes(_NoServer())} == methods


class _NoServer:
    def channel(self, *args: Any) -> Any:
        import grpc

        return grpc.insecure_channel("127.0.0.1:9")


@pytest.mark.parametrize("state", ["active", "restricted", "revoked"])
def test_a_card_of_another_institution_looks_unknown(server, store_url, state):
    srv = server(store_url=store_url)
    serial, challenge_id = card_elsewhere(srv, state)
    _, a_backend = stubs(srv, "bank-a")
    before = a_backend.GetCard(pb.GetSecurityCardRequest(serial=serial))
    for name, call in probes(srv).items():
        if name in BY_CUSTOMER:
            asked, unknown = CUSTOMER, NEW_CUSTOMER
        elif name == "VerifyAnswer":
            asked, unknown = challenge_id, UNKNOWN_CHALLENGE
        else:
            asked, unknown = serial, UNKNOWN_SERIAL
        seen = without_fresh(answer_of(lambda c=call, x=asked: c(x), hide=[asked]))
        fresh = without_fresh(answer_of(lambda c=call, x=unknown: c(x), hide=[unknown]))
        if name == "IssueCard":
            # a new customer at bank-b either way: issued, the same in every field
            assert seen == fresh and seen[0] == "OK", name
            continue
        assert seen == fresh, name
        assert seen[0] == ("OK" if name == "GetHolder" else "NOT_FOUND"), (name, seen)
    # bank-a's card did not change, and its open challenge still works.
    after = a_backend.GetCard(pb.GetSecurityCardRequest(serial=serial))
    assert (after.state, after.failures, after.print_count) == (
        before.state, before.failures, before.print_count)
    if state == "active":
        answer = a_backend.VerifyAnswer(pb.VerifySecurityCardAnswerRequest(
            challenge_id=challenge_id, answer="0000"))
        assert answer.outcome in (pb.SECURITY_CARD_OUTCOME_ACCEPTED,
                                  pb.SECURITY_CARD_OUTCOME_WRONG_ANSWER)
