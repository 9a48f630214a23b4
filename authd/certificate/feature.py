"""The certificate feature: the lifecycle at the bank (issuance requests, issuing onto tokens,
smartcards and disks, renewal, reissue, cancellation, revocation), the checks before a
certificate counts, and ``authd.v1.CertificateService``.

Built after the token and smartcard features: it installs its check into their signing paths
(``authd/signing.py``), so a revoked, suspended or expired certificate blocks the signature.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from prometheus_client import Gauge

from authd.app import App
from authd.certificate.additional import AdditionalAuthentication, BranchNumbers
from authd.certificate.ca import CaConnector, NoCa, RaHttpConnector
from authd.certificate.reliance import RevocationChecker, enforce, utc_now
from authd.certificate.service import CertificateService
from authd.certificate.settings import CertificateSettings
from authd.features import CENTER, Feature, Service
from authd.metrics import REGISTRY
from authd.v1 import certificate_pb2, certificate_pb2_grpc
from devices.errors import BadRequest, WrongState

log = logging.getLogger(__name__)
SERVICE_NAME = certificate_pb2.DESCRIPTOR.services_by_name["CertificateService"].full_name
EXPIRING = Gauge("authd_certificates_expiring",
                  "certificates whose renewal window is open (expiring within it), by "
                  "institution (CA art. 16)", ("institution",), registry=REGISTRY)


def load_anchors(path: str) -> list[x509.Certificate]:
    if not path:
        return []
    try:
        return x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise BadRequest(f"[certificate] ca_certificates {path}: not a readable PEM file of "
                         f"certificates ({exc})") from None


class Guard:
    """The check the token and smartcard signing paths run (authd.signing.SignatureGuard)."""

    def __init__(self, settings: CertificateSettings, checker: RevocationChecker) -> None:
        self.settings, self.checker = settings, checker

    def check(self, certificate_der: bytes | None, *, medium: str, device: str) -> None:
        if not self.settings.check_before_sign:
            return
        if certificate_der is None:
            if self.settings.unbound_keys == "refuse":
                raise WrongState(f"the key on {medium} {device} has no certificate next to it; "
                                 "signing is refused", reason="CERTIFICATE_MISSING")
            return
        enforce(self.checker.check(certificate_der))

    def fresh(self, certificate_der: bytes) -> bool:
        return not self.settings.check_before_sign or self.checker.fresh(certificate_der)


class CertificateFeature(Feature[CertificateSettings]):
    name = "certificate"

    def __init__(self, app: App, settings: CertificateSettings) -> None:
        super().__init__(app, settings)
        self._clock: Callable[[], dt.datetime] = utc_now
        self.housekeeping_rounds = 0  # refresh() rounds ended (each read the clock once)
        self.checker = RevocationChecker(settings, load_anchors(settings.ca_certificates),
                                         self.now)
        self.ca: CaConnector = (RaHttpConnector(settings.ca_url, settings.ca_timeout)
                                if settings.ca_url else NoCa())  # type: ignore[assignment]
        numbers = BranchNumbers(app, settings.one_time_number_digits,
                                settings.one_time_number_days, self.now)
        self.service = CertificateService(app, settings, self.ca, self.checker,
                                          AdditionalAuthentication(numbers), self.now)
        self.guard = Guard(settings, self.checker)
        self._task: asyncio.Task[None] | None = None
        if self.checker.anchors:
            self._install_guard()
        elif settings.check_before_sign:
            log.warning("no trusted CA certificates ([certificate] ca_certificates): token and "
                        "smartcard signatures are made without a certificate check")

    def now(self) -> dt.datetime:
        return self._clock()

    def set_clock(self, clock: Callable[[], dt.datetime]) -> None:
        """The time every rule of this feature reads (tests move it to the window's edges;
        a housekeeping round in progress keeps the time it read: tests set the clock once the
        first round ended, tests/certificate_env.py ``use_clock``)."""
        self._clock = clock

    def _install_guard(self) -> None:
        from authd.smartcard.feature import SmartcardFeature
        from authd.token.feature import TokenFeature

        tokens = self.app.feature(TokenFeature)
        if tokens is not None:
            tokens.service.guard = self.guard
        cards = self.app.feature(SmartcardFeature)
        if cards is not None and cards.service is not None:
            cards.service.guard = self.guard

    def services(self) -> list[Service]:
        from authd.certificate.servicer import CertificateCenterServicer, CertificateServicer

        services = [Service(SERVICE_NAME,
                            certificate_pb2_grpc.add_CertificateServiceServicer_to_server,
                            CertificateServicer(self.app, self.service))]
        if CENTER in self.app.config.roles:
            services.append(Service.of(
                certificate_pb2.DESCRIPTOR, "CertificateCenterService",
                certificate_pb2_grpc.add_CertificateCenterServiceServicer_to_server,
                CertificateCenterServicer(self.app, self.service)))
        return services

    def refresh(self) -> None:
        """Expire stale issuance requests and recount the expiring certificates."""
        self.service.expire_requests()
        counts = self.service.expiring_counts()
        EXPIRING.clear()
        for institution, count in counts.items():
            EXPIRING.labels(institution=institution).set(count)

    async def start(self) -> None:
        self.service.loop = asyncio.get_running_loop()
        if isinstance(self.ca, NoCa):  # the relying checks still serve; issuance says why
            log.warning("no CA is configured ([certificate] ca_url): certificates cannot be "
                        "issued on this node")

        async def loop() -> None:
            while True:
                try:
                    await self.app.run_blocking(self.refresh)
                except Exception:
                    log.exception("certificate housekeeping failed")
                self.housekeeping_rounds += 1
                await asyncio.sleep(self.settings.expiry_refresh_seconds)

        self._task = asyncio.get_running_loop().create_task(loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


FEATURE = CertificateFeature
