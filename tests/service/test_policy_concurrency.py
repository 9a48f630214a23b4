"""Daily totals are exact across center nodes: N concurrent transfers of one customer never
together exceed the daily limit, and a refused transfer consumes nothing."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from authd.storage import open_database
from authd.v1 import otp_pb2, otp_pb2_grpc, policy_pb2_grpc, security_card_pb2_grpc
from authd.v1 import policy_pb2 as P
from authd.v1 import security_card_pb2 as S
from tests.conftest import KEK_PIN_FILE, make_config
from tests.nodes import Node
from tests.policy_bank import HOME_PC, Bank


def _nodes(tmp_path: Path, store_url: str, count: int) -> list[Node]:
    make_config(tmp_path / "cfg", store_url)  # writes the session's KEK PIN file
    env = {"AUTHD_KEK__PIN_FILE": str(KEK_PIN_FILE)}
    nodes: list[Node] = []
    try:
        for i in range(count):
            nodes.append(Node(tmp_path / f"node{i}", store_url, env))
    except BaseException:
        for n in nodes:
            n.kill()
        raise
    return nodes


def test_concurrent_transfers_over_two_nodes_never_exceed_the_daily_limit(tmp_path: Path,
                                                                          store_url: str):
    nodes = _nodes(tmp_path, store_url, 2)
    try:
        teller = policy_pb2_grpc.PolicyServiceStub(nodes[0].channel("bank-a", "branch"))
        teller.SetupCustomer(P.SetupCustomerRequest(
            customer_id="race", kind=P.CUSTOMER_KIND_PERSONAL, operator_id="teller"), timeout=30)
        # a security card gives the general grade: 50,000,000 KRW a day
        security_card_pb2_grpc.SecurityCardServiceStub(nodes[0].channel("bank-a", "branch")) \
            .IssueCard(S.IssueSecurityCardRequest(customer_id="race"), timeout=30)
        backends = [policy_pb2_grpc.PolicyServiceStub(n.channel("bank-a", "backend"))
                    for n in nodes]
        backends[1].RegisterInternetBanking(P.PolicyCustomerRef(customer_id="race"), timeout=30)
        start = threading.Barrier(24)

        def transfer(i: int) -> int:
            if i < 24:
                start.wait()
            # ARS transfers need no certificate (EFT art. 7(1)2); the grade's limits apply
            return backends[i % 2].AuthorizeTransfer(P.AuthorizeTransferRequest(
                customer_id="race", amount_krw=3_000_000, receiving=P.RECEIVING_OTHER,
                to_account=f"acct-{i}", channel=P.CHANNEL_ARS_ATM, device=HOME_PC,
                idempotency_key=f"race-key-{i:04d}"), timeout=120).outcome

        with ThreadPoolExecutor(24) as pool:
            outcomes = Counter(pool.map(transfer, range(40)))
        assert outcomes == {P.DECISION_APPROVED: 16, P.DECISION_OVER_LIMIT: 24}
        view = backends[0].GetCustomer(P.PolicyCustomerRef(customer_id="race"), timeout=30)
        assert view.used_today_krw == 16 * 3_000_000
    finally:
        for node in nodes:
            node.terminate()

    db = open_database(store_url)
    rows = db.run(lambda tx: tx.all(
        "SELECT outcome, COUNT(*), SUM(consumed) FROM policy_decisions GROUP BY outcome"
        " ORDER BY outcome"), write=False)
    db.close()
    assert [(r[0], int(r[1]), int(r[2])) for r in rows] == [
        ("approved", 16, 48_000_000), ("over_limit", 24, 0)]


def test_two_banks_deciding_on_one_shared_otp_device_lock_it_exactly_once(server: Any,
                                                                          store_url: str):
    """One OTP device registered at two banks: transfers of both banks (verifying the code in
    the decision's transaction, with its own reads) and plain verifications, all at once and
    all with wrong codes. None waits on another for ever (no lock cycle between the decision's
    rows and the device's), and the shared lockout counts exactly 10 wrong codes."""
    srv = server(store_url=store_url)
    a, b = Bank(srv, "bank-a"), Bank(srv, "bank-b")
    a.customer("kim")
    b.customer("kim-b")
    otp = a.otp("kim")
    b.otp_teller.Register(otp_pb2.RegisterRequest(serial=otp.serial, operator_id="teller-lee",
                                                  customer_id="kim-b"), timeout=30)
    a.designate("kim")
    b.designate("kim-b")
    verifiers = [otp_pb2_grpc.OtpServiceStub(srv.channel(bank, "backend", "ib-1"))
                 for bank in ("bank-a", "bank-b")]
    start = threading.Barrier(30)

    def attempt(i: int) -> str:
        start.wait()
        if i % 3 == 0:
            return otp_pb2.VerifyOutcome.Name(verifiers[i % 2].Verify(otp_pb2.VerifyRequest(
                serial=otp.serial, code="999999"), timeout=120).outcome)
        bank, customer = (a, "kim") if i % 3 == 1 else (b, "kim-b")
        decision = bank.transfer(customer, 1_000, otp=otp, code="999999",
                                 to_account=f"acct-{i}")
        return P.DecisionOutcome.Name(decision.outcome)

    with ThreadPoolExecutor(30) as pool:
        outcomes = Counter(pool.map(attempt, range(30)))
    wrong = (outcomes["VERIFY_OUTCOME_WRONG_CODE"]
             + outcomes["DECISION_AUTHENTICATION_FAILED"])
    refused = outcomes["VERIFY_OUTCOME_LOCKED"] + outcomes["DECISION_MEDIUM_REFUSED"]
    assert wrong == 10 and refused == 20, outcomes
    status = a.otp_teller.GetStatus(otp_pb2.GetStatusRequest(serial=otp.serial), timeout=30)
    assert status.state == otp_pb2.DEVICE_STATE_LOCKED and status.consecutive_failures == 10
    assert a.view("kim").used_today_krw == 0 and b.view("kim-b").used_today_krw == 0
