"""``python -m simulators.certificate --dir DIR``: the CA simulator as a process of its own
(the demo's): the RA protocol and CRL on HTTP, ``openssl ocsp`` on the next port. Prints one
JSON line with the URLs and the CA certificate's path, then serves until SIGTERM."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from simulators.certificate.authority import CertificateAuthority
from simulators.certificate.ocsp import free_port, start_responder
from simulators.certificate.server import CaServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.certificate")
    parser.add_argument("--dir", required=True, help="where the CA keeps its files")
    parser.add_argument("--name", default="authd demo CA")
    parser.add_argument("--ocsp-minutes", type=int, default=60, help="OCSP nextUpdate ahead")
    args = parser.parse_args(argv)
    ocsp_port = free_port()
    # the CRL URL names the HTTP server's port, known once it listens: bind it first
    ca = CertificateAuthority(Path(args.dir), name=args.name,
                              ocsp_url=f"http://127.0.0.1:{ocsp_port}/")
    server = CaServer(ca)
    ca.crl_url = server.crl_url
    responder = start_responder(ca, ocsp_port, next_update_minutes=args.ocsp_minutes)
    server.start()
    print(json.dumps({"ca_url": server.url, "ocsp_url": responder.url, "crl_url": server.crl_url,
                      "ca_certificate": str(ca.ca_pem)}), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    server.stop()
    responder.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
