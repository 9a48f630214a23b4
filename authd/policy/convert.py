"""proto <-> domain for ``authd.v1.PolicyService``."""

from __future__ import annotations

from authd.enums import EnumMap
from authd.policy import repository as repo
from authd.policy.media import HeldMedium, MediumKind
from authd.policy.service import Answered, CorporateRole, CustomerView
from authd.v1 import policy_pb2 as pb
from devices.policy.counters import Counter, InputKind
from devices.policy.decision import Decision, Outcome
from devices.policy.exemptions import AdditionalKind, Agreements
from devices.policy.grades import CustomerKind, Grade
from devices.policy.inactivity import LiftChannel
from devices.policy.orders import Channel, Purpose, Receiving
from devices.policy.terminals import DeviceInfo

OUTCOME = EnumMap("outcome", {
    Outcome.APPROVED: pb.DECISION_APPROVED,
    Outcome.ADDITIONAL_AUTHENTICATION_REQUIRED: pb.DECISION_ADDITIONAL_AUTHENTICATION_REQUIRED,
    Outcome.OVER_LIMIT: pb.DECISION_OVER_LIMIT,
    Outcome.SUSPENDED: pb.DECISION_SUSPENDED,
    Outcome.MEDIUM_REFUSED: pb.DECISION_MEDIUM_REFUSED,
    Outcome.DEVICE_ON_INCIDENT_LIST: pb.DECISION_DEVICE_ON_INCIDENT_LIST,
    Outcome.AUTHENTICATION_FAILED: pb.DECISION_AUTHENTICATION_FAILED,
    Outcome.DUPLICATE: pb.DECISION_DUPLICATE,
})
GRADE = EnumMap("grade", {Grade.PERSONAL_SAFE: pb.SECURITY_GRADE_PERSONAL_SAFE,
                          Grade.PERSONAL_GENERAL: pb.SECURITY_GRADE_PERSONAL_GENERAL,
                          Grade.CORPORATE_SAFE: pb.SECURITY_GRADE_CORPORATE_SAFE})
KIND = EnumMap("kind", {CustomerKind.PERSONAL: pb.CUSTOMER_KIND_PERSONAL,
                        CustomerKind.CORPORATE: pb.CUSTOMER_KIND_CORPORATE})
ADDITIONAL = EnumMap("additional_done", {AdditionalKind.SMS: pb.ADDITIONAL_SMS,
                                         AdditionalKind.ARS: pb.ADDITIONAL_ARS,
                                         AdditionalKind.TWO_CHANNEL: pb.ADDITIONAL_TWO_CHANNEL})
MEDIUM = EnumMap("medium", {MediumKind.OTP: pb.POLICY_MEDIUM_OTP,
                            MediumKind.SECURITY_CARD: pb.POLICY_MEDIUM_SECURITY_CARD,
                            MediumKind.TOKEN: pb.POLICY_MEDIUM_TOKEN,
                            MediumKind.SMARTCARD: pb.POLICY_MEDIUM_SMARTCARD})
INPUT = EnumMap("kind", {InputKind.USER_PASSWORD: pb.INPUT_USER_PASSWORD,
                         InputKind.CERTIFICATE_PASSWORD: pb.INPUT_CERTIFICATE_PASSWORD,
                         InputKind.SECURITY_CARD_ANSWER: pb.INPUT_SECURITY_CARD_ANSWER,
                         InputKind.ACCOUNT_PASSWORD: pb.INPUT_ACCOUNT_PASSWORD})
RECEIVING = EnumMap("receiving", {Receiving.OWN_ACCOUNT: pb.RECEIVING_OWN_ACCOUNT,
                                  Receiving.OTHER: pb.RECEIVING_OTHER})
CHANNEL = EnumMap("channel", {Channel.INTERNET_BANKING: pb.CHANNEL_INTERNET_BANKING,
                              Channel.E_COMMERCE: pb.CHANNEL_E_COMMERCE,
                              Channel.ARS_ATM: pb.CHANNEL_ARS_ATM,
                              Channel.E_MONEY: pb.CHANNEL_E_MONEY})
PURPOSE = EnumMap("purpose", {Purpose.TRANSFER: pb.PURPOSE_TRANSFER,
                              Purpose.OWN_ACCOUNT_INQUIRY: pb.PURPOSE_OWN_ACCOUNT_INQUIRY})
ROLE = EnumMap("corporate_role", {CorporateRole.MASTER: pb.CORPORATE_MASTER,
                                  CorporateRole.EMPLOYEE: pb.CORPORATE_EMPLOYEE})
LIFT = EnumMap("channel", {LiftChannel.ONLINE: pb.LIFT_ONLINE,
                           LiftChannel.CALL_CENTRE: pb.LIFT_CALL_CENTRE,
                           LiftChannel.BRANCH: pb.LIFT_BRANCH})


def _grade(g: Grade | None) -> pb.SecurityGrade:
    return GRADE.to_pb(g) if g is not None else pb.SECURITY_GRADE_UNSPECIFIED


def device_from_pb(d: pb.DeviceInfo) -> DeviceInfo:
    return DeviceInfo(ip=d.ip, mac=d.mac, hdd_serial=d.hdd_serial, usb_serial=d.usb_serial,
                      os_version=d.os_version, browser_version=d.browser_version,
                      phone_id=d.phone_id)


def device_to_pb(d: DeviceInfo | dict[str, str]) -> pb.DeviceInfo:
    fields = d if isinstance(d, dict) else d.as_dict()
    return pb.DeviceInfo(**fields)


def agreements_from_pb(a: pb.CustomerAgreements) -> Agreements:
    return Agreements(a.special_agreement, a.sms_result_notice, a.overseas_departure_confirmed)


def agreements_to_pb(a: Agreements) -> pb.CustomerAgreements:
    return pb.CustomerAgreements(special_agreement=a.special_agreement,
                                 sms_result_notice=a.sms_result_notice,
                                 overseas_departure_confirmed=a.overseas_departure_confirmed)


def decision_to_pb(d: Decision, *, decision_id: str, decided_at: float, customer_id: str,
                   amount: int) -> pb.TransferDecision:
    limits = d.limits
    return pb.TransferDecision(
        decision_id=decision_id, outcome=OUTCOME.to_pb(d.outcome),
        reasons=[pb.DecisionReason(code=r.why.value, message=r.message) for r in d.reasons],
        message=d.message, grade=_grade(d.grade),
        per_transfer_limit_krw=limits.per_transfer if limits else 0,
        daily_limit_krw=limits.daily if limits else 0, consumed_krw=d.consumed,
        used_today_krw=d.used_today, daily_left_krw=d.daily_left,
        additional_kinds=[ADDITIONAL.to_pb(k) for k in d.additional_kinds],
        exemptions=[e.value for e in d.exemptions],
        no_certificate=d.no_certificate.value if d.no_certificate else "",
        attempts_left=-1 if d.attempts_left is None else d.attempts_left, day=d.day,
        decided_at=decided_at, customer_id=customer_id, amount_krw=amount)


def answered_to_pb(a: Answered, customer_id: str, amount: int) -> pb.TransferDecision:
    out = decision_to_pb(a.decision, decision_id=a.decision_id, decided_at=a.decided_at,
                         customer_id=customer_id, amount=amount)
    if a.first is not None:
        out.first_decision.CopyFrom(decision_to_pb(
            a.first.decision, decision_id=a.first.decision_id, decided_at=a.first.decided_at,
            customer_id=customer_id, amount=amount))
    return out


def row_to_pb(row: repo.DecisionRow, *, with_device: bool = True) -> pb.TransferDecision:
    from devices.policy.decision import from_record

    out = decision_to_pb(from_record(row.decision), decision_id=row.id,
                         decided_at=row.decided_at, customer_id=row.customer_id,
                         amount=row.amount)
    out.released = row.released_at is not None
    if with_device:
        out.device.CopyFrom(device_to_pb(row.device))
    return out


def counter_to_pb(c: Counter) -> pb.InputCounter:
    return pb.InputCounter(kind=INPUT.to_pb(c.kind), failures=c.failures,
                           restricted=c.restricted, threshold=c.threshold,
                           attempts_left=c.attempts_left, message=c.message())


def medium_to_pb(m: HeldMedium) -> pb.HeldMedium:
    return pb.HeldMedium(medium=MEDIUM.to_pb(m.kind), serial=m.serial, state=m.state.value,
                         braille=m.braille, issued_here=m.issued_here,
                         registered_at_branch=m.at_branch)


def customer_to_pb(v: CustomerView) -> pb.PolicyCustomer:
    c = v.customer
    own, contract = c.own_limits, c.contract
    return pb.PolicyCustomer(
        customer_id=c.customer_id, kind=KIND.to_pb(c.kind),
        agreements=agreements_to_pb(c.agreements),
        best_grade=_grade(v.best_grade),
        grades=[pb.GradeLimits(grade=GRADE.to_pb(g), max_per_transfer_krw=top.per_transfer,
                               max_daily_krw=top.daily,
                               per_transfer_krw=v.effective[g].per_transfer,
                               daily_krw=v.effective[g].daily)
                for g, top in v.ceilings.items()],
        own_per_transfer_krw=own.per_transfer if own else 0,
        own_daily_krw=own.daily if own else 0,
        contract_reference=contract.reference if contract else "",
        contract_grade=_grade(contract.grade if contract else None),
        media=[medium_to_pb(m) for m in v.held], day=v.day, used_today_krw=v.used_today,
        suspension=v.suspension.value if v.suspension else "",
        counters=[counter_to_pb(k) for k in v.counters.values()],
        designated_terminals=v.terminals, agreed_at=c.activity.agreed_at,
        registered_at=c.activity.registered_at, last_used_at=c.activity.last_used_at)


def terminal_to_pb(t: repo.Terminal) -> pb.DesignatedTerminal:
    return pb.DesignatedTerminal(terminal_id=t.id, label=t.label,
                                 device=device_to_pb(t.device), channel=t.channel,
                                 registered_at=t.registered_at)


def incident_to_pb(i: repo.Incident) -> pb.DeviceIncident:
    return pb.DeviceIncident(incident_id=i.id, field=i.field, value=i.value, reason=i.reason,
                             reported_at=i.reported_at)
