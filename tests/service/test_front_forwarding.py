"""The native front end's forwarding (native/front/forward.cc) against a daemon of the test's
own: a gRPC server on the private socket whose methods say what reached them. What every
forwarded call relies on: the caller and the client's metadata and deadline go up, the
client's cancellation (or its deadline passing) cancels the daemon's call and no other, the
status with its details and the trailing metadata come back, a stream's messages go both
ways in order, and a front end stopped with calls in flight ends them and exits cleanly."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from tests.conftest import wait_for

SERVICE = "authd.test.Forwarded"
TOKEN = "front-token-for-the-test"


class _Status(grpc.Status):
    def __init__(self, code: grpc.StatusCode, details: str,
                 trailing_metadata: tuple[tuple[str, str | bytes], ...]) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


class FakeDaemon:
    """The daemon's side: what each call was given, and when each ended."""

    def __init__(self) -> None:
        self.seen: queue.Queue[dict[str, Any]] = queue.Queue()
        self.ended: queue.Queue[tuple[str, bool]] = queue.Queue()  # (tag, cancelled)
        self.release = threading.Event()
        self.answered: set[str] = set()  # the calls that ended as the daemon meant

    def _record(self, context: grpc.ServicerContext, tag: str) -> None:
        self.seen.put({"tag": tag, "metadata": list(context.invocation_metadata()),
                       "remaining": context.time_remaining()})

        context.add_callback(lambda: self.ended.put((tag, tag not in self.answered)))

    def fail(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self._record(context, request.decode())
        info = error_details_pb2.ErrorInfo(reason="TEST_REASON", domain="authd",
                                           metadata={"k": "v"})
        detail = any_pb2.Any()
        detail.Pack(info)
        status = rpc_status.to_status(status_pb2.Status(
            code=grpc.StatusCode.FAILED_PRECONDITION.value[0], message="the test says no",
            details=[detail]))
        context.abort_with_status(_Status(status.code, status.details, (
            *status.trailing_metadata, ("x-test-trailer", "t-1"),
            ("x-test-trailer-bin", b"\x00\xffbin"))))
        raise AssertionError("not reached")

    def hold(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        """One message, then nothing until released or the call ends."""
        tag = request.decode()
        self._record(context, tag)
        yield b"holding " + request
        while context.is_active() and not self.release.wait(0.02):
            pass
        if context.is_active():
            self.answered.add(tag)
            yield b"released " + request

    def echo(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        """Each message back as it comes, then a last one once the client's ended."""
        context.send_initial_metadata((("x-test-initial", "i-1"),))
        n = 0
        for request in requests:
            n += 1
            yield b"echo " + request
        context.set_trailing_metadata((("x-test-count", str(n)),))
        yield b"end after %d" % n

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(SERVICE, {
            "Fail": grpc.unary_unary_rpc_method_handler(self.fail),
            "Hold": grpc.unary_stream_rpc_method_handler(self.hold),
            "Echo": grpc.stream_stream_rpc_method_handler(self.echo),
        })


class Front:
    def __init__(self, binary: Path, socket: Path) -> None:
        self.proc = subprocess.Popen(
            [str(binary), "--listen=127.0.0.1:0", f"--daemon=unix:{socket}", "--insecure",
             "--grace-ms=1000"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "AUTHD_FRONT_TOKEN": TOKEN})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("authd-front listening on port "), line
        self.channel = grpc.insecure_channel(f"127.0.0.1:{int(line.rsplit(' ', 1)[1])}")
        self.stopped: tuple[int, str] | None = None

    def stop(self) -> tuple[int, str]:
        if self.stopped is not None:
            return self.stopped
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError(f"authd-front did not stop on SIGTERM: {err}") from None
        self.stopped = (self.proc.returncode, err)
        return self.stopped


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[FakeDaemon, Path]]:
    fake = FakeDaemon()
    server = grpc.server(ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((fake.handler(),))
    socket = tmp_path / "grpc.sock"
    server.add_insecure_port(f"unix:{socket}")
    server.start()
    yield fake, socket
    fake.release.set()
    server.stop(0)


@pytest.fixture
def front(native_front: Path, daemon: tuple[FakeDaemon, Path]) -> Iterator[Front]:
    started = Front(native_front, daemon[1])
    yield started
    code, err = started.stop()
    assert code == 0, err


CALLER = [("x-authd-institution", "bank-a"), ("x-authd-role", "branch"),
          ("x-authd-subject", "teller-1")]


def _ended(fake: FakeDaemon, timeout: float = 10) -> dict[str, bool]:
    tag, cancelled = fake.ended.get(timeout=timeout)
    return {tag: cancelled}


def test_the_caller_metadata_and_deadline_go_up_and_the_status_details_and_trailers_back(
        daemon, front):
    fake, _ = daemon
    call = front.channel.unary_unary(f"/{SERVICE}/Fail")
    md = [*CALLER, ("x-authd-front-token", "forged"), ("x-authd-role-bin", b"admin"),
          ("x-authd-idempotency-key", "key-1"), ("x-authd-operator-bin", b"\x01op"),
          ("x-client-thing", "c-1")]
    with pytest.raises(grpc.RpcError) as err:
        call(b"fail-1", metadata=md, timeout=7)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.details() == "the test says no"
    status = rpc_status.from_call(err.value)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.reason, dict(info.metadata)) == ("TEST_REASON", {"k": "v"})
    trailers = dict(err.value.trailing_metadata())
    assert trailers["x-test-trailer"] == "t-1"
    assert trailers["x-test-trailer-bin"] == b"\x00\xffbin"

    seen = fake.seen.get(timeout=10)
    up: dict[str, list[Any]] = {}
    for key, value in seen["metadata"]:
        up.setdefault(key, []).append(value)
    assert up["x-authd-institution-bin"] == [b"bank-a"]
    assert up["x-authd-role-bin"] == [b"branch"]
    assert up["x-authd-subject-bin"] == [b"teller-1"]
    assert up["x-authd-front-token"] == [TOKEN]
    assert up["x-authd-idempotency-key"] == ["key-1"]
    assert up["x-authd-operator-bin"] == [b"\x01op"]
    assert up["x-client-thing"] == ["c-1"]
    assert not {"x-authd-institution", "x-authd-role", "x-authd-subject"} & up.keys()
    assert 5 < seen["remaining"] <= 7


def test_a_stream_goes_both_ways_in_order_with_its_metadata(daemon, front):
    echo = front.channel.stream_stream(f"/{SERVICE}/Echo")
    # all at once
    answers = echo(iter([b"m%d" % i for i in range(50)]), metadata=CALLER, timeout=30)
    assert list(answers) == [b"echo m%d" % i for i in range(50)] + [b"end after 50"]
    assert dict(answers.trailing_metadata())["x-test-count"] == "50"
    # one at a time, each sent once the one before came back; none at all
    sent: queue.Queue[bytes | None] = queue.Queue()
    call = echo(iter(sent.get, None), metadata=CALLER, timeout=30)
    for i in range(5):
        sent.put(b"p%d" % i)
        assert next(call) == b"echo p%d" % i
    sent.put(None)
    assert list(call) == [b"end after 5"]
    assert list(echo(iter([]), timeout=30)) == [b"end after 0"]


def test_the_daemons_initial_metadata_comes_back(daemon, front):
    echo = front.channel.stream_stream(f"/{SERVICE}/Echo")
    call = echo(iter([b"x"]), metadata=CALLER, timeout=30)
    assert ("x-test-initial", "i-1") in tuple(call.initial_metadata())
    assert list(call) == [b"echo x", b"end after 1"]


def test_a_cancel_reaches_the_daemon_and_no_other_call(daemon, front):
    fake, _ = daemon
    hold = front.channel.unary_stream(f"/{SERVICE}/Hold")
    kept = hold(b"kept", metadata=CALLER, timeout=30)
    cancelled = hold(b"cancelled", metadata=CALLER, timeout=30)
    assert next(kept) == b"holding kept"
    assert next(cancelled) == b"holding cancelled"
    cancelled.cancel()
    assert _ended(fake) == {"cancelled": True}
    fake.release.set()
    assert list(kept) == [b"released kept"]
    assert kept.code() == grpc.StatusCode.OK
    assert _ended(fake) == {"kept": False}


def test_a_deadline_passing_cancels_the_daemons_call(daemon, front):
    fake, _ = daemon
    hold = front.channel.unary_stream(f"/{SERVICE}/Hold")
    started = time.monotonic()
    call = hold(b"late", metadata=CALLER, timeout=1.0)
    assert next(call) == b"holding late"
    with pytest.raises(grpc.RpcError) as err:
        next(call)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert _ended(fake) == {"late": True}
    assert time.monotonic() - started < 5


def test_a_front_end_stopped_with_calls_in_flight_ends_them_and_exits_cleanly(daemon, front):
    fake, _ = daemon
    hold = front.channel.unary_stream(f"/{SERVICE}/Hold")
    calls = [hold(b"held-%d" % i, metadata=CALLER, timeout=30) for i in range(8)]
    for i, call in enumerate(calls):
        assert next(call) == b"holding held-%d" % i
    front.proc.send_signal(signal.SIGTERM)  # the grace (1 s) passes: they are cancelled
    wait_for(lambda: fake.ended.qsize() == len(calls), timeout=10)
    assert {tag: c for _ in calls for tag, c in [fake.ended.get()]} == {
        f"held-{i}": True for i in range(8)}
    code, err = front.stop()
    assert code == 0, err
    assert "leak" not in err.lower()
