"""Requests an attacker sends before anyone checks who they are: oversized and undecodable
messages, connections that never send a request. Used by the tests and ``bench limits``."""

from __future__ import annotations

import socket
import ssl
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from authd.client import identity_channel

WHO_AM_I = "/authd.v1.SystemService/WhoAmI"
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
H2_GOAWAY = 7


def padded_message(size: int) -> bytes:
    """A valid protobuf message of about ``size`` bytes: an unknown field (15) of padding, so
    it parses as any request type."""
    body = size - 8
    length = bytearray()
    n = body
    while True:
        length.append((n & 0x7F) | (0x80 if n >> 7 else 0))
        n >>= 7
        if not n:
            break
    return bytes([15 << 3 | 2]) + bytes(length) + b"\0" * body


def memory_mib(pid: int) -> tuple[float, float]:
    """(peak resident set VmHWM, resident set VmRSS) of process ``pid``, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            fields[name] = int(value.split()[0]) / 1024
    return fields["VmHWM"], fields["VmRSS"]


def flood(address: str, pki: Path, calls: int, size: int, channels: int = 1,
          identity: str = "bank-a-backend", timeout: float = 120.0) -> Counter[str]:
    """``calls`` concurrent ``WhoAmI`` calls of ``size`` bytes each over ``channels`` mTLS
    connections with a valid client certificate; how they were answered, by status."""
    message = padded_message(size)
    chans = [identity_channel(address, pki, identity) for _ in range(channels)]
    try:
        methods = [ch.unary_unary(WHO_AM_I) for ch in chans]
        for ch in chans:
            grpc.channel_ready_future(ch).result(timeout=30)

        def one(i: int) -> str:
            try:
                methods[i % channels](message, timeout=timeout)
                return "OK"
            except grpc.RpcError as err:
                return str(err.code().name)

        with ThreadPoolExecutor(max_workers=calls) as pool:
            return Counter(pool.map(one, range(calls)))
    finally:
        for ch in chans:
            ch.close()


def _wait_closed(sock: socket.socket | ssl.SSLSocket, timeout: float) -> tuple[float, bytes]:
    """Read until the server closes the connection: (seconds it took, what it sent)."""
    started = time.monotonic()
    sock.settimeout(timeout)
    received = bytearray()
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ConnectionResetError, ssl.SSLError):
        pass
    except TimeoutError:
        return float("inf"), bytes(received)
    return time.monotonic() - started, bytes(received)


def silent_tcp(host: str, port: int, timeout: float) -> float:
    """Open a TCP connection and send nothing: seconds until the server closed it."""
    with socket.create_connection((host, port), timeout=10) as sock:
        return _wait_closed(sock, timeout)[0]


def _tls(host: str, port: int, pki: Path, identity: str) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    context.load_cert_chain(pki / f"{identity}.pem", pki / f"{identity}.key")
    context.set_alpn_protocols(["h2"])
    raw = socket.create_connection((host, port), timeout=10)
    return context.wrap_socket(raw, server_hostname="localhost")


def silent_tls(host: str, port: int, pki: Path, timeout: float,
               identity: str = "bank-a-backend") -> float:
    """Finish the TLS handshake with a valid client certificate, then send nothing: seconds
    until the server closed the connection."""
    with _tls(host, port, pki, identity) as sock:
        return _wait_closed(sock, timeout)[0]


def idle_http2(host: str, port: int, pki: Path, timeout: float,
               identity: str = "bank-a-backend") -> tuple[float, bool]:
    """Open an HTTP/2 connection (TLS, preface, settings) and start no call: seconds until the
    server closed it, and whether it said GOAWAY first."""
    with _tls(host, port, pki, identity) as sock:
        sock.sendall(H2_PREFACE + H2_EMPTY_SETTINGS)
        took, received = _wait_closed(sock, timeout)
    frames, offset = [], 0
    while offset + 9 <= len(received):
        length = int.from_bytes(received[offset:offset + 3], "big")
        frames.append(received[offset + 3])
        offset += 9 + length
    return took, H2_GOAWAY in frames
