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

Streaming methods — those offered as ``LinkedStream``: ``TokenService/SignStream`` and
``SmartcardService/TransmitStream`` — come as parts of one id (call_link.proto): the opening,
checked as a unary call is (caller, operator, then the method's ``open``, which checks the
role), each request checked and parsed as this daemon's server parses a stream's, the
half-close and the cancellation. A stream answers its responses in order (``StreamOut``,
several to a frame when they are ready together) and then its end; its first error ends it
with that error's status. A cancelled stream is answered CANCELLED; a lost connection stops
its streams without a word (the front end answers their callers).

One thread per connection reads frames and starts each call (a method's ``serve`` runs on it
with the caller set, and either answers at once — a fast signature, the GIL released inside
the token — or hands the work to a worker or the card reader's thread, which answers). The
frames that came in one ``recv`` are one wake-up's calls, served together: a call is ``alone``
only if no other unary call came with it, and a method's ``settle`` then does the work its
calls left waiting (linked Signs signed as one run, on this thread when no worker is busy). Answers
are written by whichever thread has one, together with the others ready by then: under load
many to a write, one at a time when idle. The socket is in the daemon's private run directory
(mode 0700), and only the front end this daemon started connects to it.
"""

from __future__ import annotations

import contextvars
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from authd import errors
from authd.context import Caller, set_caller
from authd.front_link import LENGTH, Callers, Frames, FrontListener
from authd.interceptors import (
    Unauthenticated,
    access_logged,
    operator_from,
    request_parser,
)
from authd.limits import RequestLimits
from authd.v1 import call_link_pb2

log = logging.getLogger(__name__)


Lease = call_link_pb2.CardLease | call_link_pb2.TokenLease


class Answer(Protocol):
    """``answer(response, None)`` or ``answer(None, error)``: exactly once, from any thread;
    a response may lend the front end a card or a token login (``lease``, call_link.proto)."""

    def __call__(self, response: Message | None, error: BaseException | None, /,
                 lease: Lease | None = None) -> None: ...


class LeaseHolder(Protocol):
    """What lends cards or token logins to the front end (authd/smartcard/lending.py,
    authd/token/lending.py), told of the lease parts
    of its method's calls on the link's reader thread, and of a connection that went away."""

    def used(self, peer: LinkPeer, part: call_link_pb2.LinkedCall) -> None: ...

    def returned(self, peer: LinkPeer, part: call_link_pb2.LinkedCall) -> None: ...

    def lost(self, peer: LinkPeer) -> None: ...


@dataclass(frozen=True)
class LinkedMethod:
    """A unary method the front end may hand over the link. ``serve(request, answer, alone)``
    runs on the link's reader thread with the caller set (and :func:`current_peer`, the front
    end that sent it); ``alone`` says no other unary call came in the same read of the link
    (the daemon is idle: work done at once costs less than a hop to a thread). ``settle()``,
    if given, runs on the reader thread once every call of that read was served: work the
    calls left waiting together may be done there. ``leases``: what its answers lend."""

    request_type: type[Message]
    serve: Callable[[Any, Answer, bool], None]
    settle: Callable[[], None] | None = None
    leases: LeaseHolder | None = None


class StreamCalls(Protocol):
    """What a linked stream does with its client's side: called in order, ``request`` and
    ``half_close`` on the link's reader thread (with the caller set), ``cancel`` from the reader
    thread when the client went away or the link was lost (no answer is written after it)."""

    def request(self, request: Any) -> None: ...

    def half_close(self) -> None: ...

    def cancel(self) -> None: ...

    def settle(self) -> None:
        """Called on the reader thread once the requests that came in one read of the link
        were all given to ``request``: what they left waiting may start together."""


@dataclass(frozen=True)
class LinkedStream:
    """A streaming method the front end may hand over the link. ``open(out)`` runs on the
    link's reader thread with the caller set when the stream begins and returns what takes
    its requests, or raises (the stream ends with that error before any request).
    ``leases``: what lends the front end its requests too (the lease parts of its method)."""

    request_type: type[Message]
    open: Callable[[StreamOut], StreamCalls]
    leases: LeaseHolder | None = None


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

    def put(self, *answers: call_link_pb2.LinkedAnswer) -> None:
        """Writes ``answers`` (in one frame with any others ready), or leaves them to the
        thread writing now, or, inside :func:`answers_held` on this thread, to its end."""
        entries = []
        for answer in answers:
            data = answer.SerializeToString()
            entries.append(_ANSWER_TAG + _varint(len(data)) + data)
        held: list[_Writer] | None = getattr(_held, "writers", None)
        with self._lock:
            self._ready.extend(entries)
            if self._writing:
                return
            if held is not None:
                if self not in held:
                    held.append(self)
                return
            self._writing = True
        self._write_ready()

    def flush(self) -> None:
        """Writes the answers ready, unless a thread is writing them now."""
        with self._lock:
            if self._writing or not self._ready:
                return
            self._writing = True
        self._write_ready()

    def _write_ready(self) -> None:
        while True:
            with self._lock:
                ready, self._ready = self._ready, []
                if not ready:
                    self._writing = False
                    return
            body = ready[0] if len(ready) == 1 else b"".join(ready)
            self._send(LENGTH.pack(len(body)) + body)

    def _send(self, frame: bytes) -> None:
        try:
            self._conn.sendall(frame)
        except OSError:  # the front end went away: its calls are answered there
            pass


_held = threading.local()


class LinkPeer:
    """The front end at the other end of one connection, as a lender sees it. ``pid``: the
    connected process's, from the socket's peer credentials (SO_PEERCRED, 0 if unknown);
    ``started_front()`` whether it is the front end this daemon started (a secret is lent to
    nothing else: authd/token/lending.py)."""

    def __init__(self, writer: _Writer, pid: int = 0,
                 front_pid: Callable[[], int] | None = None) -> None:
        self._writer = writer
        self.connected = True
        self.pid = pid
        self._front_pid = front_pid

    def started_front(self) -> bool:
        return self.pid > 0 and self._front_pid is not None and self.pid == self._front_pid()

    def recall(self, lease_id: int) -> None:
        """Asks for the card of ``lease_id`` back (answered by a LEASE_RETURN part)."""
        self._writer.put(call_link_pb2.LinkedAnswer(id=0, recall=lease_id))

    def recall_token(self, lease_id: int) -> None:
        """Ends the token lease ``lease_id`` (answered by a LEASE_RETURN part)."""
        self._writer.put(call_link_pb2.LinkedAnswer(id=0, token_recall=lease_id))


_peer: contextvars.ContextVar[LinkPeer | None] = contextvars.ContextVar("link_peer",
                                                                         default=None)


_call: contextvars.ContextVar[call_link_pb2.LinkedCall | None] = contextvars.ContextVar(
    "linked_call", default=None)


def current_peer() -> LinkPeer | None:
    """The front end whose linked call runs now (None outside one)."""
    return _peer.get()


def current_call() -> call_link_pb2.LinkedCall | None:
    """The linked call that runs now, as the front end described it (None outside one)."""
    return _call.get()


@contextmanager
def answers_held() -> Iterator[None]:
    """Answers given on this thread inside the block are written when it ends, together (one
    frame per connection, one wake of the front end) instead of one write each."""
    if getattr(_held, "writers", None) is not None:
        yield  # held already by an outer block
        return
    writers: list[_Writer] = []
    _held.writers = writers
    try:
        yield
    finally:
        _held.writers = None
        for writer in writers:
            writer.flush()


class StreamOut:
    """The answers of one linked stream: ``item`` for each response, in the order they are
    given, then ``end`` once (None: OK). From any thread; after the end, or once the client
    went away (``cancel``), both do nothing. Whoever calls them keeps the stream's order."""

    def __init__(self, stream_id: int, method: str, caller: Caller | None, writer: _Writer,
                 forget: Callable[[int], object],
                 lend: Callable[[call_link_pb2.LinkedAnswer, Lease], None] | None = None
                 ) -> None:
        self.id = stream_id
        self.method = method
        self.caller = caller
        self._writer = writer
        self._forget = forget
        self._lend = lend
        self._started = time.perf_counter()
        self._lock = threading.Lock()
        self._over = False

    @property
    def over(self) -> bool:
        return self._over

    def item(self, *responses: Message, lease: Lease | None = None) -> None:
        """The stream's next responses, in one frame (one write, one wake of the front end);
        ``lease``: the last lends the front end a card (authd/smartcard/lending.py)."""
        if self._over or not responses:
            return
        answers = [call_link_pb2.LinkedAnswer(id=self.id, item=True, response=r.SerializeToString())
                   for r in responses]
        if lease is not None and self._lend is not None:
            self._lend(answers[-1], lease)
        self._writer.put(*answers)

    def end(self, error: BaseException | None) -> None:
        with self._lock:
            if self._over:
                return
            self._over = True
        self._forget(self.id)
        out = call_link_pb2.LinkedAnswer(id=self.id)
        if error is None:
            access_logged(self.method, self.caller, code_pb2.OK, self._started)
        else:
            out.error.CopyFrom(_status(error, self.method))
            access_logged(self.method, self.caller, out.error.code, None)
        self._writer.put(out)

    def cancelled(self) -> None:
        """The client went away: answered CANCELLED (the front end waits for the end)."""
        with self._lock:
            if self._over:
                return
            self._over = True
        self._forget(self.id)
        access_logged(self.method, self.caller, code_pb2.CANCELLED, None)
        self._writer.put(call_link_pb2.LinkedAnswer(id=self.id, error=status_pb2.Status(
            code=code_pb2.CANCELLED, message="the caller cancelled the stream")))

    def lost(self) -> None:
        """The link went away: nothing more is written."""
        with self._lock:
            self._over = True


@dataclass
class _Stream:
    out: StreamOut
    context: contextvars.Context
    calls: StreamCalls | None = None


class CallLink(FrontListener):
    """Listens on ``path`` for the front end and serves ``methods`` (full gRPC names): unary
    ones (``LinkedMethod``) and streaming ones (``LinkedStream``)."""

    def __init__(self, path: Path, methods: dict[str, LinkedMethod | LinkedStream],
                 limits: RequestLimits) -> None:
        super().__init__(path, "authd-calls")
        self.methods = dict(methods)
        self._parsers = {name: request_parser(name, method.request_type.FromString,
                                              limits.of(name))
                         for name, method in self.methods.items()}
        self._callers = Callers()
        self._settles = [method.settle for method in self.methods.values()
                         if isinstance(method, LinkedMethod) and method.settle is not None]
        # The pid of the front end this daemon started (authd/front.py), once it is.
        self.front_pid: Callable[[], int] | None = None
        self.start()

    def front_args(self) -> list[str]:
        unary = sorted(n for n, m in self.methods.items() if isinstance(m, LinkedMethod))
        streams = sorted(n for n, m in self.methods.items() if isinstance(m, LinkedStream))
        return [f"--calls={self.path}", f"--linked={','.join(unary)}",
                *([f"--linked-streams={','.join(streams)}"] if streams else [])]

    def serve(self, conn: socket.socket) -> None:
        self.start_thread(self._read, (conn,), "authd-calls-read")

    def _read(self, conn: socket.socket) -> None:
        writer = _Writer(conn)
        peer = LinkPeer(writer, _peer_pid(conn), lambda: self.front_pid() if self.front_pid
                        else 0)
        frames = Frames(conn)
        streams: dict[int, _Stream] = {}  # this connection's streams not ended yet
        _peer.set(peer)  # copied into each call's context
        try:
            while (body := frames.next()) is not None:
                # The frames that came in one read are served together: calls the front end
                # wrote one by one while this thread was busy are one wake-up's work.
                calls = list(call_link_pb2.LinkedCalls.FromString(body).calls)
                for more in frames.buffered():
                    calls.extend(call_link_pb2.LinkedCalls.FromString(more).calls)
                alone = sum(call.part == UNARY for call in calls) == 1
                given: dict[int, _Stream] = {}  # streams given requests in this read
                for call in calls:
                    if call.part == UNARY:
                        contextvars.copy_context().run(self._start, call, writer, alone)
                    elif call.part in (LEASE_RETURN, LEASE_USED):
                        self._lease_part(call, peer)
                    elif (stream := self._stream_part(call, writer, streams)) is not None:
                        given[call.id] = stream
                if not alone:
                    for settle in self._settles:
                        settle()
                for stream in given.values():
                    _settle_stream(stream)
        except OSError:
            return
        except Exception:
            log.exception("the front end's call link failed; closing it")
        finally:
            peer.connected = False
            for holder in self._lease_holders():
                holder.lost(peer)
            for stream in list(streams.values()):  # their callers were answered there
                stream.out.lost()
                if stream.calls is not None:
                    stream.context.run(stream.calls.cancel)
            streams.clear()
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # closed by its peer already
            self.forget(conn)

    def _lease_holders(self) -> list[LeaseHolder]:
        holders: list[LeaseHolder] = []
        for method in self.methods.values():  # one holder may lend a unary and a stream
            if method.leases is not None and not any(h is method.leases for h in holders):
                holders.append(method.leases)
        return holders

    def _lease_part(self, call: call_link_pb2.LinkedCall, peer: LinkPeer) -> None:
        linked = self.methods.get(call.method)
        holder = linked.leases if linked is not None else None
        if holder is None:
            return
        if call.part == LEASE_RETURN:
            holder.returned(peer, call)
        else:
            holder.used(peer, call)

    def _lend(self, out: call_link_pb2.LinkedAnswer, lease: Lease, method: str) -> None:
        """``lease`` in the answer ``out`` to a call (or a stream's message) of ``method``,
        with the daemon's size limits of its methods' requests (a larger one is refused here:
        never served lent)."""
        lent: Lease
        if isinstance(lease, call_link_pb2.TokenLease):
            out.token_lease.CopyFrom(lease)
            lent, unary = out.token_lease, method
        else:
            out.lease.CopyFrom(lease)
            lent, unary = out.lease, out.lease.method or method
        lent.max_request_bytes = self._parsers[unary].limit
        streamed = self._parsers.get(lent.stream_method)
        if streamed is None:  # not linked here: its requests never come lent
            lent.ClearField("stream_method")
        else:
            lent.max_stream_request_bytes = streamed.limit

    def _start(self, call: call_link_pb2.LinkedCall, writer: _Writer, alone: bool) -> None:
        """Checks the call as the daemon's server would and starts it (in a context of its
        own: the caller set here stays with its work)."""
        started = time.perf_counter()
        method = call.method
        caller: Caller | None = None
        answered = threading.Lock()

        def answer(response: Message | None, error: BaseException | None, /,
                   lease: Lease | None = None) -> None:
            if not answered.acquire(blocking=False):
                return  # answered already (a bug in a serve): the first answer stands
            out = call_link_pb2.LinkedAnswer(id=call.id)
            if error is None and response is not None:
                out.response = response.SerializeToString()
                if lease is not None:
                    self._lend(out, lease, method)
                access_logged(method, caller, code_pb2.OK, started)
            else:
                out.error.CopyFrom(_status(error or RuntimeError("no answer"), method))
                access_logged(method, caller, out.error.code, None)
            writer.put(out)

        linked = self.methods.get(method)
        try:
            if not isinstance(linked, LinkedMethod):
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
            _call.set(call)
            request = parse.parse(call.request)
            linked.serve(request, answer, alone)
        except Exception as exc:
            answer(None, exc)


    def _stream_part(self, call: call_link_pb2.LinkedCall, writer: _Writer,
                     streams: dict[int, _Stream]) -> _Stream | None:
        """One part of a stream (call_link.proto): its opening checks the call as a unary
        call's is checked; each request is checked and parsed as the daemon's own server
        does with a stream's (the first bad one ends the stream with its error). Returns the
        stream when it was given a request (to be settled once the read is served)."""
        if call.part == STREAM_OPEN:
            context = contextvars.copy_context()
            context.run(self._open, call, writer, streams, context)
            return None
        stream = streams.get(call.id)
        if stream is None or stream.calls is None:
            return None  # ended already (an error, or its end crossed this part on the link)
        if call.part == STREAM_CANCEL:
            stream.out.cancelled()
            stream.context.run(stream.calls.cancel)
            return None
        if call.part == STREAM_HALF_CLOSE:
            stream.context.run(stream.calls.half_close)
            return None
        try:
            parse = self._parsers[stream.out.method]
            parse.check_size(call.request)
            request = parse.parse(call.request)
        except Exception as exc:
            stream.out.end(exc)
            stream.context.run(stream.calls.cancel)
            return stream  # the requests before it may wait to start
        try:
            stream.context.run(stream.calls.request, request)
        except Exception as exc:
            stream.out.end(exc)
            stream.context.run(stream.calls.cancel)
        return stream

    def _open(self, call: call_link_pb2.LinkedCall, writer: _Writer,
              streams: dict[int, _Stream], context: contextvars.Context) -> None:
        method = call.method
        linked = self.methods.get(method)
        out = StreamOut(call.id, method, None, writer, lambda i: streams.pop(i, None),
                        lambda answer, lease: self._lend(answer, lease, method))
        stream = _Stream(out, context)
        streams[call.id] = stream
        try:
            if not isinstance(linked, LinkedStream):
                raise Unauthenticated(f"{method} is not served on this link as a stream")
            named = self._callers.of(call.institution, call.role, call.subject)
            out.caller = operator_from(
                named, call.operator_metadata if call.has_operator else None)
            set_caller(out.caller)
            _call.set(call)  # its caller as described, for what a message may lend
            stream.calls = linked.open(out)
        except Exception as exc:
            out.end(exc)


def _peer_pid(conn: socket.socket) -> int:
    """The connected process's pid (SO_PEERCRED; 0 where the platform has none)."""
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    except (AttributeError, OSError):
        return 0
    pid, _, _ = _UCRED.unpack(creds)
    return int(pid)


_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def _settle_stream(stream: _Stream) -> None:
    """The requests of one read were given to ``stream``: they start (an error ends it)."""
    if stream.calls is None or stream.out.over:
        return
    try:
        stream.context.run(stream.calls.settle)
    except Exception as exc:
        stream.out.end(exc)
        stream.context.run(stream.calls.cancel)


UNARY = call_link_pb2.LinkedCall.UNARY
STREAM_OPEN = call_link_pb2.LinkedCall.STREAM_OPEN
STREAM_HALF_CLOSE = call_link_pb2.LinkedCall.STREAM_HALF_CLOSE
STREAM_CANCEL = call_link_pb2.LinkedCall.STREAM_CANCEL
LEASE_RETURN = call_link_pb2.LinkedCall.LEASE_RETURN
LEASE_USED = call_link_pb2.LinkedCall.LEASE_USED


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

