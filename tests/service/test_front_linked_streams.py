"""TokenService SignStream and SmartcardService TransmitStream behind the native front end:
authd-front carries them over the call link (authd/call_link.py, native/front/calls.h) as
parts of one id. The same streams get the same answers as from the daemon's own server — the
responses in order, an error mid-stream ending the stream with its code, message and details
— the parts of several streams share frames, a client's cancellation ends its stream only,
and the link lost mid-stream ends every open stream UNAVAILABLE, with streams served again
once it is back; a front end stopped with streams open ends them and exits cleanly."""
# ruff: noqa: F811  (pytest fixtures imported from tests.pcsc_env are used as arguments)

from __future__ import annotations

import hashlib
import queue
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

import authd.call_link
from authd import errors
from authd.v1 import call_link_pb2, smartcard_pb2, smartcard_pb2_grpc, token_pb2, token_pb2_grpc
from simulators.smartcard import VirtualCardSlot
from simulators.token.softhsm import process_env
from tests.conftest import wait_for
from tests.holds import front_queued
from tests.pcsc_env import (  # noqa: F401  (fixtures)
    READERS,
    card,
    card_factory,
    pcscd,
    running_pcscd,
)
from tests.service.test_front_link_loss import _kill

SIGN_STREAM = "/authd.v1.TokenService/SignStream"
TRANSMIT_STREAM = "/authd.v1.SmartcardService/TransmitStream"
SELECT = bytes.fromhex("00a404000ba00000030800001000010000")
CHUID = bytes.fromhex("00cb3fff055c035fc10200")
FAST = {"token": {"poll_interval": 0.1, "rescan_interval": 0.1},
        "smartcard": {"idle_release_seconds": 0.2}}


def _digest(i: int) -> bytes:
    return hashlib.sha256(b"stream %d" % i).digest()


def _stream(call: Callable[[], Iterator[Any]], each: Callable[[Any], Any]
            ) -> tuple[list[Any], tuple[Any, ...]]:
    """(the responses, in order, as ``each`` sees them; how the stream ended)."""
    got: list[Any] = []
    try:
        for response in call():
            got.append(each(response))
    except grpc.RpcError as exc:
        d = errors.details_of(exc)
        return got, (exc.code().name, exc.details() or "", d.reason, d.metadata, d.field)
    return got, ("OK",)


class _Login:
    def __init__(self, srv: Any, serial: str, pin: str) -> None:
        self.teller = token_pb2_grpc.TokenServiceStub(srv.channel("bank-a", "branch", "teller-1"))
        self.session = self.teller.Login(token_pb2.TokenLoginRequest(
            token_serial=serial, pin=pin), timeout=30).session
        self.key = self.teller.GenerateKeyPair(token_pb2.TokenGenerateKeyPairRequest(
            session=self.session, spec=token_pb2.TOKEN_KEY_SPEC_EC_P256, label="stream"),
            timeout=30)

    def request(self, i: int, **changes: Any) -> token_pb2.TokenSignRequest:
        fields: dict[str, Any] = {"session": self.session, "key_id": self.key.key_id,
                                  "digest": _digest(i)}
        fields.update(changes)
        return token_pb2.TokenSignRequest(**{k: v for k, v in fields.items() if v is not None})

    def valid(self, i: int, signature: bytes) -> bool:
        return self.teller.Verify(token_pb2.TokenVerifyRequest(
            session=self.session, key_id=self.key.key_id, digest=_digest(i),
            signature=signature), timeout=30).valid


def _scenario(srv: Any, serial: str, pin: str) -> list[Any]:
    login = _Login(srv, serial, pin)
    teller = login.teller
    admin = token_pb2_grpc.TokenServiceStub(srv.channel("ops", "admin"))
    nobody_channel = grpc.insecure_channel(srv.address)
    nobody = token_pb2_grpc.TokenServiceStub(nobody_channel)
    cards = smartcard_pb2_grpc.SmartcardServiceStub(srv.channel("bank-a", "branch", "teller-1"))
    backend_cards = smartcard_pb2_grpc.SmartcardServiceStub(srv.channel("bank-a", "backend"))
    wait_for(lambda: cards.ListReaders(smartcard_pb2.ListReadersRequest()).readers[0]
             .card_present, timeout=20)
    raw_sign = srv.channel("bank-a", "branch", "teller-1").stream_stream(SIGN_STREAM)
    raw_transmit = srv.channel("bank-a", "branch", "teller-1").stream_stream(TRANSMIT_STREAM)

    def sign(stub: Any, requests: list[token_pb2.TokenSignRequest], first: int = 0,
             metadata: Any = ()) -> Any:
        seen = iter(range(first, first + len(requests)))
        return _stream(lambda: stub.SignStream(iter(requests), metadata=metadata, timeout=60),
                       lambda r: (r.algorithm, login.valid(next(seen), r.signature)))

    def transmit(stub: Any, requests: list[tuple[str, list[bytes]]]) -> Any:
        return _stream(lambda: stub.TransmitStream(iter(
            smartcard_pb2.TransmitRequest(reader=reader, apdus=apdus)
            for reader, apdus in requests), timeout=60),
            lambda r: [(x.data, x.sw) for x in r.responses])

    good = [login.request(i) for i in range(40)]
    answers = [
        sign(teller, good),
        sign(teller, []),
        sign(teller, [*good[:3], login.request(3, digest=None), *good[4:8]]),  # no input
        sign(teller, [*good[:2], login.request(2, digest=b"short"), *good[3:5]]),
        sign(teller, [*good[:20], login.request(20, session="no-such-session"), *good[21:]]),
        sign(teller, [*good[:2], login.request(2, key_id=b"\x99\x99")]),
        sign(admin, good[:2]),                                   # PERMISSION_DENIED
        sign(nobody, good[:2]),                                  # UNAUTHENTICATED
        sign(teller, good[:2], metadata=(("x-authd-operator-bin", b"kim"),)),
        sign(teller, good[:2], metadata=(("x-authd-operator-bin", b"\x01\x02"),)),
        _stream(lambda: raw_sign(iter([b"\xff\xff\xff", good[1].SerializeToString()]),
                                 timeout=60), lambda r: len(r) > 0),   # undecodable
        transmit(cards, [(READERS[0], [SELECT, CHUID])] + [(READERS[0], [CHUID])] * 30),
        transmit(cards, []),
        transmit(cards, [(READERS[0], [CHUID]), (READERS[0], [])]),
        transmit(cards, [(READERS[0], [CHUID]), (READERS[0], [b"\x00\xa4"]),
                         (READERS[0], [CHUID])]),
        transmit(cards, [(READERS[0], [CHUID]), ("Nope 00", [CHUID])]),
        transmit(cards, [(READERS[0], [CHUID]), (READERS[1], [CHUID])]),   # no card there
        transmit(backend_cards, [(READERS[0], [CHUID])]),                  # PERMISSION_DENIED
        _stream(lambda: raw_transmit(iter([b"\xff\xff\xff"]), timeout=60), len),
    ]
    teller.Logout(token_pb2.TokenLogoutRequest(session=login.session), timeout=30)
    answers.append(sign(teller, good[:2]))  # logged out
    nobody_channel.close()
    return answers


def test_streams_answer_alike_on_both_fronts(server, native_front, card: VirtualCardSlot) -> None:
    token = process_env().init_token(f"streams-{uuid.uuid4().hex[:8]}")
    python_server = server(server={"front": "python"}, **FAST)
    python = _scenario(python_server, token.serial, token.pin)
    python_server.stop()  # lets go of the card
    native_server = server(server={"front": "native"}, **FAST)
    calls = native_server._bg.running.calls
    assert calls is not None and SIGN_STREAM in calls.methods and TRANSMIT_STREAM in calls.methods
    native = _scenario(native_server, token.serial, token.pin)
    algorithm = python[0][0][0][0]
    assert algorithm and python[0] == ([(algorithm, True)] * 40, ("OK",))  # in order, valid
    assert python[1] == ([], ("OK",))
    assert [(len(p[0]), p[1][0]) for p in python] == [
        (40, "OK"), (0, "OK"), (3, "INVALID_ARGUMENT"), (2, "INVALID_ARGUMENT"),
        (20, "NOT_FOUND"), (2, "NOT_FOUND"), (0, "PERMISSION_DENIED"), (0, "UNAUTHENTICATED"),
        (2, "OK"), (0, "UNAUTHENTICATED"), (0, "INVALID_ARGUMENT"),
        (31, "OK"), (0, "OK"), (1, "INVALID_ARGUMENT"), (1, "INVALID_ARGUMENT"),
        (1, "NOT_FOUND"), (1, "UNAVAILABLE"), (0, "PERMISSION_DENIED"), (0, "INVALID_ARGUMENT"),
        (0, "NOT_FOUND")], python
    for i, (p, n) in enumerate(zip(python, native, strict=True)):
        assert p == n, f"stream {i}"


def _held_requests(first: list[Any]) -> tuple[Iterator[Any], queue.Queue[Any]]:
    """A request iterator that gives ``first`` and then whatever is put (None: its end)."""
    more: queue.Queue[Any] = queue.Queue()

    def requests() -> Iterator[Any]:
        yield from first
        while (item := more.get()) is not None:
            yield item

    return requests(), more


def test_stream_parts_share_frames_both_ways(server, native_front, monkeypatch) -> None:
    """Four streams at once while the daemon is slow to read the link: the requests that
    queued in the front end meanwhile leave together, items of several streams in one frame;
    a batch of signatures comes back in one frame; each stream gets its own signatures in its
    own order."""
    token = process_env().init_token(f"streams-{uuid.uuid4().hex[:8]}")
    srv = server(server={"front": "native"}, **FAST)
    login = _Login(srv, token.serial, token.pin)
    asked: list[tuple[int, int]] = []  # per frame of requests: (stream items, streams)
    answered: list[int] = []  # per frame of answers: stream items
    gate = threading.Event()
    real_read, real_send = authd.front_link.Frames.next, authd.call_link._Writer._send

    def read(frames: Any) -> Any:
        body = real_read(frames)
        if body is not None:
            items = [c.id for c in call_link_pb2.LinkedCalls.FromString(body).calls
                     if c.part == c.STREAM_ITEM]
            asked.append((len(items), len(set(items))))
            if items:
                gate.wait(30)  # slow: the front end's socket fills, its calls queue
        return body

    def send(writer: Any, frame: bytes) -> None:
        answers = call_link_pb2.LinkedAnswers.FromString(frame[4:]).answers
        answered.append(sum(a.item for a in answers))
        real_send(writer, frame)

    monkeypatch.setattr(authd.front_link.Frames, "next", read)
    monkeypatch.setattr(authd.call_link._Writer, "_send", send)
    data = [b"%d" % i + bytes(32 * 1024) for i in range(4 * 40)]

    def one(n: int) -> list[bool]:  # a login's handle is its caller's: all sign as teller-1
        out = []
        requests = [login.request(0, digest=None, data=data[n * 40 + i]) for i in range(40)]
        for i, r in enumerate(login.teller.SignStream(iter(requests), timeout=120)):
            out.append(login.teller.Verify(token_pb2.TokenVerifyRequest(
                session=login.session, key_id=login.key.key_id, data=data[n * 40 + i],
                signature=r.signature), timeout=30).valid)
        return out

    with ThreadPoolExecutor(4) as pool:
        results = [pool.submit(one, n) for n in range(4)]
        # More parts wait in the front end than one stream has: its next frame carries parts
        # of several streams.
        assert wait_for(lambda: front_queued(srv, "calls") > 40, timeout=60), \
            front_queued(srv, "calls")
        gate.set()
        assert [r.result(timeout=120) for r in results] == [[True] * 40] * 4
    assert max(n for n, _ in asked) > 1 and max(k for _, k in asked) > 1, asked
    assert max(answered) > 1, answered


def test_a_cancelled_stream_ends_alone(server, native_front) -> None:
    """A client cancelling its stream mid-way ends that stream only: streams open beside it,
    and unary calls, go on and get every answer in order."""
    token = process_env().init_token(f"streams-{uuid.uuid4().hex[:8]}")
    srv = server(server={"front": "native"}, **FAST)
    login = _Login(srv, token.serial, token.pin)

    def one(n: int) -> list[bool]:
        got = login.teller.SignStream(iter(
            [login.request(n * 1000 + i) for i in range(60)]), timeout=120)
        return [login.valid(n * 1000 + i, r.signature) for i, r in enumerate(got)]

    requests, more = _held_requests([login.request(7)])
    cancelled = login.teller.SignStream(requests, timeout=120)
    assert login.valid(7, next(cancelled).signature)
    with ThreadPoolExecutor(4) as pool:
        results = [pool.submit(one, n) for n in range(4)]
        cancelled.cancel()
        assert [r.result(timeout=120) for r in results] == [[True] * 60] * 4
    more.put(None)
    try:
        next(cancelled)
        raise AssertionError("a cancelled stream went on")
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.CANCELLED
    assert login.valid(1, login.teller.Sign(login.request(1), timeout=30).signature)
    assert len(list(login.teller.SignStream(iter([login.request(2)]), timeout=30))) == 1


def test_a_stream_cancelled_with_requests_in_the_daemon_ends_alone(server, native_front,
                                                                  monkeypatch) -> None:
    """A client cancels its stream while requests it sent are still in the daemon (its
    answers slow to leave): that stream ends CANCELLED, the cancellation reaches the daemon
    (which ends the stream: none stays open there), and a stream of the same connection that
    runs beside it gets every signature, in order."""
    token = process_env().init_token(f"streams-{uuid.uuid4().hex[:8]}")
    srv = server(server={"front": "native"}, **FAST)
    login = _Login(srv, token.serial, token.pin)
    slow = threading.Event()
    parts: list[tuple[int, int]] = []  # (stream id, part) as the daemon took them
    open_streams: list[dict[int, Any]] = []  # the daemon's streams of the link
    real_part, real_send = authd.call_link.CallLink._stream_part, authd.call_link._Writer._send

    def part(link: Any, call: Any, writer: Any, streams: dict[int, Any]) -> Any:
        parts.append((call.id, call.part))
        if not any(s is streams for s in open_streams):
            open_streams.append(streams)
        return real_part(link, call, writer, streams)

    def send(writer: Any, frame: bytes) -> None:
        if slow.is_set():
            time.sleep(0.05)
        real_send(writer, frame)

    monkeypatch.setattr(authd.call_link.CallLink, "_stream_part", part)
    monkeypatch.setattr(authd.call_link._Writer, "_send", send)
    requests, more = _held_requests([login.request(0)])
    cancelled = login.teller.SignStream(requests, timeout=120)
    assert login.valid(0, next(cancelled).signature)
    beside, beside_more = _held_requests([login.request(100)])
    other = login.teller.SignStream(beside, timeout=120)
    assert login.valid(100, next(other).signature)
    opened = [i for i, p in parts if p == call_link_pb2.LinkedCall.STREAM_OPEN]
    assert len(opened) == 2, parts
    slow.set()
    for i in range(1, 20):
        more.put(login.request(i))
    assert wait_for(lambda: sum(1 for i, p in parts if i == opened[0]
                                and p == call_link_pb2.LinkedCall.STREAM_ITEM) == 20,
                    timeout=30)
    cancelled.cancel()
    for i in range(101, 120):
        beside_more.put(login.request(i))
    beside_more.put(None)
    signatures = [r.signature for r in other]
    assert [login.valid(101 + i, s) for i, s in enumerate(signatures)] == [True] * 19
    more.put(None)
    try:
        for _ in cancelled:
            pass
        raise AssertionError("a cancelled stream went on")
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.CANCELLED
    assert (opened[0], call_link_pb2.LinkedCall.STREAM_CANCEL) in parts, parts
    assert (opened[1], call_link_pb2.LinkedCall.STREAM_CANCEL) not in parts, parts
    assert wait_for(lambda: not any(open_streams), timeout=10), open_streams


def test_a_front_stopped_with_streams_open_ends_them_and_exits_cleanly(
        server, native_front, card: VirtualCardSlot) -> None:
    """SIGTERM while a SignStream and a TransmitStream are open, each waiting for its
    client's next request: the front end lets them run out its grace, ends both, and exits
    0 (every stream's call answered and gone, its queues drained) well within its grace and
    the daemon's wait."""
    token = process_env().init_token(f"streams-{uuid.uuid4().hex[:8]}")
    srv = server(server={"front": "native"}, **FAST)
    login = _Login(srv, token.serial, token.pin)
    cards = smartcard_pb2_grpc.SmartcardServiceStub(srv.channel("bank-a", "branch", "teller-1"))
    wait_for(lambda: cards.ListReaders(smartcard_pb2.ListReadersRequest()).readers[0]
             .card_present, timeout=20)
    signs, more_signs = _held_requests([login.request(0)])
    sign = login.teller.SignStream(signs, timeout=60)
    assert login.valid(0, next(sign).signature)
    transmits, more_transmits = _held_requests(
        [smartcard_pb2.TransmitRequest(reader=READERS[0], apdus=[SELECT])])
    transmit = cards.TransmitStream(transmits, timeout=60)
    assert next(transmit).responses[0].sw
    front = srv._bg.running.front
    proc = front._proc
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=srv.config.server.grace_seconds + 8) == 0
    for call in (sign, transmit):
        try:
            next(call)
            raise AssertionError("a stream went on past the front end's end")
        except grpc.RpcError as exc:
            assert exc.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE), exc
    more_signs.put(None)
    more_transmits.put(None)


def test_streams_open_when_the_call_link_dies(server, native_front,
                                              card: VirtualCardSlot) -> None:
    """Streams of both kinds, each mid-way (answered some, waiting for its client's next
    request), when the daemon's end of the link dies: each ends UNAVAILABLE with the reason
    UNREACHABLE; once the link is back, new streams are served."""
    token = process_env().init_token(f"streams-{uuid.uuid4().hex[:8]}")
    srv = server(server={"front": "native"}, **FAST)
    calls = srv._bg.running.calls
    login = _Login(srv, token.serial, token.pin)
    cards = smartcard_pb2_grpc.SmartcardServiceStub(srv.channel("bank-a", "branch", "teller-1"))
    wait_for(lambda: cards.ListReaders(smartcard_pb2.ListReadersRequest()).readers[0]
             .card_present, timeout=20)
    transmit = smartcard_pb2.TransmitRequest(reader=READERS[0], apdus=[CHUID])
    held: list[tuple[Any, queue.Queue[Any]]] = []
    for n in range(3):
        requests, more = _held_requests([login.request(n)])
        stream = login.teller.SignStream(requests, timeout=120)
        assert login.valid(n, next(stream).signature)
        held.append((stream, more))
        requests, more = _held_requests([transmit])
        card_stream = cards.TransmitStream(requests, timeout=120)
        assert [r.sw for r in next(card_stream).responses] == [0x9000]
        held.append((card_stream, more))
    assert _kill(calls, "connection") == 1
    ends = []
    for stream, more in held:
        try:
            next(stream)
            ends.append(("OK", ""))
        except grpc.RpcError as exc:
            ends.append((exc.code().name, errors.details_of(exc).reason))
        more.put(None)
    assert ends == [("UNAVAILABLE", "UNREACHABLE")] * 6, ends

    def served() -> bool:
        try:
            return len(list(login.teller.SignStream(
                iter([login.request(i) for i in range(5)]), timeout=10))) == 5
        except grpc.RpcError:
            return False

    assert wait_for(served, 60)
    answers = list(cards.TransmitStream(iter([transmit] * 5), timeout=30))
    assert [[r.sw for r in a.responses] for a in answers] == [[0x9000]] * 5
