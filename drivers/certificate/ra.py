"""The registration-authority protocol of the CA simulator (JSON over HTTP; see
``simulators/certificate/server.py`` for the messages). A licensed Korean CA speaks CMP
(RFC 4210) for enrollment instead; its connector implements the same operations."""

from __future__ import annotations

import base64
import json
from typing import Any

from drivers.certificate.http import HttpFailure, HttpRefused, request

MAX_ANSWER = 256 * 1024


class RaRefused(HttpFailure):
    """The CA refused by its rules: ``code`` (stable) and the CA's message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class RaClient:
    def __init__(self, base_url: str, timeout: float) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = timeout

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            data = request(self.base + path, json.dumps(body).encode(), "application/json",
                           "application/json", self.timeout, MAX_ANSWER)
        except HttpRefused as exc:
            try:
                answer = json.loads(exc.body)
                code, message = str(answer["code"]), str(answer["message"])
            except (ValueError, KeyError, TypeError):
                raise exc from None
            raise RaRefused(code, message) from None
        try:
            value = json.loads(data)
        except ValueError:
            raise HttpFailure("the CA answered something that is not JSON") from None
        if not isinstance(value, dict):
            raise HttpFailure("the CA answered something that is not a JSON object")
        return value

    def register(self, subscriber: dict[str, str], certificate_type: str) -> tuple[str, str]:
        answer = self._post("/ra/applications", {"subscriber": subscriber,
                                                 "certificate_type": certificate_type})
        return str(answer["reference"]), str(answer["code"])

    def cancel(self, reference: str) -> None:
        self._post(f"/ra/applications/{reference}/cancel", {})

    def enroll(self, reference: str, code: str, csr_der: bytes) -> bytes:
        answer = self._post("/enroll", {"reference": reference, "code": code,
                                        "csr": base64.b64encode(csr_der).decode()})
        return base64.b64decode(answer["certificate"])

    def renew(self, serial: int, csr_der: bytes) -> bytes:
        answer = self._post(f"/certificates/{serial:x}/renew",
                            {"csr": base64.b64encode(csr_der).decode()})
        return base64.b64decode(answer["certificate"])

    def revoke(self, serial: int, reason: str) -> None:
        self._post(f"/certificates/{serial:x}/revoke", {"reason": reason})

    def suspend(self, serial: int) -> None:
        self._post(f"/certificates/{serial:x}/suspend", {})

    def restore(self, serial: int) -> None:
        self._post(f"/certificates/{serial:x}/restore", {})

    def update_subscriber(self, serial: int, changes: dict[str, str]) -> None:
        self._post(f"/certificates/{serial:x}/subscriber", {"changes": changes})
