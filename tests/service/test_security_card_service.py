"""Security cards through a real gRPC channel, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from authd.security_card.feature import SecurityCardFeature
from authd.v1 import security_card_pb2 as pb
from authd.v1 import security_card_pb2_grpc as pb_grpc
from authd.v1 import system_pb2, system_pb2_grpc
from devices.security_card.printed import read_printed_card
from simulators.security_card.cardholder import Question, VirtualCardholder, read_card
from simulators.security_card.embosser import EmbosserSimulator, Fault

BRAILLE = pb.SECURITY_CARD_MEDIUM_BRAILLE
PRINTED = pb.SECURITY_CARD_MEDIUM_PRINTED


@dataclass
class Bank:
    srv: Any
    branch: pb_grpc.SecurityCardServiceStub
    backend: pb_grpc.SecurityCardServiceStub

    @property
    def embosser(self) -> EmbosserSimulator:
        return self.srv.app.require(SecurityCardFeature).simulated["embosser"]

    @property
    def printer(self) -> EmbosserSimulator:
        return self.srv.app.require(SecurityCardFeature).simulated["printer"]

    def issue(self, customer: str = "cust-1", medium: int = BRAILLE,
              **kw: Any) -> pb.IssueSecurityCardResponse:
        return self.branch.IssueCard(
            pb.IssueSecurityCardRequest(customer_id=customer, medium=medium, **kw))

    def challenge(self, serial: str) -> pb.SecurityCardChallenge:
        return self.backend.StartChallenge(pb.StartSecurityCardChallengeRequest(serial=serial))

    def verify(self, challenge_id: str, answer: str) -> pb.VerifySecurityCardAnswerResponse:
        return self.backend.VerifyAnswer(
            pb.VerifySecurityCardAnswerRequest(challenge_id=challenge_id, answer=answer))

    def status(self, serial: str) -> pb.SecurityCardStatus:
        return self.backend.GetCard(pb.GetSecurityCardRequest(serial=serial))


def make_bank(server: Any, store_url: str | None = None, **settings: Any) -> Bank:
    srv = server(store_url=store_url, security_card=settings) if settings else server(
        store_url=store_url)
    return Bank(
        srv,
        pb_grpc.SecurityCardServiceStub(srv.channel("bank-a", "branch", "teller-1")),
        pb_grpc.SecurityCardServiceStub(srv.channel("bank-a", "backend", "ib-1")),
    )


def question(ch: pb.SecurityCardChallenge) -> Question:
    return Question(ch.first.code_number, tuple(p - 1 for p in ch.first.digit_positions),
                    ch.second.code_number, tuple(p - 1 for p in ch.second.digit_positions))


def holder_of_last_job(bank: Bank) -> VirtualCardholder:
    return VirtualCardholder(bank.embosser.last_job().data)


def wrong(answer: str) -> str:
    return "".join(str((int(d) + 1) % 10) for d in answer)


def code(err: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    return err.value.code()


# --------------------------------------------------------------------------- the main story


def test_braille_card_issued_embossed_read_back_and_passed(server: Any, store_url: str) -> None:
    bank = make_bank(server, store_url)
    issued = bank.issue(include_svg=True)
    card = issued.card
    assert card.medium == BRAILLE and card.braille_card_user
    assert card.state == pb.SECURITY_CARD_STATE_ACTIVE and card.code_count == 35
    assert issued.print_job.state == pb.SECURITY_CARD_PRINT_COMPLETED
    assert issued.print_job.pages == 2 and card.print_count == 1
    assert "⠼⠿⠿⠿⠿" in issued.masked_preview and issued.masked_svg.startswith("<svg")

    holder = holder_of_last_job(bank)
    assert len(holder.card.codes) == 35
    # the masked preview never shows a code the embosser printed
    assert all(f"{n:02d}: {c}" not in issued.masked_preview for n, c in holder.card.codes.items())

    ch = bank.challenge(card.serial)
    assert ch.first.code_number != ch.second.code_number
    assert list(ch.first.digit_positions) == [1, 2] and list(ch.second.digit_positions) == [3, 4]
    assert ch.answer_length == 4 and ch.braille_card
    assert ch.prompt_text.startswith("보안카드 번호 ")
    assert ch.prompt_braille.startswith("⠘⠥⠣⠒⠋⠊⠪⠀⠘⠾⠚⠥⠀⠼")  # 보안카드 번호 #..
    assert ch.prompt_brf.startswith("^U<3FI[ ^)JU #")
    result = bank.verify(ch.challenge_id, holder.answer_prompt(ch.prompt_text))
    assert result.outcome == pb.SECURITY_CARD_OUTCOME_ACCEPTED and result.accepted
    assert result.message_text and result.message_braille

    who = bank.backend.GetHolder(pb.GetSecurityCardHolderRequest(customer_id="cust-1"))
    assert who.braille_card_user and who.additional_authentication_exempt
    assert who.active_serial == card.serial and "14(1)6" in who.exemption_reason


def test_one_flipped_dot_in_the_print_fails(server: Any) -> None:
    bank = make_bank(server)
    serial = bank.issue().card.serial
    ch = bank.challenge(serial)
    data = bank.embosser.last_job().data
    read = read_card(data)
    first = read.codes[ch.first.code_number]
    # flip dot 2 (a<->b, c<->f, d<->g, e<->h) or dot 5 (i<->j) of the first asked digit
    entry = f"#{_brf_number(ch.first.code_number)}\"1 #{_brf_digits(first)}"
    at = data.decode().index(entry) + len(entry) - len(first)
    cell = data[at : at + 1].decode()
    flipped = {"A": "B", "B": "A", "C": "F", "F": "C", "D": "G", "G": "D", "E": "H", "H": "E",
               "I": "J", "J": "I"}[cell]
    bank.embosser.tamper(0, data[:at] + flipped.encode() + data[at + 1 :])
    answer = holder_of_last_job(bank).answer(question(ch))
    assert bank.verify(ch.challenge_id, answer).outcome == pb.SECURITY_CARD_OUTCOME_WRONG_ANSWER


def _brf_digits(digits: str) -> str:
    return "".join("JABCDEFGHI"[int(d)] for d in digits)


def _brf_number(n: int) -> str:
    return _brf_digits(f"{n:02d}")


def test_plain_card_goes_to_the_printer_only(server: Any, store_url: str) -> None:
    bank = make_bank(server, store_url)
    issued = bank.issue("cust-2", PRINTED)
    assert issued.card.medium == PRINTED and not issued.card.braille_card_user
    assert issued.masked_preview == "" and issued.print_job.state == (
        pb.SECURITY_CARD_PRINT_COMPLETED)
    assert bank.embosser.jobs == []
    codes = read_printed_card(bank.printer.last_job().data.decode("utf-8"))
    assert len(codes) == 35
    ch = bank.challenge(issued.card.serial)
    answer = (codes[ch.first.code_number][:2] + codes[ch.second.code_number][2:])
    assert bank.verify(ch.challenge_id, answer).accepted
    who = bank.backend.GetHolder(pb.GetSecurityCardHolderRequest(customer_id="cust-2"))
    assert not who.braille_card_user and not who.additional_authentication_exempt


# --------------------------------------------------------------------------- the rules


def test_three_wrong_answers_restrict_with_no_oracle(server: Any, store_url: str) -> None:
    bank = make_bank(server, store_url)
    serial = bank.issue().card.serial
    holder = holder_of_last_job(bank)
    challenges = [bank.challenge(serial) for _ in range(5)]
    for i, expected_left in enumerate((2, 1)):
        ch = challenges[i]
        r = bank.verify(ch.challenge_id, wrong(holder.answer(question(ch))))
        assert r.outcome == pb.SECURITY_CARD_OUTCOME_WRONG_ANSWER
        assert r.attempts_left == expected_left and r.failures == i + 1
    ch = challenges[2]
    r = bank.verify(ch.challenge_id, wrong(holder.answer(question(ch))))
    assert r.outcome == pb.SECURITY_CARD_OUTCOME_WRONG_ANSWER
    assert r.card_state == pb.SECURITY_CARD_STATE_RESTRICTED and r.attempts_left == 0
    assert "제한" in r.message_text

    right = bank.verify(challenges[3].challenge_id, holder.answer(question(challenges[3])))
    bad = bank.verify(challenges[4].challenge_id, wrong(holder.answer(question(challenges[4]))))
    assert right.outcome == bad.outcome == pb.SECURITY_CARD_OUTCOME_CARD_RESTRICTED
    assert (right.failures, right.attempts_left, right.card_state, right.message_text) == (
        bad.failures, bad.attempts_left, bad.card_state, bad.message_text)
    assert bank.status(serial).failures == 3

    with pytest.raises(grpc.RpcError) as err:
        bank.challenge(serial)
    assert code(err) == grpc.StatusCode.FAILED_PRECONDITION and "reset" in err.value.details()

    # only a branch lifts the restriction
    with pytest.raises(grpc.RpcError) as err:
        bank.backend.ResetCard(pb.ResetSecurityCardRequest(serial=serial))
    assert code(err) == grpc.StatusCode.PERMISSION_DENIED
    status = bank.branch.ResetCard(pb.ResetSecurityCardRequest(serial=serial, reason="at branch"))
    assert status.state == pb.SECURITY_CARD_STATE_ACTIVE and status.failures == 0
    ch = bank.challenge(serial)
    assert bank.verify(ch.challenge_id, holder.answer(question(ch))).accepted


def test_a_success_clears_consecutive_failures(server: Any) -> None:
    bank = make_bank(server, max_failures=3)
    serial = bank.issue().card.serial
    holder = holder_of_last_job(bank)
    for _ in range(3):
        for _ in range(2):
            ch = bank.challenge(serial)
            bank.verify(ch.challenge_id, wrong(holder.answer(question(ch))))
        ch = bank.challenge(serial)
        r = bank.verify(ch.challenge_id, holder.answer(question(ch)))
        assert r.accepted and r.failures == 0 and r.attempts_left == 3
    assert bank.status(serial).state == pb.SECURITY_CARD_STATE_ACTIVE


def test_challenge_is_single_use_and_expires(server: Any, store_url: str) -> None:
    bank = make_bank(server, store_url, challenge_ttl_seconds=0.5)
    serial = bank.issue().card.serial
    holder = holder_of_last_job(bank)
    ch = bank.challenge(serial)
    answer = holder.answer(question(ch))
    assert bank.verify(ch.challenge_id, answer).accepted
    again = bank.verify(ch.challenge_id, answer)
    assert again.outcome == pb.SECURITY_CARD_OUTCOME_CHALLENGE_USED and not again.accepted

    late = bank.challenge(serial)
    time.sleep(0.6)
    for answer in (holder.answer(question(late)), wrong(holder.answer(question(late)))):
        r = bank.verify(late.challenge_id, answer)
        assert r.outcome in (pb.SECURITY_CARD_OUTCOME_CHALLENGE_EXPIRED,
                             pb.SECURITY_CARD_OUTCOME_CHALLENGE_USED)
    assert bank.status(serial).failures == 0  # never evaluated


def test_replaced_card_stops_at_once(server: Any, store_url: str) -> None:
    bank = make_bank(server, store_url)
    old = bank.issue().card.serial
    old_holder = holder_of_last_job(bank)
    pending = bank.challenge(old)
    new = bank.branch.ReplaceCard(pb.ReplaceSecurityCardRequest(serial=old, reason="lost"))
    assert new.card.replaces == old and new.card.medium == BRAILLE
    assert new.print_job.state == pb.SECURITY_CARD_PRINT_COMPLETED
    r = bank.verify(pending.challenge_id, old_holder.answer(question(pending)))
    assert r.outcome == pb.SECURITY_CARD_OUTCOME_CARD_REPLACED and not r.accepted
    assert bank.status(old).replaced_by == new.card.serial
    with pytest.raises(grpc.RpcError) as err:
        bank.challenge(old)
    assert code(err) == grpc.StatusCode.FAILED_PRECONDITION
    new_holder = holder_of_last_job(bank)
    ch = bank.backend.StartChallenge(pb.StartSecurityCardChallengeRequest(customer_id="cust-1"))
    assert ch.serial == new.card.serial
    assert bank.verify(ch.challenge_id, new_holder.answer(question(ch))).accepted
    # replacing as a plain card ends the braille-card user status
    plain = bank.branch.ReplaceCard(pb.ReplaceSecurityCardRequest(serial=new.card.serial,
                                                                  medium=PRINTED))
    assert not plain.card.braille_card_user
    who = bank.backend.GetHolder(pb.GetSecurityCardHolderRequest(customer_id="cust-1"))
    assert not who.additional_authentication_exempt


def test_revoked_card(server: Any) -> None:
    bank = make_bank(server)
    serial = bank.issue().card.serial
    holder = holder_of_last_job(bank)
    pending = bank.challenge(serial)
    status = bank.branch.RevokeCard(pb.RevokeSecurityCardRequest(serial=serial, reason="closed"))
    assert status.state == pb.SECURITY_CARD_STATE_REVOKED and not status.braille_card_user
    right = bank.verify(pending.challenge_id, holder.answer(question(pending)))
    assert right.outcome == pb.SECURITY_CARD_OUTCOME_CARD_REVOKED
    for call, req in ((bank.branch.ResetCard, pb.ResetSecurityCardRequest(serial=serial)),
                      (bank.branch.RevokeCard, pb.RevokeSecurityCardRequest(serial=serial)),
                      (bank.branch.ReprintCard, pb.ReprintSecurityCardRequest(serial=serial))):
        with pytest.raises(grpc.RpcError) as err:
            call(req)
        assert code(err) == grpc.StatusCode.FAILED_PRECONDITION
    # the customer may get a new card
    assert bank.issue().card.state == pb.SECURITY_CARD_STATE_ACTIVE


def test_jammed_emboss_is_reported_and_reembossed(server: Any, store_url: str) -> None:
    bank = make_bank(server, store_url)
    bank.embosser.set_fault(Fault.PAPER_JAM)
    issued = bank.issue()
    job = issued.print_job
    assert job.state == pb.SECURITY_CARD_PRINT_FAILED
    assert job.failure == pb.SECURITY_CARD_PRINT_FAILURE_PAPER_JAM and "jam" in job.message
    assert issued.card.print_count == 0
    assert issued.card.last_print_state == pb.SECURITY_CARD_PRINT_FAILED
    bank.embosser.set_fault(Fault.OFFLINE)
    again = bank.branch.ReprintCard(pb.ReprintSecurityCardRequest(serial=issued.card.serial))
    assert again.print_job.failure == pb.SECURITY_CARD_PRINT_FAILURE_OFFLINE
    bank.embosser.set_fault(Fault.NONE)
    with pytest.raises(grpc.RpcError) as err:
        bank.backend.ReprintCard(pb.ReprintSecurityCardRequest(serial=issued.card.serial))
    assert code(err) == grpc.StatusCode.PERMISSION_DENIED
    done = bank.branch.ReprintCard(pb.ReprintSecurityCardRequest(
        serial=issued.card.serial, layout=pb.SECURITY_CARD_LAYOUT_PAGE, reason="jam"))
    assert done.print_job.state == pb.SECURITY_CARD_PRINT_COMPLETED
    assert done.card.print_count == 1
    holder = holder_of_last_job(bank)
    ch = bank.challenge(issued.card.serial)
    assert bank.verify(ch.challenge_id, holder.answer(question(ch))).accepted


def test_audit_trail_and_no_plaintext_codes(server: Any, store_url: str) -> None:
    bank = make_bank(server, store_url)
    serial = bank.issue().card.serial
    holder = holder_of_last_job(bank)
    ch = bank.challenge(serial)
    bank.verify(ch.challenge_id, holder.answer(question(ch)))
    all_codes = "".join(holder.card.codes[n] for n in range(1, 36))

    def dump(tx: Any) -> list[Any]:
        return tx.all("SELECT * FROM security_cards") + tx.all(
            "SELECT * FROM security_card_challenges") + tx.all("SELECT * FROM audit_log")

    rows = bank.srv.app.db.run(dump, write=False)
    flat = b"".join(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode()
                    for row in rows for v in row)
    assert all_codes.encode() not in flat
    # no run of five codes in order either
    assert all(all_codes[i : i + 20].encode() not in flat for i in range(0, 120, 4))

    admin = system_pb2_grpc.SystemServiceStub(bank.srv.channel("bank-a", "branch", "teller-1"))
    entries = admin.ListAudit(system_pb2.ListAuditRequest(target=serial)).entries
    actions = Counter(e.action for e in entries)
    assert actions == {"security_card.issue": 1, "security_card.print": 1,
                       "security_card.challenge": 1, "security_card.verify": 1}
    assert {e.subject for e in entries} == {"teller-1", "ib-1"}


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("answer", ["12a4", "12 4", "123", "12345", "", "\uff11\uff12\uff13\uff14"])
def test_bad_answers_are_refused_and_change_nothing(server: Any, store_url: str,
                                                    answer: str) -> None:
    bank = make_bank(server, store_url)
    serial = bank.issue().card.serial
    holder = holder_of_last_job(bank)
    ch = bank.challenge(serial)
    with pytest.raises(grpc.RpcError) as err:
        bank.verify(ch.challenge_id, answer)
    assert code(err) == grpc.StatusCode.INVALID_ARGUMENT
    assert "digit" in err.value.details()
    assert bank.status(serial).failures == 0
    assert bank.verify(ch.challenge_id, holder.answer(question(ch))).accepted  # still usable


def test_bad_requests_get_clear_errors(server: Any) -> None:
    bank = make_bank(server)
    serial = bank.issue().card.serial
    cases = [
        (bank.verify, ("0" * 32, "1234"), grpc.StatusCode.NOT_FOUND),
        (bank.verify, ("not-an-id", "1234"), grpc.StatusCode.INVALID_ARGUMENT),
        (bank.challenge, ("9999-9999-9999",), grpc.StatusCode.NOT_FOUND),
        (bank.challenge, ("bad serial!",), grpc.StatusCode.INVALID_ARGUMENT),
        (bank.status, ("",), grpc.StatusCode.INVALID_ARGUMENT),
        (bank.issue, ("",), grpc.StatusCode.INVALID_ARGUMENT),
        (bank.issue, ("x" * 65,), grpc.StatusCode.INVALID_ARGUMENT),
        (bank.issue, ("cust-1",), grpc.StatusCode.ALREADY_EXISTS),
        (bank.issue, ("cust-9", 7), grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for call, args, expected in cases:
        with pytest.raises(grpc.RpcError) as err:
            call(*args)
        assert code(err) == expected, (call, args)
        assert err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        bank.backend.StartChallenge(pb.StartSecurityCardChallengeRequest())
    assert code(err) == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        bank.branch.RevokeCard(pb.RevokeSecurityCardRequest(serial=serial, reason="x" * 201))
    assert code(err) == grpc.StatusCode.INVALID_ARGUMENT
    assert bank.status(serial).state == pb.SECURITY_CARD_STATE_ACTIVE
    assert len(bank.embosser.jobs) == 1  # nothing else was printed


def test_roles_and_institutions(server: Any) -> None:
    bank = make_bank(server)
    serial = bank.issue().card.serial
    ch = bank.challenge(serial)
    for call, req in (
        (bank.backend.IssueCard, pb.IssueSecurityCardRequest(customer_id="c", medium=BRAILLE)),
        (bank.backend.ReplaceCard, pb.ReplaceSecurityCardRequest(serial=serial)),
        (bank.backend.RevokeCard, pb.RevokeSecurityCardRequest(serial=serial)),
    ):
        with pytest.raises(grpc.RpcError) as err:
            call(req)
        assert code(err) == grpc.StatusCode.PERMISSION_DENIED
    admin = pb_grpc.SecurityCardServiceStub(bank.srv.channel("bank-a", "admin", "ops"))
    with pytest.raises(grpc.RpcError) as err:
        admin.VerifyAnswer(pb.VerifySecurityCardAnswerRequest(challenge_id=ch.challenge_id,
                                                              answer="1234"))
    assert code(err) == grpc.StatusCode.PERMISSION_DENIED
    other = pb_grpc.SecurityCardServiceStub(bank.srv.channel("bank-b", "backend", "ib-b"))
    with pytest.raises(grpc.RpcError) as err:
        other.GetCard(pb.GetSecurityCardRequest(serial=serial))
    assert code(err) == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        other.VerifyAnswer(pb.VerifySecurityCardAnswerRequest(challenge_id=ch.challenge_id,
                                                              answer="1234"))
    assert code(err) == grpc.StatusCode.NOT_FOUND
    status = bank.status(serial)
    assert status.state == pb.SECURITY_CARD_STATE_ACTIVE and status.failures == 0


def test_no_embosser_configured(server: Any) -> None:
    bank = make_bank(server, embosser="")
    with pytest.raises(grpc.RpcError) as err:
        bank.issue()
    assert code(err) == grpc.StatusCode.FAILED_PRECONDITION and "embosser" in err.value.details()
    who = bank.backend.GetHolder(pb.GetSecurityCardHolderRequest(customer_id="cust-1"))
    assert who.active_serial == ""


# --------------------------------------------------------------------------- concurrency


def test_concurrent_wrong_answers_count_exactly(server: Any, store_url: str) -> None:
    bank = make_bank(server, store_url, max_challenges_per_card=24)
    serial = bank.issue().card.serial
    holder = holder_of_last_job(bank)
    challenges = [bank.challenge(serial) for _ in range(24)]
    results: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(challenges))

    def attack(ch: pb.SecurityCardChallenge) -> None:
        barrier.wait()
        r = bank.verify(ch.challenge_id, wrong(holder.answer(question(ch))))
        with lock:
            results.append(r.outcome)

    threads = [threading.Thread(target=attack, args=(ch,)) for ch in challenges]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = Counter(results)
    assert counts[pb.SECURITY_CARD_OUTCOME_WRONG_ANSWER] == 3
    assert counts[pb.SECURITY_CARD_OUTCOME_CARD_RESTRICTED] == 21
    status = bank.status(serial)
    assert status.failures == 3 and status.state == pb.SECURITY_CARD_STATE_RESTRICTED


def test_concurrent_verifies_use_a_challenge_once(server: Any, store_url: str) -> None:
    bank = make_bank(server, store_url)
    serial = bank.issue().card.serial
    holder = holder_of_last_job(bank)
    ch = bank.challenge(serial)
    answer = holder.answer(question(ch))
    results: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(12)

    def race() -> None:
        barrier.wait()
        r = bank.verify(ch.challenge_id, answer)
        with lock:
            results.append(r.outcome)

    threads = [threading.Thread(target=race) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = Counter(results)
    assert counts == {pb.SECURITY_CARD_OUTCOME_ACCEPTED: 1,
                      pb.SECURITY_CARD_OUTCOME_CHALLENGE_USED: 11}
