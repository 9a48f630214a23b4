"""Issuance requests, certificates and one-time numbers in the store."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from authd.storage import Tx
from authd.storage.database import Row
from devices.certificate.lifecycle import (
    CertificateStatus,
    IssuanceRequest,
    IssuanceStep,
    RequestKind,
    RequestState,
    StorageLocation,
)


def ts(moment: dt.datetime) -> float:
    return moment.timestamp()


def at(value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(float(value), dt.UTC)


# ------------------------------------------------------------------------------ requests

_REQ = ("id, institution, customer_ref, certificate_type, kind, state, step, subscriber_name,"
        " replaces_serial, ca_reference, ca_code, storage, certificate_serial, reason, operator,"
        " created_at, expires_at")


@dataclass(frozen=True)
class RequestRow:
    request: IssuanceRequest
    subscriber_name: str
    ca_reference: str
    ca_code: bytes  # sealed
    operator: str


def _request(r: Row) -> RequestRow:
    req = IssuanceRequest(
        id=str(r[0]), institution=str(r[1]), customer_ref=str(r[2]),
        certificate_type=str(r[3]), kind=RequestKind(r[4]), state=RequestState(r[5]),
        step=IssuanceStep(int(r[6])), created_at=at(r[15]), expires_at=at(r[16]),
        replaces_serial=str(r[8]), storage=StorageLocation(r[11]) if r[11] else None,
        certificate_serial=str(r[12]), reason=str(r[13]))
    return RequestRow(req, str(r[7]), str(r[9]), bytes(r[10]) if r[10] is not None else b"",
                      str(r[14]))


def insert_request(tx: Tx, row: RequestRow, now: dt.datetime) -> None:
    q = row.request
    tx.execute(
        f"INSERT INTO certificate_requests ({_REQ}, updated_at) VALUES"
        " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (q.id, q.institution, q.customer_ref, q.certificate_type, q.kind.value, q.state.value,
         int(q.step), row.subscriber_name, q.replaces_serial, row.ca_reference, row.ca_code,
         q.storage.value if q.storage else "", q.certificate_serial, q.reason, row.operator,
         ts(q.created_at), ts(q.expires_at), ts(now)))


def get_request(tx: Tx, institution: str, request_id: str, lock: bool = False) -> RequestRow | None:
    row = tx.one(f"SELECT {_REQ} FROM certificate_requests WHERE id = ? AND institution = ?"
                 + (tx.for_update if lock else ""), (request_id, institution))
    return _request(row) if row is not None else None


def update_request(tx: Tx, q: IssuanceRequest, now: dt.datetime) -> None:
    tx.execute(
        "UPDATE certificate_requests SET state = ?, step = ?, storage = ?,"
        " certificate_serial = ?, reason = ?, updated_at = ? WHERE id = ?",
        (q.state.value, int(q.step), q.storage.value if q.storage else "",
         q.certificate_serial, q.reason, ts(now), q.id))


def expire_requests(tx: Tx, now: dt.datetime) -> list[RequestRow]:
    """Open requests past their 7 days: marked expired (CA art. 6(3)); returns them."""
    rows = tx.all(f"SELECT {_REQ} FROM certificate_requests WHERE state = 'open'"
                  " AND expires_at <= ?" + tx.for_update, (ts(now),))
    if rows:
        tx.execute("UPDATE certificate_requests SET state = 'expired', updated_at = ?,"
                   " reason = 'not completed within the request period (CA art. 6(3))'"
                   " WHERE state = 'open' AND expires_at <= ?", (ts(now), ts(now)))
    return [_request(r) for r in rows]


# --------------------------------------------------------------------------- certificates

_CERT = ("institution, issuer, serial, fingerprint, customer_ref, certificate_type, origin,"
         " storage, location, subject, not_before, not_after, status, status_reason, status_at,"
         " issued_at, request_id, fee_krw, refund_krw, refunded_at, replaced_by, der")


@dataclass(frozen=True)
class CertificateRow:
    institution: str
    issuer: str
    serial: str  # hexadecimal
    fingerprint: str
    customer_ref: str
    certificate_type: str
    origin: str  # issued | registered
    storage: StorageLocation
    location: str  # token serial, card id, or the directory on a disk
    subject: str
    not_before: dt.datetime
    not_after: dt.datetime
    status: CertificateStatus
    status_reason: str
    status_at: dt.datetime | None
    issued_at: dt.datetime
    request_id: str
    fee_krw: int
    refund_krw: int | None
    refunded_at: dt.datetime | None
    replaced_by: str
    der: bytes


def _cert(r: Row) -> CertificateRow:
    return CertificateRow(
        str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), str(r[6]),
        StorageLocation(r[7]), str(r[8]), str(r[9]), at(r[10]), at(r[11]),
        CertificateStatus(r[12]), str(r[13]), at(r[14]) if r[14] is not None else None,
        at(r[15]), str(r[16]), int(r[17]), int(r[18]) if r[18] is not None else None,
        at(r[19]) if r[19] is not None else None, str(r[20]), bytes(r[21]))


def insert_certificate(tx: Tx, c: CertificateRow) -> None:
    tx.execute(
        f"INSERT INTO certificates ({_CERT}) VALUES"
        " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (c.institution, c.issuer, c.serial, c.fingerprint, c.customer_ref, c.certificate_type,
         c.origin, c.storage.value, c.location, c.subject, ts(c.not_before), ts(c.not_after),
         c.status.value, c.status_reason, ts(c.status_at) if c.status_at else None,
         ts(c.issued_at), c.request_id, c.fee_krw, c.refund_krw,
         ts(c.refunded_at) if c.refunded_at else None, c.replaced_by, c.der))


def get_certificate(tx: Tx, institution: str, serial: str,
                    lock: bool = False) -> CertificateRow | None:
    row = tx.one(f"SELECT {_CERT} FROM certificates WHERE institution = ? AND serial = ?"
                 + (tx.for_update if lock else ""), (institution, serial))
    return _cert(row) if row is not None else None


def find_by_fingerprint(tx: Tx, institution: str, fingerprint: str) -> CertificateRow | None:
    row = tx.one(f"SELECT {_CERT} FROM certificates WHERE institution = ? AND fingerprint = ?",
                 (institution, fingerprint))
    return _cert(row) if row is not None else None


def set_status(tx: Tx, c: CertificateRow, status: CertificateStatus, reason: str,
               now: dt.datetime, *, replaced_by: str | None = None,
               refund_krw: int | None = None) -> None:
    tx.execute(
        "UPDATE certificates SET status = ?, status_reason = ?, status_at = ?,"
        " replaced_by = COALESCE(?, replaced_by), refund_krw = COALESCE(?, refund_krw),"
        " refunded_at = COALESCE(?, refunded_at)"
        " WHERE institution = ? AND issuer = ? AND serial = ?",
        (status.value, reason, ts(now), replaced_by, refund_krw,
         ts(now) if refund_krw is not None else None, c.institution, c.issuer, c.serial))


def customer_certificates(tx: Tx, institution: str, customer_ref: str) -> list[CertificateRow]:
    return [_cert(r) for r in tx.all(
        f"SELECT {_CERT} FROM certificates WHERE institution = ? AND customer_ref = ?"
        " ORDER BY issued_at", (institution, customer_ref))]


def expiring(tx: Tx, institution: str | None, since: dt.datetime,
             until: dt.datetime, limit: int = 1000) -> list[CertificateRow]:
    """Active or suspended certificates whose notAfter falls in [since, until]."""
    where = "status <> 'revoked' AND not_after >= ? AND not_after <= ?"
    params: list[object] = [ts(since), ts(until)]
    if institution is not None:
        where = "institution = ? AND " + where
        params.insert(0, institution)
    return [_cert(r) for r in tx.all(
        f"SELECT {_CERT} FROM certificates WHERE {where} ORDER BY not_after LIMIT ?",
        (*params, limit))]


def count_expiring(tx: Tx, since: dt.datetime, until: dt.datetime) -> dict[str, int]:
    rows = tx.all("SELECT institution, COUNT(*) FROM certificates WHERE status <> 'revoked'"
                  " AND not_after >= ? AND not_after <= ? GROUP BY institution",
                  (ts(since), ts(until)))
    return {str(r[0]): int(r[1]) for r in rows}


# ---------------------------------------------------------------------- one-time numbers


@dataclass(frozen=True)
class NumberRow:
    id: str
    sealed: bytes
    failures: int
    expires_at: dt.datetime


def replace_number(tx: Tx, institution: str, customer_ref: str, sealed: bytes, operator: str,
                   now: dt.datetime, expires: dt.datetime) -> str:
    tx.execute("UPDATE certificate_one_time_numbers SET active = 0 WHERE institution = ?"
               " AND customer_ref = ? AND active = 1", (institution, customer_ref))
    ident = uuid.uuid4().hex
    tx.execute("INSERT INTO certificate_one_time_numbers (id, institution, customer_ref, sealed,"
               " failures, created_at, expires_at, used_at, operator, active)"
               " VALUES (?, ?, ?, ?, 0, ?, ?, NULL, ?, 1)",
               (ident, institution, customer_ref, sealed, ts(now), ts(expires), operator))
    return ident


def live_number(tx: Tx, institution: str, customer_ref: str) -> NumberRow | None:
    row = tx.one("SELECT id, sealed, failures, expires_at FROM certificate_one_time_numbers"
                 " WHERE institution = ? AND customer_ref = ? AND active = 1" + tx.for_update,
                 (institution, customer_ref))
    return NumberRow(str(row[0]), bytes(row[1]), int(row[2]), at(row[3])) if row else None


def number_used(tx: Tx, ident: str, now: dt.datetime) -> None:
    tx.execute("UPDATE certificate_one_time_numbers SET active = 0, used_at = ? WHERE id = ?",
               (ts(now), ident))


def number_failed(tx: Tx, ident: str, limit: int) -> int:
    tx.execute("UPDATE certificate_one_time_numbers SET failures = failures + 1,"
               " active = CASE WHEN failures + 1 >= ? THEN 0 ELSE 1 END WHERE id = ?",
               (limit, ident))
    row = tx.one("SELECT failures FROM certificate_one_time_numbers WHERE id = ?", (ident,))
    return int(row[0]) if row else limit


def void_number(tx: Tx, ident: str) -> None:
    tx.execute("UPDATE certificate_one_time_numbers SET active = 0 WHERE id = ?", (ident,))
