"""The CA connector: what authd, as the bank's registration authority, asks of a CA.

The operations follow a licensed CA's services (CA art. 5) and the shape of its enrollment
protocol: the RA registers an applicant whose identity it checked and gets a reference number
and an authorization code; the applicant's key then enrolls with them (CMP's ir/cr, RFC 4210,
protected by a MAC from the code), renews with the old certificate (kur), and the RA asks for
revocation, suspension and restoration (rr). ``RaHttpConnector`` speaks the CA simulator's
JSON form of these; a connector for a licensed CA implements the same interface over CMP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol, TypeVar

from cryptography import x509

from devices.errors import Unreachable, WrongState
from drivers.certificate import HttpFailure, RaClient
from drivers.certificate.ra import RaRefused

T = TypeVar("T")


@dataclass(frozen=True)
class Application:
    reference: str
    code: str  # the authorization code: a secret, sealed in the store


class CaConnector(Protocol):
    def register(self, subscriber: dict[str, str], certificate_type: str) -> Application: ...
    def cancel(self, reference: str) -> None: ...
    def enroll(self, application: Application, csr_der: bytes) -> bytes: ...
    def renew(self, serial: int, csr_der: bytes) -> bytes: ...
    def revoke(self, serial: int, reason: x509.ReasonFlags) -> None: ...
    def suspend(self, serial: int) -> None: ...
    def restore(self, serial: int) -> None: ...
    def update_subscriber(self, serial: int, changes: dict[str, str]) -> None: ...


class NoCa:
    """No CA configured: every call says so."""

    def _none(self, *args: object) -> None:
        raise Unreachable("no CA is configured ([certificate] ca_url)", reason="NO_CA")

    register = cancel = enroll = renew = revoke = suspend = restore = update_subscriber = _none  # type: ignore[assignment]


@contextmanager
def _ca_errors() -> Iterator[None]:
    try:
        yield
    except RaRefused as exc:
        raise WrongState(f"the CA refused: {exc}", reason=f"CA_{exc.code}") from None
    except HttpFailure as exc:
        raise Unreachable(f"the CA is unreachable: {exc}", reason="CA_UNREACHABLE") from None


class RaHttpConnector:
    def __init__(self, url: str, timeout: float) -> None:
        self.client = RaClient(url, timeout)

    def _call(self, fn: Callable[[], T]) -> T:
        with _ca_errors():
            return fn()

    def register(self, subscriber: dict[str, str], certificate_type: str) -> Application:
        ref, code = self._call(lambda: self.client.register(subscriber, certificate_type))
        return Application(ref, code)

    def cancel(self, reference: str) -> None:
        self._call(lambda: self.client.cancel(reference))

    def enroll(self, application: Application, csr_der: bytes) -> bytes:
        return self._call(lambda: self.client.enroll(application.reference, application.code,
                                                     csr_der))

    def renew(self, serial: int, csr_der: bytes) -> bytes:
        return self._call(lambda: self.client.renew(serial, csr_der))

    def revoke(self, serial: int, reason: x509.ReasonFlags) -> None:
        self._call(lambda: self.client.revoke(serial, reason.value))

    def suspend(self, serial: int) -> None:
        self._call(lambda: self.client.suspend(serial))

    def restore(self, serial: int) -> None:
        self._call(lambda: self.client.restore(serial))

    def update_subscriber(self, serial: int, changes: dict[str, str]) -> None:
        self._call(lambda: self.client.update_subscriber(serial, changes))
