"""A certificate authority that keeps a licensed CA's rules (CA terms), for tests and the demo.

- Applications: the RA (the bank) registers an applicant and gets a reference number and an
  authorization code (참조번호 / 인가코드), which the applicant's software uses to enroll; an
  application not enrolled within 7 days is cancelled (CA art. 6(3)).
- Serials are unique and increasing; certificates are valid one year, until 23:59:59 Korean
  time on the expiry day (DOMAIN §6); renewal only inside the window of 60 days before expiry
  until that second, after that only a new application (reissue).
- Revocation with the RFC 5280 reasons, suspension (certificateHold) and restoration; the
  status is published in an OpenSSL CA index (``index.txt``, which ``openssl ocsp`` serves, see
  :mod:`simulators.certificate.ocsp`) and in a CRL.

The subject comes from the registration, not from the request: the CA certifies the identity
the RA checked, and takes only the public key (and the proof of its possession) from the CSR.
"""

from __future__ import annotations

import datetime as dt
import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devices.certificate.validity import RenewalState, renewal_state, validity_period

APPLICATION_DAYS = 7
CRL_HOURS = 24
CA_YEARS = 10
Clock = Callable[[], dt.datetime]


class CaRefusal(Exception):
    """The CA refuses (its rules); ``code`` is stable, the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Application:
    reference: str
    code: str
    subscriber: dict[str, str]
    certificate_type: str
    created_at: dt.datetime
    state: str = "open"  # open, enrolled, cancelled
    serial: int = 0


@dataclass
class Issued:
    serial: int
    certificate: x509.Certificate
    subscriber: dict[str, str]
    certificate_type: str
    status: str = "valid"  # valid, revoked, suspended
    revoked_at: dt.datetime | None = None
    reason: x509.ReasonFlags | None = None
    history: list[str] = field(default_factory=list)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _openssl_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%y%m%d%H%M%SZ")


_REASON_NAMES = {
    x509.ReasonFlags.unspecified: "unspecified",
    x509.ReasonFlags.key_compromise: "keyCompromise",
    x509.ReasonFlags.ca_compromise: "CACompromise",
    x509.ReasonFlags.affiliation_changed: "affiliationChanged",
    x509.ReasonFlags.superseded: "superseded",
    x509.ReasonFlags.cessation_of_operation: "cessationOfOperation",
    x509.ReasonFlags.certificate_hold: "certificateHold",
    x509.ReasonFlags.privilege_withdrawn: "privilegeWithdrawn",
}


def _oneline(name: x509.Name) -> str:
    """A name as OpenSSL's index writes it: ``/C=KR/O=.../CN=...``."""
    parts = []
    for rdn in name.rdns:
        for attr in rdn:
            short = attr.rfc4514_attribute_name
            parts.append(f"/{short}={attr.value!s}")
    return "".join(parts)


class CertificateAuthority:
    """One CA under ``root`` (its key, certificate, OCSP signer, index and CRL files)."""

    def __init__(self, root: Path, *, name: str = "authd test CA", clock: Clock = _utc_now,
                 ocsp_url: str = "", crl_url: str = "", renewal_window_days: int = 60,
                 application_days: int = APPLICATION_DAYS) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.ocsp_url, self.crl_url = ocsp_url, crl_url
        self.window_days = renewal_window_days
        self.application_days = application_days
        self._lock = threading.RLock()
        self._serial = int.from_bytes(os.urandom(6), "big") << 16
        self.applications: dict[str, Application] = {}
        self.issued: dict[int, Issued] = {}
        self._index_mtime = 0
        # called after every new index (the OCSP responder reloads it)
        self.index_listeners: list[Callable[[], None]] = []
        now = clock()
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "KR"),
                               x509.NameAttribute(NameOID.ORGANIZATION_NAME, "authd"),
                               x509.NameAttribute(NameOID.COMMON_NAME, name)])
        ski = x509.SubjectKeyIdentifier.from_public_key(self.key.public_key())
        self.certificate = (
            x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365 * CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False,
                                         False), critical=True)
            .add_extension(ski, critical=False)
            .sign(self.key, hashes.SHA256()))
        self.ocsp_key = ec.generate_private_key(ec.SECP256R1())
        self.ocsp_certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "KR"),
                                     x509.NameAttribute(NameOID.COMMON_NAME,
                                                        f"{name} OCSP responder")]))
            .issuer_name(self.name).public_key(self.ocsp_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365 * CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]),
                           critical=False)
            .sign(self.key, hashes.SHA256()))
        self._write_files()

    # ------------------------------------------------------------------------- files
    @property
    def ca_pem(self) -> Path:
        return self.root / "ca.pem"

    @property
    def index_path(self) -> Path:
        return self.root / "index.txt"

    def _write_files(self) -> None:
        pem = serialization.Encoding.PEM
        self.ca_pem.write_bytes(self.certificate.public_bytes(pem))
        (self.root / "ocsp.pem").write_bytes(self.ocsp_certificate.public_bytes(pem))
        key_path = self.root / "ocsp.key"
        key_path.write_bytes(self.ocsp_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        key_path.chmod(0o600)
        (self.root / "index.txt.attr").write_text("unique_subject = no\n")
        self._write_index()

    def _write_index(self) -> None:
        lines = []
        for item in sorted(self.issued.values(), key=lambda i: i.serial):
            cert = item.certificate
            expiry = _openssl_time(cert.not_valid_after_utc)
            serial = format(item.serial, "X")
            serial = serial if len(serial) % 2 == 0 else "0" + serial
            if item.status == "valid":
                status, revoked = "V", ""
            else:
                assert item.revoked_at is not None and item.reason is not None
                status = "R"
                revoked = f"{_openssl_time(item.revoked_at)},{_REASON_NAMES[item.reason]}"
            lines.append(f"{status}\t{expiry}\t{revoked}\t{serial}\tunknown\t"
                         f"{_oneline(cert.subject)}\n")
        tmp = self.index_path.with_suffix(".tmp")
        tmp.write_text("".join(lines))
        # openssl ocsp reloads the index when its mtime (in whole seconds) changes: every
        # version gets a later second than the one before, however fast they come.
        self._index_mtime = max(int(time.time()), self._index_mtime + 1)
        os.utime(tmp, (self._index_mtime, self._index_mtime))
        os.replace(tmp, self.index_path)
        for listener in list(self.index_listeners):
            listener()

    # ------------------------------------------------------------------ applications
    def register(self, subscriber: dict[str, str], certificate_type: str) -> Application:
        """The RA registers an applicant whose identity it checked (CA art. 6(1)-(2))."""
        name = subscriber.get("name", "")
        if not name:
            raise CaRefusal("BAD_APPLICATION", "the applicant's name is required")
        with self._lock:
            app = Application(secrets.token_hex(8), f"{secrets.randbelow(10**12):012d}",
                              dict(subscriber), certificate_type, self.clock())
            self.applications[app.reference] = app
            return app

    def _application(self, reference: str, code: str) -> Application:
        app = self.applications.get(reference)
        if app is None or not hmac.compare_digest(app.code.encode(), code.encode()):
            raise CaRefusal("BAD_REFERENCE", "unknown reference number or wrong "
                                             "authorization code")
        if app.state != "open":
            raise CaRefusal("APPLICATION_CLOSED", f"the application is {app.state}")
        if self.clock() - app.created_at >= dt.timedelta(days=self.application_days):
            app.state = "cancelled"
            raise CaRefusal("APPLICATION_EXPIRED",
                            "the application was not completed within 7 days and is "
                            "cancelled (CA art. 6(3))")
        return app

    def cancel_application(self, reference: str) -> None:
        with self._lock:
            app = self.applications.get(reference)
            if app is None:
                raise CaRefusal("BAD_REFERENCE", "unknown reference number")
            if app.state == "open":
                app.state = "cancelled"

    def enroll(self, reference: str, code: str, csr_der: bytes) -> x509.Certificate:
        with self._lock:
            app = self._application(reference, code)
            cert = self._issue(csr_der, app.subscriber, app.certificate_type)
            app.state, app.serial = "enrolled", cert.serial_number
            return cert

    def _subject(self, subscriber: dict[str, str], certificate_type: str,
                 serial: int) -> x509.Name:
        cn = f"{subscriber['name']}(){serial:016d}"[:64]
        return x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "KR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "authd"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, subscriber.get("ra", "RA")),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, certificate_type),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ])

    def _issue(self, csr_der: bytes, subscriber: dict[str, str],
               certificate_type: str) -> x509.Certificate:
        try:
            csr = x509.load_der_x509_csr(csr_der)
        except ValueError:
            raise CaRefusal("BAD_CSR", "the request is not a PKCS#10 request") from None
        if not csr.is_signature_valid:
            raise CaRefusal("BAD_CSR", "the request's signature does not verify (no proof "
                                       "of possession of the key)")
        self._serial += 1 + secrets.randbelow(16)
        serial = self._serial
        not_before, not_after = validity_period(self.clock())
        builder = (
            x509.CertificateBuilder()
            .subject_name(self._subject(subscriber, certificate_type, serial))
            .issuer_name(self.name).public_key(csr.public_key()).serial_number(serial)
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False,
                                         False), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()),
                           critical=False))
        if self.ocsp_url:
            builder = builder.add_extension(x509.AuthorityInformationAccess([
                x509.AccessDescription(x509.oid.AuthorityInformationAccessOID.OCSP,
                                       x509.UniformResourceIdentifier(self.ocsp_url))]),
                critical=False)
        if self.crl_url:
            builder = builder.add_extension(x509.CRLDistributionPoints([
                x509.DistributionPoint([x509.UniformResourceIdentifier(self.crl_url)],
                                       None, None, None)]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        self.issued[serial] = Issued(serial, cert, dict(subscriber), certificate_type)
        self._write_index()
        return cert

    # ----------------------------------------------------------------- certificates
    def _get(self, serial: int) -> Issued:
        item = self.issued.get(serial)
        if item is None:
            raise CaRefusal("NO_SUCH_CERTIFICATE", f"no certificate with serial {serial:x}")
        return item

    def renew(self, serial: int, csr_der: bytes) -> x509.Certificate:
        """A new certificate for the same subscriber, inside the renewal window only; the old
        one is revoked as superseded."""
        with self._lock:
            old = self._get(serial)
            if old.status != "valid":
                raise CaRefusal("NOT_RENEWABLE", f"the certificate is {old.status}")
            cert = old.certificate
            state = renewal_state(cert.not_valid_before_utc, cert.not_valid_after_utc,
                                  self.clock(), self.window_days)
            if state is not RenewalState.RENEWABLE:
                raise CaRefusal("OUTSIDE_RENEWAL_WINDOW",
                                f"the certificate is {state.value}: renewal is possible only "
                                "from 60 days before expiry until 23:59:59 on the expiry day "
                                "(Korean time); after that, reissue")
            new = self._issue(csr_der, old.subscriber, old.certificate_type)
            self._revoke(old, x509.ReasonFlags.superseded)
            return new

    def _revoke(self, item: Issued, reason: x509.ReasonFlags) -> None:
        item.status = "suspended" if reason is x509.ReasonFlags.certificate_hold else "revoked"
        item.revoked_at = self.clock().replace(microsecond=0)
        item.reason = reason
        item.history.append(f"{item.status}:{_REASON_NAMES[reason]}")
        self._write_index()

    def revoke(self, serial: int, reason: x509.ReasonFlags) -> Issued:
        with self._lock:
            item = self._get(serial)
            if item.status == "revoked":
                raise CaRefusal("ALREADY_REVOKED", "the certificate is already revoked")
            self._revoke(item, reason)
            return item

    def suspend(self, serial: int) -> Issued:
        with self._lock:
            item = self._get(serial)
            if item.status != "valid":
                raise CaRefusal("NOT_SUSPENDABLE", f"the certificate is {item.status}")
            self._revoke(item, x509.ReasonFlags.certificate_hold)
            return item

    def restore(self, serial: int) -> Issued:
        with self._lock:
            item = self._get(serial)
            if item.status != "suspended":
                raise CaRefusal("NOT_SUSPENDED", f"the certificate is {item.status}")
            item.status, item.revoked_at, item.reason = "valid", None, None
            item.history.append("restored")
            self._write_index()
            return item

    def update_subscriber(self, serial: int, changes: dict[str, str]) -> Issued:
        """Contact data (phone, e-mail) change without a new certificate (CA art. 5(4))."""
        with self._lock:
            item = self._get(serial)
            if item.status == "revoked":
                raise CaRefusal("ALREADY_REVOKED", "the certificate is revoked")
            item.subscriber = {**item.subscriber, **changes}
            item.history.append("subscriber_updated")
            return item

    def crl(self, hours: int = CRL_HOURS) -> x509.CertificateRevocationList:
        with self._lock:
            now = self.clock().replace(microsecond=0)
            builder = (x509.CertificateRevocationListBuilder().issuer_name(self.name)
                       .last_update(now).next_update(now + dt.timedelta(hours=hours)))
            for item in self.issued.values():
                if item.status == "valid":
                    continue
                assert item.revoked_at is not None and item.reason is not None
                entry = (x509.RevokedCertificateBuilder().serial_number(item.serial)
                         .revocation_date(item.revoked_at))
                if item.reason is not x509.ReasonFlags.unspecified:
                    entry = entry.add_extension(x509.CRLReason(item.reason), critical=False)
                builder = builder.add_revoked_certificate(entry.build())
            return builder.sign(self.key, hashes.SHA256())

    def copy_application(self, reference: str, **changes: object) -> Application:
        """An application with fields changed (tests: an application made 8 days ago)."""
        with self._lock:
            app = replace(self.applications[reference], **changes)  # type: ignore[arg-type]
            self.applications[reference] = app
            return app
