"""What the daemon's ends of the native front end's links share (``authd/otp/link.py`` for
verifications, ``authd/call_link.py`` for linked calls): the private Unix socket they listen
on, the framing (each frame a 4-byte big-endian length and a message, as in
``native/front/framing.h``), and the callers the front end names, made once per name.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

from authd.context import Caller
from authd.interceptors import Unauthenticated, make_caller

log = logging.getLogger(__name__)

LENGTH = struct.Struct(">I")
MAX_FRAME = 64 << 20
MAX_CALLERS = 4096


def framed(data: bytes) -> bytes:
    """``data`` as one frame."""
    return LENGTH.pack(len(data)) + data


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_frame(sock: socket.socket) -> bytes | None:
    """The next frame's message; None when the peer closed (or sent a frame too large)."""
    head = _read_exactly(sock, LENGTH.size)
    if head is None:
        return None
    (size,) = LENGTH.unpack(head)
    return _read_exactly(sock, size) if size <= MAX_FRAME else None


class Frames:
    """The frames of one connection, read with as few ``recv`` calls as they came in: a
    frame that arrives whole (a call, under load several) costs one ``recv``, not one for its
    length and one for its body."""

    _CHUNK = 1 << 16

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._buffer = bytearray()

    def next(self) -> bytes | None:
        """The next frame's message; None when the peer closed (or sent a frame too large)."""
        buffer = self._buffer
        while True:
            if len(buffer) >= LENGTH.size:
                (size,) = LENGTH.unpack_from(buffer)
                if size > MAX_FRAME:
                    return None
                end = LENGTH.size + size
                if len(buffer) >= end:
                    return self._take(end)
                wanted = end - len(buffer)
            else:
                wanted = 0
            chunk = self._conn.recv(max(self._CHUNK, wanted))
            if not chunk:
                return None
            buffer += chunk

    def buffered(self) -> list[bytes]:
        """The frames read already and whole (with the one ``next`` returned: they came in the
        same ``recv``), without reading the socket again."""
        buffer = self._buffer
        out: list[bytes] = []
        while len(buffer) >= LENGTH.size:
            (size,) = LENGTH.unpack_from(buffer)
            end = LENGTH.size + size
            if size > MAX_FRAME or len(buffer) < end:
                break  # left to next(): it reads the rest, or ends the reading
            out.append(self._take(end))
        return out

    def _take(self, end: int) -> bytes:
        body = bytes(self._buffer[LENGTH.size:end])
        del self._buffer[:end]
        return body


class Callers:
    """The caller of each (institution, role, subject) the front end names, or the refusal of
    a name that is no caller; made once, at most ``MAX_CALLERS`` kept."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, str, str], Caller | Unauthenticated] = {}
        self._lock = threading.Lock()

    def of(self, institution: str, role: str, subject: str) -> Caller:
        key = (institution, role, subject)
        found = self._found.get(key)
        if found is None:
            try:
                found = make_caller(*key)
            except Unauthenticated as exc:
                found = exc
            with self._lock:
                if len(self._found) >= MAX_CALLERS:
                    self._found.clear()
                self._found[key] = found
        if isinstance(found, Unauthenticated):
            raise found
        return found


class FrontListener(ABC):
    """Listens on ``path`` (mode 0600, in the daemon's private run directory) for the front
    end; each connection is given to ``serve(conn)`` on threads that ``serve`` starts through
    ``start_thread``. ``close`` shuts the listener and every connection and waits for the
    threads."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name
        self._lock = threading.Lock()
        self._listener = self._listen()
        self._connections: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._stopped = threading.Event()
        self.relistened = 0  # times the listener failed and was made again
        self._accepter = threading.Thread(target=self._accept, name=name, daemon=True)

    def _listen(self) -> socket.socket:
        self.path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(self.path))
            self.path.chmod(0o600)
            listener.listen(4)
        except BaseException:
            listener.close()
            raise
        return listener

    def start(self) -> None:
        self._accepter.start()

    @abstractmethod
    def serve(self, conn: socket.socket) -> None:
        """Start serving a new connection (on threads of ``start_thread``)."""

    def start_thread(self, target: Callable[..., None], args: tuple[object, ...],
                     name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def forget(self, conn: socket.socket) -> None:
        """The connection is done: closed, and no longer shut by ``close``."""
        try:
            self._connections.remove(conn)
        except ValueError:
            pass
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._stopped.set()
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # never connected: nothing to shut
            self._listener.close()
        for conn in list(self._connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # closed by its peer already
        self._accepter.join(10)
        for thread in list(self._threads):
            thread.join(10)
        self.path.unlink(missing_ok=True)

    def _accept(self) -> None:
        """Accepts the front end's connections. A listener that fails (out of descriptors, shut
        by accident) is made again on the same path, after 0.05 s doubling to 2 s while it
        keeps failing: the front end connects again on its own."""
        delay = 0.05
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError as exc:
                if self._closed:
                    return
                log.warning("the front end's listener %s failed (%s); listening again in "
                            "%.2f s", self.name, exc, delay)
                if self._stopped.wait(delay):
                    return
                delay = min(delay * 2, 2.0)
                self._relisten()
                continue
            delay = 0.05
            self._connections.append(conn)
            self.serve(conn)

    def _relisten(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                fresh = self._listen()
            except OSError as exc:
                log.error("the front end's listener %s cannot listen again: %s", self.name, exc)
                return
            self._listener.close()
            self._listener = fresh
            self.relistened += 1
