"""The links' frame reader (the call link's and the OTP engine link's): a frame that came
whole costs one recv, and frames split or run together come out whole and in order."""

from __future__ import annotations

import socket

from authd.front_link import LENGTH, MAX_FRAME, Frames, framed


class _Counted:
    """A socket's recv, counted."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.recvs = 0

    def recv(self, size: int) -> bytes:
        self.recvs += 1
        return self.sock.recv(size)


def test_a_whole_frame_is_one_recv() -> None:
    a, b = socket.socketpair()
    with a, b:
        counted = _Counted(a)
        frames = Frames(counted)  # type: ignore[arg-type]
        for body in (b"one call", b"", b"x" * 300):
            b.sendall(framed(body))
            before = counted.recvs
            assert frames.next() == body
            assert counted.recvs - before == 1


def test_frames_split_and_run_together_come_out_whole() -> None:
    a, b = socket.socketpair()
    with a, b:
        frames = Frames(a)
        data = framed(b"first") + framed(b"second") + framed(b"third" * 40_000)
        b.sendall(data[:3])  # not even the length yet
        b.sendall(data[3:20])
        b.sendall(data[20:])
        assert [frames.next(), frames.next(), frames.next()] == [
            b"first", b"second", b"third" * 40_000]
        b.close()
        assert frames.next() is None  # the peer closed


def test_a_frame_too_large_or_cut_short_ends_the_reading() -> None:
    a, b = socket.socketpair()
    with a, b:
        b.sendall(LENGTH.pack(MAX_FRAME + 1) + b"x")
        assert Frames(a).next() is None
    a, b = socket.socketpair()
    with a, b:
        b.sendall(LENGTH.pack(10) + b"short")
        b.close()
        assert Frames(a).next() is None
