"""The native front end (``[server] front = "native"``: authd-front owns the port, verifies
through the engine link and forwards every other call) against the daemon's own server: the
same answers, status codes and error details; deadlines, a full queue, a front end killed
with SIGKILL; every other service through the forwarding; the private socket's token.

The OTP tests of batches, privacy, faults and concurrency run against both fronts too (their
``front`` parameter)."""

from __future__ import annotations

import gc
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authd import errors, metrics
from authd.front_link import Frames, framed
from authd.interceptors import METADATA_INSTITUTION, METADATA_ROLE, METADATA_SUBJECT
from authd.otp import stages
from authd.otp.feature import OtpFeature
from authd.otp.link import EMPTY_LINKED, EngineLink
from authd.v1 import (
    customer_pb2,
    customer_pb2_grpc,
    engine_link_pb2,
    otp_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
)
from authd.v1 import otp_pb2 as O
from devices.otp.codes import hotp
from tests.answers import answer_of
from tests.conftest import wait_for
from tests.holds import front_queued, store_held, wait_backlog
from tests.service.test_otp_faults import _audit_counts
from tests.split import operator

SEED = bytes(range(1, 21))
WRONG = "999999"  # not among the first 64 codes of SEED (tests/service/test_otp_faults.py)
NO_LOCKOUT = {"lockout_threshold": 1_000_000}


def _enroll(srv: Any, serials: list[str], *register_at: str) -> None:
    teller = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "branch"))
    for serial in serials:
        teller.Enroll(O.EnrollRequest(serial=serial, operator_id="op", seed=SEED,
                                      customer_id="C-1",
                                      parameters=O.OtpParameters(kind=O.OTP_KIND_HOTP)),
                      timeout=30)
        for bank in register_at:
            otp_pb2_grpc.OtpServiceStub(srv.channel(bank, "branch")).Register(
                O.RegisterRequest(serial=serial, operator_id="op", customer_id="C-7"),
                timeout=30)


def _failed(call: Callable[[], Any]) -> tuple[str, str, str, dict[str, str], str, bool]:
    """Status code, message and structured details of ``call()`` ('OK' when it succeeded)."""
    try:
        call()
    except grpc.RpcError as exc:
        d = errors.details_of(exc)
        return (exc.code().name, exc.details() or "", d.reason, d.metadata, d.field,
                d.retry_after is not None)
    return ("OK", "", "", {}, "", False)


def _scenario(srv: Any) -> list[Any]:
    """One fixed sequence of calls (verifications, forwarded calls of several services, bad
    input, wrong roles, no caller at all) and what each was answered."""
    teller = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "branch"))
    backend = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "backend"))
    other = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-b", "backend"))
    ops = otp_pb2_grpc.OtpServiceStub(srv.channel("ops", "admin"))
    nobody = otp_pb2_grpc.OtpServiceStub(grpc.insecure_channel(srv.address))
    customers = customer_pb2_grpc.CustomerServiceStub(srv.channel("bank-a", "branch"))
    system = system_pb2_grpc.SystemServiceStub(srv.channel("bank-a", "backend", "svc-7"))
    health = health_pb2_grpc.HealthStub(srv.channel("ops", "admin"))

    def enroll(serial: str, customer: str = "C-1") -> Any:
        return teller.Enroll(O.EnrollRequest(
            serial=serial, operator_id="op", seed=SEED, customer_id=customer,
            parameters=O.OtpParameters(kind=O.OTP_KIND_HOTP)), timeout=30)

    def verify(stub: Any, serial: str, code: str, rid: str = "") -> Any:
        return stub.Verify(O.VerifyRequest(serial=serial, code=code, request_id=rid),
                           timeout=30)

    def batch(stub: Any, *items: tuple[str, str]) -> Any:
        return stub.VerifyBatch(O.VerifyBatchRequest(requests=[
            O.VerifyRequest(serial=s, code=c, request_id=str(i))
            for i, (s, c) in enumerate(items)]), timeout=30)

    def stream(stub: Any, *frames: list[tuple[str, str]]) -> Any:
        return list(stub.VerifyStream(iter([O.VerifyBatchRequest(requests=[
            O.VerifyRequest(serial=s, code=c, request_id=f"{n}.{i}")
            for i, (s, c) in enumerate(frame)]) for n, frame in enumerate(frames)]),
            timeout=30))

    answers: list[Any] = []
    for call in [
        lambda: enroll("OTP-F-0001"),
        lambda: enroll("OTP-F-0001"),                      # ALREADY_EXISTS, forwarded
        lambda: enroll("OTP-F-0002", customer="no spaces"),  # INVALID_ARGUMENT with a field
        lambda: verify(backend, "OTP-F-0001", hotp(SEED, 0), "r1"),
        lambda: verify(backend, "OTP-F-0001", hotp(SEED, 0), "r2"),  # replayed
        lambda: verify(backend, "OTP-F-0001", WRONG),
        lambda: verify(backend, "OTP-F-0001", "12x456"),
        lambda: verify(backend, "", hotp(SEED, 1)),
        lambda: verify(backend, "OTP-F-NONE", hotp(SEED, 1)),
        lambda: verify(other, "OTP-F-0001", hotp(SEED, 1)),  # not registered there
        lambda: verify(teller, "OTP-F-0001", hotp(SEED, 1)),  # PERMISSION_DENIED
        lambda: verify(nobody, "OTP-F-0001", hotp(SEED, 1)),  # no caller
        lambda: batch(backend, ("OTP-F-0001", WRONG), ("OTP-F-0001", "1"),
                      ("OTP-F-0001", hotp(SEED, 1)), ("OTP-F-NONE", WRONG)),
        lambda: batch(teller, ("OTP-F-0001", WRONG)),
        lambda: batch(backend),
        lambda: stream(backend, [("OTP-F-0001", WRONG)], [("OTP-F-0001", hotp(SEED, 2)),
                                                          ("OTP-F-0001", hotp(SEED, 2))]),
        lambda: stream(teller, [("OTP-F-0001", WRONG)]),
        lambda: stream(nobody, [("OTP-F-0001", WRONG)]),
        lambda: stream(backend),
        lambda: ops.GetStatus(O.GetStatusRequest(serial="OTP-F-0001"), timeout=30),
        lambda: ops.GetStatus(O.GetStatusRequest(serial="OTP-F-NONE"), timeout=30),
        lambda: system.WhoAmI(system_pb2.WhoAmIRequest(), timeout=30),
        lambda: customers.ListCustomerMedia(
            customer_pb2.ListCustomerMediaRequest(customer_id="C-1"), timeout=30),
        lambda: customers.ListCustomerMedia(
            customer_pb2.ListCustomerMediaRequest(customer_id=""), timeout=30),
        lambda: health.Check(health_pb2.HealthCheckRequest(service="authd.v1.OtpService"),
                             timeout=30),
    ]:
        failure: list[Any] = []

        def once(call: Callable[[], Any] = call, failure: list[Any] = failure) -> Any:
            try:
                return call()
            except grpc.RpcError as exc:
                d = errors.details_of(exc)
                failure.extend([d.reason, d.metadata, d.field, d.retry_after is not None])
                raise

        code, details, fields = answer_of(once)
        # Times differ between two servers; everything else must not.
        answers.append((code, details, _timeless(fields), failure))
    return answers


def _timeless(fields: str) -> str:
    import json
    import re

    if not fields:
        return fields

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()
                    if not re.search(r"(_at|until|time)$", k)}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return json.dumps(strip(json.loads(fields)), sort_keys=True)


def test_both_fronts_answer_alike(server, native_front):
    """The same calls get the same answers, codes, messages and error details from the
    daemon's own server and from the native front end."""
    python = _scenario(server(server={"front": "python"}, otp={"batch_request_max": 3}))
    native = _scenario(server(server={"front": "native"}, otp={"batch_request_max": 3}))
    assert [a[0] for a in python] == [
        "OK", "ALREADY_EXISTS", "INVALID_ARGUMENT", "OK", "OK", "OK", "INVALID_ARGUMENT",
        "INVALID_ARGUMENT", "OK", "OK", "PERMISSION_DENIED", "UNAUTHENTICATED", "INVALID_ARGUMENT",
        "PERMISSION_DENIED", "OK", "OK", "PERMISSION_DENIED", "UNAUTHENTICATED", "OK", "OK",
        "NOT_FOUND", "OK", "OK", "INVALID_ARGUMENT", "OK"]
    for i, (p, n) in enumerate(zip(python, native, strict=True)):
        assert p == n, f"call {i}"


def test_one_completion_queue_serves_every_kind_of_call(server, native_front):
    """With [server] front_queues = 1 a single queue's thread takes the verifications, the
    forwarded calls and their answers: the same answers as the daemon's own server."""
    python = _scenario(server(server={"front": "python"}, otp={"batch_request_max": 3}))
    srv = server(server={"front": "native", "front_queues": 1}, otp={"batch_request_max": 3})
    pid = srv._bg.running.front.pid()
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        assert b"--queues=1" in cmdline.read().split(b"\0")
    assert _scenario(srv) == python


def test_whoami_through_the_native_front_is_the_caller(server, native_front):
    srv = server(server={"front": "native"})
    system = system_pb2_grpc.SystemServiceStub(srv.channel("bank-q", "backend", "svc-9"))
    me = system.WhoAmI(system_pb2.WhoAmIRequest(), timeout=30)
    assert (me.institution, me.role, me.subject) == ("bank-q", "backend", "svc-9")


def test_the_private_socket_wants_the_front_ends_token(server, native_front):
    """The daemon's own server listens on a private socket behind the native front end and
    takes the caller only from a call carrying the front end's token."""
    srv = server(server={"front": "native"})
    sock = srv.app.run_dir / "grpc.sock"
    assert (srv.app.run_dir.stat().st_mode & 0o777) == 0o700
    with grpc.insecure_channel(f"unix:{sock}") as channel:
        md = [(METADATA_INSTITUTION, "bank-a"), (METADATA_ROLE, "admin"),
              (METADATA_SUBJECT, "intruder")]
        with pytest.raises(grpc.RpcError) as err:
            system_pb2_grpc.SystemServiceStub(channel).WhoAmI(
                system_pb2.WhoAmIRequest(), metadata=md, timeout=30)
    assert err.value.code() in (grpc.StatusCode.UNAUTHENTICATED,
                                grpc.StatusCode.PERMISSION_DENIED)


def _answer(stub: Any, serial: str, timeout: float) -> str:
    try:
        return O.VerifyOutcome.Name(stub.Verify(
            O.VerifyRequest(serial=serial, code=WRONG), timeout=timeout).outcome)
    except grpc.RpcError as exc:
        return exc.code().name


def test_a_deadline_passing_in_the_queue_is_answered_and_counts_exactly(server, store_url,
                                                                         front):
    """Calls whose deadline passes while the store is held get DEADLINE_EXCEEDED; once it is
    back, every other call is answered, and the counters hold exactly what was evaluated."""
    srv = server(store_url=store_url, server={"front": front}, otp={**NO_LOCKOUT, "writers": 1})
    serials = [f"OTP-DL-{i:02d}" for i in range(6)]
    _enroll(srv, ["OTP-BLOCKER", *serials])
    stub = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "backend"))
    with ThreadPoolExecutor(8) as pool, store_held(store_url, "OTP-BLOCKER") as release:
        blocker = pool.submit(_answer, stub, "OTP-BLOCKER", 60)
        wait_backlog(srv, in_flight=1)  # the writer waits on the held store with it
        late = [pool.submit(_answer, stub, s, 0.5) for s in serials[:3]]
        patient = [pool.submit(_answer, stub, s, 60) for s in serials[3:]]
        assert [f.result() for f in late] == ["DEADLINE_EXCEEDED"] * 3
        release()
        assert blocker.result() == "VERIFY_OUTCOME_WRONG_CODE"
        assert [f.result() for f in patient] == ["VERIFY_OUTCOME_WRONG_CODE"] * 3
    audit = _audit_counts(store_url, "OTP-DL-")
    ops = otp_pb2_grpc.OtpServiceStub(srv.channel("ops", "admin"))
    for serial in serials:
        status = ops.GetStatus(O.GetStatusRequest(serial=serial), timeout=30)
        assert status.consecutive_failures == audit.get((serial, "wrong_code"), 0)
    assert all(audit[(s, "wrong_code")] == 1 for s in serials[3:])
    assert _answer(stub, serials[0], 30) == "VERIFY_OUTCOME_WRONG_CODE"


def test_a_full_queue_is_refused_at_once_and_counts_nothing(server, store_url, front):
    """With the store held and [otp] queue_max = 2, more calls than the node holds are
    answered RESOURCE_EXHAUSTED (BUSY, with a retry time) at once; the others after the store
    comes back; only those were counted."""
    srv = server(store_url=store_url, server={"front": front},
                 otp={**NO_LOCKOUT, "queue_max": 2, "writers": 1})
    serials = [f"OTP-QF-{i:02d}" for i in range(16)]
    _enroll(srv, ["OTP-BLOCKER", *serials])
    stub = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "backend"))
    with ThreadPoolExecutor(20) as pool, store_held(store_url, "OTP-BLOCKER") as release:
        blocker = pool.submit(_answer, stub, "OTP-BLOCKER", 60)
        wait_backlog(srv, in_flight=1)
        started = time.monotonic()
        calls = [pool.submit(_failed, lambda s=s: stub.Verify(
            O.VerifyRequest(serial=s, code=WRONG), timeout=60)) for s in serials]
        busy = wait_for(lambda: sum(c.done() for c in calls) >= 1, 20)
        refused_fast = time.monotonic() - started < 20
        release()
        answers = [c.result() for c in calls]
        assert blocker.result() == "VERIFY_OUTCOME_WRONG_CODE"
    assert busy and refused_fast
    refused = [s for s, a in zip(serials, answers, strict=True) if a[0] != "OK"]
    assert refused, "some calls must be refused"
    for code, message, reason, _, _, retry in (a for a in answers if a[0] != "OK"):
        assert (code, reason, retry) == ("RESOURCE_EXHAUSTED", "BUSY", True)
        assert "nothing was counted" in message
    audit = _audit_counts(store_url, "OTP-QF-")
    assert audit == {(s, "wrong_code"): 1 for s in set(serials) - set(refused)}


def test_the_link_window_bounds_the_frames_out_and_the_rest_wait_in_the_front_end(
        server, store_url, native_front):
    """[otp] link_window = 1: while the one frame out waits for the held store, the calls
    that come meanwhile wait in authd-front, none in the daemon; released, they leave together
    and every one is answered and counted once."""
    srv = server(store_url=store_url, server={"front": "native"},
                 otp={**NO_LOCKOUT, "writers": 1, "link_window": 1})
    serials = [f"OTP-LW-{i:02d}" for i in range(3)]
    _enroll(srv, ["OTP-BLOCKER", *serials])
    stub = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "backend"))
    engine = srv.app.require(OtpFeature).engine
    with ThreadPoolExecutor(4) as pool, store_held(store_url, "OTP-BLOCKER") as release:
        blocker = pool.submit(_answer, stub, "OTP-BLOCKER", 60)
        wait_backlog(srv, in_flight=1)  # its frame is the one out
        waiting = [pool.submit(_answer, stub, s, 60) for s in serials]
        assert wait_for(lambda: front_queued(srv, "engine") == len(serials), 20), \
            (front_queued(srv, "engine"), engine.backlog())
        assert engine.backlog() == (1, 0)  # the blocker alone reached the daemon
        release()
        assert blocker.result() == "VERIFY_OUTCOME_WRONG_CODE"
        assert [f.result() for f in waiting] == ["VERIFY_OUTCOME_WRONG_CODE"] * len(serials)
    assert _audit_counts(store_url, "OTP-LW-") == {(s, "wrong_code"): 1 for s in serials}
    assert front_queued(srv, "engine") == 0


def _stage(stage: str) -> tuple[float, float]:
    """``authd_otp_stage_seconds{stage}``: its (_count, _sum) in this process."""
    count = total = 0.0
    for metric in stages.STAGE_SECONDS.collect():
        for sample in metric.samples:
            if sample.labels.get("stage") == stage:
                if sample.name.endswith("_count"):
                    count = sample.value
                elif sample.name.endswith("_sum"):
                    total = sample.value
    return count, total


def test_stage_timings_follow_a_frame_from_the_front_end_to_the_reader(server, store_url,
                                                                      native_front):
    """With [otp] stage_timings, each frame says when authd-front sent it (the host's
    monotonic clock on both sides): the wait for the daemon's reader and the frame's whole
    time are observed, each a small positive time."""
    was_on = stages.ON
    try:
        srv = server(store_url=store_url, server={"front": "native"},
                     otp={**NO_LOCKOUT, "stage_timings": True})
        _enroll(srv, ["OTP-ST-01"])
        stub = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "backend"))
        (woken, woke_for), (frames, frames_took) = _stage("link_wake"), _stage("frame_total")
        for _ in range(3):
            assert _answer(stub, "OTP-ST-01", 30) == "VERIFY_OUTCOME_WRONG_CODE"
        assert wait_for(lambda: _stage("frame_total")[0] >= frames + 3, 30)
        count, seconds = _stage("link_wake")
        assert count >= woken + 3 and 0 < seconds - woke_for < 10
        count, seconds = _stage("frame_total")
        assert 0 < seconds - frames_took < 30
    finally:
        if not was_on:
            stages.ON = False
            gc.callbacks.remove(stages._gc_timer)


def test_a_killed_front_end_is_restarted_and_loses_nothing_acknowledged(server, store_url,
                                                                       native_front):
    """SIGKILL to authd-front under load: the daemon restarts it on the same port; every
    failure a caller was told about is counted, the counters agree with the audit trail, and
    the node serves verifications and forwarded calls again."""
    srv = server(store_url=store_url, server={"front": "native"}, otp=NO_LOCKOUT)
    serials = [f"OTP-K9-{i:02d}" for i in range(8)]
    _enroll(srv, serials, "bank-b")
    front = srv._bg.running.front
    first_pid = front.pid()
    acked: Counter[str] = Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def hammer(k: int) -> None:
        bank = "bank-a" if k % 2 else "bank-b"
        with grpc.insecure_channel(srv.address) as channel:
            stub = otp_pb2_grpc.OtpServiceStub(channel)
            md = [(METADATA_INSTITUTION, bank), (METADATA_ROLE, "backend"),
                  (METADATA_SUBJECT, "load")]
            i = 0
            while not stop.is_set():
                serial = serials[(k + i) % len(serials)]
                i += 1
                try:
                    answer = stub.Verify(O.VerifyRequest(serial=serial, code=WRONG),
                                         metadata=md, timeout=10)
                except grpc.RpcError:
                    time.sleep(0.01)
                    continue
                if answer.outcome == O.VERIFY_OUTCOME_WRONG_CODE:
                    with lock:
                        acked[serial] += 1

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    try:
        assert wait_for(lambda: sum(acked.values()) >= 200, 60)
        os.kill(first_pid, signal.SIGKILL)
        assert wait_for(lambda: front.restarts == 1 and front.pid() not in (0, first_pid), 30)
        before = sum(acked.values())
        assert wait_for(lambda: sum(acked.values()) >= before + 200, 60)  # serving again
    finally:
        stop.set()
        for t in threads:
            t.join()
    audit = _audit_counts(store_url, "OTP-K9-")
    ops = otp_pb2_grpc.OtpServiceStub(srv.channel("ops", "admin"))
    for serial in serials:
        status = ops.GetStatus(O.GetStatusRequest(serial=serial), timeout=30)  # forwarded
        assert status.consecutive_failures == audit.get((serial, "wrong_code"), 0)
        assert sum(r.failures_here for r in status.registrations) == status.consecutive_failures
        assert status.consecutive_failures >= acked[serial]


def test_mtls_caller_is_the_certificate_on_both_fronts(server, tmp_path, front):
    """With TLS the caller is the client certificate's: a teller enrolls (forwarded), a
    backend verifies (the front end's own path), a teller may not verify, and a client
    without a certificate gets no call through."""
    from authd import pki
    from authd.client import identity_channel

    pki_dir = pki.create_dev_pki(tmp_path / "pki")
    srv = server(server={"front": front, "insecure": False,
                         "tls_cert": str(pki_dir / "server.pem"),
                         "tls_key": str(pki_dir / "server.key"),
                         "client_ca": str(pki_dir / "ca.pem")})
    address = f"localhost:{srv.port}"
    with identity_channel(address, pki_dir, "bank-b-teller") as teller_ch, \
            identity_channel(address, pki_dir, "bank-b-backend") as backend_ch:
        me = system_pb2_grpc.SystemServiceStub(backend_ch).WhoAmI(system_pb2.WhoAmIRequest(),
                                                                  timeout=30)
        assert (me.institution, me.role) == ("bank-b", "backend")
        teller = otp_pb2_grpc.OtpServiceStub(teller_ch)
        teller.Enroll(O.EnrollRequest(serial="OTP-TLS-1", operator_id="op", seed=SEED,
                                      customer_id="C-1",
                                      parameters=O.OtpParameters(kind=O.OTP_KIND_HOTP)),
                      timeout=30)
        backend = otp_pb2_grpc.OtpServiceStub(backend_ch)
        ok = backend.Verify(O.VerifyRequest(serial="OTP-TLS-1", code=hotp(SEED, 0)), timeout=30)
        assert ok.outcome == O.VERIFY_OUTCOME_ACCEPTED
        with pytest.raises(grpc.RpcError) as err:
            teller.Verify(O.VerifyRequest(serial="OTP-TLS-1", code=hotp(SEED, 1)), timeout=30)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    creds = grpc.ssl_channel_credentials(root_certificates=(pki_dir / "ca.pem").read_bytes())
    with grpc.secure_channel(address, creds) as anonymous:
        with pytest.raises(grpc.RpcError) as err:
            otp_pb2_grpc.OtpServiceStub(anonymous).Verify(
                O.VerifyRequest(serial="OTP-TLS-1", code=hotp(SEED, 1)), timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_forwarded_calls_keep_the_teller_and_the_idempotency_key(server, front):
    """A branch node's teller (x-authd-operator-bin) and its idempotency key reach the daemon
    through either front: the teller is in the audit, and the retried Enroll gets the first
    answer (the same generated seed) instead of ALREADY_EXISTS."""
    srv = server(server={"front": front})
    otp = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "branch", "node-1"))
    request = O.EnrollRequest(customer_id="C-1", serial="OTP-FWD-0001", operator_id="op",
                              parameters=O.OtpParameters(kind=O.OTP_KIND_HOTP))
    md = [("x-authd-operator-bin", b"teller-9"),
          ("x-authd-idempotency-key", f"enroll-{front}-0001")]
    first = otp.Enroll(request, metadata=md, timeout=30)
    again = otp.Enroll(request, metadata=md, timeout=30)
    assert again == first and first.generated_seed
    ops = system_pb2_grpc.SystemServiceStub(srv.channel("bank-a", "admin", "ops"))
    entries = [e for e in ops.ListAudit(system_pb2.ListAuditRequest(target="OTP-FWD-0001"),
                                        timeout=30).entries if e.action == "otp.enroll"]
    assert [operator(e) for e in entries] == ["teller-9"]


def _empty_linked_ok() -> float:
    """The daemon's count of EMPTY_LINKED calls answered OK (authd_rpcs_total)."""
    return float(metrics.RPCS.labels("OK", EMPTY_LINKED)._value.get())


def test_the_empty_linked_call_crosses_the_link_and_never_reaches_the_engine(
        server, store_url, native_front, monkeypatch):
    """Off (the default), authd-front does not serve /bench.EmptyLink/Call: UNIMPLEMENTED.
    With [otp] link_empty_call it does, over the engine link: the daemon's link reader answers
    each call (counted there) with an empty answer, beside Verify's calls in flight, and no
    call of it reaches the engine: nothing is verified, counted or audited."""
    off = server(store_url=store_url, server={"front": "native"})
    call = off.channel("bank-a", "backend").unary_unary(EMPTY_LINKED)
    with pytest.raises(grpc.RpcError) as err:
        call(b"", timeout=30)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    off.stop()

    srv = server(store_url=store_url, server={"front": "native"},
                 otp={**NO_LOCKOUT, "link_empty_call": True})
    _enroll(srv, ["OTP-EL-01"])
    verifier = srv.app.require(OtpFeature).verifier
    handed: list[int] = []
    submit = verifier.submit_mixed

    def counted(requests: Any, *args: Any, **kwargs: Any) -> Any:
        handed.append(len(requests))
        return submit(requests, *args, **kwargs)

    monkeypatch.setattr(verifier, "submit_mixed", counted)
    stub = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "backend"))
    assert _answer(stub, "OTP-EL-01", 30) == "VERIFY_OUTCOME_WRONG_CODE"
    assert handed == [1]  # a Verify is handed to the engine through this
    call = srv.channel("bank-a", "backend").unary_unary(EMPTY_LINKED)
    answered = _empty_linked_ok()
    with ThreadPoolExecutor(8) as pool:
        empties = [pool.submit(call, b"", timeout=30) for _ in range(40)]
        verified = [pool.submit(_answer, stub, "OTP-EL-01", 30) for _ in range(4)]
        assert [f.result() for f in empties] == [b""] * 40
        assert [f.result() for f in verified] == ["VERIFY_OUTCOME_WRONG_CODE"] * 4
    assert _empty_linked_ok() - answered == 40  # answered by the daemon, not the front end
    assert 0 not in handed and sum(handed) == 5  # the Verifies alone reached the engine
    assert _audit_counts(store_url, "OTP-EL-") == {("OTP-EL-01", "wrong_code"): 5}


class _NoEngine:
    """A verifier that must not be reached."""

    def check_size(self, count: int) -> None:
        raise AssertionError("the empty linked call was checked as a verification")

    def submit_mixed(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("the empty linked call reached the engine")


@pytest.mark.parametrize("served", [True, False])
def test_the_link_reader_answers_empty_linked_calls_itself(tmp_path, served):
    """The engine link's reader answers a frame of EMPTY_LINKED calls at once, in order, with
    empty answers ([otp] link_empty_call) or UNIMPLEMENTED (off), without the engine."""
    link = EngineLink(tmp_path / "engine.sock", _NoEngine(),  # type: ignore[arg-type]
                      empty_call=served)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(tmp_path / "engine.sock"))
        frame = engine_link_pb2.LinkFrame(calls=[
            engine_link_pb2.LinkCall(id=i, method=EMPTY_LINKED) for i in (7, 8, 9)])
        conn.sendall(framed(frame.SerializeToString()))
        conn.settimeout(30)
        body = Frames(conn).next()
        assert body is not None
        answers = engine_link_pb2.LinkAnswers.FromString(body)
        assert [a.id for a in answers.calls] == [7, 8, 9]
        for answer in answers.calls:
            assert not answer.responses
            assert answer.HasField("error") != served
            if not served:
                assert answer.error.code == grpc.StatusCode.UNIMPLEMENTED.value[0]
    finally:
        conn.close()
        link.close()
