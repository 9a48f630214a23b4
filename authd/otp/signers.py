"""The manufacturers' PSKC signing certificates (``[[otp.pskc_signers]]``, RFC 6030 §7) judged
before a signed seed file counts, and at start.

A signature verifies against the certificate configured for its manufacturer; that certificate
then counts only inside its validity period (``PSKC_SIGNER_EXPIRED``,
``PSKC_SIGNER_NOT_YET_VALID``), chaining to ``[otp] pskc_signer_ca_certificates`` when that is
set (``PSKC_SIGNER_UNTRUSTED``), and with ``pskc_signer_revocation`` not revoked at its CA by
OCSP or CRL: the relying party's checker of the certificate area (authd/certificate/reliance.py)
with its chain, OCSP, CRL and cache, asked of the manufacturers' CAs alone, its answers kept
``[otp] pskc_signer_revocation_max_age`` seconds at most (0: asked at every import). Every
refusal is made before anything of the file is decrypted or written."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from prometheus_client import Gauge

from authd.certificate.reliance import RevocationChecker, utc_now
from authd.certificate.settings import CertificateSettings
from authd.metrics import REGISTRY
from devices.certificate import reliance as rules
from devices.certificate.chain import ChainError, build_chain
from devices.certificate.reliance import Verdict
from devices.errors import Unreachable, WrongState

log = logging.getLogger(__name__)

NOT_AFTER = Gauge("authd_otp_pskc_signer_not_after_seconds",
                  "when each configured PSKC signer certificate expires (Unix time): alert "
                  "before it passes, after which that manufacturer's files are refused",
                  ("manufacturer",), registry=REGISTRY)

_REASONS = {Verdict.NOT_YET_VALID: "PSKC_SIGNER_NOT_YET_VALID",
            Verdict.EXPIRED: "PSKC_SIGNER_EXPIRED",
            Verdict.UNTRUSTED: "PSKC_SIGNER_UNTRUSTED",
            Verdict.REVOKED: "PSKC_SIGNER_REVOKED",
            Verdict.SUSPENDED: "PSKC_SIGNER_REVOKED",
            Verdict.UNKNOWN: "PSKC_SIGNER_STATUS_UNKNOWN",
            Verdict.STATUS_UNAVAILABLE: "PSKC_SIGNER_STATUS_UNAVAILABLE"}


def _utc(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def load_ca_bundle(path: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(Path(path).read_bytes()) if path else []


class SignerTrust:
    """Whether the certificate of a manufacturer of ``[[otp.pskc_signers]]`` counts now."""

    def __init__(self, certificates: Mapping[str, str], anchors: Sequence[x509.Certificate],
                 checker: RevocationChecker | None = None,
                 clock: Callable[[], dt.datetime] = utc_now) -> None:
        self.certificates = {m: x509.load_pem_x509_certificate(pem.encode())
                             for m, pem in certificates.items()}
        self.anchors = list(anchors)
        self.checker = checker
        self.clock = clock

    @classmethod
    def configured(cls, certificates: Mapping[str, str], ca_file: str, revocation: bool,
                   relying: CertificateSettings, max_age: float = 0.0) -> SignerTrust:
        anchors = load_ca_bundle(ca_file)
        checker = None
        if revocation:
            # The certificate area's checker, asked only where the signer certificate points
            # (never the bank's own responder), refusing when no responder answers, and
            # keeping an answer (OCSP or CRL) ``max_age`` seconds at most, not the
            # certificate area's cache_max_seconds: imports are rare, a revoked signer
            # must not count for the next one.
            settings = dataclasses.replace(relying, ocsp_url="", crl_url="",
                                           responder_down="closed", cache_max_seconds=max_age)
            checker = RevocationChecker(settings, anchors)
        return cls(certificates, anchors, checker)

    def vouch(self, manufacturer: str) -> None:
        """Refuse (raise) when the certificate that verified a file of ``manufacturer`` does
        not count now; the message says why and what to do."""
        cert = self.certificates[manufacturer]
        now = self.clock()
        refused = rules.period(cert, now)
        if refused is None and self.checker is not None:
            reliance = self.checker.check(cert.public_bytes(Encoding.DER))
            refused = None if reliance.allowed else reliance
        elif refused is None and self.anchors:
            try:
                build_chain(cert, self.anchors, [], now)
            except ChainError as exc:
                refused = rules.Reliance(Verdict.UNTRUSTED, False, str(exc))
        if refused is None:
            return
        verdict = refused.verdict
        what = f"the signing certificate configured for manufacturer {manufacturer!r}"
        if verdict is Verdict.EXPIRED:
            why = f"{what} expired at {_utc(cert.not_valid_after_utc)}"
        elif verdict is Verdict.NOT_YET_VALID:
            why = f"{what} is valid only from {_utc(cert.not_valid_before_utc)}"
        elif verdict is Verdict.UNTRUSTED:
            why = (f"{what} does not chain to the CA certificates of [otp] "
                   f"pskc_signer_ca_certificates ({refused.message})")
        elif verdict in (Verdict.REVOKED, Verdict.SUSPENDED):
            why = f"{what} is {verdict.value} at its CA"
        else:
            why = f"the revocation status of {what} is not known ({refused.message})"
        message = (f"{why}: its files are not imported; configure the manufacturer's current "
                   "certificate in [[otp.pskc_signers]] and ask for files signed with it; "
                   "nothing was imported")
        error = Unreachable if verdict is Verdict.STATUS_UNAVAILABLE else WrongState
        raise error(message, reason=_REASONS[verdict], metadata={"manufacturer": manufacturer})

    def warnings(self, days: float) -> list[str]:
        """What to tell the operator at start: certificates that expired, are not valid yet,
        expire within ``days`` or do not chain to the configured CA certificates."""
        now = self.clock()
        out = []
        for manufacturer, cert in sorted(self.certificates.items()):
            NOT_AFTER.labels(manufacturer=manufacturer).set(cert.not_valid_after_utc.timestamp())
            what = f"the PSKC signing certificate of manufacturer {manufacturer!r}"
            left = cert.not_valid_after_utc - now
            if left < dt.timedelta(0):
                out.append(f"{what} expired at {_utc(cert.not_valid_after_utc)}: its signed "
                           "files are refused (PSKC_SIGNER_EXPIRED); configure its current one")
            elif now < cert.not_valid_before_utc:
                out.append(f"{what} is valid only from {_utc(cert.not_valid_before_utc)}: its "
                           "signed files are refused until then")
            elif days and left <= dt.timedelta(days=days):
                out.append(f"{what} expires at {_utc(cert.not_valid_after_utc)}, in "
                           f"{left.days} day(s): ask the manufacturer for its next certificate "
                           "and configure it before then")
            if self.anchors:
                try:
                    build_chain(cert, self.anchors, [], now)
                except ChainError as exc:
                    out.append(f"{what} does not chain to [otp] pskc_signer_ca_certificates "
                               f"({exc}): its signed files are refused (PSKC_SIGNER_UNTRUSTED)")
        return out
