"""The lockout is exact across threads, processes and nodes, and survives kill -9."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from authd.v1 import otp_pb2 as O
from authd.v1 import otp_pb2_grpc
from tests.conftest import KEK_PIN_FILE, make_config, wait_for
from tests.nodes import Node

BANKS = ("bank-a", "bank-b", "bank-c")


def _nodes(tmp_path: Path, store_url: str, count: int, **env: str) -> list[Node]:
    make_config(tmp_path / "cfg", store_url)  # writes the session's KEK PIN file
    env = {"AUTHD_KEK__PIN_FILE": str(KEK_PIN_FILE), **env}
    nodes: list[Node] = []
    try:
        for i in range(count):
            nodes.append(Node(tmp_path / f"node{i}", store_url, env))
    except BaseException:
        for n in nodes:
            n.kill()
        raise
    return nodes


def _enroll_everywhere(node: Node, serial: str) -> None:
    stubs = {b: otp_pb2_grpc.OtpServiceStub(node.channel(b, "branch")) for b in BANKS}
    stubs["bank-a"].Enroll(O.EnrollRequest(customer_id="C-1",
        serial=serial, operator_id="op", seed=bytes(range(1, 21)),
        parameters=O.OtpParameters(kind=O.OTP_KIND_HOTP)), timeout=30)
    for bank in BANKS[1:]:
        stubs[bank].Register(O.RegisterRequest(customer_id="C-1",
                                               serial=serial, operator_id="op"), timeout=30)


WRONG = "999999"  # not among the first codes of seed 01..14 (checked below)


def test_wrong_code_is_wrong():
    from devices.otp.codes import hotp

    assert WRONG not in {hotp(bytes(range(1, 21)), c) for c in range(0, 64)}


def test_200_concurrent_wrong_codes_two_processes_exactly_ten(tmp_path: Path, store_url: str,
                                                              front: str):
    _exactly_ten(tmp_path, store_url, "thread", front)


def test_200_concurrent_wrong_codes_two_processes_exactly_ten_with_the_loop_engine(
        tmp_path: Path):
    _exactly_ten(tmp_path, f"sqlite:///{tmp_path / 'loop.db'}", "loop", "python")


def _exactly_ten(tmp_path: Path, store_url: str, engine: str, front: str) -> None:
    nodes = _nodes(tmp_path, store_url, 2, AUTHD_OTP__ENGINE=f'"{engine}"',
                   AUTHD_SERVER__FRONT=front)
    try:
        _enroll_everywhere(nodes[0], "OTP-RACE-1")
        stubs = [otp_pb2_grpc.OtpServiceStub(node.channel(bank, "backend"))
                 for node in nodes for bank in BANKS]
        start = threading.Barrier(50)

        def attempt(i: int) -> int:
            if i < 50:
                start.wait()
            return stubs[i % len(stubs)].Verify(
                O.VerifyRequest(serial="OTP-RACE-1", code=WRONG), timeout=60).outcome

        with ThreadPoolExecutor(50) as pool:
            outcomes = Counter(pool.map(attempt, range(200)))
        assert outcomes == {O.VERIFY_OUTCOME_WRONG_CODE: 10, O.VERIFY_OUTCOME_LOCKED: 190}

        # operations (admin role) see every institution's share
        status = otp_pb2_grpc.OtpServiceStub(nodes[1].channel("ops", "admin")).GetStatus(
            O.GetStatusRequest(serial="OTP-RACE-1"), timeout=30)
        assert status.state == O.DEVICE_STATE_LOCKED and status.consecutive_failures == 10
        assert sum(r.failures_here for r in status.registrations) == 10
    finally:
        for node in nodes:
            node.terminate()

    # The audit trail shows exactly 10 evaluated codes.
    from authd.storage import open_database

    db = open_database(store_url)
    evaluated = db.run(lambda tx: tx.one(
        "SELECT COUNT(*) FROM audit_records WHERE target = 'OTP-RACE-1' AND action = 'otp.verify'"
        " AND outcome = 'wrong_code'"))
    db.close()
    assert evaluated == (10,)


def test_kill_9_during_load_loses_no_counted_failure(tmp_path: Path, store_url: str,
                                                    front: str):
    env = {"AUTHD_OTP__LOCKOUT_THRESHOLD": "1000000", "AUTHD_SERVER__FRONT": front}
    (node,) = _nodes(tmp_path, store_url, 1, **env)
    acked = Counter[str]()
    lock = threading.Lock()
    stop = threading.Event()
    try:
        _enroll_everywhere(node, "OTP-KILL-1")
        stubs = [otp_pb2_grpc.OtpServiceStub(node.channel(b, "backend")) for b in BANKS]

        def hammer(i: int) -> None:
            stub = stubs[i % 3]
            while not stop.is_set():
                try:
                    r = stub.Verify(O.VerifyRequest(serial="OTP-KILL-1", code=WRONG), timeout=10)
                except grpc.RpcError:
                    return
                if r.outcome == O.VERIFY_OUTCOME_WRONG_CODE:
                    with lock:
                        acked["wrong"] += 1
                        acked["max"] = max(acked["max"], r.consecutive_failures)

        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while acked["wrong"] < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        front_pid = node.front_pid()
        node.kill()  # SIGKILL, mid-load
        if front_pid:  # the front end too, at once (it would otherwise stop by itself)
            with contextlib.suppress(ProcessLookupError):
                os.kill(front_pid, signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join()
    finally:
        node.kill()
    assert acked["wrong"] >= 300

    (again,) = _nodes(tmp_path / "restart", store_url, 1, **env)
    try:
        status = otp_pb2_grpc.OtpServiceStub(again.channel("ops", "admin")).GetStatus(
            O.GetStatusRequest(serial="OTP-KILL-1"), timeout=30)
    finally:
        again.terminate()
    # Every failure a client was told about is in the store (maybe a few more whose answers
    # were lost with the process), and the per-institution shares add up.
    assert status.consecutive_failures >= acked["wrong"]
    assert status.consecutive_failures >= acked["max"]
    assert sum(r.failures_here for r in status.registrations) == status.consecutive_failures


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def test_sigterm_lets_in_flight_calls_finish(tmp_path: Path, store_url: str, front: str):
    import queue

    (node,) = _nodes(tmp_path, store_url, 1, AUTHD_SERVER__GRACE_SECONDS="20",
                     AUTHD_SERVER__FRONT=front)
    try:
        _enroll_everywhere(node, "OTP-TERM-1")
        stub = otp_pb2_grpc.OtpServiceStub(node.channel("bank-a", "backend"))
        outbox: queue.Queue[O.VerifyBatchRequest | None] = queue.Queue()

        def requests():
            while (item := outbox.get()) is not None:
                yield item

        answers = stub.VerifyStream(requests(), timeout=60)
        outbox.put(O.VerifyBatchRequest(requests=[
            O.VerifyRequest(serial="OTP-TERM-1", code=WRONG, request_id="before")]))
        assert next(answers).responses[0].request_id == "before"

        fresh = otp_pb2_grpc.OtpServiceStub(node.channel("bank-b", "backend"))
        ops = otp_pb2_grpc.OtpServiceStub(node.channel("ops", "admin"))

        def status() -> object:
            return ops.GetStatus(O.GetStatusRequest(serial="OTP-TERM-1"), timeout=5)

        assert not _refused(status)
        node.proc.send_signal(signal.SIGTERM)
        # New calls are refused while the stream in flight is still served (once the signal
        # is handled: a call that counts nothing tells when).
        assert wait_for(lambda: _refused(status), timeout=30)
        with pytest.raises(grpc.RpcError):
            fresh.Verify(O.VerifyRequest(serial="OTP-TERM-1", code=WRONG), timeout=5)
        outbox.put(O.VerifyBatchRequest(requests=[
            O.VerifyRequest(serial="OTP-TERM-1", code=WRONG, request_id="after")]))
        (late,) = next(answers).responses
        assert late.request_id == "after" and late.consecutive_failures == 2
        outbox.put(None)
        assert list(answers) == []
        assert node.proc.wait(30) == 0
    finally:
        node.kill()


def test_center_node_with_two_processes_on_one_port(tmp_path: Path, store_url: str):
    """[server] processes = 2: both workers answer on the same port, the lockout stays exact,
    and SIGTERM to the parent stops them both."""
    (node,) = _nodes(tmp_path, store_url, 1, AUTHD_ROLES='["center"]',
                     AUTHD_SERVER__PROCESSES="2")
    try:
        _enroll_everywhere(node, "OTP-WORK-1")
        channels = [node.channel(bank, "backend") for bank in BANKS for _ in range(4)]
        stubs = [otp_pb2_grpc.OtpServiceStub(ch) for ch in channels]

        def attempt(i: int) -> int:
            return stubs[i % len(stubs)].Verify(
                O.VerifyRequest(serial="OTP-WORK-1", code=WRONG), timeout=60).outcome

        with ThreadPoolExecutor(24) as pool:
            outcomes = Counter(pool.map(attempt, range(60)))
        assert outcomes == {O.VERIFY_OUTCOME_WRONG_CODE: 10, O.VERIFY_OUTCOME_LOCKED: 50}
        for ch in channels:
            ch.close()
    finally:
        code = node.terminate()
    assert code == 0


def test_two_processes_on_metrics_port_0_each_bind_a_free_port(tmp_path: Path, store_url: str):
    """[server] processes = 2 with metrics_listen port 0: each worker binds a free port of its
    own and names it in its "authd serving" line (not port 0 + its index), and serves there."""
    import json
    import urllib.request

    (node,) = _nodes(tmp_path, store_url, 1, AUTHD_ROLES='["center"]',
                     AUTHD_SERVER__PROCESSES="2", AUTHD_LOG_LEVEL="INFO",
                     AUTHD_SERVER__METRICS_LISTEN='"127.0.0.1:0"')
    try:
        lines = [json.loads(line) for line in Path(node.log.name).read_text().splitlines()
                 if line.startswith("{")]
        ports = [int(entry["metrics"].rsplit(":", 1)[1]) for entry in lines
                 if entry.get("msg") == "authd serving"]
        assert len(ports) == 2 and len(set(ports)) == 2 and min(ports) >= 1024, ports
        for port in ports:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                          timeout=5).read().decode()
            assert "authd_rpcs_total" in text or "authd_rpc_seconds" in text
    finally:
        code = node.terminate()
    assert code == 0


def test_processes_need_the_center_role(tmp_path: Path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "AUTHD_SERVER__PROCESSES": "2"}
    proc = subprocess.run([sys.executable, "-m", "authd.cli", "serve", "--insecure",
                           "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "center-role" in proc.stderr


def test_batches_over_several_devices_on_two_nodes_count_each_device_exactly(
        tmp_path: Path, store_url: str):
    """VerifyBatch calls carrying wrong codes for three devices at once, from three
    institutions through two nodes, all at the same time: each device counts exactly 10,
    its shares add up to 10 and its audit trail holds exactly 10 evaluated codes (the batch
    statements lock, update and audit many devices per transaction)."""
    serials = ["OTP-MANY-1", "OTP-MANY-2", "OTP-MANY-3"]
    nodes = _nodes(tmp_path, store_url, 2)
    try:
        for serial in serials:
            _enroll_everywhere(nodes[0], serial)
        stubs = [otp_pb2_grpc.OtpServiceStub(node.channel(bank, "backend"))
                 for node in nodes for bank in BANKS]
        start = threading.Barrier(12)

        def attempt(i: int) -> list[O.VerifyResponse]:
            start.wait()
            order = serials[i % 3:] + serials[:i % 3]  # every batch in another order
            request = O.VerifyBatchRequest(requests=[
                O.VerifyRequest(serial=s, code=WRONG) for s in order for _ in range(2)])
            return list(stubs[i % len(stubs)].VerifyBatch(request, timeout=60).responses)

        with ThreadPoolExecutor(12) as pool:
            answers = [a for got in pool.map(attempt, range(12)) for a in got]
        assert len(answers) == 12 * 6
        for serial in serials:
            status = otp_pb2_grpc.OtpServiceStub(nodes[1].channel("ops", "admin")).GetStatus(
                O.GetStatusRequest(serial=serial), timeout=30)
            assert status.state == O.DEVICE_STATE_LOCKED and status.consecutive_failures == 10
            assert sum(r.failures_here for r in status.registrations) == 10
        outcomes = Counter(a.outcome for a in answers)
        assert outcomes == {O.VERIFY_OUTCOME_WRONG_CODE: 30, O.VERIFY_OUTCOME_LOCKED: 42}
    finally:
        for node in nodes:
            node.terminate()

    from authd.storage import open_database

    db = open_database(store_url)
    evaluated = db.run(lambda tx: tx.all(
        "SELECT target, COUNT(*) FROM audit_records WHERE action = 'otp.verify'"
        " AND outcome = 'wrong_code' AND target IN (?, ?, ?) GROUP BY target"
        " ORDER BY target", serials))
    db.close()
    assert [tuple(r) for r in evaluated] == [(s, 10) for s in serials]


def _refused(call: Callable[[], object]) -> bool:
    try:
        call()
    except grpc.RpcError:
        return True
    return False
