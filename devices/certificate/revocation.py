"""Revocation status from an OCSP response (RFC 6960) or a CRL (RFC 5280), judged here.

Pure: the bytes come from the responder through a driver; this module builds the request,
checks who signed the answer, that it answers for this certificate, and that it is fresh, and
says until when it may be cached (the responder's nextUpdate).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from enum import StrEnum, unique

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

CLOCK_SKEW = dt.timedelta(minutes=5)
DEFAULT_TTL = dt.timedelta(minutes=5)  # a response without nextUpdate (RFC 6960 4.2.2.1)


class RevocationError(Exception):
    """An answer that cannot be used (forged, stale, for another certificate, malformed)."""


@unique
class Revocation(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    SUSPENDED = "suspended"  # revoked with reason certificateHold: may be restored
    UNKNOWN = "unknown"  # the responder does not know the certificate


@dataclass(frozen=True)
class RevocationStatus:
    state: Revocation
    source: str  # "ocsp" or "crl"
    this_update: dt.datetime
    next_update: dt.datetime  # cache until then at most
    revoked_at: dt.datetime | None = None
    reason: x509.ReasonFlags | None = None


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate) -> tuple[bytes, bytes]:
    """(DER request, nonce) for ``cert`` (SHA-1 CertID, as responders index them)."""
    nonce = os.urandom(16)
    request = (ocsp.OCSPRequestBuilder()
               .add_certificate(cert, issuer, hashes.SHA1())
               .add_extension(x509.OCSPNonce(nonce), critical=False)
               .build())
    return request.public_bytes(serialization.Encoding.DER), nonce


def signed_by(child: x509.Certificate | x509.CertificateRevocationList | ocsp.OCSPResponse,
              issuer_key: object) -> bool:
    """Whether ``issuer_key`` signed ``child`` (a certificate, a CRL or an OCSP response)."""
    if isinstance(child, ocsp.OCSPResponse):
        data = child.tbs_response_bytes
    elif isinstance(child, x509.CertificateRevocationList):
        data = child.tbs_certlist_bytes
    else:
        data = child.tbs_certificate_bytes
    sig, algo = child.signature, child.signature_hash_algorithm
    if algo is None:
        return False
    try:
        if isinstance(issuer_key, ec.EllipticCurvePublicKey):
            issuer_key.verify(sig, data, ec.ECDSA(algo))
        elif isinstance(issuer_key, rsa.RSAPublicKey):
            issuer_key.verify(sig, data, padding.PKCS1v15(), algo)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _responder_ok(response: ocsp.OCSPResponse, issuer: x509.Certificate,
                  now: dt.datetime) -> bool:
    """Signed by the issuing CA itself, or by a responder certificate the CA issued for OCSP
    signing (RFC 6960 4.2.2.2) and valid now."""
    if signed_by(response, issuer.public_key()):
        return True
    for responder in response.certificates:
        if responder.issuer != issuer.subject or not signed_by(responder, issuer.public_key()):
            continue
        try:
            eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
            continue
        if not responder.not_valid_before_utc - CLOCK_SKEW <= now <= responder.not_valid_after_utc:
            continue
        if signed_by(response, responder.public_key()):
            return True
    return False


def judge_ocsp(data: bytes, cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes,
               now: dt.datetime) -> RevocationStatus:
    try:
        response = ocsp.load_der_ocsp_response(data)
    except ValueError:
        raise RevocationError("the OCSP answer is not an OCSP response") from None
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise RevocationError(f"the OCSP responder answered {response.response_status.name}")
    if not _responder_ok(response, issuer, now):
        raise RevocationError("the OCSP response is not signed by the CA or its responder")
    for single in response.responses:
        if single.serial_number != cert.serial_number or \
                single.issuer_name_hash != _name_hash(issuer, single.hash_algorithm):
            continue
        return _single(single, response, nonce, now)
    raise RevocationError("the OCSP response does not answer for this certificate")


def _name_hash(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(issuer.subject.public_bytes())
    return digest.finalize()


def _single(single: ocsp.OCSPSingleResponse, response: ocsp.OCSPResponse, nonce: bytes,
            now: dt.datetime) -> RevocationStatus:
    try:
        echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        echoed = None
    if echoed is not None and echoed != nonce:
        raise RevocationError("the OCSP response carries another request's nonce")
    this_update = single.this_update_utc
    next_update = single.next_update_utc or (now + DEFAULT_TTL)
    if this_update > now + CLOCK_SKEW:
        raise RevocationError("the OCSP response is dated in the future")
    if next_update < now - CLOCK_SKEW:
        raise RevocationError("the OCSP response is stale (its nextUpdate has passed)")
    status = single.certificate_status
    if status is ocsp.OCSPCertStatus.GOOD:
        return RevocationStatus(Revocation.GOOD, "ocsp", this_update, next_update)
    if status is ocsp.OCSPCertStatus.UNKNOWN:
        return RevocationStatus(Revocation.UNKNOWN, "ocsp", this_update, next_update)
    reason = single.revocation_reason
    state = (Revocation.SUSPENDED if reason is x509.ReasonFlags.certificate_hold
             else Revocation.REVOKED)
    return RevocationStatus(state, "ocsp", this_update, next_update,
                            single.revocation_time_utc, reason)


def judge_crl(data: bytes, cert: x509.Certificate, issuer: x509.Certificate,
              now: dt.datetime) -> RevocationStatus:
    try:
        crl = (x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----")
               else x509.load_der_x509_crl(data))
    except ValueError:
        raise RevocationError("the CRL is not a CRL") from None
    if crl.issuer != issuer.subject or not signed_by(crl, issuer.public_key()):
        raise RevocationError("the CRL is not signed by the certificate's CA")
    this_update = crl.last_update_utc
    next_update = crl.next_update_utc or (now + DEFAULT_TTL)
    if this_update > now + CLOCK_SKEW:
        raise RevocationError("the CRL is dated in the future")
    if next_update < now - CLOCK_SKEW:
        raise RevocationError("the CRL is stale (its nextUpdate has passed)")
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is None:
        return RevocationStatus(Revocation.GOOD, "crl", this_update, next_update)
    try:
        reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        reason = x509.ReasonFlags.unspecified
    state = (Revocation.SUSPENDED if reason is x509.ReasonFlags.certificate_hold
             else Revocation.REVOKED)
    return RevocationStatus(state, "crl", this_update, next_update,
                            entry.revocation_date_utc, reason)


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [d.access_location.value for d in aia
            if d.access_method == x509.oid.AuthorityInformationAccessOID.OCSP
            and isinstance(d.access_location, x509.UniformResourceIdentifier)]


def crl_urls(cert: x509.Certificate) -> list[str]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [name.value for point in points for name in (point.full_name or [])
            if isinstance(name, x509.UniformResourceIdentifier)]
