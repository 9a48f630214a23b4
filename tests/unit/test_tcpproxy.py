"""The tests' TCP proxy ends a direction whose socket another thread closed."""

from __future__ import annotations

import socket
import threading
from queue import Queue

from tests.tcpproxy import TcpProxy


def test_a_direction_whose_socket_was_closed_meanwhile_ends_and_lets_its_writer_end() -> None:
    """refuse() and the pump close a connection's sockets from other threads, between two
    of a reader's selects: the reader ends and tells its writer (select raised ValueError on
    the closed socket, the thread died, and its writer waited for ever)."""
    with TcpProxy(("127.0.0.1", 9)) as proxy:
        a, b = socket.socketpair()
        b.close()
        a.close()  # fileno() is -1 now
        queue: Queue[tuple[float, bytes] | None] = Queue()
        proxy._read(a, queue, False, threading.Event())
        assert queue.get(timeout=5) is None
