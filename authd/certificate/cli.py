"""authctl certificate ...: certificates at a teller's terminal and for a backend.

``issue`` runs the five steps of DOMAIN §6 in one command (type; identity checked by the
teller; the customer's OTP code or security-card answer; the account; the storage location),
onto the customer's token (``--token-session``, from ``authctl token login``), smartcard
(``--card READER``, the card PIN asked) or disk (``--disk NAME``, the certificate password
asked twice). Secrets are never command-line values.
"""

from __future__ import annotations

import argparse
from typing import Any

from authd.ctl import (
    EXIT_OK,
    EXIT_REFUSED,
    CommandError,
    add_secret_options,
    enum_label,
    read_input,
    read_secrets,
    when,
)
from authd.v1 import certificate_pb2 as pb
from authd.v1 import certificate_pb2_grpc

REASONS = {"subscriber-request": pb.REVOCATION_REASON_SUBSCRIBER_REQUEST,
           "holder-dead": pb.REVOCATION_REASON_HOLDER_DEAD,
           "key-lost": pb.REVOCATION_REASON_KEY_LOST,
           "key-leaked": pb.REVOCATION_REASON_KEY_LEAKED,
           "fraudulent": pb.REVOCATION_REASON_FRAUDULENT,
           "subscriber-data-changed": pb.REVOCATION_REASON_SUBSCRIBER_DATA_CHANGED}
CAUSES = {"expired": pb.END_OF_USE_EXPIRED, "holder-dead": pb.END_OF_USE_HOLDER_DEAD,
          "key-lost": pb.END_OF_USE_KEY_LOST, "key-leaked": pb.END_OF_USE_KEY_LEAKED,
          "fraudulent": pb.END_OF_USE_FRAUDULENT}


def _stub(ctl: Any) -> certificate_pb2_grpc.CertificateServiceStub:
    return certificate_pb2_grpc.CertificateServiceStub(ctl.channel)


def certificate_lines(c: pb.Certificate) -> list[str]:
    status = enum_label(pb.CertificateStatus, c.status, "CERTIFICATE_STATUS_")
    renewal = enum_label(pb.RenewalState, c.renewal, "RENEWAL_STATE_")
    storage = enum_label(pb.StorageLocation, c.storage, "STORAGE_LOCATION_")
    lines = [f"certificate {c.serial} ({c.certificate_type}, {c.origin}) for customer "
             f"{c.customer_ref}: {status}" + (f" ({c.status_reason})" if c.status_reason else ""),
             f"  subject {c.subject}",
             f"  on {storage} {c.location}".rstrip(),
             f"  valid {when(c.not_before)} to {when(c.not_after)}; {renewal}: renewable "
             f"{c.renewable_from} .. {c.renewable_until}"]
    if c.fee_krw:
        lines.append(f"  fee {c.fee_krw:,} KRW" + (f", refunded {c.refund_krw:,} KRW"
                                                    if c.refund_krw >= 0 else ""))
    if c.replaced_by:
        lines.append(f"  replaced by {c.replaced_by}")
    return lines


def list_lines(m: pb.ListCertificatesResponse) -> list[str]:
    lines: list[str] = []
    for c in m.certificates:
        lines += certificate_lines(c)
    return lines or ["no certificates"]


def check_lines(c: pb.CertificateCheck) -> list[str]:
    verdict = enum_label(pb.Verdict, c.verdict, "VERDICT_")
    lines = [f"{'ALLOWED' if c.allowed else 'REFUSED'}: {verdict}: {c.message}"]
    if c.source:
        lines.append(f"  status from {c.source}, next update {when(c.next_update)}")
    return lines


def _storage(a: argparse.Namespace) -> dict[str, Any]:
    chosen = [x for x in (a.token_session, a.card, a.disk) if x]
    if len(chosen) != 1:
        raise CommandError("choose one storage location: --token-session, --card or --disk")
    if a.token_session:
        return {"token": pb.TokenStorage(session=a.token_session)}
    if a.card:
        (pin,) = read_secrets(a, ["card PIN"], flag="secret")
        return {"smartcard": pb.SmartcardStorage(reader=a.card, pin=pin)}
    (password,) = read_secrets(a, ["certificate password"], flag="secret",
                               confirm=("certificate password",))
    return {"disk": pb.DiskStorage(disk=a.disk, password=password, removable=a.removable)}


def _storage_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--token-session", metavar="HANDLE", help="onto the logged-in token")
    p.add_argument("--card", metavar="READER", help="onto the smartcard in READER")
    p.add_argument("--disk", metavar="NAME", help="onto a configured disk (NPKI layout)")
    p.add_argument("--removable", action="store_true", help="the disk is removable (USB)")
    add_secret_options(p, "secret", "card PIN, certificate password or one-time number")


def _issue(ctl: Any, a: argparse.Namespace) -> int:
    s, t = _stub(ctl), a.timeout
    storage = _storage(a)
    proof = None
    if a.reissue:
        (value,) = read_secrets(a, ["one-time number"], flag="secret") if not a.proof_sms \
            else ([a.proof_sms])
        kind = pb.AdditionalProof.SMS if a.proof_sms else pb.AdditionalProof.BRANCH_NUMBER
        proof = pb.AdditionalProof(kind=kind, value=value)
    if not a.otp and not a.card_challenge:
        raise CommandError("step 3 needs the customer's --otp SERIAL --otp-code CODE or "
                           "--card-challenge ID --card-answer DIGITS")
    req = s.OpenIssuance(pb.OpenIssuanceRequest(
        customer_ref=a.customer, certificate_type=a.type, subscriber_name=a.name,
        reissue=a.reissue, replaces_serial=a.replaces or "", operator=a.operator,
        proof=proof), timeout=t)
    print(f"issuance request {req.id}: {req.certificate_type}, fee {req.fee_krw:,} KRW")
    step = pb.AdvanceIssuanceRequest
    s.AdvanceIssuance(step(request_id=req.id, step=pb.ISSUANCE_STEP_IDENTITY,
                           operator=a.operator, identity_document=a.document), timeout=t)
    s.AdvanceIssuance(step(request_id=req.id, step=pb.ISSUANCE_STEP_SECURITY_MEANS,
                           operator=a.operator, otp_serial=a.otp or "",
                           otp_code=a.otp_code or "", card_challenge_id=a.card_challenge or "",
                           card_answer=a.card_answer or ""), timeout=t)
    s.AdvanceIssuance(step(request_id=req.id, step=pb.ISSUANCE_STEP_ACCOUNT,
                           operator=a.operator, account=a.account), timeout=t)
    cert = s.CompleteIssuance(pb.CompleteIssuanceRequest(request_id=req.id, **storage),
                              timeout=t)
    ctl.show(cert, certificate_lines)
    return EXIT_OK


def _check(ctl: Any, a: argparse.Namespace) -> int:
    der = read_input(a.file, "the certificate")
    answer = _stub(ctl).CheckCertificate(pb.CheckCertificateRequest(certificate=der),
                                         timeout=a.timeout)
    ctl.show(answer, check_lines)
    return EXIT_OK if answer.allowed else EXIT_REFUSED


def _simple(method: str, build: Any, render: Any = certificate_lines) -> Any:
    def run(ctl: Any, a: argparse.Namespace) -> int:
        ctl.show(getattr(_stub(ctl), method)(build(a), timeout=a.timeout), render)
        return EXIT_OK
    return run


def _cancel_lines(m: pb.CancelCertificateResponse) -> list[str]:
    return [*certificate_lines(m.certificate),
            f"  cancelled: fee {m.fee_krw:,} KRW, refund {m.refund_krw:,} KRW"]


def add_commands(sub: Any) -> None:
    top = sub.add_parser("certificate", help="certificates: issue onto a token, card or disk, "
                                             "renew, reissue, revoke; status and checks")
    cmds = top.add_subparsers(dest="certificate_command", required=True, metavar="ACTION")

    p = cmds.add_parser("issue", help="(branch) the five issuance steps onto a medium")
    p.add_argument("customer", help="the institution's customer reference")
    p.add_argument("--name", required=True, help="the subscriber's name (as checked)")
    p.add_argument("--type", default="banking", help="certificate type (banking, universal, "
                                                     "e_tax)")
    p.add_argument("--operator", required=True)
    p.add_argument("--document", required=True, help="the identity document checked")
    p.add_argument("--otp", metavar="SERIAL")
    p.add_argument("--otp-code")
    p.add_argument("--card-challenge", metavar="ID")
    p.add_argument("--card-answer")
    p.add_argument("--account", required=True)
    p.add_argument("--reissue", action="store_true",
                   help="a reissue: needs additional authentication (one-time number asked)")
    p.add_argument("--replaces", metavar="SERIAL", help="reissue: the certificate replaced")
    p.add_argument("--proof-sms", metavar="CODE", help="reissue: an SMS code instead")
    _storage_options(p)
    p.set_defaults(run=_issue)

    p = cmds.add_parser("renew", help="(branch) renew inside the window, on the same medium")
    p.add_argument("serial")
    _storage_options(p)
    p.set_defaults(run=lambda ctl, a: ctl.show(_stub(ctl).RenewCertificate(
        pb.RenewCertificateRequest(serial=a.serial, **_storage(a)), timeout=a.timeout),
        certificate_lines))

    p = cmds.add_parser("revoke", help="(branch) revoke at the CA")
    p.add_argument("serial")
    p.add_argument("--reason", choices=sorted(REASONS), required=True)
    p.add_argument("--operator", required=True)
    p.set_defaults(run=_simple("RevokeCertificate", lambda a: pb.RevokeCertificateRequest(
        serial=a.serial, reason=REASONS[a.reason], operator=a.operator)))

    p = cmds.add_parser("suspend", help="(branch) suspend (can be restored)")
    p.add_argument("serial")
    p.add_argument("--operator", required=True)
    p.add_argument("--reason", required=True)
    p.set_defaults(run=_simple("SuspendCertificate", lambda a: pb.SuspendCertificateRequest(
        serial=a.serial, operator=a.operator, reason=a.reason)))

    p = cmds.add_parser("restore", help="(branch) restore a suspended certificate")
    p.add_argument("serial")
    p.add_argument("--operator", required=True)
    p.set_defaults(run=_simple("RestoreCertificate", lambda a: pb.RestoreCertificateRequest(
        serial=a.serial, operator=a.operator)))

    p = cmds.add_parser("cancel", help="(branch) cancel within 7 days of issuance: refund")
    p.add_argument("serial")
    p.add_argument("--operator", required=True)
    p.set_defaults(run=_simple("CancelCertificate", lambda a: pb.CancelCertificateRequest(
        serial=a.serial, operator=a.operator), _cancel_lines))

    p = cmds.add_parser("end-use", help="(branch) end of use (CA art. 9)")
    p.add_argument("serial")
    p.add_argument("--cause", choices=sorted(CAUSES), required=True)
    p.add_argument("--operator", required=True)
    p.set_defaults(run=_simple("EndCertificateUse", lambda a: pb.EndCertificateUseRequest(
        serial=a.serial, cause=CAUSES[a.cause], operator=a.operator)))

    p = cmds.add_parser("one-time-number", help="(branch) register a one-time number for "
                                                "additional authentication; shown once")
    p.add_argument("customer")
    p.add_argument("--operator", required=True)
    p.set_defaults(run=_simple("IssueOneTimeNumber", lambda a: pb.IssueOneTimeNumberRequest(
        customer_ref=a.customer, operator=a.operator),
        lambda m: [f"one-time number {m.number} (valid until {when(m.expires_at)})"]))

    p = cmds.add_parser("status", help="(backend, branch) one certificate's record")
    p.add_argument("serial")
    p.set_defaults(run=_simple("GetCertificate", lambda a: pb.GetCertificateRequest(
        serial=a.serial)))

    p = cmds.add_parser("customer", help="(backend, branch) a customer's certificates")
    p.add_argument("customer")
    p.set_defaults(run=_simple("ListCustomerCertificates",
                               lambda a: pb.ListCustomerCertificatesRequest(
                                   customer_ref=a.customer), list_lines))

    p = cmds.add_parser("expiring", help="(backend, branch) certificates in their renewal "
                                         "window (CA art. 16)")
    p.set_defaults(run=_simple("ListExpiringCertificates",
                               lambda a: pb.ListExpiringCertificatesRequest(), list_lines))

    p = cmds.add_parser("check", help="(backend) validity, chain and revocation of a "
                                      "certificate file (DER or PEM; - for stdin)")
    p.add_argument("file")
    p.set_defaults(run=_check)
