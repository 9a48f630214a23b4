"""Idempotency keys of backends' verifications, on SQLite and PostgreSQL, through the daemon's
own server and the native front end: a verification sent again with its key (its answer was
lost) gets the first answer and is counted once; the key with another request is refused; keys
are the institution's own, expire, hold no code in plaintext, and survive kill -9 between the
commit and the answer."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2

from authd.errors import details_of, details_of_status
from authd.idempotency import METADATA_KEY, row_id
from authd.metrics import REGISTRY
from authd.v1 import otp_pb2 as O
from authd.v1 import otp_pb2_grpc, system_pb2, system_pb2_grpc
from devices.otp.codes import hotp
from tests.conftest import KEK_PIN_FILE, make_config, wait_for
from tests.nodes import Node

SEED = bytes(range(1, 21))
WRONG = "999999"  # not among the first codes of SEED
ACCEPTED, WRONG_CODE = O.VERIFY_OUTCOME_ACCEPTED, O.VERIFY_OUTCOME_WRONG_CODE


def enroll(channel: Any, serial: str, *others: Any) -> None:
    otp_pb2_grpc.OtpServiceStub(channel).Enroll(O.EnrollRequest(
        serial=serial, operator_id="op", seed=SEED, customer_id="C-1",
        parameters=O.OtpParameters(kind=O.OTP_KIND_HOTP)), timeout=30)
    for other in others:
        otp_pb2_grpc.OtpServiceStub(other).Register(
            O.RegisterRequest(serial=serial, operator_id="op", customer_id="C-1"), timeout=30)


def verify(stub: otp_pb2_grpc.OtpServiceStub, serial: str, code: str, key: str | None,
           **kw: Any) -> O.VerifyResponse:
    metadata = [(METADATA_KEY, key)] if key is not None else []
    return stub.Verify(O.VerifyRequest(serial=serial, code=code, **kw), timeout=30,
                       metadata=metadata)


def failures(channel: Any, serial: str) -> int:
    return otp_pb2_grpc.OtpServiceStub(channel).GetStatus(
        O.GetStatusRequest(serial=serial), timeout=30).consecutive_failures


def verifications(channel: Any, serial: str) -> int:
    """The otp.verify records of the audit for ``serial``."""
    ops = system_pb2_grpc.SystemServiceStub(channel)
    entries = ops.ListAudit(system_pb2.ListAuditRequest(target=serial), timeout=30).entries
    return len([e for e in entries if e.action == "otp.verify"])


def counted(name: str, institution: str) -> float:
    """The sum of a counter's samples for ``institution``, over its other labels."""
    return sum(sample.value for metric in REGISTRY.collect() for sample in metric.samples
               if sample.name == name and sample.labels.get("institution") == institution)


def refused(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


@pytest.fixture
def node(server: Any, store_url: str, front: str) -> Any:
    srv = server(store_url=store_url, server={"front": front})
    enroll(srv.channel("bank-a", "branch"), "IDV-1", srv.channel("bank-b", "branch"))
    return srv


def test_a_retry_after_a_lost_answer_counts_one_failure(node: Any) -> None:
    backend = otp_pb2_grpc.OtpServiceStub(node.channel("bank-a", "backend"))
    before = (counted("authd_otp_verifications_total", "bank-a"),
              counted("authd_otp_verification_replays_total", "bank-a"))
    first = verify(backend, "IDV-1", WRONG, "pay-1", request_id="r1")
    again = verify(backend, "IDV-1", WRONG, "pay-1", request_id="r1")
    assert first.outcome == WRONG_CODE and first.consecutive_failures == 1
    assert again == first
    assert failures(node.channel("bank-a", "backend"), "IDV-1") == 1
    # A right code sent again with its key is the first acceptance, not a replay.
    right = verify(backend, "IDV-1", hotp(SEED, 0), "pay-2")
    assert right.outcome == ACCEPTED
    assert verify(backend, "IDV-1", hotp(SEED, 0), "pay-2") == right
    # Without a key the same code is a new verification: a replay.
    assert verify(backend, "IDV-1", hotp(SEED, 0), None).outcome == O.VERIFY_OUTCOME_REPLAYED
    # The key named in the request (as VerifyBatch does) is the same key.
    assert backend.Verify(O.VerifyRequest(serial="IDV-1", code=WRONG, idempotency_key="pay-1",
                                          request_id="r1"), timeout=30) == first
    ops = node.channel("-", "admin", "ops")
    assert verifications(ops, "IDV-1") == 3
    # The metrics count what the audit counts; the three answers given again apart.
    assert (counted("authd_otp_verifications_total", "bank-a"),
            counted("authd_otp_verification_replays_total", "bank-a")) == (
        before[0] + 3, before[1] + 3)
    # The key's row holds the request's digest and the answer sealed: no code in plaintext.
    rows = node.app.db.run(lambda tx: tx.all(
        "SELECT id, institution, method, sealed_request, sealed_answer FROM idempotency_keys "
        "ORDER BY created_at"), write=False)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (row_id("bank-a", "pay-1"), "bank-a", "OtpService.Verify"),
        (row_id("bank-a", "pay-2"), "bank-a", "OtpService.Verify")]
    for r in rows:
        for sealed in (bytes(r[3]), bytes(r[4])):
            assert WRONG.encode() not in sealed and hotp(SEED, 0).encode() not in sealed
            assert b"IDV-1" not in sealed


def test_a_batch_names_a_key_per_verification(node: Any) -> None:
    backend = otp_pb2_grpc.OtpServiceStub(node.channel("bank-a", "backend"))

    def batch(*items: tuple[str, str]) -> list[O.VerifyResponse]:
        return list(backend.VerifyBatch(O.VerifyBatchRequest(requests=[
            O.VerifyRequest(serial="IDV-1", code=code, idempotency_key=key, request_id=key)
            for key, code in items]), timeout=30).responses)

    first = batch(("b-1", WRONG), ("b-2", WRONG), ("b-1", WRONG), ("b-3", WRONG))
    assert [a.consecutive_failures for a in first] == [1, 2, 1, 3]
    assert first[2] == first[0]
    # The lost batch sent again: every answer as it was, nothing counted.
    assert batch(("b-1", WRONG), ("b-2", WRONG), ("b-1", WRONG), ("b-3", WRONG)) == first
    # A key of a batch is a verification's key: a unary retry gets its answer too.
    assert verify(backend, "IDV-1", WRONG, "b-2", request_id="b-2") == first[1]
    # One key for two requests: the second is refused in its slot, the others go on.
    mixed = batch(("b-4", WRONG), ("b-4", hotp(SEED, 0)), ("", WRONG), ("b!", WRONG))
    assert mixed[0].consecutive_failures == 4 and mixed[2].consecutive_failures == 5
    assert mixed[1].error.code == code_pb2.FAILED_PRECONDITION
    assert details_of_status(mixed[1].error).reason == "IDEMPOTENCY_KEY_REUSED"
    assert mixed[3].error.code == code_pb2.INVALID_ARGUMENT
    assert details_of_status(mixed[3].error).reason == "BAD_IDEMPOTENCY_KEY"
    assert failures(node.channel("bank-a", "backend"), "IDV-1") == 5
    # A key for the whole call is refused: the keys are the verifications'.
    err = refused(lambda: backend.VerifyBatch(O.VerifyBatchRequest(requests=[
        O.VerifyRequest(serial="IDV-1", code=WRONG)]), timeout=30,
        metadata=[(METADATA_KEY, "call-1")]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(err).reason == "BAD_IDEMPOTENCY_KEY"
    assert failures(node.channel("bank-a", "backend"), "IDV-1") == 5


def test_a_stream_names_a_key_per_verification(node: Any) -> None:
    backend = otp_pb2_grpc.OtpServiceStub(node.channel("bank-a", "backend"))
    frame = O.VerifyBatchRequest(requests=[
        O.VerifyRequest(serial="IDV-1", code=WRONG, idempotency_key="s-1", request_id="s-1")])
    first = [a for f in backend.VerifyStream(iter([frame, frame]), timeout=30)
             for a in f.responses]
    assert len(first) == 2 and first[0] == first[1] and first[0].consecutive_failures == 1
    again = [a for f in backend.VerifyStream(iter([frame]), timeout=30) for a in f.responses]
    assert again == first[:1]
    assert failures(node.channel("bank-a", "backend"), "IDV-1") == 1


def test_racing_retries_with_one_key_count_once(node: Any) -> None:
    backend = otp_pb2_grpc.OtpServiceStub(node.channel("bank-a", "backend"))
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: verify(backend, "IDV-1", WRONG, "race-1"),
                                range(32)))
        accepted = list(pool.map(lambda _: verify(backend, "IDV-1", hotp(SEED, 0), "race-2"),
                                 range(32)))
    assert {a.SerializeToString() for a in answers} == {answers[0].SerializeToString()}
    assert answers[0].consecutive_failures == 1
    assert {a.outcome for a in accepted} == {ACCEPTED}
    assert verifications(node.channel("-", "admin", "ops"), "IDV-1") == 2
    assert failures(node.channel("bank-a", "backend"), "IDV-1") == 0


def test_a_key_reused_for_another_request_is_refused(node: Any) -> None:
    backend = otp_pb2_grpc.OtpServiceStub(node.channel("bank-a", "backend"))
    enroll(node.channel("bank-a", "branch"), "IDV-2")
    verify(backend, "IDV-1", WRONG, "re-1")
    for serial, code in (("IDV-1", "999998"), ("IDV-2", WRONG)):
        err = refused(lambda s=serial, c=code: verify(backend, s, c, "re-1"))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert details_of(err).reason == "IDEMPOTENCY_KEY_REUSED"
        assert "new key" in (err.details() or "")
    # A key a branch change took is no verification's key either.
    teller = otp_pb2_grpc.OtpServiceStub(node.channel("bank-a", "branch"))
    teller.ReportLost(O.ReportLostRequest(serial="IDV-2"), timeout=30,
                      metadata=[(METADATA_KEY, "re-2")])
    err = refused(lambda: verify(backend, "IDV-1", WRONG, "re-2"))
    assert details_of(err).reason == "IDEMPOTENCY_KEY_REUSED"
    # The metadata and the field naming two keys, a malformed key: refused, nothing counted.
    err = refused(lambda: backend.Verify(O.VerifyRequest(serial="IDV-1", code=WRONG,
                                                         idempotency_key="re-3"),
                                         timeout=30, metadata=[(METADATA_KEY, "re-4")]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = refused(lambda: verify(backend, "IDV-1", WRONG, "no spaces"))
    assert details_of(err).reason == "BAD_IDEMPOTENCY_KEY"
    assert failures(node.channel("bank-a", "backend"), "IDV-1") == 1
    assert verifications(node.channel("-", "admin", "ops"), "IDV-1") == 1


def test_a_key_is_the_institutions_own(node: Any) -> None:
    a = otp_pb2_grpc.OtpServiceStub(node.channel("bank-a", "backend"))
    b = otp_pb2_grpc.OtpServiceStub(node.channel("bank-b", "backend"))
    mine = verify(a, "IDV-1", WRONG, "shared")
    # Bank B's same key is its own: its verification is evaluated (the shared counter moves).
    theirs = verify(b, "IDV-1", WRONG, "shared")
    assert (mine.consecutive_failures, theirs.consecutive_failures) == (1, 2)
    # ... even with another request: it learns nothing of A's key.
    assert verify(b, "IDV-1", WRONG, "b-only") != theirs
    assert verify(b, "IDV-1", WRONG, "shared") == theirs
    assert verify(a, "IDV-1", WRONG, "shared") == mine
    assert failures(node.channel("bank-a", "backend"), "IDV-1") == 3


def test_a_key_expires(server: Any, store_url: str) -> None:
    srv = server(store_url=store_url, server={"idempotency_seconds": 60})
    enroll(srv.channel("bank-a", "branch"), "IDV-OLD")
    backend = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "backend"))
    verify(backend, "IDV-OLD", WRONG, "old-1")
    srv.app.db.run(lambda tx: tx.execute("UPDATE idempotency_keys SET created_at = ?",
                                         (time.time() - 61,)))
    # Past its time the key is forgotten: the same request is a new verification.
    assert verify(backend, "IDV-OLD", WRONG, "old-1").consecutive_failures == 2
    assert verify(backend, "IDV-OLD", WRONG, "old-1").consecutive_failures == 2


def _node(tmp_path: Path, store_url: str, name: str, front: str, *crash: str) -> Node:
    make_config(tmp_path / "cfg", store_url)  # writes the session's KEK PIN file
    env = {"AUTHD_KEK__PIN_FILE": str(KEK_PIN_FILE), "AUTHD_SERVER__FRONT": front,
           "AUTHD_SERVER__CRASH_POINTS": repr(list(crash)).replace("'", '"')}
    return Node(tmp_path / name, store_url, env)


def test_killed_between_commit_and_answer_the_retry_gets_the_first_answer(
        tmp_path: Path, store_url: str, front: str) -> None:
    """kill -9 of the node after the verification's commit, before its answer: the caller saw
    no answer; its retry at a node started again gets the committed answer, counted once."""
    if store_url.startswith("sqlite"):
        store_url = f"sqlite:///{tmp_path / 'shared.db'}"
    dying = _node(tmp_path, store_url, "dying", front, "OtpService.Verify/committed")
    try:
        enroll(dying.channel("bank-a", "branch"), "IDV-KILL")
        backend = otp_pb2_grpc.OtpServiceStub(dying.channel("bank-a", "backend"))
        err = refused(lambda: verify(backend, "IDV-KILL", WRONG, "kill-1"))
        assert err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
                              grpc.StatusCode.INTERNAL)
        assert wait_for(lambda: dying.proc.poll() is not None, 30)
    finally:
        dying.kill()
    again = _node(tmp_path, store_url, "again", front)
    try:
        backend = otp_pb2_grpc.OtpServiceStub(again.channel("bank-a", "backend"))
        answer = verify(backend, "IDV-KILL", WRONG, "kill-1")
        assert answer.outcome == WRONG_CODE and answer.consecutive_failures == 1
        assert failures(again.channel("bank-a", "backend"), "IDV-KILL") == 1
        assert verifications(again.channel("-", "admin", "ops"), "IDV-KILL") == 1
    finally:
        again.terminate()


def _outcome(stub: otp_pb2_grpc.OtpServiceStub, serial: str, key: str) -> str:
    try:
        return O.VerifyOutcome.Name(verify(stub, serial, WRONG, key).outcome)[15:]
    except grpc.RpcError as err:
        return details_of(err).reason


def test_retries_at_two_nodes_at_once_count_once(tmp_path: Path, store_url: str) -> None:
    """The same keyed verification sent to two nodes of one store at once: evaluated once."""
    if store_url.startswith("sqlite"):
        store_url = f"sqlite:///{tmp_path / 'shared.db'}"
    nodes = [_node(tmp_path, store_url, f"n{i}", "python") for i in range(2)]
    try:
        enroll(nodes[0].channel("bank-a", "branch"), "IDV-TWO")
        stubs = [otp_pb2_grpc.OtpServiceStub(n.channel("bank-a", "backend")) for n in nodes]
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(
                lambda i: verify(stubs[i % 2], "IDV-TWO", WRONG, f"two-{i // 8}"), range(32)))
        by_key: dict[int, set[bytes]] = {}
        for i, a in enumerate(answers):
            by_key.setdefault(i // 8, set()).add(a.SerializeToString())
        assert all(len(found) == 1 for found in by_key.values())
        assert failures(nodes[0].channel("bank-a", "backend"), "IDV-TWO") == 4
        assert verifications(nodes[1].channel("-", "admin", "ops"), "IDV-TWO") == 4
        # One key for two devices at once, at two nodes: one is evaluated, the other refused.
        enroll(nodes[0].channel("bank-a", "branch"), "IDV-TWO-B")
        for k in range(4):
            with ThreadPoolExecutor(2) as pool:
                tried = list(pool.map(lambda i, k=k: _outcome(
                    stubs[i], ("IDV-TWO", "IDV-TWO-B")[i], f"both-{k}"), range(2)))
            assert sorted(tried) == ["IDEMPOTENCY_KEY_REUSED", "WRONG_CODE"], tried
        assert failures(nodes[0].channel("bank-a", "backend"), "IDV-TWO") + failures(
            nodes[0].channel("bank-a", "backend"), "IDV-TWO-B") == 8
    finally:
        for n in nodes:
            n.terminate()
