"""Certificate lifecycle at the bank (the CA's registration authority) and the relying checks.

Blocking: the servicer runs these off the event loop. The CA is called outside any store
transaction; each change is recorded (with its audit record) in one transaction after the CA
answered, and a certificate the CA issued that cannot be stored and recorded is revoked at the
CA again, so nothing half-issued stays usable.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from authd import validate
from authd.app import App
from authd.certificate import media
from authd.certificate import repository as repo
from authd.certificate.additional import AdditionalAuthentication, require
from authd.certificate.ca import Application, CaConnector
from authd.certificate.reliance import RevocationChecker, enforce, fingerprint, load
from authd.certificate.settings import CertificateSettings
from authd.context import Caller
from authd.policy import repository as policy_repo
from authd.storage import Tx
from devices.certificate import types as cert_types
from devices.certificate.additional import Proof, Purpose
from devices.certificate.lifecycle import (
    CertificateStatus,
    EndOfUse,
    IssuanceRequest,
    IssuanceStep,
    RequestKind,
    RequestState,
    RevocationReason,
    StorageLocation,
    advance,
    cancellation,
    effective,
    request_deadline,
)
from devices.certificate.reliance import Reliance
from devices.certificate.validity import RenewalState, renewal_state
from devices.errors import BadRequest, NoSuchObject, NotPermitted, Unreachable, WrongState
from devices.policy.terminals import DeviceInfo, incident_keys
from devices.token import KeySpec

log = logging.getLogger(__name__)
Clock = Callable[[], dt.datetime]
MAX_NAME = 64


def _aad(request_id: str) -> bytes:
    return f"certificate-request\x00{request_id}".encode()


@dataclass(frozen=True)
class SecurityMeans:
    """Step 3: an OTP code or a security-card answer, checked by authd's centers."""

    otp_serial: str = ""
    otp_code: str = ""
    card_challenge: str = ""
    card_answer: str = ""

    def __repr__(self) -> str:
        return f"SecurityMeans(otp={self.otp_serial!r}, card={self.card_challenge!r}, ***)"


@dataclass(frozen=True)
class Cancelled:
    certificate: repo.CertificateRow
    fee_krw: int
    refund_krw: int


class CertificateService:
    def __init__(self, app: App, settings: CertificateSettings, ca: CaConnector,
                 checker: RevocationChecker, additional: AdditionalAuthentication,
                 clock: Clock) -> None:
        self.app, self.settings, self.ca = app, settings, ca
        self.checker, self.additional, self.clock = checker, additional, clock
        self.key_spec = KeySpec.EC_P256 if settings.key_spec == "ec-p256" else KeySpec.RSA_2048
        # the daemon's event loop (set at start): the smartcard service's card work is awaited
        self.loop: asyncio.AbstractEventLoop | None = None

    # ---------------------------------------------------------------------- helpers
    def _audit(self, tx: Tx, action: str, target: str, outcome: str,
               detail: dict[str, Any] | None = None, customer: str | None = None) -> None:
        self.app.audit.record(tx, action=f"certificate.{action}", target=target,
                              outcome=outcome, detail=detail or {}, customer=customer)

    def _type(self, code: str) -> cert_types.CertificateType:
        return cert_types.find(self.settings.types, cert_types.code_of(code))

    def _request(self, tx: Tx, caller: Caller, request_id: str) -> repo.RequestRow:
        validate.text(request_id, "request_id", required=True, max_length=64)
        row = repo.get_request(tx, caller.institution, request_id, lock=True)
        if row is None:
            raise NoSuchObject(f"no issuance request {request_id} at {caller.institution}")
        return row

    def _certificate(self, tx: Tx, caller: Caller, serial: str,
                     lock: bool = False) -> repo.CertificateRow:
        serial = _serial(serial)
        row = repo.get_certificate(tx, caller.institution, serial, lock=lock)
        if row is None:
            raise NoSuchObject(f"no certificate {serial} at {caller.institution}")
        return row

    # ----------------------------------------------------------------- requests
    def open_request(self, caller: Caller, *, customer_ref: str, certificate_type: str,
                     subscriber_name: str, kind: RequestKind, device_info: DeviceInfo,
                     operator: str, replaces_serial: str = "",
                     proof: Proof | None = None) -> repo.RequestRow:
        """Step 1: the type is chosen; the application is registered at the CA."""
        customer_ref = validate.text(customer_ref, "customer_ref", required=True, max_length=64)
        subscriber_name = validate.text(subscriber_name, "subscriber_name", required=True,
                                        max_length=MAX_NAME)
        operator = validate.text(operator, "operator", required=True)
        kind_rule = self._type(certificate_type)
        now = self.clock()
        request = IssuanceRequest(uuid.uuid4().hex, caller.institution, customer_ref,
                                  kind_rule.code, kind, RequestState.OPEN, IssuanceStep.TYPE,
                                  now, request_deadline(now, self.settings.request_days),
                                  replaces_serial=_serial(replaces_serial) if replaces_serial
                                  else "")
        if kind is RequestKind.REISSUE:
            if replaces_serial:
                self.app.db.run(lambda tx: self._certificate(tx, caller, replaces_serial),
                                write=False)
            if proof is None:
                raise BadRequest("a reissue needs additional authentication (ARS, SMS or a "
                                 "one-time number registered at a branch)", field="proof")
        keys = [(f.value, v) for f, v in incident_keys(device_info)]
        hits = sorted({i.field for i in self.app.db.run(
            lambda tx: policy_repo.incidents_matching(tx, keys), write=False)})
        if hits:
            self._refuse(request, subscriber_name, operator,
                         f"device information on the incident list ({', '.join(hits)})")
            raise NotPermitted("issuance refused: the applicant's device is on the incident "
                               "list (CA art. 6(4)4)", reason="DEVICE_ON_INCIDENT_LIST",
                               metadata={"kinds": ",".join(hits)})
        if proof is not None:
            outcome = self.additional.verify(caller.institution, customer_ref, proof,
                                             Purpose.REISSUE)
            if not outcome.ok:
                self._refuse(request, subscriber_name, operator,
                             "additional authentication failed")
            require(outcome)
        application = self.ca.register({"name": subscriber_name, "ra": caller.institution,
                                        "customer_ref": customer_ref}, kind_rule.code)
        row = repo.RequestRow(request, subscriber_name, application.reference,
                              self.app.secrets.seal(application.code.encode(),
                                                    _aad(request.id)), operator)

        def store(tx: Tx) -> None:
            repo.insert_request(tx, row, now)
            self._audit(tx, "open_request", f"customer:{customer_ref}", "ok",
                        {"request": request.id, "type": kind_rule.code, "kind": kind.value,
                         "operator": operator, "fee_krw": kind_rule.fee_krw},
                        customer=customer_ref)

        self.app.db.run(store)
        return row

    def _refuse(self, request: IssuanceRequest, name: str, operator: str, why: str) -> None:
        refused = replace(request, state=RequestState.REFUSED, reason=why)

        def store(tx: Tx) -> None:
            repo.insert_request(tx, repo.RequestRow(refused, name, "", b"", operator),
                                self.clock())
            self._audit(tx, "open_request", f"customer:{request.customer_ref}", "refused",
                        {"request": request.id, "why": why, "operator": operator})

        self.app.db.run(store)

    def advance(self, caller: Caller, request_id: str, step: IssuanceStep, *,
                operator: str, identity_document: str = "", means: SecurityMeans | None = None,
                account: str = "") -> repo.RequestRow:
        """Steps 2 to 4: identity checked, a security means answered, account details."""
        operator = validate.text(operator, "operator", required=True)
        if step not in (IssuanceStep.IDENTITY, IssuanceStep.SECURITY_MEANS,
                        IssuanceStep.ACCOUNT):
            raise BadRequest("step must be identity, security_means or account (step 5, the "
                             "storage location, is CompleteIssuance)", field="step")
        now = self.clock()
        row = self.app.db.run(lambda tx: self._request(tx, caller, request_id), write=False)
        advance(row.request, step, now)  # order and the 7 days, before anything is checked
        detail: dict[str, Any] = {"request": request_id, "step": step.name.lower(),
                                  "operator": operator}
        if step is IssuanceStep.IDENTITY:
            detail["document"] = validate.text(identity_document, "identity_document",
                                               required=True, max_length=64)
        elif step is IssuanceStep.SECURITY_MEANS:
            detail["means"] = self._security_means(caller, means or SecurityMeans())
        else:
            digits = "".join(c for c in account if c.isdigit())
            if not 8 <= len(digits) <= 20 or validate.text(account, "account") != account:
                raise BadRequest("account must hold 8..20 digits", field="account")
            detail["account"] = "***" + digits[-4:]

        def store(tx: Tx) -> repo.RequestRow:
            current = self._request(tx, caller, request_id)
            moved = advance(current.request, step, self.clock())
            repo.update_request(tx, moved, self.clock())
            self._audit(tx, "advance_request", f"customer:{moved.customer_ref}", "ok", detail,
                        customer=moved.customer_ref)
            return replace(current, request=moved)

        return self.app.db.run(store)

    def _security_means(self, caller: Caller, means: SecurityMeans) -> str:
        from authd.center.feature import link_of

        link = link_of(self.app)
        if link is None:
            return self.check_security_means(caller, means)
        # A branch-only node: the OTP devices and the cards are at the center.
        from authd.center.link import Rpc
        from authd.v1 import certificate_pb2 as pb

        link.acting_for(caller)
        rpc = Rpc.of(pb.DESCRIPTOR, "CertificateCenterService", "CheckSecurityMeans")
        answer = link.call_blocking(rpc, pb.CheckSecurityMeansRequest(
            otp_serial=means.otp_serial, otp_code=means.otp_code,
            card_challenge_id=means.card_challenge, card_answer=means.card_answer),
            operator=caller.operator or caller.subject)
        return str(answer.means)

    def check_security_means(self, caller: Caller, means: SecurityMeans) -> str:
        """Step 3 on a node with the center role: the OTP code (the shared lockout) or the
        security-card answer of ``caller``'s institution; NotPermitted when refused."""
        if means.otp_serial:
            from authd.otp.feature import OtpFeature
            from devices.otp.rules import Outcome as OtpOutcome

            otp = self.app.require(OtpFeature)
            serial = validate.serial(means.otp_serial, "otp_serial")
            code = validate.otp_code(means.otp_code, "otp_code")
            result = self.app.db.run(lambda tx: otp.service.verify(tx, serial=serial, code=code,
                                                                    caller=caller))
            if result.outcome is not OtpOutcome.ACCEPTED:
                raise NotPermitted(f"the OTP was not accepted: {result.message}",
                                   reason="SECURITY_MEANS_REFUSED",
                                   metadata={"outcome": result.outcome.value})
            return "otp"
        if means.card_challenge:
            from authd.security_card.feature import SecurityCardFeature
            from devices.security_card.verification import Outcome as CardOutcome

            cards = self.app.require(SecurityCardFeature)
            verified = cards.center_service().verify(caller.institution, means.card_challenge,
                                                     means.card_answer)
            if verified.verdict.outcome is not CardOutcome.ACCEPTED:
                raise NotPermitted("the security card answer was not accepted "
                                   f"({verified.verdict.outcome.name.lower()}, "
                                   f"{verified.verdict.attempts_left} attempt(s) left)",
                                   reason="SECURITY_MEANS_REFUSED",
                                   metadata={"outcome": verified.verdict.outcome.name.lower()})
            return "security_card"
        raise BadRequest("step 3 needs an OTP (serial and code) or a security-card answer",
                         field="means")

    def cancel_request(self, caller: Caller, request_id: str, operator: str,
                       reason: str) -> repo.RequestRow:
        operator = validate.text(operator, "operator", required=True)
        reason = validate.text(reason, "reason", required=True)

        def store(tx: Tx) -> repo.RequestRow:
            row = self._request(tx, caller, request_id)
            state = row.request.state_at(self.clock())
            if state is not RequestState.OPEN:
                raise WrongState(f"issuance request {request_id} is {state.value}",
                                 reason="ISSUANCE_REQUEST_CLOSED")
            closed = replace(row.request, state=RequestState.CANCELLED, reason=reason)
            repo.update_request(tx, closed, self.clock())
            self._audit(tx, "cancel_request", f"customer:{closed.customer_ref}", "ok",
                        {"request": request_id, "operator": operator, "reason": reason})
            return replace(row, request=closed)

        row = self.app.db.run(store)
        try:
            self.ca.cancel(row.ca_reference)
        except (Unreachable, WrongState) as exc:  # the CA drops it after 7 days in any case
            log.warning("the CA did not take the cancellation: %s", exc)
        return row

    def expire_requests(self) -> int:
        """Mark open requests past their 7 days as expired (CA art. 6(3)); audited."""
        now = self.clock()

        def sweep(tx: Tx) -> int:
            expired = repo.expire_requests(tx, now)
            for row in expired:
                self._audit(tx, "expire_request", f"customer:{row.request.customer_ref}",
                            "expired", {"request": row.request.id})
            return len(expired)

        return self.app.db.run(sweep)

    def get_request(self, caller: Caller, request_id: str) -> repo.RequestRow:
        return self.app.db.run(lambda tx: self._request(tx, caller, request_id), write=False)

    # ------------------------------------------------------------------- issuing
    def _store_on(self, caller: Caller, target: media.Target, enroll: media.Enroll,
                  retire_serial: int | None = None) -> tuple[StorageLocation, media.Stored]:
        if isinstance(target, media.TokenTarget):
            from authd.token.feature import TokenFeature

            tokens = self.app.require(TokenFeature).service
            return StorageLocation.TOKEN, media.on_token(tokens, caller, target, self.key_spec,
                                                         enroll, retire_serial)
        if isinstance(target, media.CardTarget):
            from authd.smartcard.feature import SmartcardFeature

            feature = self.app.require(SmartcardFeature)
            if feature.service is None:
                raise Unreachable(feature.why_missing or "smartcards are not available")
            if self.loop is None:
                raise Unreachable("the certificate feature has not started")
            work = media.on_card(feature.service, target, self.key_spec, enroll)
            stored = asyncio.run_coroutine_threadsafe(work, self.loop).result()
            return StorageLocation.SMARTCARD, stored
        location = (StorageLocation.REMOVABLE_DISK if target.removable
                    else StorageLocation.DISK)
        return location, media.on_disk(self.settings.disk_roots, self.settings.ca_name, target,
                                       self.key_spec, self.settings.key_file_iterations, enroll)

    def _record(self, build: Callable[[Tx], repo.CertificateRow], der: bytes) -> \
            repo.CertificateRow:
        """Record a certificate the CA just issued; revoke it at the CA if that fails."""
        try:
            return self.app.db.run(build)
        except BaseException:
            serial = x509.load_der_x509_certificate(der).serial_number
            try:
                self.ca.revoke(serial, x509.ReasonFlags.cessation_of_operation)
            except Exception:
                log.exception("a certificate issued but not recorded could not be revoked",
                              extra={"fields": {"serial": format(serial, "x")}})
            raise

    def complete(self, caller: Caller, request_id: str,
                 target: media.Target) -> repo.CertificateRow:
        """Step 5: the key on the chosen medium, the certificate issued and stored next to
        it, the request closed. A reissue revokes the certificate it replaces."""
        now = self.clock()
        row = self.app.db.run(lambda tx: self._request(tx, caller, request_id), write=False)
        advance(row.request, IssuanceStep.STORAGE, now)
        application = Application(row.ca_reference, self.app.secrets.open(
            row.ca_code, _aad(row.request.id)).decode())
        issued: list[bytes] = []

        def enroll(csr: bytes) -> bytes:
            der = self.ca.enroll(application, csr)
            issued.append(der)
            return der

        try:
            storage, stored = self._store_on(caller, target, enroll)
        except BaseException:
            for der in issued:  # the CA issued, the medium could not take it
                self._revoke_quietly(der)
            raise
        kind_rule = self._type(row.request.certificate_type)
        cert = x509.load_der_x509_certificate(stored.certificate)

        def build(tx: Tx) -> repo.CertificateRow:
            current = self._request(tx, caller, request_id)
            done = replace(advance(current.request, IssuanceStep.STORAGE, self.clock()),
                           state=RequestState.ISSUED, storage=storage,
                           certificate_serial=format(cert.serial_number, "x"))
            repo.update_request(tx, done, self.clock())
            record = self._new_row(caller, current.request.customer_ref, kind_rule, cert,
                                   stored, storage, "issued", request_id)
            repo.insert_certificate(tx, record)
            self._audit(tx, "issue", f"certificate:{record.serial}", "ok",
                        {"request": request_id, "storage": storage.value,
                         "location": stored.location, "type": kind_rule.code,
                         "fee_krw": record.fee_krw}, customer=record.customer_ref)
            return record

        record = self._record(build, stored.certificate)
        if row.request.kind is RequestKind.REISSUE and row.request.replaces_serial:
            self._supersede(caller, row.request.replaces_serial, record.serial)
        return record

    def _new_row(self, caller: Caller, customer_ref: str,
                 kind_rule: cert_types.CertificateType, cert: x509.Certificate,
                 stored: media.Stored, storage: StorageLocation, origin: str,
                 request_id: str) -> repo.CertificateRow:
        from cryptography.hazmat.primitives import serialization

        der = cert.public_bytes(serialization.Encoding.DER)
        return repo.CertificateRow(
            caller.institution, cert.issuer.rfc4514_string(), format(cert.serial_number, "x"),
            fingerprint(der), customer_ref, kind_rule.code, origin, storage, stored.location,
            cert.subject.rfc4514_string(), cert.not_valid_before_utc, cert.not_valid_after_utc,
            CertificateStatus.ACTIVE, "", None, self.clock(), request_id,
            kind_rule.fee_krw if origin == "issued" else 0, None, None, "", der)

    def _revoke_quietly(self, der: bytes) -> None:
        serial = x509.load_der_x509_certificate(der).serial_number
        try:
            self.ca.revoke(serial, x509.ReasonFlags.cessation_of_operation)
        except Exception:
            log.exception("a certificate the medium could not store was not revoked",
                          extra={"fields": {"serial": format(serial, "x")}})

    def _supersede(self, caller: Caller, old_serial: str, new_serial: str) -> None:
        old = self.app.db.run(lambda tx: self._certificate(tx, caller, old_serial),
                              write=False)
        if old.status is CertificateStatus.REVOKED:
            return
        try:
            self.ca.revoke(int(old.serial, 16), x509.ReasonFlags.superseded)
        except WrongState:
            pass  # already revoked at the CA (the CA revokes a renewed certificate itself)

        def store(tx: Tx) -> None:
            current = self._certificate(tx, caller, old_serial, lock=True)
            repo.set_status(tx, current, CertificateStatus.REVOKED,
                            RevocationReason.SUPERSEDED.value, self.clock(),
                            replaced_by=new_serial)
            self._audit(tx, "revoke", f"certificate:{old_serial}", "ok",
                        {"reason": RevocationReason.SUPERSEDED.value,
                         "replaced_by": new_serial})

        self.app.db.run(store)
        self.checker.forget(old.der)

    # ------------------------------------------------------------------ renewal
    def renew(self, caller: Caller, serial: str, target: media.Target) -> repo.CertificateRow:
        """A new key and certificate on the same kind of medium, inside the renewal window
        (60 days before expiry until 23:59:59 KST on the expiry day); the old one is
        superseded. Outside the window: reissue."""
        old = self.app.db.run(lambda tx: self._certificate(tx, caller, serial), write=False)
        now = self.clock()
        state = renewal_state(old.not_before, old.not_after, now,
                              self.settings.renewal_window_days)
        if old.status is not CertificateStatus.ACTIVE:
            raise WrongState(f"certificate {old.serial} is {old.status.value}: it cannot be "
                             "renewed", reason="CERTIFICATE_NOT_RENEWABLE")
        if state is not RenewalState.RENEWABLE:
            raise WrongState(_renewal_refusal(state), reason="OUTSIDE_RENEWAL_WINDOW",
                             metadata={"state": state.value})
        if old.origin != "issued":
            raise WrongState("only a certificate issued through this institution is renewed "
                             "here", reason="CERTIFICATE_NOT_RENEWABLE")
        target = self._same_medium(old, target)
        kind_rule = self._type(old.certificate_type)
        storage, stored = self._store_on(caller, target,
                                         lambda csr: self.ca.renew(int(old.serial, 16), csr),
                                         retire_serial=int(old.serial, 16))
        cert = x509.load_der_x509_certificate(stored.certificate)

        def build(tx: Tx) -> repo.CertificateRow:
            current = self._certificate(tx, caller, old.serial, lock=True)
            record = self._new_row(caller, current.customer_ref, kind_rule, cert, stored,
                                   storage, "issued", current.request_id)
            repo.insert_certificate(tx, record)
            repo.set_status(tx, current, CertificateStatus.REVOKED,
                            RevocationReason.SUPERSEDED.value, self.clock(),
                            replaced_by=record.serial)
            self._audit(tx, "renew", f"certificate:{current.serial}", "ok",
                        {"new_serial": record.serial, "storage": storage.value,
                         "fee_krw": record.fee_krw})
            return record

        record = self._record(build, stored.certificate)
        self.checker.forget(old.der)
        return record

    def _same_medium(self, old: repo.CertificateRow, target: media.Target) -> media.Target:
        wanted = {media.TokenTarget: (StorageLocation.TOKEN,),
                  media.CardTarget: (StorageLocation.SMARTCARD,),
                  media.DiskTarget: (StorageLocation.DISK, StorageLocation.REMOVABLE_DISK)}
        if old.storage not in wanted[type(target)]:
            raise BadRequest(f"certificate {old.serial} is stored on {old.storage.value}: "
                             "renew it there (or reissue onto another medium)", field="storage")
        return target

    # ----------------------------------------------------------- cancel / revoke
    def cancel_certificate(self, caller: Caller, serial: str, operator: str) -> Cancelled:
        """Within 7 days of issuance: revoked, the fee refunded (CA art. 12)."""
        operator = validate.text(operator, "operator", required=True)
        row = self.app.db.run(lambda tx: self._certificate(tx, caller, serial), write=False)
        if row.origin != "issued":
            raise WrongState("only a certificate issued through this institution can be "
                             "cancelled here", reason="NOT_ISSUED_HERE")
        if row.status is CertificateStatus.REVOKED:
            raise WrongState(f"certificate {row.serial} is already revoked",
                             reason="CERTIFICATE_REVOKED")
        refund = cancellation(row.issued_at, self.clock(), row.fee_krw,
                              self.settings.refund_deduction_krw,
                              self.settings.cancellation_days)
        self.ca.revoke(int(row.serial, 16), RevocationReason.CANCELLED.crl_reason)

        def store(tx: Tx) -> repo.CertificateRow:
            current = self._certificate(tx, caller, serial, lock=True)
            repo.set_status(tx, current, CertificateStatus.REVOKED,
                            RevocationReason.CANCELLED.value, self.clock(),
                            refund_krw=refund.refunded_krw)
            self._audit(tx, "cancel", f"certificate:{current.serial}", "ok",
                        {"operator": operator, "fee_krw": refund.fee_krw,
                         "refund_krw": refund.refunded_krw,
                         "deducted_krw": refund.deducted_krw})
            return self._certificate(tx, caller, serial)

        updated = self.app.db.run(store)
        self.checker.forget(row.der)
        return Cancelled(updated, refund.fee_krw, refund.refunded_krw)

    def revoke(self, caller: Caller, serial: str, reason: RevocationReason,
               operator: str) -> repo.CertificateRow:
        operator = validate.text(operator, "operator", required=True)
        row = self.app.db.run(lambda tx: self._certificate(tx, caller, serial), write=False)
        if row.status is CertificateStatus.REVOKED:
            raise WrongState(f"certificate {row.serial} is already revoked",
                             reason="CERTIFICATE_REVOKED")
        self.ca.revoke(int(row.serial, 16), reason.crl_reason)
        return self._set(caller, row, CertificateStatus.REVOKED, reason.value, "revoke",
                         {"reason": reason.value, "article": reason.article,
                          "operator": operator})

    def end_use(self, caller: Caller, serial: str, cause: EndOfUse,
                operator: str) -> repo.CertificateRow:
        """CA art. 9: expiry is recorded; death, a lost or leaked key, fraudulent issuance
        revoke the certificate."""
        revocation = cause.revocation
        if revocation is not None:
            return self.revoke(caller, serial, revocation, operator)
        operator = validate.text(operator, "operator", required=True)
        row = self.app.db.run(lambda tx: self._certificate(tx, caller, serial), write=False)
        if effective(row.status, row.not_after, self.clock()) is not CertificateStatus.EXPIRED:
            raise WrongState(f"certificate {row.serial} has not expired (valid until "
                             f"{row.not_after.isoformat()})", reason="NOT_EXPIRED")

        def store(tx: Tx) -> repo.CertificateRow:
            self._audit(tx, "end_use", f"certificate:{row.serial}", "expired",
                        {"operator": operator, "article": "CA art. 9(4)"})
            return self._certificate(tx, caller, serial)

        return self.app.db.run(store)

    def suspend(self, caller: Caller, serial: str, operator: str,
                reason: str) -> repo.CertificateRow:
        operator = validate.text(operator, "operator", required=True)
        reason = validate.text(reason, "reason", required=True)
        row = self.app.db.run(lambda tx: self._certificate(tx, caller, serial), write=False)
        if row.status is not CertificateStatus.ACTIVE:
            raise WrongState(f"certificate {row.serial} is {row.status.value}",
                             reason="CERTIFICATE_NOT_ACTIVE")
        self.ca.suspend(int(row.serial, 16))
        return self._set(caller, row, CertificateStatus.SUSPENDED, reason, "suspend",
                         {"operator": operator, "reason": reason})

    def restore(self, caller: Caller, serial: str, operator: str) -> repo.CertificateRow:
        operator = validate.text(operator, "operator", required=True)
        row = self.app.db.run(lambda tx: self._certificate(tx, caller, serial), write=False)
        if row.status is not CertificateStatus.SUSPENDED:
            raise WrongState(f"certificate {row.serial} is {row.status.value}, not suspended",
                             reason="CERTIFICATE_NOT_SUSPENDED")
        self.ca.restore(int(row.serial, 16))
        return self._set(caller, row, CertificateStatus.ACTIVE, "", "restore",
                         {"operator": operator})

    def update_subscriber(self, caller: Caller, serial: str, changes: dict[str, str],
                          operator: str) -> repo.CertificateRow:
        """Contact data at the CA (phone, e-mail) change; authd records which fields did,
        not their values (they are the customer's personal data)."""
        operator = validate.text(operator, "operator", required=True)
        allowed = {"phone", "email"}
        if not changes or set(changes) - allowed:
            raise BadRequest("subscriber changes are phone and/or email", field="changes")
        for name, value in changes.items():
            validate.text(value, name, required=True, max_length=128)
        row = self.app.db.run(lambda tx: self._certificate(tx, caller, serial), write=False)
        self.ca.update_subscriber(int(row.serial, 16), changes)

        def store(tx: Tx) -> repo.CertificateRow:
            self._audit(tx, "update_subscriber", f"certificate:{row.serial}", "ok",
                        {"operator": operator, "fields": sorted(changes)})
            return self._certificate(tx, caller, serial)

        return self.app.db.run(store)

    def _set(self, caller: Caller, row: repo.CertificateRow, status: CertificateStatus,
             reason: str, action: str, detail: dict[str, Any]) -> repo.CertificateRow:
        def store(tx: Tx) -> repo.CertificateRow:
            current = self._certificate(tx, caller, row.serial, lock=True)
            repo.set_status(tx, current, status, reason, self.clock())
            self._audit(tx, action, f"certificate:{row.serial}", "ok", detail)
            return self._certificate(tx, caller, row.serial)

        updated = self.app.db.run(store)
        self.checker.forget(row.der)
        return updated

    # --------------------------------------------------- another bank's certificate
    def register_external(self, caller: Caller, *, customer_ref: str, certificate: bytes,
                          storage: StorageLocation, proof: Proof | None,
                          operator: str) -> repo.CertificateRow:
        """Register a certificate another bank issued: additional authentication, then the
        relying checks (it must be valid now)."""
        customer_ref = validate.text(customer_ref, "customer_ref", required=True, max_length=64)
        operator = validate.text(operator, "operator", required=True)
        if proof is None:
            raise BadRequest("registering another bank's certificate needs additional "
                             "authentication", field="proof")
        cert = load(certificate)
        require(self.additional.verify(caller.institution, customer_ref, proof,
                                       Purpose.REGISTER_OTHER_BANK))
        enforce(self.checker.check(certificate))
        code = _type_of(cert, self.settings)
        record = self._new_row(caller, customer_ref, code, cert,
                               media.Stored(certificate, ""), storage, "registered", "")

        def store(tx: Tx) -> repo.CertificateRow:
            if repo.find_by_fingerprint(tx, caller.institution, record.fingerprint):
                from devices.errors import AlreadyPresent

                raise AlreadyPresent(f"certificate {record.serial} is already registered at "
                                     f"{caller.institution}")
            repo.insert_certificate(tx, record)
            self._audit(tx, "register_external", f"certificate:{record.serial}", "ok",
                        {"customer_ref": customer_ref, "operator": operator,
                         "issuer": record.issuer})
            return record

        return self.app.db.run(store)

    # ------------------------------------------------------------------ queries
    def get(self, caller: Caller, serial: str) -> repo.CertificateRow:
        return self.app.db.run(lambda tx: self._certificate(tx, caller, serial), write=False)

    def customer(self, caller: Caller, customer_ref: str) -> list[repo.CertificateRow]:
        customer_ref = validate.text(customer_ref, "customer_ref", required=True, max_length=64)
        return self.app.db.run(lambda tx: repo.customer_certificates(
            tx, caller.institution, customer_ref), write=False)

    def expiring(self, caller: Caller) -> list[repo.CertificateRow]:
        """CA art. 16(1)4: the caller's certificates whose renewal window is open now."""
        now = self.clock()
        until = now + dt.timedelta(days=self.settings.renewal_window_days)
        return self.app.db.run(lambda tx: repo.expiring(tx, caller.institution, now, until),
                               write=False)

    def expiring_counts(self) -> dict[str, int]:
        now = self.clock()
        until = now + dt.timedelta(days=self.settings.renewal_window_days)
        return self.app.db.run(lambda tx: repo.count_expiring(tx, now, until), write=False)

    def check(self, certificate: bytes) -> Reliance:
        return self.checker.check(certificate)

    def verify_signature(self, certificate: bytes, signature: bytes, *, data: bytes | None,
                         digest: bytes | None) -> tuple[Reliance, bool]:
        """A signature presented as a means of authentication: the certificate's checks,
        then the signature itself (SHA-256; ECDSA or RSA PKCS#1 v1.5)."""
        cert = load(certificate)
        reliance = self.checker.check(certificate)
        return reliance, _signature_ok(cert, signature, data, digest)

    # ------------------------------------------------------------- one-time numbers
    def one_time_number(self, caller: Caller, customer_ref: str,
                        operator: str) -> tuple[str, dt.datetime]:
        customer_ref = validate.text(customer_ref, "customer_ref", required=True, max_length=64)
        operator = validate.text(operator, "operator", required=True)
        return self.additional.numbers.issue(caller.institution, customer_ref, operator)


def _renewal_refusal(state: RenewalState) -> str:
    if state is RenewalState.EXPIRED:
        return ("the renewal period ended at 23:59:59 (Korean time) on the expiry day: the "
                "certificate can only be reissued")
    if state is RenewalState.VALID:
        return ("renewal opens 60 days before expiry (00:00 Korean time) and lasts until "
                "23:59:59 on the expiry day")
    return f"the certificate is {state.value}: it cannot be renewed"


def _serial(value: str) -> str:
    value = value.strip().lower().removeprefix("0x")
    if not value or len(value) > 40 or any(c not in "0123456789abcdef" for c in value):
        raise BadRequest("serial must be 1..40 hexadecimal digits", field="serial")
    return value.lstrip("0") or "0"


def _type_of(cert: x509.Certificate, settings: CertificateSettings) -> \
        cert_types.CertificateType:
    """Another CA's certificate: its type is not ours to price; recorded as the first
    (free) type."""
    del cert
    return settings.types[0]


def _signature_ok(cert: x509.Certificate, signature: bytes, data: bytes | None,
                  digest: bytes | None) -> bool:
    if (data is None) == (digest is None):
        raise BadRequest("give data or digest", field="data")
    if digest is not None and len(digest) != 32:
        raise BadRequest("digest must be 32 bytes (SHA-256)", field="digest")
    key = cert.public_key()
    algorithm: Any = utils.Prehashed(hashes.SHA256()) if digest is not None else hashes.SHA256()
    message = digest if digest is not None else data
    assert message is not None
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), algorithm)
        else:
            return False
    except InvalidSignature:
        return False
    return True
