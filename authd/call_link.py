"""The daemon's end of the native front end's call link (``native/front/calls.h``).

With ``[server] front = "native"``, authd-front serves a few unary methods itself — those a
servicer offers in ``linked_methods()``: ``TokenService/Sign`` and ``SmartcardService/Transmit``
— and hands each call to this daemon over a private Unix socket instead of forwarding it to
this daemon's gRPC server: ``LinkedCalls`` frames come in (``protos/authd/v1/call_link.proto``:
each a 4-byte big-endian length and the message, as on the verification link), and every call
gets one ``LinkedAnswer``, in any order. A call is checked here as the daemon's own server
checks it — its size, its caller (``make_caller``) and a branch node's operator, then its
request parsed — and its status, message and details are what that server would give
(``errors.status_proto``); it is counted in the call metrics and access log the same way.

One thread per connection reads frames and starts each call (a method's ``serve`` runs on it
with the caller set, and either answers at once — a fast signature, the GIL released inside
the token — or hands the work to a worker or the card reader's thread, which answers). Answers
are written by whichever thread has one, together with the others ready by then: under load
many to a write, one at a time when idle. The socket is in the daemon's private run directory
(mode 0700), and only the front end this daemon started connects to it.
"""

from __future__ import annotations

import contextvars
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from authd import errors
from authd.context import Caller, set_caller
from authd.front_link import LENGTH, Callers, FrontListener, read_frame
from authd.interceptors import (
    Unauthenticated,
    access_logged,
    operator_from,
    request_parser,
)
from authd.limits import RequestLimits
from authd.v1 import call_link_pb2

log = logging.getLogger(__name__)


# answer(response, None) or answer(None, error): exactly once, from any thread.
Answer = Callable[[Message | None, BaseException | None], None]


@dataclass(frozen=True)
class LinkedMethod:
    """A unary method the front end may hand over the link. ``serve(request, answer, alone)``
    runs on the link's reader thread with the caller set; ``alone`` says no other call came
    with it (the daemon is idle: work done at once costs less than a hop to a thread)."""

    request_type: type[Message]
    serve: Callable[[Any, Answer, bool], None]


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_ANSWER_TAG = b"\x0a"  # LinkedAnswers.answers: field 1, length-delimited


class _Writer:
    """Writes answers to one connection; a thread with an answer writes every answer ready.
    A frame is put together from the answers' own bytes (a ``LinkedAnswers`` is its answers,
    each tagged and length-prefixed), with no message built around them."""

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._ready: list[bytes] = []
        self._writing = False

    def put(self, answer: call_link_pb2.LinkedAnswer) -> None:
        data = answer.SerializeToString()
        entry = _ANSWER_TAG + _varint(len(data)) + data
        with self._lock:
            self._ready.append(entry)
            if self._writing:
                return
            self._writing = True
        while True:
            with self._lock:
                ready, self._ready = self._ready, []
                if not ready:
                    self._writing = False
                    return
            body = ready[0] if len(ready) == 1 else b"".join(ready)
            try:
                self._conn.sendall(LENGTH.pack(len(body)) + body)
            except OSError:  # the front end went away: its calls are answered there
                pass


class CallLink(FrontListener):
    """Listens on ``path`` for the front end and serves ``methods`` (full gRPC names)."""

    def __init__(self, path: Path, methods: dict[str, LinkedMethod],
                 limits: RequestLimits) -> None:
        super().__init__(path, "authd-calls")
        self.methods = dict(methods)
        self._parsers = {name: request_parser(name, method.request_type.FromString,
                                              limits.of(name))
                         for name, method in self.methods.items()}
        self._callers = Callers()
        self.start()

    def front_args(self) -> list[str]:
        return [f"--calls={self.path}", f"--linked={','.join(sorted(self.methods))}"]

    def serve(self, conn: socket.socket) -> None:
        self.start_thread(self._read, (conn,), "authd-calls-read")

    def _read(self, conn: socket.socket) -> None:
        writer = _Writer(conn)
        try:
            while (body := read_frame(conn)) is not None:
                calls = call_link_pb2.LinkedCalls.FromString(body).calls
                alone = len(calls) == 1
                for call in calls:
                    contextvars.copy_context().run(self._start, call, writer, alone)
        except OSError:
            return
        except Exception:
            log.exception("the front end's call link failed; closing it")
        finally:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # closed by its peer already
            self.forget(conn)

    def _start(self, call: call_link_pb2.LinkedCall, writer: _Writer, alone: bool) -> None:
        """Checks the call as the daemon's server would and starts it (in a context of its
        own: the caller set here stays with its work)."""
        started = time.perf_counter()
        method = call.method
        caller: Caller | None = None
        answered = threading.Lock()

        def answer(response: Message | None, error: BaseException | None) -> None:
            if not answered.acquire(blocking=False):
                return  # answered already (a bug in a serve): the first answer stands
            out = call_link_pb2.LinkedAnswer(id=call.id)
            if error is None and response is not None:
                out.response = response.SerializeToString()
                access_logged(method, caller, code_pb2.OK, started)
            else:
                out.error.CopyFrom(_status(error or RuntimeError("no answer"), method))
                access_logged(method, caller, out.error.code, None)
            writer.put(out)

        linked = self.methods.get(method)
        try:
            if linked is None:
                raise Unauthenticated(f"{method} is not served on this link")
            parse = self._parsers[method]
            parse.check_size(call.request)
            try:
                named = self._callers.of(call.institution, call.role, call.subject)
                caller = operator_from(
                    named, call.operator_metadata if call.has_operator else None)
            except Unauthenticated as exc:
                out = call_link_pb2.LinkedAnswer(id=call.id, error=status_pb2.Status(
                    code=code_pb2.UNAUTHENTICATED, message=str(exc)))
                access_logged(method, None, code_pb2.UNAUTHENTICATED, None)
                answered.acquire(blocking=False)
                writer.put(out)
                return
            set_caller(caller)
            request = parse.parse(call.request)
            linked.serve(request, answer, alone)
        except Exception as exc:
            answer(None, exc)


def _status(exc: BaseException, method: str) -> status_pb2.Status:
    if isinstance(exc, Unauthenticated):
        return status_pb2.Status(code=code_pb2.UNAUTHENTICATED, message=str(exc))
    return errors.status_proto(exc, method)


def answered_by(work: Callable[[], Message], answer: Answer) -> None:
    """Runs ``work`` and answers with its response or its error (on a worker thread)."""
    try:
        response = work()
    except Exception as exc:
        answer(None, exc)
    else:
        answer(response, None)

