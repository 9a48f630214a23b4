"""The call link's reader serves the frames that came in one read together: the front end
writes a call as soon as it comes, so calls that came while the daemon was busy arrive as
several frames at once; none of them is served as alone, and the method's ``settle`` runs
once after all of them (where linked Signs are signed as one run); a stream given requests
in the read is settled once after them (where its requests start together)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

from authd import config as configmod
from authd.call_link import Answer, CallLink, LinkedMethod, LinkedStream, StreamOut
from authd.front_link import framed, read_frame
from authd.limits import RequestLimits
from authd.v1 import call_link_pb2
from authd.v1 import token_pb2 as pb

SIGN = "/authd.v1.TokenService/Sign"
STREAM = "/authd.v1.TokenService/SignStream"


def _call(n: int) -> call_link_pb2.LinkedCall:
    return call_link_pb2.LinkedCall(
        id=n, method=SIGN, institution="bank-a", role="branch", subject="teller-1",
        request=pb.TokenSignRequest(session="tks_x", key_id=bytes([n]),
                                    digest=b"\x00" * 32).SerializeToString())


def _frame(*calls: call_link_pb2.LinkedCall) -> bytes:
    return framed(call_link_pb2.LinkedCalls(calls=calls).SerializeToString())


def _answers(conn: socket.socket, count: int) -> dict[int, call_link_pb2.LinkedAnswer]:
    out: dict[int, call_link_pb2.LinkedAnswer] = {}
    while len(out) < count:
        body = read_frame(conn)
        assert body is not None, "the link closed before every call was answered"
        for answer in call_link_pb2.LinkedAnswers.FromString(body).answers:
            out[answer.id] = answer
    return out


def test_frames_read_together_are_one_wake_up_settled_once(tmp_path: Path) -> None:
    events: list[tuple[Any, ...]] = []
    held: list[tuple[bytes, Answer]] = []
    lock = threading.Lock()

    def serve(request: pb.TokenSignRequest, answer: Answer, alone: bool) -> None:
        with lock:
            events.append(("serve", bytes(request.key_id), alone))
            if alone:
                answer(pb.TokenSignResponse(signature=request.key_id), None)
            else:
                held.append((bytes(request.key_id), answer))

    def settle() -> None:
        with lock:
            events.append(("settle", [key for key, _ in held]))
            for key, answer in held:
                answer(pb.TokenSignResponse(signature=key), None)
            held.clear()

    config = configmod.load(None, environ={}, overrides={"data_dir": str(tmp_path / "d")})
    link = CallLink(tmp_path / "calls.sock", {SIGN: LinkedMethod(pb.TokenSignRequest, serve,
                                                                 settle)},
                    RequestLimits(config, ["authd.v1.TokenService"]))
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(tmp_path / "calls.sock"))
        conn.settimeout(10)
        # Three frames, one call each, and one frame of two: written at once, read at once.
        conn.sendall(_frame(_call(1)) + _frame(_call(2)) + _frame(_call(3), _call(4)))
        answers = _answers(conn, 4)
        assert {n: a.response for n, a in answers.items()} == {
            n: pb.TokenSignResponse(signature=bytes([n])).SerializeToString()
            for n in (1, 2, 3, 4)}
        assert events == [("serve", bytes([n]), False) for n in (1, 2, 3, 4)] + [
            ("settle", [bytes([n]) for n in (1, 2, 3, 4)])]

        events.clear()
        conn.sendall(_frame(_call(5)))  # a call alone: served at once, nothing to settle
        assert _answers(conn, 1)[5].response == pb.TokenSignResponse(
            signature=b"\x05").SerializeToString()
        assert events == [("serve", b"\x05", True)]
    finally:
        conn.close()
        link.close()


class _Stream:
    """Answers each request given once its read is settled."""

    def __init__(self, out: StreamOut, events: list[tuple[Any, ...]]) -> None:
        self.out = out
        self.events = events
        self.given: list[bytes] = []

    def request(self, request: pb.TokenSignRequest) -> None:
        self.events.append(("request", bytes(request.key_id)))
        self.given.append(bytes(request.key_id))

    def half_close(self) -> None:
        self.events.append(("half_close",))

    def cancel(self) -> None:
        self.events.append(("cancel",))

    def settle(self) -> None:
        self.events.append(("settle", list(self.given)))
        self.out.item(*(pb.TokenSignResponse(signature=key) for key in self.given))
        self.given.clear()


def _part(n: int, part: Any, key: int = 0) -> call_link_pb2.LinkedCall:
    call = call_link_pb2.LinkedCall(id=n, part=part)
    if part == call_link_pb2.LinkedCall.STREAM_OPEN:
        call.method, call.institution, call.role, call.subject = (
            STREAM, "bank-a", "branch", "teller-1")
    if part == call_link_pb2.LinkedCall.STREAM_ITEM:
        call.request = pb.TokenSignRequest(session="tks_x", key_id=bytes([key]),
                                           digest=b"\x00" * 32).SerializeToString()
    return call


def test_a_stream_given_requests_in_one_read_is_settled_once_after_them(
        tmp_path: Path) -> None:
    events: list[tuple[Any, ...]] = []
    config = configmod.load(None, environ={}, overrides={"data_dir": str(tmp_path / "d")})
    link = CallLink(tmp_path / "calls.sock",
                    {STREAM: LinkedStream(pb.TokenSignRequest, lambda out: _Stream(out, events))},
                    RequestLimits(config, ["authd.v1.TokenService"]))
    item = call_link_pb2.LinkedCall.STREAM_ITEM
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(tmp_path / "calls.sock"))
        conn.settimeout(10)
        conn.sendall(_frame(_part(7, call_link_pb2.LinkedCall.STREAM_OPEN))
                     + _frame(_part(7, item, 1)) + _frame(_part(7, item, 2), _part(7, item, 3)))
        body = read_frame(conn)
        assert body is not None
        answers = call_link_pb2.LinkedAnswers.FromString(body).answers
        assert [a.response for a in answers] == [
            pb.TokenSignResponse(signature=bytes([n])).SerializeToString() for n in (1, 2, 3)]
        assert events == [("request", b"\x01"), ("request", b"\x02"), ("request", b"\x03"),
                          ("settle", [b"\x01", b"\x02", b"\x03"])]
    finally:
        conn.close()
        link.close()
