"""What the native front end answers itself — admission refusals, requests that do not parse,
deadlines passed in its queue — is in the node's one metrics endpoint
(``authd_front_answers_total``, authd/front_tally.py), exact, also across a restart of the
front end; the daemon's own ``authd_rpcs_total`` holds only what reached it."""

from __future__ import annotations

import os
import signal
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from prometheus_client.parser import text_string_to_metric_families

from authd.interceptors import METADATA_INSTITUTION, METADATA_ROLE, METADATA_SUBJECT
from authd.otp.feature import OtpFeature
from authd.v1 import otp_pb2 as O
from authd.v1 import otp_pb2_grpc
from tests.conftest import wait_for
from tests.holds import store_held, wait_backlog
from tests.service.test_front import NO_LOCKOUT, WRONG, _answer, _enroll, _failed

VERIFY = "/authd.v1.OtpService/Verify"
BACKEND = [(METADATA_INSTITUTION, "bank-a"), (METADATA_ROLE, "backend"),
           (METADATA_SUBJECT, "test")]


def _scrape(srv: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    port = srv._bg.running.metrics.port
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _front(seen: dict[Any, float], method: str, code: str, reason: str = "") -> float:
    key = ("authd_front_answers_total",
           (("code", code), ("method", method), ("reason", reason)))
    return seen.get(key, 0.0)


def _daemon(seen: dict[Any, float], method: str, code: str) -> float:
    return seen.get(("authd_rpcs_total", (("code", code), ("method", method))), 0.0)


def _server(server: Any, store_url: str, **otp: Any) -> Any:
    return server(store_url=store_url,
                  server={"front": "native", "metrics_listen": "127.0.0.1:0"},
                  otp={**NO_LOCKOUT, "writers": 1, **otp})


def test_front_answers_are_in_the_metrics_endpoint(server, native_front, store_url):
    srv = _server(server, store_url, queue_max=2)
    serials = [f"OTP-FA-{i:02d}" for i in range(12)]
    _enroll(srv, ["OTP-BLOCKER", *serials])
    stub = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "backend"))
    assert _answer(stub, serials[0], 30) == "VERIFY_OUTCOME_WRONG_CODE"
    start = _scrape(srv)
    assert _front(start, VERIFY, "OK") >= 1

    # A request that does not parse: the front end answers it, the daemon never sees it.
    with grpc.insecure_channel(srv.address) as channel:
        raw = channel.unary_unary(VERIFY)
        try:
            raw(b"\xff\xff\xff\xff", metadata=BACKEND, timeout=30)
            bad = "OK"
        except grpc.RpcError as exc:
            bad = exc.code().name
    assert bad != "OK"

    # With the store held and a queue of 2: some calls refused at once (BUSY), others whose
    # deadline passes in the queue.
    with ThreadPoolExecutor(16) as pool, store_held(store_url, "OTP-BLOCKER") as release:
        blocker = pool.submit(_answer, stub, "OTP-BLOCKER", 60)
        wait_backlog(srv, in_flight=1)
        calls = [pool.submit(_failed, lambda s=s: stub.Verify(
            O.VerifyRequest(serial=s, code=WRONG), timeout=2)) for s in serials]
        answers = [c.result() for c in calls]
        release()
        assert blocker.result() == "VERIFY_OUTCOME_WRONG_CODE"
    told: dict[tuple[str, str], int] = {}
    for code, _, reason, _, _, _ in answers:
        told[(code, reason)] = told.get((code, reason), 0) + 1
    assert told.get(("RESOURCE_EXHAUSTED", "BUSY"), 0) >= 1, told

    assert told.get(("DEADLINE_EXCEEDED", ""), 0) >= 1, told
    assert set(told) <= {("RESOURCE_EXHAUSTED", "BUSY"), ("DEADLINE_EXCEEDED", ""), ("OK", "")}

    def counted() -> dict[tuple[str, str], float]:
        seen = _scrape(srv)
        return {k: _front(seen, VERIFY, *k) - _front(start, VERIFY, *k)
                for k in [*told, (bad, "")]}

    # Every answer the callers got is counted, the moment the call ended.
    expected = {**{k: float(n) for k, n in told.items()}, (bad, ""): 1.0}
    assert wait_for(lambda: counted() == expected, 10), (counted(), expected)
    # The daemon's own counter never saw the request that did not parse.
    end = _scrape(srv)
    assert _daemon(end, VERIFY, bad) == _daemon(start, VERIFY, bad) == 0


def test_a_restarted_front_end_goes_on_counting(server, native_front):
    srv = server(server={"front": "native", "metrics_listen": "127.0.0.1:0"}, otp=NO_LOCKOUT)
    _enroll(srv, ["OTP-FR-01"])
    stub = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "backend"))
    for _ in range(5):
        assert _answer(stub, "OTP-FR-01", 30) == "VERIFY_OUTCOME_WRONG_CODE"
    before = _front(_scrape(srv), VERIFY, "OK")
    assert before >= 5
    front = srv._bg.running.front
    first = front.pid()
    os.kill(first, signal.SIGKILL)
    assert wait_for(lambda: front.restarts == 1 and front.pid() not in (0, first), 30)
    assert wait_for(lambda: _answer(stub, "OTP-FR-01", 5) == "VERIFY_OUTCOME_WRONG_CODE", 30)
    for _ in range(4):
        assert _answer(stub, "OTP-FR-01", 30) == "VERIFY_OUTCOME_WRONG_CODE"
    after = _scrape(srv)
    # Nothing counted before the kill is lost; the new process adds to the same entries.
    assert _front(after, VERIFY, "OK") >= before + 5
    assert sum(1 for (name, labels) in after if name == "authd_front_answers_total"
               and dict(labels) == {"method": VERIFY, "code": "OK", "reason": ""}) == 1


def test_what_waits_in_the_front_end_is_in_the_metrics_endpoint(server, native_front,
                                                                tmp_path):
    """Beyond the frames the engine holds (four), verifications wait in the front end's link:
    ``authd_front_queued{link="engine"}`` counts them while they wait, and none once they
    were sent."""
    url = f"sqlite:///{tmp_path / 'queued.db'}"
    srv = _server(server, url)
    serials = [f"OTP-FQ-{i:02d}" for i in range(8)]
    _enroll(srv, ["OTP-BLOCKER", *serials])
    stub = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "backend"))
    engine = srv.app.require(OtpFeature).engine

    def queued() -> float:
        return _scrape(srv).get(("authd_front_queued", (("link", "engine"),)), -1.0)

    assert queued() == 0
    with ThreadPoolExecutor(9) as pool, store_held(url, "OTP-BLOCKER") as release:
        calls = [pool.submit(_answer, stub, "OTP-BLOCKER", 60)]
        wait_backlog(srv, in_flight=1)
        for n, serial in enumerate(serials, 1):
            calls.append(pool.submit(_answer, stub, serial, 60))
            # One frame each while the window has room (three more), then in the front end.
            assert wait_for(lambda n=n: min(n, 3) == engine.backlog()[1]
                            and n - min(n, 3) == queued(), 30), (engine.backlog(), queued())
        release()
        assert [c.result() for c in calls] == ["VERIFY_OUTCOME_WRONG_CODE"] * 9
    assert queued() == 0


def test_each_verification_is_counted_before_its_caller_has_the_answer(server, native_front):
    """Verify, VerifyBatch and VerifyStream are served on completion queues, whose thread takes
    a call's end a moment after its caller has the answer: the tally counts the answer as it is
    sent, so a caller that reads the count right after its call finds it there."""
    srv = server(server={"front": "native", "metrics_listen": "127.0.0.1:0"}, otp=NO_LOCKOUT)
    _enroll(srv, ["OTP-FN-01"])
    stub = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "backend"))
    request = O.VerifyRequest(serial="OTP-FN-01", code=WRONG)
    calls = {
        VERIFY: lambda: stub.Verify(request, timeout=30),
        "/authd.v1.OtpService/VerifyBatch": lambda: stub.VerifyBatch(
            O.VerifyBatchRequest(requests=[request]), timeout=30),
        "/authd.v1.OtpService/VerifyStream": lambda: list(stub.VerifyStream(
            iter([O.VerifyBatchRequest(requests=[request])]), timeout=30)),
    }
    for _ in range(15):
        for method, call in calls.items():
            before = _front(_scrape(srv), method, "OK")
            call()
            assert _front(_scrape(srv), method, "OK") == before + 1, method
