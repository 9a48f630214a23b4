"""The CA simulator on HTTP: the RA protocol (JSON) authd's CA connector speaks, the CRL, and
the CA certificate. OCSP is answered by ``openssl ocsp`` on its own port (ocsp.py).

    POST /ra/applications            {"subscriber": {...}, "certificate_type": "banking"}
                                     -> {"reference", "code", "created_at"}
    POST /ra/applications/REF/cancel -> {}
    POST /enroll                     {"reference", "code", "csr": base64 DER}
                                     -> {"certificate": base64 DER}
    POST /certificates/SERIAL/renew  {"csr"} -> {"certificate"}
    POST /certificates/SERIAL/revoke {"reason": "keyCompromise"} -> {"status"}
    POST /certificates/SERIAL/suspend | /restore -> {"status"}
    POST /certificates/SERIAL/subscriber {"changes": {...}} -> {"status"}
    GET  /crl.der  GET /ca.der

SERIAL is hexadecimal. A refusal by the CA's rules is 409 {"code", "message"}.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from simulators.certificate.authority import CaRefusal, CertificateAuthority

DER = serialization.Encoding.DER
MAX_BODY = 64 * 1024
REASONS = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "privilegeWithdrawn": x509.ReasonFlags.privilege_withdrawn,
}


class _BadRequest(Exception):
    pass


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError:
        raise _BadRequest("not base64") from None


class CaServer:
    """``with CaServer(ca) as srv: srv.url``; the handler threads share the CA's lock."""

    def __init__(self, ca: CertificateAuthority, host: str = "127.0.0.1", port: int = 0) -> None:
        self.ca = ca
        handler = self._handler()
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def crl_url(self) -> str:
        return f"{self.url}/crl.der"

    def start(self) -> CaServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="ca-simulator",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> CaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        ca = self.ca

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: tests read answers, not access logs."""

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, value: dict[str, Any]) -> None:
                self._send(status, json.dumps(value).encode(), "application/json")

            def do_GET(self) -> None:
                if self.path == "/crl.der":
                    self._send(200, ca.crl().public_bytes(DER), "application/pkix-crl")
                elif self.path == "/ca.der":
                    self._send(200, ca.certificate.public_bytes(DER), "application/pkix-cert")
                else:
                    self._json(404, {"code": "NOT_FOUND", "message": "no such resource"})

            def do_POST(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length", "0"))
                    if not 0 <= length <= MAX_BODY:
                        raise _BadRequest("body too large")
                    body = json.loads(self.rfile.read(length) or b"{}")
                    if not isinstance(body, dict):
                        raise _BadRequest("the body must be a JSON object")
                    self._json(200, self._route(body))
                except CaRefusal as exc:
                    self._json(409, {"code": exc.code, "message": str(exc)})
                except (_BadRequest, ValueError, KeyError) as exc:
                    self._json(400, {"code": "BAD_REQUEST", "message": str(exc)})

            def _route(self, body: dict[str, Any]) -> dict[str, Any]:
                parts = [p for p in self.path.split("/") if p]
                if parts == ["ra", "applications"]:
                    subscriber = {str(k): str(v) for k, v in dict(body["subscriber"]).items()}
                    app = ca.register(subscriber, str(body["certificate_type"]))
                    return {"reference": app.reference, "code": app.code,
                            "created_at": app.created_at.isoformat()}
                if len(parts) == 4 and parts[:2] == ["ra", "applications"] \
                        and parts[3] == "cancel":
                    ca.cancel_application(parts[2])
                    return {}
                if parts == ["enroll"]:
                    cert = ca.enroll(str(body["reference"]), str(body["code"]),
                                     _unb64(body["csr"]))
                    return {"certificate": _b64(cert.public_bytes(DER))}
                if len(parts) == 3 and parts[0] == "certificates":
                    serial = int(parts[1], 16)
                    action = parts[2]
                    if action == "renew":
                        cert = ca.renew(serial, _unb64(body["csr"]))
                        return {"certificate": _b64(cert.public_bytes(DER))}
                    if action == "revoke":
                        reason = REASONS.get(str(body.get("reason", "unspecified")))
                        if reason is None:
                            raise _BadRequest("unknown revocation reason")
                        return {"status": ca.revoke(serial, reason).status}
                    if action == "suspend":
                        return {"status": ca.suspend(serial).status}
                    if action == "restore":
                        return {"status": ca.restore(serial).status}
                    if action == "subscriber":
                        changes = {str(k): str(v) for k, v in dict(body["changes"]).items()}
                        return {"status": ca.update_subscriber(serial, changes).status}
                raise _BadRequest(f"no such operation {self.path}")

        return Handler
