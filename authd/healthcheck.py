"""``authd health``: ask a running node's gRPC health service, for probes and supervisors.

Exit status 0 when the service (default: the whole node, ``""``) is SERVING, 1 when it is
not or cannot be reached (the reason on stderr). With mTLS the probe presents a client
certificate of its own (e.g. O = the operator, OU = admin, CN = monitor); the health service
needs no role, only a certificate the node's client CA signed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authd.client import tls_channel


def probe(address: str, *, service: str = "", insecure: bool = False, ca: str = "",
          cert: str = "", key: str = "", timeout: float = 5.0) -> tuple[bool, str]:
    """(serving, what was seen)."""
    if insecure:
        channel = grpc.insecure_channel(address)
    else:
        if not (ca and cert and key):
            return False, "--ca, --cert and --key are needed for an mTLS node"
        try:
            channel = tls_channel(address, Path(ca), Path(cert), Path(key))
        except OSError as exc:
            return False, f"cannot read the probe's certificate: {exc.strerror}"
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    except grpc.RpcError as err:
        return False, f"{err.code().name}: {err.details()}"  # type: ignore[attr-defined]
    finally:
        channel.close()
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    return answer.status == health_pb2.HealthCheckResponse.SERVING, name


def main(address: str, *, service: str, insecure: bool, ca: str, cert: str, key: str,
         timeout: float) -> int:
    ok, seen = probe(address, service=service, insecure=insecure, ca=ca, cert=cert, key=key,
                     timeout=timeout)
    print(f"{service or 'authd'}: {seen}", file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1
