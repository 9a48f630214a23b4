"""Security cards issued at a branch node: the center generates and seals the codes, the
branch's embosser prints them, the branch keeps none of them, and the link may break."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from authd.errors import details_of
from authd.security_card.feature import SecurityCardFeature
from authd.v1 import security_card_pb2 as pb
from authd.v1 import security_card_pb2_grpc as pb_grpc
from authd.v1 import system_pb2, system_pb2_grpc
from simulators.security_card.cardholder import Question, VirtualCardholder
from simulators.security_card.embosser import EmbosserSimulator, Fault
from tests.split import BRANCH_DEVICES, FAST_LINK, Pki, operator, terminal_name
from tests.tcpproxy import TcpProxy

BRAILLE = pb.SECURITY_CARD_MEDIUM_BRAILLE
CUSTOMER = "cust-split-1"


class Split:
    def __init__(self, server: Any, tmp_path: Path, store_url: str) -> None:
        self.pki = pki = Pki.create(tmp_path / "pki")
        self.center = server(store_url=store_url, roles=["center"], server=pki.server_tls(),
                             security_card={"embosser": "", "printer": ""})
        self.proxy = TcpProxy(("127.0.0.1", self.center.port))
        self.embosser = EmbosserSimulator().start()
        self.branch = server(roles=["branch"], **BRANCH_DEVICES,
                             center=pki.link("bank-a", [self.proxy.address], **FAST_LINK),
                             security_card={"embosser": self.embosser.address})
        self.teller = pb_grpc.SecurityCardServiceStub(
            self.branch.channel("bank-a", "branch", "teller-07"))
        self.backend = pb_grpc.SecurityCardServiceStub(
            pki.channel(self.center.address, "bank-a-backend"))

    def close(self) -> None:
        self.proxy.close()
        self.embosser.stop()

    def issue(self, customer: str = CUSTOMER) -> pb.IssueSecurityCardResponse:
        return self.teller.IssueCard(pb.IssueSecurityCardRequest(
            customer_id=customer, medium=BRAILLE), timeout=60)

    def holder(self) -> VirtualCardholder:
        return VirtualCardholder(self.embosser.last_job().data)

    def answer_a_challenge(self, serial: str) -> bool:
        holder = self.holder()
        ch = self.backend.StartChallenge(pb.StartSecurityCardChallengeRequest(serial=serial))
        question = Question(ch.first.code_number, tuple(p - 1 for p in ch.first.digit_positions),
                            ch.second.code_number,
                            tuple(p - 1 for p in ch.second.digit_positions))
        return bool(self.backend.VerifyAnswer(pb.VerifySecurityCardAnswerRequest(
            challenge_id=ch.challenge_id, answer=holder.answer(question))).accepted)

    def audit(self, serial: str) -> list[system_pb2.AuditEntry]:
        ops = system_pb2_grpc.SystemServiceStub(self.pki.channel(self.center.address, "ops"))
        return list(ops.ListAudit(system_pb2.ListAuditRequest(target=serial)).entries)


@pytest.fixture
def split(server: Any, tmp_path: Path, store_url: str) -> Iterator[Split]:
    s = Split(server, tmp_path, store_url)
    yield s
    s.close()


@pytest.fixture
def split_sqlite(server: Any, tmp_path: Path) -> Iterator[Split]:
    s = Split(server, tmp_path, f"sqlite:///{tmp_path / 'center.db'}")
    yield s
    s.close()


def test_a_braille_card_issued_at_a_branch_node(split: Split) -> None:
    issued = split.issue()
    card, job = issued.card, issued.print_job
    assert job.state == pb.SECURITY_CARD_PRINT_COMPLETED
    assert job.device == split.embosser.address
    assert card.print_count == 1 and card.braille_card_user
    assert "⠿" in issued.masked_preview
    assert split.answer_a_challenge(card.serial)
    who = split.backend.GetHolder(pb.GetSecurityCardHolderRequest(customer_id=CUSTOMER))
    assert who.additional_authentication_exempt

    # At the center: the branch node issued it, the teller's terminal beside it.
    entries = split.audit(card.serial)
    actions = Counter(e.action for e in entries)
    assert actions == {"security_card.issue": 1, "security_card.print": 1,
                       "security_card.challenge": 1, "security_card.verify": 1}
    issue = next(e for e in entries if e.action == "security_card.issue")
    assert (issue.subject, operator(issue)) == (terminal_name("bank-a"), "teller-07")

    # The branch node keeps no code: nothing of the card is in its store.
    codes = split.holder().card.codes
    all_codes = "".join(codes[n] for n in sorted(codes))

    def dump(tx: Any) -> list[Any]:
        names = [r[0] for r in tx.all("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return [v for n in names for row in tx.all(f"SELECT * FROM {n}") for v in row]

    values = split.branch.app.db.run(dump, write=False)
    flat = "".join(str(v) for v in values)
    assert card.serial not in flat
    assert all(all_codes[i:i + 8] not in flat for i in range(0, len(all_codes) - 8, 4))


def test_a_reprint_is_audited_at_the_center(split_sqlite: Split) -> None:
    s = split_sqlite
    s.embosser.set_fault(Fault.PAPER_JAM)
    issued = s.issue()
    assert issued.print_job.state == pb.SECURITY_CARD_PRINT_FAILED
    assert issued.print_job.failure == pb.SECURITY_CARD_PRINT_FAILURE_PAPER_JAM
    assert issued.card.last_print_state == pb.SECURITY_CARD_PRINT_FAILED
    s.embosser.set_fault(Fault.NONE)
    again = s.teller.ReprintCard(pb.ReprintSecurityCardRequest(serial=issued.card.serial,
                                                               reason="paper jam"))
    assert again.print_job.state == pb.SECURITY_CARD_PRINT_COMPLETED
    assert again.card.print_count == 1
    assert s.answer_a_challenge(issued.card.serial)
    released = [e for e in s.audit(issued.card.serial) if e.action == "security_card.reprint"]
    assert [(e.outcome, e.subject) for e in released] == [("released", terminal_name("bank-a"))]
    assert json.loads(released[0].detail_json)["reason"] == "paper jam"


def test_center_unreachable_issues_nothing(split_sqlite: Split) -> None:
    s = split_sqlite
    s.proxy.refuse()
    with pytest.raises(grpc.RpcError) as err:
        s.issue()
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert details_of(err.value).reason == "CENTER_UNREACHABLE"
    assert s.embosser.jobs == []
    s.proxy.forward()
    who = s.backend.GetHolder(pb.GetSecurityCardHolderRequest(customer_id=CUSTOMER))
    assert who.active_serial == ""
    assert s.issue().print_job.state == pb.SECURITY_CARD_PRINT_COMPLETED


def test_link_cut_after_the_print_leaves_the_card_issued_and_reprintable(
        split_sqlite: Split) -> None:
    s = split_sqlite
    desk = s.branch.app.require(SecurityCardFeature).desk
    assert desk is not None
    send = desk.output.send

    def print_then_cut(*args: Any) -> Any:
        outcome = send(*args)
        s.proxy.refuse()  # the center is not told how the print went
        return outcome

    desk.output.send = print_then_cut  # type: ignore[method-assign]
    issued = s.issue()
    assert issued.print_job.state == pb.SECURITY_CARD_PRINT_COMPLETED
    assert "could not be told" in issued.print_job.message
    desk.output.send = send  # type: ignore[method-assign]
    s.proxy.forward()
    at_center = s.backend.GetCard(pb.GetSecurityCardRequest(serial=issued.card.serial))
    assert at_center.print_count == 0  # the center heard nothing of the print
    assert s.answer_a_challenge(issued.card.serial)  # the card the customer holds works


def test_other_calls_are_forwarded_for_the_branch_nodes_institution_only(
        split_sqlite: Split) -> None:
    s = split_sqlite
    serial = s.issue().card.serial
    status = s.teller.GetCard(pb.GetSecurityCardRequest(serial=serial))
    assert status.serial == serial
    revoked = s.teller.RevokeCard(pb.RevokeSecurityCardRequest(serial=serial, reason="closed"))
    assert revoked.state == pb.SECURITY_CARD_STATE_REVOKED
    other = pb_grpc.SecurityCardServiceStub(s.branch.channel("bank-b", "branch", "t"))
    for call in (lambda: other.GetCard(pb.GetSecurityCardRequest(serial=serial)),
                 lambda: other.IssueCard(pb.IssueSecurityCardRequest(customer_id="c-2",
                                                                     medium=BRAILLE))):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert len(s.embosser.jobs) == 1


def test_a_branch_node_without_a_center_serves_no_cards(server: Any) -> None:
    branch = server(roles=["branch"], **BRANCH_DEVICES)
    assert "authd.v1.SecurityCardService" not in branch.app.service_names
    assert branch.app.require(SecurityCardFeature).simulated == {}


def test_the_centers_half_is_for_branch_nodes_only(split_sqlite: Split) -> None:
    s = split_sqlite
    backend = pb_grpc.SecurityCardCenterServiceStub(
        s.pki.channel(s.center.address, "bank-a-backend"))
    with pytest.raises(grpc.RpcError) as err:
        backend.PrepareIssue(pb.IssueSecurityCardRequest(customer_id="c-9", medium=BRAILLE))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    node = pb_grpc.SecurityCardCenterServiceStub(
        s.pki.channel(s.center.address, terminal_name("bank-a")))
    with pytest.raises(grpc.RpcError) as err:
        node.RecordPrint(pb.RecordSecurityCardPrintRequest(
            serial=s.issue().card.serial, print_job=pb.SecurityCardPrintJob(state=99)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
