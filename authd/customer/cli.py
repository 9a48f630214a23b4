"""authctl customer ...: a customer's media, and the branch registrations of tokens and
smartcards, as the center holds them (backend and branch roles)."""

from __future__ import annotations

import argparse
import hashlib
from typing import Any

from authd.ctl import EXIT_OK, EXIT_REFUSED, enum_label, read_input, when
from authd.v1 import customer_pb2 as pb
from authd.v1 import customer_pb2_grpc as pb_grpc
from authd.v1 import otp_pb2
from authd.v1 import policy_pb2 as policy_pb

KINDS = {"token": pb.MEDIUM_KIND_HSM_TOKEN, "smartcard": pb.MEDIUM_KIND_SMARTCARD}
CUSTOMER_KINDS = {"personal": policy_pb.CUSTOMER_KIND_PERSONAL,
                  "corporate": policy_pb.CUSTOMER_KIND_CORPORATE}


def _kind(value: int) -> str:
    return enum_label(pb.MediumKind, value, "MEDIUM_KIND_")


def medium_lines(m: pb.CustomerMedium) -> list[str]:
    state = enum_label(pb.MediumState, m.state, "MEDIUM_STATE_")
    channel = enum_label(otp_pb2.RegistrationChannel, m.channel, "REGISTRATION_CHANNEL_")
    head = f"{_kind(m.kind)} {m.serial}: {state}"
    facts = [f"registered {when(m.registered_at)} ({channel})"]
    if m.kind in (pb.MEDIUM_KIND_HSM_TOKEN, pb.MEDIUM_KIND_SMARTCARD):
        facts.append(("registered at a branch" if m.branch_registered else "no branch "
                      "registration") + (f", terminal {m.terminal}" if m.terminal else ""))
    else:
        facts.append(f"failures {m.consecutive_failures}, attempts left {m.attempts_left}")
        if m.issued_here:
            facts.append("issued here")
    if m.replaced_by:
        facts.append(f"replaced by {m.replaced_by}")
    return [head, "  " + "; ".join(facts)]


def media_lines(m: pb.ListCustomerMediaResponse) -> list[str]:
    if not m.media:
        return [f"customer {m.customer_id}: no media registered here"]
    lines = [f"customer {m.customer_id}: {len(m.media)} medium/media"]
    for medium in m.media:
        lines += ["  " + line for line in medium_lines(medium)]
    return lines


def key_fingerprint(public_key_der: bytes) -> str:
    """How a registered signing key is shown: the SHA-256 of its SubjectPublicKeyInfo, the
    first 16 bytes in hex (what a certificate viewer shows as the key's fingerprint)."""
    return hashlib.sha256(public_key_der).hexdigest()[:32]


def registration_lines(r: pb.BranchRegistration) -> list[str]:
    state = "active" if r.active else f"ended {when(r.deregistered_at)}"
    key = (f"signing key sha256:{key_fingerprint(r.public_key)}" if r.public_key
           else "no signing key")
    return [f"registration {r.id}: {_kind(r.kind)} {r.serial} for customer {r.customer_id} at "
            f"{r.institution}: {state}",
            f"  registered {when(r.registered_at)} at terminal {r.terminal} by {r.operator_id}"
            f"; {key}"]


def kind_change_lines(m: pb.CustomerKindChange) -> list[str]:
    def name(value: int) -> str:
        return enum_label(policy_pb.CustomerKind, value, "CUSTOMER_KIND_")

    if not m.changed:
        return [f"customer {m.customer_id} is {name(m.kind)} already: nothing changed"]
    lines = [f"customer {m.customer_id}: {name(m.previous_kind)} -> {name(m.kind)}; "
             "its registrations stay as they are"]
    if m.foreign_otps_by_master:
        lines.append("  other institutions' OTP devices confirmed as the master "
                     f"administrator's: {', '.join(m.foreign_otps_by_master)}")
    if m.limits_lowered:
        lines.append(f"  own limits lowered to {m.customer.own_per_transfer_krw:,} KRW per "
                     f"transfer, {m.customer.own_daily_krw:,} KRW per day")
    return lines


def _stub(ctl: Any) -> pb_grpc.CustomerServiceStub:
    return pb_grpc.CustomerServiceStub(ctl.channel)


def _registrations(ctl: Any) -> pb_grpc.BranchRegistrationServiceStub:
    return pb_grpc.BranchRegistrationServiceStub(ctl.channel)


def _media(ctl: Any, a: argparse.Namespace) -> None:
    ctl.show(_stub(ctl).ListCustomerMedia(pb.ListCustomerMediaRequest(
        customer_id=a.customer, include_ended=a.all), timeout=a.timeout), media_lines)


def _change_kind(ctl: Any, a: argparse.Namespace) -> None:
    ctl.show(_stub(ctl).ChangeCustomerKind(pb.ChangeCustomerKindRequest(
        customer_id=a.customer, kind=CUSTOMER_KINDS[a.kind], operator_id=a.operator,
        master_administrator=a.master_administrator, reason=a.reason or ""),
        timeout=a.timeout), kind_change_lines)


def _list(ctl: Any, a: argparse.Namespace) -> None:
    resp = _registrations(ctl).ListRegistrations(pb.ListRegistrationsRequest(
        kind=KINDS.get(a.kind or "", pb.MEDIUM_KIND_UNSPECIFIED), serial=a.serial or "",
        customer_id=a.customer or "", include_ended=a.all), timeout=a.timeout)
    ctl.show(resp, lambda m: [line for r in m.registrations for line in registration_lines(r)]
             or ["no registrations"])


def _register(ctl: Any, a: argparse.Namespace) -> None:
    public_key = read_input(a.public_key, "the signing key") if a.public_key else b""
    ctl.show(_registrations(ctl).RegisterMedium(pb.RegisterMediumRequest(
        kind=KINDS[a.kind], serial=a.serial, customer_id=a.customer, operator_id=a.operator,
        terminal=a.terminal or "", public_key=public_key), timeout=a.timeout),
        registration_lines)


def _deregister(ctl: Any, a: argparse.Namespace) -> None:
    ctl.show(_registrations(ctl).DeregisterMedium(pb.DeregisterMediumRequest(
        kind=KINDS[a.kind], serial=a.serial, customer_id=a.customer, operator_id=a.operator,
        reason=a.reason), timeout=a.timeout), registration_lines)


def _exemption(ctl: Any, a: argparse.Namespace) -> int:
    resp = _registrations(ctl).CheckExemption(pb.CheckExemptionRequest(
        kind=KINDS[a.kind], serial=a.serial, customer_id=a.customer), timeout=a.timeout)

    def render(m: pb.CheckExemptionResponse) -> list[str]:
        head = ("EXEMPT from additional authentication" if m.exempt
                else "NOT EXEMPT: additional authentication needed")
        lines = [f"{head}: {m.reason}"]
        if m.HasField("registration"):
            lines += registration_lines(m.registration)
        return lines

    ctl.show(resp, render)
    return EXIT_OK if resp.exempt else EXIT_REFUSED


def add_commands(sub: Any) -> None:
    cust = sub.add_parser("customer", help="a customer's media and the branch registrations of "
                                           "tokens and smartcards (at the center)")
    cmds = cust.add_subparsers(dest="customer_command", required=True, metavar="ACTION")

    p = cmds.add_parser("media", help="the media your institution's customer holds, with "
                                      "their states")
    p.add_argument("customer", help="your institution's customer reference")
    p.add_argument("--all", action="store_true", help="also media no longer in use")
    p.set_defaults(run=_media)

    p = cmds.add_parser("kind", help="(branch) make your institution's customer personal or "
                                     "corporate (the corporate master rule applies)")
    p.add_argument("customer", help="your institution's customer reference")
    p.add_argument("kind", choices=sorted(CUSTOMER_KINDS))
    p.add_argument("--operator", required=True, help="teller's operator id")
    p.add_argument("--master-administrator", action="store_true",
                   help="to corporate: the customer's master administrator is here with the "
                        "other institutions' OTP devices registered at a branch")
    p.add_argument("--reason", help="why (audited)")
    p.set_defaults(run=_change_kind)

    p = cmds.add_parser("registrations", help="branch registrations of a serial or a customer")
    p.add_argument("--serial")
    p.add_argument("--customer")
    p.add_argument("--kind", choices=sorted(KINDS), help="default: tokens and smartcards")
    p.add_argument("--all", action="store_true", help="also ended registrations")
    p.set_defaults(run=_list)

    p = cmds.add_parser("register", help="(branch) record at the center that the customer's "
                                         "token or smartcard was checked at this branch "
                                         "(prefer token register / smartcard register, which "
                                         "check the medium themselves)")
    p.add_argument("kind", choices=sorted(KINDS))
    p.add_argument("serial", help="the token's serial or the card's GUID (hex)")
    p.add_argument("--customer", required=True, help="your institution's customer reference")
    p.add_argument("--operator", required=True, help="teller's operator id")
    p.add_argument("--terminal", help="default: your certificate's name")
    p.add_argument("--public-key", metavar="FILE",
                   help="the key the medium signs transfers with: a PEM or DER public key or "
                        "certificate (- for standard input)")
    p.set_defaults(run=_register)

    p = cmds.add_parser("deregister", help="(branch) end the medium's registration for the "
                                           "customer (no medium needed)")
    p.add_argument("kind", choices=sorted(KINDS))
    p.add_argument("serial")
    p.add_argument("--customer", required=True)
    p.add_argument("--operator", required=True)
    p.add_argument("--reason", required=True)
    p.set_defaults(run=_deregister)

    p = cmds.add_parser("exemption", help="is the customer's token registered at a branch of "
                                          "your institution (no additional authentication)? "
                                          "exit status 3 unless exempt")
    p.add_argument("serial")
    p.add_argument("--customer", required=True)
    p.add_argument("--kind", choices=sorted(KINDS), default="token")
    p.set_defaults(run=_exemption)
