"""The virtual card's link to vpcd (the vsmartcard reader driver inside pcscd).

vpcd listens on TCP (35963 for the first reader, 35964 for the second); the card connects to
it. Every message is a 2-byte big-endian length and a payload. A 1-byte payload is a control
message (0 power off, 1 power on, 2 reset, 4 get ATR: only this one is answered, with the
ATR); any other payload is a command APDU answered with a response APDU. Connecting inserts
the card; closing the socket pulls it.

A vpcd reader serves one card: a second connection to its port is accepted by the kernel and
then left waiting, unserved, until the first card is pulled. A reader that took the card asks
for its ATR within its polling interval (pcscd polls every 0.4 s), so `insert()` waits for that
first message and fails with `ReaderOccupied` when none comes.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path
from typing import Self

from simulators.smartcard.card import PivCard, load_card

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 35963
FIRST_MESSAGE_SECONDS = 5.0  # pcscd polls a card every 0.4 s; allow for a loaded machine

CTRL_POWER_OFF = 0
CTRL_POWER_ON = 1
CTRL_RESET = 2
CTRL_GET_ATR = 4

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class ReaderOccupied(ConnectionError):
    """The vpcd reader did not take the card (it holds another one, or nobody polls it)."""


class VirtualCardSlot:
    """Insert a virtual card into a vpcd reader (connect) and pull it out (disconnect)."""

    def __init__(self, card: PivCard, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> None:
        self.card = card
        self.port = port
        self.host = host
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.apdu_count = 0

    @property
    def inserted(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def insert(self, timeout: float = 5.0, answer_timeout: float = FIRST_MESSAGE_SECONDS) -> None:
        """Connect to vpcd (retrying until `timeout` while pcscd starts), then wait up to
        `answer_timeout` for the reader to talk to the card (`ReaderOccupied` if it does not)."""
        with self._lock:
            if self.inserted:
                return
            deadline = time.monotonic() + timeout
            while True:
                try:
                    sock = socket.create_connection((self.host, self.port), timeout=1.0)
                    break
                except OSError:
                    if time.monotonic() >= deadline:
                        raise ConnectionError(
                            f"vpcd is not listening on {self.host}:{self.port}"
                        ) from None
                    time.sleep(0.05)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.card.reset()
            try:
                sock.settimeout(answer_timeout)
                first = _recv_message(sock)
                sock.settimeout(None)
                if first is None:
                    raise ConnectionError(f"vpcd on {self.host}:{self.port} closed the connection")
                self._answer(sock, first)
            except TimeoutError:
                sock.close()
                raise ReaderOccupied(
                    f"the vpcd reader on {self.host}:{self.port} did not take the card within"
                    f" {answer_timeout:g} s: it already holds a card (a vpcd reader serves one)"
                    " or its pcscd is not polling it"
                ) from None
            except BaseException:
                sock.close()
                raise
            self._sock = sock
            self._thread = threading.Thread(
                target=self._serve, args=(sock,), name=f"vpcd-{self.port}", daemon=True
            )
            self._thread.start()

    def remove(self) -> None:
        """Pull the card: close the socket; pcscd sees the card disappear."""
        with self._lock:
            sock, self._sock = self._sock, None
            thread, self._thread = self._thread, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                payload = _recv_message(sock)
                if payload is None:
                    return
                self._answer(sock, payload)
        except OSError:
            return  # the socket was closed by remove() or by vpcd going away

    def _answer(self, sock: socket.socket, payload: bytes) -> None:
        if len(payload) == 1:
            control = payload[0]
            if control == CTRL_GET_ATR:
                _send(sock, self.card.atr)
            elif control in (CTRL_POWER_OFF, CTRL_POWER_ON, CTRL_RESET):
                self.card.reset()
            return
        self.apdu_count += 1
        _send(sock, self.card.process(payload))

    def __enter__(self) -> Self:
        self.insert()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.remove()


def _recv_message(sock: socket.socket) -> bytes | None:
    header = _recv_exact(sock, 2)
    if header is None:
        return None
    return _recv_exact(sock, int.from_bytes(header, "big"))


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            return None
        if _QUICKACK is not None:  # vpcd writes length and payload separately: ack at once
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        buf.extend(chunk)
    return bytes(buf)


def _send(sock: socket.socket, data: bytes) -> None:
    sock.sendall(len(data).to_bytes(2, "big") + data)


def open_slot(path: Path, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> VirtualCardSlot:
    return VirtualCardSlot(load_card(path), port, host)
