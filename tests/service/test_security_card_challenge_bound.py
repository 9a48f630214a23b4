"""A card keeps its most recent challenges only, exactly, also under concurrent starts;
SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from authd.security_card.feature import SecurityCardFeature
from authd.v1 import security_card_pb2 as pb
from authd.v1 import security_card_pb2_grpc as pb_grpc
from simulators.security_card.cardholder import Question, VirtualCardholder
from simulators.security_card.embosser import EmbosserSimulator


def stored_challenges(srv, serial: str) -> int:
    return int(srv.app.db.run(lambda tx: tx.one(
        "SELECT COUNT(*) FROM security_card_challenges WHERE serial = ?", (serial,))[0],
        write=False))


def setup(server, store_url, **settings):
    srv = server(store_url=store_url, security_card=settings)
    branch = pb_grpc.SecurityCardServiceStub(srv.channel("bank-a", "branch"))
    backend = pb_grpc.SecurityCardServiceStub(srv.channel("bank-a", "backend"))
    serial = branch.IssueCard(pb.IssueSecurityCardRequest(
        customer_id="cust-1", medium=pb.SECURITY_CARD_MEDIUM_BRAILLE)).card.serial
    embosser: EmbosserSimulator = srv.app.require(SecurityCardFeature).simulated["embosser"]
    return srv, backend, serial, VirtualCardholder(embosser.last_job().data)


def answer(holder: VirtualCardholder, ch: pb.SecurityCardChallenge) -> str:
    return holder.answer(Question(
        ch.first.code_number, tuple(p - 1 for p in ch.first.digit_positions),
        ch.second.code_number, tuple(p - 1 for p in ch.second.digit_positions)))


def test_a_new_challenge_beyond_the_bound_replaces_the_oldest(server, store_url):
    srv, backend, serial, holder = setup(server, store_url, max_challenges_per_card=3)
    start = pb.StartSecurityCardChallengeRequest(serial=serial)
    challenges = [backend.StartChallenge(start) for _ in range(7)]
    assert stored_challenges(srv, serial) == 3
    for old in challenges[:4]:  # replaced: gone, like an unknown challenge
        with pytest.raises(grpc.RpcError) as err:
            backend.VerifyAnswer(pb.VerifySecurityCardAnswerRequest(
                challenge_id=old.challenge_id, answer=answer(holder, old)))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert "start a new one" in err.value.details()
    for kept in challenges[4:]:
        result = backend.VerifyAnswer(pb.VerifySecurityCardAnswerRequest(
            challenge_id=kept.challenge_id, answer=answer(holder, kept)))
        assert result.outcome == pb.SECURITY_CARD_OUTCOME_ACCEPTED
    # answered challenges count towards the bound too; the card's failures never moved
    backend.StartChallenge(start)
    assert stored_challenges(srv, serial) == 3
    card = backend.GetCard(pb.GetSecurityCardRequest(serial=serial))
    assert card.failures == 0 and card.state == pb.SECURITY_CARD_STATE_ACTIVE


def test_the_bound_is_exact_under_concurrent_starts(server, store_url):
    srv, backend, serial, holder = setup(server, store_url)  # default: 5
    by_customer = pb.StartSecurityCardChallengeRequest(customer_id="cust-1")
    by_serial = pb.StartSecurityCardChallengeRequest(serial=serial)
    with ThreadPoolExecutor(12) as pool:
        started = list(pool.map(lambda i: backend.StartChallenge(
            by_serial if i % 2 else by_customer, timeout=60), range(40)))
    assert len({ch.challenge_id for ch in started}) == 40
    assert stored_challenges(srv, serial) == 5
    # the five kept are the five answerable ones, and each works
    usable = 0
    for ch in started:
        try:
            result = backend.VerifyAnswer(pb.VerifySecurityCardAnswerRequest(
                challenge_id=ch.challenge_id, answer=answer(holder, ch)))
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND
            continue
        assert result.outcome == pb.SECURITY_CARD_OUTCOME_ACCEPTED
        usable += 1
    assert usable == 5
