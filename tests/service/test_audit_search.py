"""Searching and exporting the audit trail through a running daemon, on SQLite and PostgreSQL:
an auditor sees everything, an institution only its own records, a customer's records come out
as JSON lines or CSV; the daemon's sealer keeps the trail verifiable."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import grpc
import pytest

from authd.audit import AuditLog
from authd.cli import main as authd_main
from authd.context import Caller, Role
from authd.ctl import main as authctl
from authd.v1 import otp_pb2, otp_pb2_grpc, system_pb2, system_pb2_grpc
from tests.conftest import KEK_PIN_FILE, wait_for

DAY = 86400.0
A_TELLER = Caller("bank-a", Role.BRANCH, "teller-a")
B_BACKEND = Caller("bank-b", Role.BACKEND, "ib-b")
NOW = time.time()


def write(srv, when: float, caller: Caller, action: str, target: str, outcome: str,
          customer: str | None = None) -> None:
    log = AuditLog(clock=lambda: when)
    srv.app.db.run(lambda tx: log.record(tx, action=action, target=target, outcome=outcome,
                                         caller=caller, customer=customer,
                                         detail={"failures": 0}))


@pytest.fixture
def trail_server(server, store_url):
    srv = server(store_url=store_url, audit={"seal_interval": 0.1})
    write(srv, NOW - 3 * DAY, A_TELLER, "otp.enroll", "OTP-1", "enrolled", "CUST-1")
    write(srv, NOW - 2 * DAY, B_BACKEND, "otp.verify", "OTP-1", "accepted")
    write(srv, NOW - 2 * DAY + 5, A_TELLER, "otp.unlock", "OTP-1", "unlocked", "CUST-1")
    write(srv, NOW - 1 * DAY, B_BACKEND, "otp.verify", "OTP-1", "wrong_code")
    write(srv, NOW - 1 * DAY, B_BACKEND, "security_card.issue", "CARD-9", "issued", "CUST-1")
    write(srv, NOW - 60, A_TELLER, "otp.verify", "OTP-2", "accepted", "CUST-2")
    admin = system_pb2_grpc.SystemServiceStub(srv.channel("ops", "admin", "auditor"))
    assert wait_for(lambda: admin.GetAuditHead(system_pb2.GetAuditHeadRequest()).unsealed == 0)
    return srv, admin


def search(stub, limit: int = 100, token: str = "", oldest_first: bool = False,
           **filters) -> system_pb2.SearchAuditResponse:
    return stub.SearchAudit(system_pb2.SearchAuditRequest(
        filter=system_pb2.AuditFilter(**filters), limit=limit, page_token=token,
        oldest_first=oldest_first))


def keys(resp) -> list[tuple[str, str, str]]:
    return [(e.institution, e.action, e.outcome) for e in resp.entries]


def test_an_auditor_searches_by_institution_target_time_and_outcome(trail_server):
    _, admin = trail_server
    everything = search(admin)
    assert len(everything.entries) == 6 and not everything.next_page_token
    assert [e.id for e in everything.entries] == sorted((e.id for e in everything.entries),
                                                        reverse=True)
    assert keys(search(admin, institution="bank-b", outcomes=["wrong_code"])) == [
        ("bank-b", "otp.verify", "wrong_code")]
    assert {e.target for e in search(admin, target="OTP-1").entries} == {"OTP-1"}
    assert len(search(admin, target="OTP-1").entries) == 4
    window = search(admin, since=NOW - 2.5 * DAY, until=NOW - 1.5 * DAY, oldest_first=True)
    assert keys(window) == [("bank-b", "otp.verify", "accepted"),
                            ("bank-a", "otp.unlock", "unlocked")]
    assert keys(search(admin, since=NOW - 120)) == [("bank-a", "otp.verify", "accepted")]
    assert keys(search(admin, actions=["security_card.issue"])) == [
        ("bank-b", "security_card.issue", "issued")]
    # Pages of two, in order, add up to the whole.
    seen, token = [], ""
    while True:
        page = search(admin, limit=2, token=token, oldest_first=True)
        seen.extend(e.id for e in page.entries)
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(e.id for e in everything.entries)


def test_an_institution_sees_its_own_records_only(trail_server):
    srv, _ = trail_server
    bank_a = system_pb2_grpc.SystemServiceStub(srv.channel("bank-a", "branch", "teller-a"))
    own = search(bank_a, target="OTP-1")
    assert keys(own) == [("bank-a", "otp.unlock", "unlocked"), ("bank-a", "otp.enroll",
                                                                  "enrolled")]
    assert {e.institution for e in search(bank_a).entries} == {"bank-a"}
    assert [e.target for e in bank_a.ListAudit(
        system_pb2.ListAuditRequest(target="OTP-1")).entries] == ["OTP-1", "OTP-1"]
    for call in (lambda: search(bank_a, institution="bank-b"),
                 lambda: list(bank_a.ExportAudit(system_pb2.ExportAuditRequest(
                     filter=system_pb2.AuditFilter(institution="bank-b"))))):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "its own audit records only" in err.value.details()
    # The same customer reference at another institution is another customer.
    bank_b = system_pb2_grpc.SystemServiceStub(srv.channel("bank-b", "backend", "ib-b"))
    assert keys(search(bank_b, customer="CUST-1")) == [
        ("bank-b", "security_card.issue", "issued")]
    assert [e.action for e in search(bank_a, customer="CUST-1", oldest_first=True).entries] == [
        "otp.enroll", "otp.unlock"]


def test_bad_searches_are_refused_clearly(trail_server):
    srv, admin = trail_server
    cases = [
        (lambda: search(admin, limit=5000), "limit must be 1..1000"),
        (lambda: search(admin, token="not-a-token"), "page_token"),
        (lambda: search(admin, since=NOW, until=NOW - DAY), "since is after until"),
        (lambda: search(admin, customer="CUST-1"), "give the institution too"),
        (lambda: search(admin, target="x" * 200), "longer than 128"),
    ]
    for call, message in cases:
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in \
            err.value.details()
    backend = system_pb2_grpc.SystemServiceStub(srv.channel("bank-a", "backend", "ib"))
    with pytest.raises(grpc.RpcError) as err:
        backend.GetAuditHead(system_pb2.GetAuditHeadRequest())
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def ctl(capsys, srv, institution: str, role: str, *args: str) -> tuple[int, str, str]:
    code = authctl(["--addr", srv.address, "--insecure", "--institution", institution,
                    "--role", role, *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_customers_records_exported_as_json_lines_and_csv(trail_server, capsys,
                                                             tmp_path: Path):
    """EFT art. 21: bank-a answers its customer CUST-1's request for their records."""
    srv, _ = trail_server
    out_file = tmp_path / "cust-1.jsonl"
    code, _, err = ctl(capsys, srv, "bank-a", "branch", "audit", "export", "--customer",
                       "CUST-1", "--out", str(out_file))
    assert code == 0 and "exported 2 record(s)" in err
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [(r["action"], r["customer"], r["institution"]) for r in rows] == [
        ("otp.enroll", "CUST-1", "bank-a"), ("otp.unlock", "CUST-1", "bank-a")]
    assert rows[0]["detail"] == {"failures": 0} and rows[0]["time"].endswith("+00:00")

    code, out, _ = ctl(capsys, srv, "ops", "admin", "audit", "export", "--format", "csv",
                       "--target", "OTP-1", "--since", "1970-01-02")
    assert code == 0
    table = list(csv.DictReader(io.StringIO(out)))
    assert len(table) == 4 and {r["target"] for r in table} == {"OTP-1"}
    assert json.loads(table[1]["detail"]) == {"failures": 0}

    code, out, _ = ctl(capsys, srv, "bank-a", "branch", "audit", "search", "--outcome",
                       "accepted")
    assert code == 0 and "OTP-2" in out and "bank-b" not in out
    code, _, err = ctl(capsys, srv, "bank-a", "branch", "audit", "search", "--institution",
                       "bank-b")
    assert code == 1 and "PERMISSION_DENIED" in err
    with pytest.raises(SystemExit) as stop:
        ctl(capsys, srv, "bank-a", "branch", "audit", "search", "--since", "soon")
    assert stop.value.code == 2 and "is not a time" in capsys.readouterr().err


def test_the_daemon_seals_what_it_writes_and_the_trail_verifies(server, store_url, capsys,
                                                                monkeypatch, tmp_path: Path):
    monkeypatch.setenv("AUTHD_KEK__PIN_FILE", str(KEK_PIN_FILE))
    srv = server(store_url=store_url, audit={"seal_interval": 0.1})
    teller = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "branch", "teller"))
    backend = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "backend", "ib"))
    teller.Enroll(otp_pb2.EnrollRequest(serial="OTP-SEAL", operator_id="op", customer_id="C-1",
                                        parameters=otp_pb2.OtpParameters(
                                            kind=otp_pb2.OTP_KIND_TOTP)))
    for _ in range(5):
        backend.Verify(otp_pb2.VerifyRequest(serial="OTP-SEAL", code="000000"))
    admin = system_pb2_grpc.SystemServiceStub(srv.channel("ops", "admin", "auditor"))
    assert wait_for(lambda: admin.GetAuditHead(system_pb2.GetAuditHeadRequest()).unsealed == 0)
    head = admin.GetAuditHead(system_pb2.GetAuditHeadRequest())
    assert head.seq >= 1 and head.last_id >= 6 and len(head.hash) == 64
    code = authd_main(["audit", "verify", "--store", store_url,
                       "--data-dir", str(srv.config.data_dir)])
    out = capsys.readouterr().out
    assert code == 0 and "OK" in out, out
    code, out, _ = ctl(capsys, srv, "ops", "admin", "audit", "head")
    assert code == 0 and "head: block" in out and head.hash[:16] in out
    # The node keeps the head it saw outside the store.
    witness = srv.config.data_dir / "audit-head.json"
    assert wait_for(witness.exists)
    assert json.loads(witness.read_text())["seq"] >= 1
