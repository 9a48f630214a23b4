"""The engine's end of the native front end's link (``native/front/link.h``).

``authd-front`` sends ``LinkFrame`` messages over a Unix stream socket (each a 4-byte
big-endian length and the message, ``protos/authd/v1/engine_link.proto``); each is answered by
one ``LinkAnswers``, in order, once every verification of the frame has its answer — after the
commit that holds it. A call of a frame is checked as the gRPC servicer checks one: its caller
as any caller is (``make_caller``), the backend role, its size; then each verification takes its
institution's rate-limit token and passes the request checks, and the rest go to the engine as
one group (``Verifier``). The front end bounds what it sends (admission, the writer's queue), so
the engine's own queue bound does not apply here.

One thread per connection reads frames and hands their verifications to the engine; a frame's
answers are sent by the thread that completes them (the engine's syncer or writer, or the reader
for a frame refused whole), in the order of the frames, with no hop to another thread: each hop
is a wait for the GIL, and under load those waits were a good part of the tail. The socket is
in the daemon's private run directory (mode 0700), and only the front end this daemon started
connects to it.

With ``[otp] link_empty_call`` the front end also serves ``EMPTY_LINKED``, the benchmarks'
empty call sent over this link as a Verify is (its framing, its frames, its queue and window):
the reader answers such a call at once with an empty answer, counted in the call metrics as
any other, and hands nothing to the engine (no caller check, no store, no audit). A frame of
them alone is answered by the reader itself; one in a frame with verifications is answered with
them. Without the setting, such a call is refused UNIMPLEMENTED (the front end is not told to
serve the method then, so none comes).
"""

from __future__ import annotations

import collections
import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from google.rpc import code_pb2, status_pb2

from authd import errors, metrics
from authd.context import Caller, Role, check_role
from authd.front_link import Callers, Frames, FrontListener, framed
from authd.idempotency import METADATA_KEY, check_key
from authd.interceptors import Unauthenticated
from authd.otp import stages
from authd.otp.keys import CALL_KEY
from authd.otp.verifier import Verifier
from authd.v1 import engine_link_pb2, otp_pb2
from devices.errors import AuthdError, BadRequest

log = logging.getLogger(__name__)

VERIFY = "/authd.v1.OtpService/Verify"
LINK = "/authd.v1.OtpService/Verify (native front end)"  # where an unexpected error is logged
# The empty call answered by the link's reader ([otp] link_empty_call): the link's own floor.
EMPTY_LINKED = "/bench.EmptyLink/Call"
_NOT_SERVED = status_pb2.Status(code=code_pb2.UNIMPLEMENTED,
                                message=f"{EMPTY_LINKED} is served only with [otp] "
                                        "link_empty_call")


class _Outbox:
    """The frames of one connection, in their order; whoever completes the frame at the head
    sends it and every complete frame after it. Sends happen under one lock, so frames never
    interleave and the connection is closed only between two sends. ``end``: the reader
    stopped; the connection is closed once the frames still in the engine came back."""

    def __init__(self, conn: socket.socket, forget: Callable[[socket.socket], None]) -> None:
        self._conn = conn
        self._forget = forget
        self._frames: collections.deque[_Answers] = collections.deque()
        self._lock = threading.Lock()
        self._ending = False
        self._broken = False
        self._closed = False

    def add(self, answers: _Answers) -> None:
        with self._lock:
            self._frames.append(answers)

    def ready(self) -> None:
        with self._lock:
            while self._frames and self._frames[0].complete:
                answers = self._frames.popleft()
                if self._broken:
                    continue
                try:
                    self._conn.sendall(answers.message())
                except OSError:
                    self._broken = True  # the front end is gone: its calls are answered there
                    continue
                if answers.trace is not None:
                    sent = stages.now()
                    stages.observe("link_send_wait", sent - answers.finished)
                    stages.observe("link_total", sent - answers.trace.read)
                    answers.trace.sent(sent)
            if self._ending and not self._frames:
                self._close()

    def end(self) -> None:
        with self._lock:
            self._ending = True
            if not self._frames:
                self._close()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self._forget(self._conn)


# A call's answer: the status of a call refused whole, or its verifications' responses.
_CallAnswer: TypeAlias = status_pb2.Status | list[otp_pb2.VerifyResponse]


class _Answers:
    """The answers of one frame's calls, complete once every call has one."""

    def __init__(self, calls: list[engine_link_pb2.LinkCall], outbox: _Outbox) -> None:
        self.calls = calls
        self.answers: list[_CallAnswer | None] = [None] * len(calls)
        self.complete = False
        self._outbox = outbox
        self.trace: stages.Trace | None = None  # its path (only with stage timings on)
        self.finished = 0.0  # when its answers were complete (only with stage timings on)

    def finish(self) -> None:
        """Every call has its answer: count them and let the writer send them."""
        counted: dict[tuple[str, int], int] = {}
        for call, answer in zip(self.calls, self.answers, strict=True):
            assert answer is not None
            key = (call.method, _code(call.method, answer))
            counted[key] = counted.get(key, 0) + 1
        for (method, code), count in counted.items():
            _RPCS(code_pb2.Code.Name(code), method).inc(count)
        if self.trace is not None:
            self.finished = self.trace.finished = stages.now()
        self.complete = True
        self._outbox.ready()

    def message(self) -> bytes:
        """The frame of answers, built in place: each response is copied once, into it."""
        out = engine_link_pb2.LinkAnswers()
        for call, answer in zip(self.calls, self.answers, strict=True):
            if isinstance(answer, status_pb2.Status):
                out.calls.add(id=call.id, error=answer)
            else:
                out.calls.add(id=call.id).responses.extend(answer)  # type: ignore[arg-type]
        return framed(out.SerializeToString())


def _code(method: str, answer: _CallAnswer) -> int:
    """The status the call's caller gets (for the daemon's call metrics)."""
    if isinstance(answer, status_pb2.Status):
        return int(answer.code)
    if method == VERIFY and answer and answer[0].HasField("error"):
        return int(answer[0].error.code)
    return code_pb2.OK


# authd_rpcs_total's children (code, method) the link counts with, each looked up once.
_RPCS = metrics.Children(metrics.RPCS)


class EngineLink(FrontListener):
    """Listens on ``path`` for the front end and serves each connection on two threads."""

    def __init__(self, path: Path, verifier: Verifier, *, empty_call: bool = False) -> None:
        super().__init__(path, "authd-link")
        self._verifier = verifier
        self._empty_call = empty_call  # [otp] link_empty_call: answer EMPTY_LINKED here
        self._callers = Callers()
        self.start()

    def serve(self, conn: socket.socket) -> None:
        self.start_thread(self._read, (conn, _Outbox(conn, self.forget)), "authd-link-read")

    def _read(self, conn: socket.socket, out: _Outbox) -> None:
        try:
            frames = Frames(conn)
            while (body := frames.next()) is not None:
                read = stages.now() if stages.ON else 0.0
                frame = engine_link_pb2.LinkFrame.FromString(body)
                for shed in frame.shed:
                    _RPCS(shed.code, shed.method).inc(shed.count)
                trace = None
                if stages.ON:
                    # both clocks are the host's monotonic one (stages.now, steady_clock)
                    wake = max(0.0, read - frame.sent_ns / 1e9) if frame.sent_ns else 0.0
                    trace = stages.Trace(frame.queued_us / 1e6, wake, read)
                    stages.observe("front_queue", trace.queued)
                    stages.observe("link_wake", wake)
                self._serve(frame, out, trace)
                if stages.ON:
                    stages.observe("link_read", stages.now() - read)
        except OSError:
            return
        except Exception:
            log.exception("the front end's link failed; closing it")
        finally:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            out.end()

    def _serve(self, frame: engine_link_pb2.LinkFrame, out: _Outbox,
               trace: stages.Trace | None) -> None:
        """Check each call of the frame, and hand the verifications of those that pass to the
        engine as one group; the frame's answers go to ``out`` once they are complete."""
        calls = list(frame.calls)
        answers = _Answers(calls, out)
        answers.trace = trace
        out.add(answers)
        requests: list[otp_pb2.VerifyRequest] = []
        callers: list[Caller] = []
        spans: list[tuple[int, int, int]] = []  # call index, first request, count
        named: dict[int, str] = {}  # a unary Verify's metadata key, by its request's index
        empties = 0
        for index, call in enumerate(calls):
            if call.method == EMPTY_LINKED:  # answered here, whatever it carries
                answers.answers[index] = [] if self._empty_call else _NOT_SERVED
                empties += 1
                continue
            try:
                caller = check_role(self._callers.of(call.institution, call.role, call.subject),
                                    Role.BACKEND)
                self._verifier.check_size(len(call.requests))
                if call.idempotency_key:
                    if call.method != VERIFY:
                        raise BadRequest(CALL_KEY, field=METADATA_KEY,
                                         reason="BAD_IDEMPOTENCY_KEY")
                    named[len(requests)] = check_key(call.idempotency_key)
            except Unauthenticated as exc:
                answers.answers[index] = status_pb2.Status(code=code_pb2.UNAUTHENTICATED,
                                                           message=str(exc))
                continue
            except AuthdError as exc:
                answers.answers[index] = errors.status_proto(exc, call.method)
                continue
            spans.append((index, len(requests), len(call.requests)))
            requests.extend(call.requests)
            callers.extend([caller] * len(call.requests))

        def done(responses: list[otp_pb2.VerifyResponse]) -> None:
            for index, first, count in spans:
                answers.answers[index] = responses[first:first + count]
            answers.finish()

        if empties and empties == len(calls):  # nothing for the engine
            answers.finish()
            return
        if trace is not None:
            trace.handed = stages.now()
        self._verifier.submit_mixed(requests, callers, LINK, done, bounded=False, named=named,
                                    trace=trace)
