"""Idempotency keys at the center, on SQLite and PostgreSQL: a branch node's change sent again
with its key gets the first answer and takes effect once; the key with another request is
refused; keys are the institution's own, kept for a bounded time, and sealed."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from authd.errors import details_of
from authd.idempotency import METADATA_KEY, row_id
from authd.v1 import otp_pb2 as O
from authd.v1 import otp_pb2_grpc, system_pb2, system_pb2_grpc


def center(server: Any, store_url: str) -> Any:
    return server(store_url=store_url, roles=["center"],
                  security_card={"embosser": "", "printer": ""})


def teller(node: Any, institution: str = "bank-a") -> otp_pb2_grpc.OtpServiceStub:
    return otp_pb2_grpc.OtpServiceStub(node.channel(institution, "branch", "branch-node-1"))


def enroll(stub: otp_pb2_grpc.OtpServiceStub, serial: str, key: str | None,
           customer: str = "C-1") -> O.EnrollResponse:
    metadata = [(METADATA_KEY, key)] if key is not None else []
    return stub.Enroll(O.EnrollRequest(serial=serial, operator_id="T-0042", customer_id=customer,
                                       parameters=O.OtpParameters(kind=O.OTP_KIND_HOTP)),
                       timeout=30, metadata=metadata)


def refused(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def enrollments(node: Any, serial: str) -> int:
    ops = system_pb2_grpc.SystemServiceStub(node.channel("-", "admin", "ops"))
    entries = ops.ListAudit(system_pb2.ListAuditRequest(target=serial), timeout=30).entries
    return len([e for e in entries if e.action == "otp.enroll"])


def rows(node: Any) -> list[tuple[Any, ...]]:
    return node.app.db.run(lambda tx: tx.all(
        "SELECT id, institution, method, sealed_request, sealed_answer, created_at "
        "FROM idempotency_keys ORDER BY created_at"), write=False)


def test_a_retry_with_the_key_gets_the_first_answer(server: Any, store_url: str) -> None:
    node = center(server, store_url)
    stub = teller(node)
    first = enroll(stub, "IDEM-1", "op-1")
    again = enroll(stub, "IDEM-1", "op-1")
    assert again == first and first.generated_seed
    assert enrollments(node, "IDEM-1") == 1
    # Without the key, the same request is a second change, refused as one.
    err = refused(lambda: enroll(stub, "IDEM-1", None))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    # The stored answer holds the generated seed sealed, never in plaintext.
    (row,) = rows(node)
    assert row[0] == row_id("bank-a", "op-1") and row[1:3] == ("bank-a", "OtpService.Enroll")
    assert first.generated_seed not in bytes(row[4]) and b"IDEM-1" not in bytes(row[3])


def test_the_key_with_another_request_is_refused(server: Any, store_url: str) -> None:
    node = center(server, store_url)
    stub = teller(node)
    enroll(stub, "IDEM-2", "op-2")
    for call in (lambda: enroll(stub, "IDEM-3", "op-2"),  # another device
                 lambda: enroll(stub, "IDEM-2", "op-2", customer="C-2"),  # another field
                 lambda: stub.Unlock(O.UnlockRequest(serial="IDEM-2", operator_id="kim"),
                                     timeout=30, metadata=[(METADATA_KEY, "op-2")])):
        err = refused(call)
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert details_of(err).reason == "IDEMPOTENCY_KEY_REUSED"
        assert "new key" in (err.details() or "")
    status = stub.GetStatus(O.GetStatusRequest(serial="IDEM-2"), timeout=30)
    assert status.serial == "IDEM-2"
    err = refused(lambda: stub.GetStatus(O.GetStatusRequest(serial="IDEM-3"), timeout=30))
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_keys_are_the_institutions_own(server: Any, store_url: str) -> None:
    node = center(server, store_url)
    a, b = teller(node, "bank-a"), teller(node, "bank-b")
    mine = enroll(a, "IDEM-A", "shared-key")
    # Bank B's same key is a key of its own: its change is made, and it learns nothing of A's.
    theirs = enroll(b, "IDEM-B", "shared-key")
    assert theirs.device.serial == "IDEM-B" and theirs.generated_seed != mine.generated_seed
    assert enroll(b, "IDEM-B", "shared-key") == theirs
    assert enroll(a, "IDEM-A", "shared-key") == mine
    assert sorted(r[1] for r in rows(node)) == ["bank-a", "bank-b"]


def test_a_call_that_changed_nothing_keeps_no_key(server: Any, store_url: str) -> None:
    node = center(server, store_url)
    stub = teller(node)
    err = refused(lambda: stub.ReportLost(O.ReportLostRequest(serial="IDEM-NONE"), timeout=30,
                                          metadata=[(METADATA_KEY, "op-3")]))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert rows(node) == []
    # Once the device exists, the same key does the change (the refusal was not stored).
    enroll(stub, "IDEM-NONE", "op-4")
    lost = stub.ReportLost(O.ReportLostRequest(serial="IDEM-NONE"), timeout=30,
                           metadata=[(METADATA_KEY, "op-3")])
    assert lost.state == O.DEVICE_STATE_REPORTED_LOST
    assert stub.ReportLost(O.ReportLostRequest(serial="IDEM-NONE"), timeout=30,
                           metadata=[(METADATA_KEY, "op-3")]) == lost


def test_a_key_is_kept_for_a_bounded_time(server: Any, store_url: str) -> None:
    node = server(store_url=store_url, roles=["center"],
                  security_card={"embosser": "", "printer": ""},
                  server={"idempotency_seconds": 60})
    stub = teller(node)
    enroll(stub, "IDEM-OLD", "op-7")
    node.app.db.run(lambda tx: tx.execute("UPDATE idempotency_keys SET created_at = ?",
                                          (time.time() - 61,)))
    # Past its time the key is forgotten: the request is a new change (refused as a repeat).
    err = refused(lambda: enroll(stub, "IDEM-OLD", "op-7"))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert enrollments(node, "IDEM-OLD") == 1


def test_the_same_key_at_once_takes_effect_once(server: Any, store_url: str) -> None:
    node = center(server, store_url)
    stub = teller(node)

    def attempt(_: int) -> Any:
        try:
            return enroll(stub, "IDEM-RACE", "op-8")
        except grpc.RpcError as err:
            return err

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(attempt, range(8)))
    assert enrollments(node, "IDEM-RACE") == 1
    replies = [a for a in answers if isinstance(a, O.EnrollResponse)]
    assert replies and all(r == replies[0] for r in replies)
    for err in (a for a in answers if isinstance(a, grpc.RpcError)):
        # Still being made by the first: never a second enrollment, never ALREADY_EXISTS.
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert details_of(err).reason in ("IDEMPOTENCY_KEY_IN_USE",
                                          "IDEMPOTENCY_ANSWER_PENDING")


def test_a_bad_key_is_refused(server: Any, store_url: str) -> None:
    node = center(server, store_url)
    stub = teller(node)
    for key in ("x" * 129, "bad key", "a/b"):
        err = refused(lambda key=key: enroll(stub, "IDEM-BAD", key))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details_of(err).reason == "BAD_IDEMPOTENCY_KEY"
    assert rows(node) == []
