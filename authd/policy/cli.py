"""authctl policy ...: transfer authorisation for tellers (grades, limits, designated terminals,
counters) and for backend operators (a decision, explained)."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from authd.ctl import EXIT_OK, EXIT_REFUSED, CommandError, enum_label, when
from authd.v1 import policy_pb2 as pb
from authd.v1 import policy_pb2_grpc

KINDS = {"personal": pb.CUSTOMER_KIND_PERSONAL, "corporate": pb.CUSTOMER_KIND_CORPORATE}
GRADES: dict[str, Any] = {"personal-safe": pb.SECURITY_GRADE_PERSONAL_SAFE,
          "personal-general": pb.SECURITY_GRADE_PERSONAL_GENERAL,
          "corporate-safe": pb.SECURITY_GRADE_CORPORATE_SAFE}
INPUTS = {"user-password": pb.INPUT_USER_PASSWORD,
          "certificate-password": pb.INPUT_CERTIFICATE_PASSWORD,
          "security-card-answer": pb.INPUT_SECURITY_CARD_ANSWER,
          "account-password": pb.INPUT_ACCOUNT_PASSWORD}
ADDITIONAL: dict[str, Any] = {"sms": pb.ADDITIONAL_SMS, "ars": pb.ADDITIONAL_ARS,
              "two-channel": pb.ADDITIONAL_TWO_CHANNEL}
CHANNELS = {"internet-banking": pb.CHANNEL_INTERNET_BANKING,
            "e-commerce": pb.CHANNEL_E_COMMERCE, "ars-atm": pb.CHANNEL_ARS_ATM,
            "e-money": pb.CHANNEL_E_MONEY}
LIFTS = {"online": pb.LIFT_ONLINE, "call-centre": pb.LIFT_CALL_CENTRE, "branch": pb.LIFT_BRANCH}
ROLES: dict[str, Any] = {"master": pb.CORPORATE_MASTER, "employee": pb.CORPORATE_EMPLOYEE}
DEVICE_FIELDS = ("ip", "mac", "hdd_serial", "usb_serial", "os_version", "browser_version",
                 "phone_id")


def _stub(ctl: Any) -> policy_pb2_grpc.PolicyServiceStub:
    return policy_pb2_grpc.PolicyServiceStub(ctl.channel)


def _krw(n: int) -> str:
    return f"{n:,} KRW"


def _grade(g: int) -> str:
    return enum_label(pb.SecurityGrade, g, "SECURITY_GRADE_") if g else "none"


def decision_lines(d: pb.TransferDecision) -> list[str]:
    outcome = enum_label(pb.DecisionOutcome, d.outcome, "DECISION_").upper()
    lines = [f"{outcome}  decision {d.decision_id}  ({d.customer_id}, {_krw(d.amount_krw)}, "
             f"{when(d.decided_at)}, day {d.day})"]
    for r in d.reasons:
        lines.append(f"  [{r.code}] {r.message}")
    if d.grade:
        lines.append(f"  grade {_grade(d.grade)}")
    if d.daily_limit_krw:
        lines.append(f"  limits {_krw(d.per_transfer_limit_krw)} per transfer, "
                     f"{_krw(d.daily_limit_krw)} per day; consumed {_krw(d.consumed_krw)}, "
                     f"used today {_krw(d.used_today_krw)}, left today {_krw(d.daily_left_krw)}")
    if d.additional_kinds:
        lines.append("  additional authentication accepted: " + ", ".join(
            enum_label(pb.AdditionalAuthentication, k, "ADDITIONAL_") for k in
            d.additional_kinds))
    if d.exemptions:
        lines.append("  exempt from additional authentication: " + ", ".join(d.exemptions))
    if d.no_certificate:
        lines.append(f"  no certificate needed: {d.no_certificate}")
    if d.attempts_left >= 0:
        lines.append(f"  attempts left {d.attempts_left}")
    if d.released:
        lines.append("  cancelled: its amount was given back")
    device = {f: getattr(d.device, f) for f in DEVICE_FIELDS if getattr(d.device, f)}
    if device:
        lines.append("  terminal " + ", ".join(f"{k}={v}" for k, v in device.items()))
    if d.HasField("first_decision"):
        lines.append("  first decision of this order:")
        lines.extend("    " + line for line in decision_lines(d.first_decision))
    return lines


def customer_lines(c: pb.PolicyCustomer) -> list[str]:
    kind = enum_label(pb.CustomerKind, c.kind, "CUSTOMER_KIND_")
    lines = [f"customer {c.customer_id} ({kind}): best grade {_grade(c.best_grade)}"
             + (f", SUSPENDED ({c.suspension})" if c.suspension else ""),
             f"  agreement {when(c.agreed_at)}, internet banking registered "
             f"{when(c.registered_at)}, last used {when(c.last_used_at)}"]
    a = c.agreements
    flags = [n for n, on in (("special agreement", a.special_agreement),
                             ("SMS notice of results", a.sms_result_notice),
                             ("overseas departure confirmed", a.overseas_departure_confirmed))
             if on]
    if flags:
        lines.append("  agreements: " + ", ".join(flags))
    for g in c.grades:
        lines.append(f"  {_grade(g.grade):<17} {_krw(g.per_transfer_krw)} per transfer, "
                     f"{_krw(g.daily_krw)} per day (maximum {_krw(g.max_per_transfer_krw)} / "
                     f"{_krw(g.max_daily_krw)})")
    if c.own_daily_krw:
        lines.append(f"  own limits {_krw(c.own_per_transfer_krw)} / {_krw(c.own_daily_krw)}")
    if c.contract_reference:
        lines.append(f"  contract {c.contract_reference} for {_grade(c.contract_grade)}")
    lines.append(f"  today ({c.day}) {_krw(c.used_today_krw)} used; "
                 f"{c.designated_terminals} designated terminal(s)")
    for m in c.media:
        medium = enum_label(pb.PolicyMedium, m.medium, "POLICY_MEDIUM_")
        notes = [n for n, on in (("braille", m.braille), ("issued elsewhere", not m.issued_here),
                                 ("registered online", not m.registered_at_branch)) if on]
        lines.append(f"  {medium} {m.serial}: {m.state}" + (f" ({', '.join(notes)})"
                                                           if notes else ""))
    for k in c.counters:
        if k.failures or k.restricted:
            lines.append(f"  {enum_label(pb.InputKind, k.kind, 'INPUT_')}: {k.message}")
    return lines


def terminal_lines(t: pb.DesignatedTerminal) -> list[str]:
    device = ", ".join(f"{f}={getattr(t.device, f)}" for f in DEVICE_FIELDS
                       if getattr(t.device, f))
    return [f"{t.terminal_id}  {t.label or '-'}  ({t.channel}, {when(t.registered_at)})",
            f"  {device}"]


def _device_args(p: argparse.ArgumentParser) -> None:
    for f in DEVICE_FIELDS:
        p.add_argument(f"--{f.replace('_', '-')}", dest=f, default="",
                       help=f"terminal {f.replace('_', ' ')}")


def _device(a: argparse.Namespace) -> pb.DeviceInfo:
    return pb.DeviceInfo(**{f: getattr(a, f) for f in DEVICE_FIELDS})


def _show_customer(ctl: Any, c: pb.PolicyCustomer) -> None:
    ctl.show(c, customer_lines)


# --------------------------------------------------------------------------- commands

def _setup(ctl: Any, a: argparse.Namespace) -> None:
    _show_customer(ctl, _stub(ctl).SetupCustomer(pb.SetupCustomerRequest(
        customer_id=a.customer, kind=KINDS[a.kind], operator_id=a.operator,
        agreements=pb.CustomerAgreements(special_agreement=a.special_agreement,
                                         sms_result_notice=a.sms_notice,
                                         overseas_departure_confirmed=a.overseas),
        master_administrator=a.master_administrator), timeout=a.timeout))


def _show(ctl: Any, a: argparse.Namespace) -> None:
    _show_customer(ctl, _stub(ctl).GetCustomer(pb.PolicyCustomerRef(customer_id=a.customer),
                                               timeout=a.timeout))


def _limits(ctl: Any, a: argparse.Namespace) -> None:
    _show_customer(ctl, _stub(ctl).SetLimits(pb.SetLimitsRequest(
        customer_id=a.customer, per_transfer_krw=a.per_transfer, daily_krw=a.daily,
        operator_id=a.operator), timeout=a.timeout))


def _contract(ctl: Any, a: argparse.Namespace) -> None:
    if not a.end and not (a.reference and a.grade and a.per_transfer and a.daily):
        raise CommandError("give REFERENCE --grade G --per-transfer N --daily N, or --end")
    _show_customer(ctl, _stub(ctl).RecordContract(pb.RecordContractRequest(
        customer_id=a.customer, reference="" if a.end else a.reference,
        grade=GRADES.get(a.grade or "", 0), per_transfer_krw=a.per_transfer or 0,
        daily_krw=a.daily or 0, operator_id=a.operator), timeout=a.timeout))


def _lift(ctl: Any, a: argparse.Namespace) -> None:
    _show_customer(ctl, _stub(ctl).LiftSuspension(pb.LiftSuspensionRequest(
        customer_id=a.customer, channel=LIFTS[a.channel], strong_login=a.strong_login,
        age=a.age or 0, operator_id=a.operator), timeout=a.timeout))


def _terminals(ctl: Any, a: argparse.Namespace) -> None:
    found = _stub(ctl).ListTerminals(pb.PolicyCustomerRef(customer_id=a.customer),
                                     timeout=a.timeout)
    ctl.show(found, lambda m: [line for t in m.terminals for line in terminal_lines(t)]
             or ["no designated terminal"])


def _designate(ctl: Any, a: argparse.Namespace) -> None:
    ctl.show(_stub(ctl).DesignateTerminal(pb.DesignateTerminalRequest(
        customer_id=a.customer, label=a.label, device=_device(a),
        additional_done=ADDITIONAL.get(a.additional or "", 0)), timeout=a.timeout),
        terminal_lines)


def _remove_terminal(ctl: Any, a: argparse.Namespace) -> None:
    _stub(ctl).RemoveTerminal(pb.RemoveTerminalRequest(
        customer_id=a.customer, terminal_id=a.terminal, reason=a.reason), timeout=a.timeout)
    print(f"terminal {a.terminal} is no longer designated")


def _counter_lines(k: pb.InputCounter) -> list[str]:
    return [f"{enum_label(pb.InputKind, k.kind, 'INPUT_')}: {k.failures} of {k.threshold} "
            f"wrong{' (restricted)' if k.restricted else ''}", f"  {k.message}"]


def _counters(ctl: Any, a: argparse.Namespace) -> None:
    c = _stub(ctl).GetCustomer(pb.PolicyCustomerRef(customer_id=a.customer), timeout=a.timeout)
    ctl.show(c, lambda m: [line for k in m.counters for line in _counter_lines(k)])


def _unlock(ctl: Any, a: argparse.Namespace) -> None:
    ctl.show(_stub(ctl).UnlockInput(pb.UnlockInputRequest(
        customer_id=a.customer, kind=INPUTS[a.kind], password_correct=a.password_correct,
        identity_checked=a.identity_checked, operator_id=a.operator), timeout=a.timeout),
        _counter_lines)


def _authorize(ctl: Any, a: argparse.Namespace) -> int:
    request = pb.AuthorizeTransferRequest(
        customer_id=a.customer, amount_krw=a.amount, to_account=a.to,
        receiving=pb.RECEIVING_OWN_ACCOUNT if a.own else pb.RECEIVING_OTHER,
        channel=CHANNELS[a.channel], device=_device(a),
        additional_done=ADDITIONAL.get(a.additional or "", 0),
        corporate_role=ROLES.get(a.corporate_role or "", 0),
        idempotency_key=a.key or f"authctl-{uuid.uuid4().hex}")
    if a.otp:
        serial, _, code = a.otp.partition(":")
        if not code:
            raise CommandError("--otp SERIAL:CODE")
        request.otp.CopyFrom(pb.OtpPresented(serial=serial, code=code))
    if a.card:
        challenge, _, answer = a.card.partition(":")
        if not answer:
            raise CommandError("--card CHALLENGE_ID:ANSWER")
        request.security_card.CopyFrom(pb.SecurityCardPresented(challenge_id=challenge,
                                                                answer=answer))
    d = _stub(ctl).AuthorizeTransfer(request, timeout=a.timeout)
    ctl.show(d, decision_lines)
    return EXIT_OK if d.outcome == pb.DECISION_APPROVED else EXIT_REFUSED


def _explain(ctl: Any, a: argparse.Namespace) -> None:
    ctl.show(_stub(ctl).ExplainDecision(pb.ExplainDecisionRequest(decision_id=a.decision),
                                        timeout=a.timeout), decision_lines)


def _cancel(ctl: Any, a: argparse.Namespace) -> None:
    ctl.show(_stub(ctl).CancelTransfer(pb.CancelTransferRequest(
        decision_id=a.decision, reason=a.reason), timeout=a.timeout), decision_lines)


def _export(ctl: Any, a: argparse.Namespace) -> None:
    found = _stub(ctl).ExportRecords(pb.ExportRecordsRequest(customer_id=a.customer),
                                     timeout=a.timeout)
    ctl.show(found, lambda m: [line for d in m.decisions for line in decision_lines(d)]
             + [line for t in m.terminals for line in terminal_lines(t)])


def _incident_lines(m: Any) -> list[str]:
    return [f"{i.incident_id}  {i.field}={i.value}  {when(i.reported_at)}  {i.reason}"
            for i in m.incidents] or ["no incident listed by this institution"]


def _report(ctl: Any, a: argparse.Namespace) -> None:
    ctl.show(_stub(ctl).ReportIncident(pb.ReportIncidentRequest(
        device=_device(a), reason=a.reason), timeout=a.timeout), _incident_lines)


def _check(ctl: Any, a: argparse.Namespace) -> int:
    found = _stub(ctl).CheckDevice(pb.CheckDeviceRequest(device=_device(a)), timeout=a.timeout)
    ctl.show(found, lambda m: [f"ON THE INCIDENT LIST: {', '.join(m.fields)}" if m.listed
                               else "not on the incident list"])
    return EXIT_REFUSED if found.listed else EXIT_OK


def _incidents(ctl: Any, a: argparse.Namespace) -> None:
    ctl.show(_stub(ctl).ListIncidents(pb.ListIncidentsRequest(), timeout=a.timeout),
             _incident_lines)


def _withdraw(ctl: Any, a: argparse.Namespace) -> None:
    _stub(ctl).WithdrawIncident(pb.WithdrawIncidentRequest(incident_id=a.incident,
                                                           reason=a.reason), timeout=a.timeout)
    print(f"incident {a.incident} withdrawn")


def add_commands(sub: Any) -> None:
    top = sub.add_parser("policy", help="transfer authorisation: grades, limits, terminals, "
                                        "counters, decisions")
    cmds = top.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")

    def cmd(name: str, fn: Any, help_text: str, customer: bool = True,
            operator: bool = False) -> argparse.ArgumentParser:
        p = cmds.add_parser(name, help=help_text)
        if customer:
            p.add_argument("customer", help="the institution's customer reference")
        if operator:
            p.add_argument("--operator", default="", help="the teller (audited)")
        p.set_defaults(run=fn)
        return p

    p = cmd("setup", _setup, "teller: record a customer's electronic-finance agreement",
            operator=True)
    p.add_argument("--kind", choices=sorted(KINDS), default="personal")
    p.add_argument("--special-agreement", action="store_true")
    p.add_argument("--sms-notice", action="store_true", help="SMS notice of transfer results")
    p.add_argument("--overseas", action="store_true", help="overseas departure confirmed")
    p.add_argument("--master-administrator", action="store_true",
                   help="(corporate) you checked that the master administrator is here with "
                        "the other institutions' OTP devices registered at a branch")
    cmd("show", _show, "a customer's grades, limits, media, today's total and counters")
    p = cmd("limits", _limits, "set the customer's own limits (raised only at a branch)",
            operator=True)
    p.add_argument("per_transfer", type=int, help="KRW per transfer")
    p.add_argument("daily", type=int, help="KRW per day")
    p = cmd("contract", _contract, "teller: a recorded contract above a grade's maximum",
            operator=True)
    p.add_argument("reference", nargs="?", default="")
    p.add_argument("--grade", choices=sorted(GRADES))
    p.add_argument("--per-transfer", type=int)
    p.add_argument("--daily", type=int)
    p.add_argument("--end", action="store_true", help="end the contract")
    p = cmd("lift", _lift, "lift an inactivity suspension", operator=True)
    p.add_argument("--channel", choices=sorted(LIFTS), default="branch")
    p.add_argument("--strong-login", action="store_true")
    p.add_argument("--age", type=int)
    cmd("terminals", _terminals, "the customer's designated terminals")
    p = cmd("designate", _designate, "designate a terminal by its device information")
    p.add_argument("--label", default="")
    p.add_argument("--additional", choices=sorted(ADDITIONAL),
                   help="backend: the additional authentication done")
    _device_args(p)
    p = cmd("remove-terminal", _remove_terminal, "remove a designated terminal")
    p.add_argument("terminal")
    p.add_argument("--reason", default="")
    cmd("counters", _counters, "the customer's identity-input counters")
    p = cmd("unlock", _unlock, "lift an identity-input restriction", operator=True)
    p.add_argument("kind", choices=sorted(INPUTS))
    p.add_argument("--password-correct", action="store_true")
    p.add_argument("--identity-checked", action="store_true")
    p = cmd("authorize", _authorize, "backend: decide a transfer, with the reasons")
    p.add_argument("amount", type=int, help="KRW")
    p.add_argument("--to", default="", help="the receiving account")
    p.add_argument("--own", action="store_true", help="to the customer's own account")
    p.add_argument("--channel", choices=sorted(CHANNELS), default="internet-banking")
    p.add_argument("--otp", help="SERIAL:CODE")
    p.add_argument("--card", help="CHALLENGE_ID:ANSWER")
    p.add_argument("--additional", choices=sorted(ADDITIONAL))
    p.add_argument("--corporate-role", choices=sorted(ROLES))
    p.add_argument("--key", help="idempotency key (default: a new one)")
    _device_args(p)
    p = cmd("explain", _explain, "a decision as it was given, with its reasons",
            customer=False)
    p.add_argument("decision")
    p = cmd("cancel", _cancel, "backend: an approved transfer was not executed",
            customer=False)
    p.add_argument("decision")
    p.add_argument("--reason", default="")
    cmd("export", _export, "a customer's own records (EFT art. 21)")
    p = cmd("report-incident", _report, "list a terminal's device information as an incident",
            customer=False)
    p.add_argument("--reason", required=True)
    _device_args(p)
    p = cmd("check-device", _check, "is a terminal on the incident list", customer=False)
    _device_args(p)
    cmd("incidents", _incidents, "the incidents this institution listed", customer=False)
    p = cmd("withdraw-incident", _withdraw, "withdraw an incident this institution listed",
            customer=False)
    p.add_argument("incident")
    p.add_argument("--reason", required=True)
