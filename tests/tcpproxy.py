"""A TCP proxy on loopback for cutting a link on purpose (tests of the branch → center link).

Modes, switchable at any time:

- ``forward``: bytes pass both ways;
- ``refuse``: every open connection is closed and new ones are closed at once (a node that is
  down, a cable pulled);
- ``drop_replies``: what the client sends still reaches the server, what the server answers is
  thrown away (the request is done, its answer is lost on the way back);
- ``delay``: every chunk waits ``delay`` seconds first (a slow or congested link);
- :meth:`TcpProxy.break_next`: the next chunk of at least ``least`` bytes the client sends
  (a request, not a ping) closes its connection without reaching the server, and the proxy
  forwards again (a connection that breaks under a request).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from queue import Queue
from types import TracebackType

FORWARD = "forward"
REFUSE = "refuse"
DROP_REPLIES = "drop_replies"
DELAY = "delay"
BREAK = "break"


class TcpProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.mode = FORWARD
        self.delay = 0.0
        self.least = 0
        self.broken = 0  # connections closed by break_next
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self.address = f"127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = False
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ control

    def set(self, mode: str, delay: float = 0.0) -> None:
        """Switch modes. Leaving ``drop_replies`` closes the connections that lost bytes (a
        byte stream with a hole in it is a broken connection, as it is on a real network)."""
        with self._lock:
            lossy = self.mode == DROP_REPLIES and mode != DROP_REPLIES
            self.mode, self.delay = mode, delay
            doomed = list(self._open) if mode == REFUSE or lossy else []
        for sock in doomed:
            _close(sock)

    def forward(self) -> None:
        self.set(FORWARD)

    def break_next(self, least: int = 100) -> None:
        with self._lock:
            self.mode, self.least = BREAK, least

    def refuse(self) -> None:
        self.set(REFUSE)

    def close(self) -> None:
        self._closed = True
        self.set(REFUSE)
        _close(self._listener)
        self._thread.join(5)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------------ pumping

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode == REFUSE:
                _close(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, server))
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        """Both directions of one connection; ends (closing both sockets) when either does."""
        done = threading.Event()
        for source, sink, reply in ((client, server, False), (server, client, True)):
            queue: Queue[tuple[float, bytes] | None] = Queue()
            threading.Thread(target=self._read, args=(source, queue, reply, done),
                             daemon=True).start()
            threading.Thread(target=self._write, args=(sink, queue, done),
                             daemon=True).start()
        done.wait()
        for sock in (client, server):
            _close(sock)
        with self._lock:
            self._open.difference_update((client, server))

    def _read(self, sock: socket.socket, queue: Queue[tuple[float, bytes] | None],
              reply: bool, done: threading.Event) -> None:
        """Chunks as they arrive, each stamped with when it may go on (a delay is latency:
        it does not add up over chunks)."""
        try:
            while not done.is_set():
                readable, _, _ = select.select([sock], [], [], 0.2)
                if self.mode == REFUSE:
                    break
                if not readable:
                    continue
                data = sock.recv(65536)
                if not data:
                    break
                mode, delay = self.mode, self.delay
                if mode == DROP_REPLIES and reply:
                    continue
                if mode == BREAK and not reply and len(data) >= self.least:
                    with self._lock:
                        self.mode, self.broken = FORWARD, self.broken + 1
                    break
                queue.put((time.monotonic() + (delay if mode == DELAY else 0.0), data))
        except (OSError, ValueError):  # ValueError: closed (refuse(), or the other way ended)
            pass
        queue.put(None)

    def _write(self, sock: socket.socket, queue: Queue[tuple[float, bytes] | None],
               done: threading.Event) -> None:
        try:
            while True:
                item = queue.get()
                if item is None:
                    break
                due, data = item
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if self.mode == REFUSE:
                    break
                sock.sendall(data)
        except OSError:
            pass
        done.set()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
