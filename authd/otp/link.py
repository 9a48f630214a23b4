"""The engine's end of the native front end's link (``native/front/link.h``).

``authd-front`` sends ``LinkFrame`` messages over a Unix stream socket (each a 4-byte
big-endian length and the message, ``protos/authd/v1/engine_link.proto``); each is answered by
one ``LinkAnswers``, in order, once every verification of the frame has its answer — after the
commit that holds it. A call of a frame is checked as the gRPC servicer checks one: its caller
as any caller is (``make_caller``), the backend role, its size; then each verification takes its
institution's rate-limit token and passes the request checks, and the rest go to the engine as
one group (``Verifier``). The front end bounds what it sends (admission, the writer's queue), so
the engine's own queue bound does not apply here.

One thread per connection reads frames and hands their verifications to the engine; a second
writes the answers in order as their groups complete. The socket is in the daemon's private run
directory (mode 0700), and only the front end this daemon started connects to it.
"""

from __future__ import annotations

import collections
import logging
import queue
import socket
import struct
import threading
from pathlib import Path

from google.rpc import code_pb2, status_pb2

from authd import errors, metrics
from authd.context import Caller, Role, check_role
from authd.interceptors import Unauthenticated, make_caller
from authd.otp.verifier import Verifier
from authd.v1 import engine_link_pb2, otp_pb2
from devices.errors import AuthdError

log = logging.getLogger(__name__)

_LENGTH = struct.Struct(">I")
MAX_FRAME = 64 << 20
MAX_CALLERS = 4096
VERIFY = "/authd.v1.OtpService/Verify"
LINK = "/authd.v1.OtpService/Verify (native front end)"  # where an unexpected error is logged


class _Answers:
    """The answers of one frame's calls, ready once every call has one."""

    def __init__(self, calls: list[engine_link_pb2.LinkCall]) -> None:
        self.calls = calls
        self.answers: list[engine_link_pb2.LinkAnswer | None] = [None] * len(calls)
        self.ready = threading.Event()

    def finish(self) -> None:
        """Every call has its answer: count them and let the writer send them."""
        counted: collections.Counter[tuple[str, str]] = collections.Counter()
        for call, answer in zip(self.calls, self.answers, strict=True):
            assert answer is not None
            counted[(call.method, _code(call.method, answer))] += 1
        for (method, code), count in counted.items():
            metrics.RPCS.labels(method=method, code=code).inc(count)
        self.ready.set()

    def message(self) -> bytes:
        data = engine_link_pb2.LinkAnswers(
            calls=self.answers).SerializeToString()  # type: ignore[arg-type]  # all set
        return _LENGTH.pack(len(data)) + data


def _code(method: str, answer: engine_link_pb2.LinkAnswer) -> str:
    """The status the call's caller gets, by name (for the daemon's call metrics)."""
    code = answer.error.code if answer.HasField("error") else code_pb2.OK
    if code == code_pb2.OK and method == VERIFY and answer.responses and \
            answer.responses[0].HasField("error"):
        code = answer.responses[0].error.code
    return code_pb2.Code.Name(code)


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


class EngineLink:
    """Listens on ``path`` for the front end and serves each connection on two threads."""

    def __init__(self, path: Path, verifier: Verifier) -> None:
        self.path = path
        self._verifier = verifier
        self._callers: dict[tuple[str, str, str], Caller | Unauthenticated] = {}
        self._callers_lock = threading.Lock()
        path.unlink(missing_ok=True)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        path.chmod(0o600)
        self._listener.listen(4)
        self._connections: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._accepter = threading.Thread(target=self._accept, name="authd-link", daemon=True)
        self._accepter.start()

    def close(self) -> None:
        self._closed = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        for conn in list(self._connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._accepter.join(10)
        for thread in list(self._threads):
            thread.join(10)
        self.path.unlink(missing_ok=True)

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._connections.append(conn)
            out: queue.SimpleQueue[_Answers | None] = queue.SimpleQueue()
            for target, name in ((self._read, "authd-link-read"),
                                 (self._write, "authd-link-write")):
                thread = threading.Thread(target=target, args=(conn, out), name=name,
                                          daemon=True)
                self._threads.append(thread)
                thread.start()

    def _caller(self, call: engine_link_pb2.LinkCall) -> Caller:
        key = (call.institution, call.role, call.subject)
        found = self._callers.get(key)
        if found is None:
            try:
                found = make_caller(*key)
            except Unauthenticated as exc:
                found = exc
            with self._callers_lock:
                if len(self._callers) >= MAX_CALLERS:
                    self._callers.clear()
                self._callers[key] = found
        if isinstance(found, Unauthenticated):
            raise found
        return found

    def _read(self, conn: socket.socket, out: queue.SimpleQueue[_Answers | None]) -> None:
        try:
            while True:
                head = _read_exactly(conn, _LENGTH.size)
                if head is None:
                    return
                (size,) = _LENGTH.unpack(head)
                body = _read_exactly(conn, size) if size <= MAX_FRAME else None
                if body is None:
                    return
                frame = engine_link_pb2.LinkFrame.FromString(body)
                for shed in frame.shed:
                    metrics.RPCS.labels(method=shed.method, code=shed.code).inc(shed.count)
                answers = self._serve(frame)
                out.put(answers)
        except OSError:
            return
        except Exception:
            log.exception("the front end's link failed; closing it")
        finally:
            out.put(None)
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _serve(self, frame: engine_link_pb2.LinkFrame) -> _Answers:
        """Check each call of the frame, and hand the verifications of those that pass to the
        engine as one group."""
        calls = list(frame.calls)
        answers = _Answers(calls)
        requests: list[otp_pb2.VerifyRequest] = []
        callers: list[Caller] = []
        spans: list[tuple[int, int, int]] = []  # call index, first request, count
        for index, call in enumerate(calls):
            try:
                caller = check_role(self._caller(call), Role.BACKEND)
                self._verifier.check_size(len(call.requests))
            except Unauthenticated as exc:
                answers.answers[index] = engine_link_pb2.LinkAnswer(
                    id=call.id, error=status_pb2.Status(code=code_pb2.UNAUTHENTICATED,
                                                        message=str(exc)))
                continue
            except AuthdError as exc:
                answers.answers[index] = engine_link_pb2.LinkAnswer(
                    id=call.id, error=errors.status_proto(exc, call.method))
                continue
            spans.append((index, len(requests), len(call.requests)))
            requests.extend(call.requests)
            callers.extend([caller] * len(call.requests))

        def done(responses: list[otp_pb2.VerifyResponse]) -> None:
            for index, first, count in spans:
                answers.answers[index] = engine_link_pb2.LinkAnswer(
                    id=calls[index].id, responses=responses[first:first + count])
            answers.finish()

        self._verifier.submit_mixed(requests, callers, LINK, done, bounded=False)
        return answers

    def _write(self, conn: socket.socket, out: queue.SimpleQueue[_Answers | None]) -> None:
        try:
            while (answers := out.get()) is not None:
                answers.ready.wait()
                conn.sendall(answers.message())
        except OSError:
            pass
        finally:
            try:
                self._connections.remove(conn)
            except ValueError:
                pass
            conn.close()
