"""Signatures per second on a SoftHSM2 token with the certificate check before each signature
(validity, chain, OCSP status cached until the responder's nextUpdate) against without it.

Two paths: *service*, TokenService.sign called in the daemon's process (the check's share is
largest there: no gRPC around it), and *gRPC unary*, one ``Sign`` call per signature from a
Python client. The certificate comes from the CA simulator; its status from ``openssl ocsp``
(asked once, then cached). The machine's 1-minute load is printed beside each figure.

    python -m bench certificate [--seconds S] [--repeat R]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import load1, median_and_spread, table

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "246810"


def _rate(fn: Any, seconds: float) -> float:
    fn()  # warm: the first check asks the responder, later ones are cached
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(20):
            fn()
        count += 20
    return count / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from cryptography.hazmat.primitives import serialization

    from authd import config as configmod
    from authd.certificate.feature import CertificateFeature
    from authd.client import dev_channel
    from authd.context import Caller, Role
    from authd.server import BackgroundServer
    from authd.token.feature import TokenFeature
    from authd.v1 import token_pb2 as pb
    from authd.v1 import token_pb2_grpc
    from simulators.certificate.authority import CertificateAuthority
    from simulators.certificate.ocsp import free_port, start_responder
    from simulators.certificate.server import CaServer
    from simulators.token.softhsm import SoftHsmEnvironment

    root = Path(tempfile.mkdtemp(prefix="authd-bench-cert-"))
    env = SoftHsmEnvironment(root / "softhsm")
    env.activate()
    token = env.init_token("bench-cert", PIN)
    port = free_port()
    ca = CertificateAuthority(root / "ca", ocsp_url=f"http://127.0.0.1:{port}/")
    ca_http = CaServer(ca).start()
    ca.crl_url = ca_http.crl_url
    responder = start_responder(ca, port, next_update_minutes=60)
    srv: Any = None
    try:
        cfg = configmod.load(None, environ={}, overrides={
            "data_dir": str(root / "authd"),
            "server": {"listen": "127.0.0.1:0", "insecure": True, "grace_seconds": 1.0},
            "kek": {"kind": "file"}, "token": {"modules": [MODULE]},
            "smartcard": {"enabled": False},
            "certificate": {"ca_url": ca_http.url, "ca_certificates": str(ca.ca_pem)}})
        srv = BackgroundServer(cfg)
        stub = token_pb2_grpc.TokenServiceStub(dev_channel(f"127.0.0.1:{srv.port}", "bank-a",
                                                           "branch", "bench"))
        session = stub.Login(pb.TokenLoginRequest(token_serial=token.serial, pin=PIN)).session
        key = stub.GenerateKeyPair(pb.TokenGenerateKeyPairRequest(
            session=session, spec=pb.TOKEN_KEY_SPEC_EC_P256, label="bench"))
        csr = stub.CreateCsr(pb.TokenCreateCsrRequest(session=session, key_id=key.key_id,
                                                      subject="CN=bench"))
        application = ca.register({"name": "bench", "ra": "bank-a"}, "banking")
        cert = ca.enroll(application.reference, application.code, csr.csr_der)
        stub.ImportCertificate(pb.TokenImportCertificateRequest(
            session=session, certificate=cert.public_bytes(serialization.Encoding.DER)))
        tokens = srv.app.feature(TokenFeature).service
        guard = srv.app.feature(CertificateFeature).guard
        caller = Caller("bank-a", Role.BRANCH, "bench")
        data = b"login challenge for the benchmark"

        def direct() -> None:
            tokens.sign(caller, session, bytes(key.key_id), data=data, digest=None,
                        algorithm=None, token_hashes=False)

        def unary() -> None:
            stub.Sign(pb.TokenSignRequest(session=session, key_id=key.key_id, data=data))

        rows = []
        for path, fn in (("service", direct), ("gRPC unary", unary)):
            figures = {}
            for label, installed in (("off", None), ("on (cached)", guard)):
                tokens.guard = installed
                runs, loads = [], []
                for _ in range(args.repeat):
                    runs.append(_rate(fn, args.seconds))
                    loads.append(load1())
                rate, spread = median_and_spread(runs)
                figures[label] = rate
                rows.append([path, label, rate, spread, f"{max(loads):.2f}"])
            rows[-1].append(f"{figures['on (cached)'] / figures['off']:.2f}")
            rows[-2].append("1.00")
        print(table(["path", "certificate check", "signs/s", "spread", "load1", "on / off"],
                    rows))
    finally:
        if srv is not None:
            srv.stop()
        responder.stop()
        ca_http.stop()


if __name__ == "__main__":
    main()
