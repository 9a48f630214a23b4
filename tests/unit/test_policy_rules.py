"""The pure transfer rules (devices/policy) with the numbers of DOMAIN §2, §4, §5, §7."""

from __future__ import annotations

import datetime as dt

import pytest

from devices.errors import BadRequest, NotPermitted
from devices.policy import counters as ctr
from devices.policy import exemptions as ex
from devices.policy import grades as gr
from devices.policy import inactivity as ina
from devices.policy.calendar import day_ends_at, day_of
from devices.policy.decision import Decision, Outcome, Reason, Why, from_record, to_record
from devices.policy.orders import Channel, Order, Purpose, Receiving
from devices.policy.terminals import (
    DeviceInfo,
    Field,
    designated_by,
    incident_keys,
    normalise,
    require_device,
)

KST = dt.timezone(dt.timedelta(hours=9))


def order(amount: int = 1_000, **kw: object) -> Order:
    base: dict[str, object] = dict(institution="bank-a", customer_id="kim",
                                   purpose=Purpose.TRANSFER, amount=amount,
                                   receiving=Receiving.OTHER, to_account="110-1",
                                   channel=Channel.INTERNET_BANKING,
                                   idempotency_key="key-00000001")
    base.update(kw)
    return Order(**base)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- calendar

def test_the_day_is_the_korean_calendar_day():
    just_before = dt.datetime(2026, 3, 1, 23, 59, 59, tzinfo=KST).timestamp()
    assert day_of(just_before) == "2026-03-01"
    assert day_of(just_before + 1) == "2026-03-02"
    # 15:00 UTC is midnight in Seoul: the UTC date still says the 1st
    assert day_of(dt.datetime(2026, 3, 1, 15, 0, tzinfo=dt.UTC).timestamp()) == "2026-03-02"
    assert day_ends_at(just_before) == just_before + 1


# --------------------------------------------------------------------------- grades

def test_grades_and_their_default_limits():
    limits = gr.DEFAULT_GRADE_LIMITS
    assert limits[gr.Grade.PERSONAL_SAFE] == gr.Limits(100_000_000, 500_000_000)
    assert limits[gr.Grade.PERSONAL_GENERAL] == gr.Limits(10_000_000, 50_000_000)
    assert limits[gr.Grade.CORPORATE_SAFE] == gr.Limits(1_000_000_000, 5_000_000_000)
    P, C = gr.CustomerKind.PERSONAL, gr.CustomerKind.CORPORATE
    assert gr.grade_for(P, gr.GradeMedium.OTP) is gr.Grade.PERSONAL_SAFE
    assert gr.grade_for(P, gr.GradeMedium.SECURITY_CARD) is gr.Grade.PERSONAL_GENERAL
    assert gr.grade_for(C, gr.GradeMedium.OTP) is gr.Grade.CORPORATE_SAFE
    assert gr.grade_for(C, gr.GradeMedium.SECURITY_CARD) is None
    assert gr.best_grade(P, {gr.GradeMedium.SECURITY_CARD, gr.GradeMedium.OTP}) is (
        gr.Grade.PERSONAL_SAFE)
    assert gr.best_grade(P, set()) is None


def test_own_limits_stay_within_the_grade_unless_a_contract_says_more():
    g, top = gr.Grade.PERSONAL_SAFE, gr.DEFAULT_GRADE_LIMITS
    own = gr.Limits(5_000_000, 20_000_000)
    assert gr.effective(g, top, own, None) == own
    assert gr.effective(gr.Grade.PERSONAL_GENERAL, top, gr.Limits(50_000_000, 60_000_000),
                        None) == gr.Limits(10_000_000, 50_000_000)
    contract = gr.Contract("C-1", g, gr.Limits(300_000_000, 1_000_000_000))
    assert gr.ceiling(g, top, contract) == contract.ceiling
    assert gr.ceiling(gr.Grade.PERSONAL_GENERAL, top, contract) == top[
        gr.Grade.PERSONAL_GENERAL]
    gr.check_change(own, gr.Limits(1_000_000, 2_000_000), top[g], at_branch=False)  # lower
    with pytest.raises(NotPermitted, match="only at a branch"):
        gr.check_change(own, gr.Limits(6_000_000, 20_000_000), top[g], at_branch=False)
    gr.check_change(own, gr.Limits(100_000_000, 500_000_000), top[g], at_branch=True)
    with pytest.raises(NotPermitted, match="contract"):
        gr.check_change(own, gr.Limits(100_000_001, 500_000_000), top[g], at_branch=True)
    with pytest.raises(BadRequest):
        gr.Limits(2, 1).check()
    with pytest.raises(BadRequest):
        gr.Limits(0, 1).check()


# --------------------------------------------------------------------------- orders

def test_orders_are_checked_and_fingerprinted():
    assert order().fingerprint() == order(idempotency_key="another-key-1").fingerprint()
    assert order().fingerprint() != order(to_account="110-2").fingerprint()
    assert order().fingerprint() != order(amount=1_001).fingerprint()
    assert order().signing_bytes() != order(idempotency_key="another-key-1").signing_bytes()
    for bad in (order(amount=0), order(amount=-5), order(amount=10**16),
                order(idempotency_key="short"), order(to_account=""),
                order(purpose=Purpose.OWN_ACCOUNT_INQUIRY, amount=1)):
        with pytest.raises(BadRequest):
            bad.check()
    order(purpose=Purpose.OWN_ACCOUNT_INQUIRY, amount=0, to_account="").check()


# --------------------------------------------------------------------------- exemptions

def test_no_certificate_cases_of_eft_article_7_1():
    assert ex.no_certificate(order(purpose=Purpose.OWN_ACCOUNT_INQUIRY, amount=0)) is (
        ex.NoCertificate.OWN_ACCOUNT_INQUIRY)
    assert ex.no_certificate(order(channel=Channel.ARS_ATM)) is ex.NoCertificate.ARS_ATM
    assert ex.no_certificate(order(299_999, channel=Channel.E_COMMERCE)) is (
        ex.NoCertificate.SMALL_E_COMMERCE)
    assert ex.no_certificate(order(300_000, channel=Channel.E_COMMERCE)) is None
    assert ex.no_certificate(order(channel=Channel.E_MONEY)) is ex.NoCertificate.E_MONEY
    assert ex.no_certificate(order()) is None


def test_exemptions_from_additional_authentication():
    none = ex.Agreements()
    assert ex.exemptions(order(), none, braille_card_user=False, branch_token_used=False,
                         otp_used=False) == []
    all_of = ex.exemptions(order(receiving=Receiving.OWN_ACCOUNT),
                           ex.Agreements(True, True, True), braille_card_user=True,
                           branch_token_used=True, otp_used=True)
    assert all_of == list(ex.Exemption)
    accepted = tuple(ex.AdditionalKind)
    assert ex.additional_required(designated=False, exempt=[], done=None, accepted=accepted)
    assert not ex.additional_required(designated=True, exempt=[], done=None, accepted=accepted)
    assert not ex.additional_required(designated=False, exempt=[ex.Exemption.OTP], done=None,
                                      accepted=accepted)
    assert not ex.additional_required(designated=False, exempt=[],
                                      done=ex.AdditionalKind.SMS, accepted=accepted)
    assert ex.additional_required(designated=False, exempt=[], done=ex.AdditionalKind.SMS,
                                  accepted=(ex.AdditionalKind.ARS,))


# --------------------------------------------------------------------------- counters

@pytest.mark.parametrize(("kind", "threshold"), list(ctr.DEFAULT_THRESHOLDS.items()))
def test_consecutive_wrong_inputs_restrict(kind: ctr.InputKind, threshold: int):
    assert threshold == (5 if kind is ctr.InputKind.ACCOUNT_PASSWORD else 3)
    c = ctr.Counter(kind, 0, False, threshold)
    for _ in range(threshold - 1):
        c = ctr.after_input(c, ok=False)
    assert not c.restricted and c.attempts_left == 1
    assert ctr.after_input(c, ok=True).failures == 0
    c = ctr.after_input(c, ok=False)
    assert c.restricted and c.attempts_left == 0
    assert ctr.after_input(c, ok=True) == c


def test_unlock_rules():
    P, C = gr.CustomerKind.PERSONAL, gr.CustomerKind.CORPORATE
    U, A = ctr.InputKind.USER_PASSWORD, ctr.InputKind.ACCOUNT_PASSWORD
    ctr.check_unlock(A, C, at_branch=True, password_correct=False, identity_checked=False)
    ctr.check_unlock(U, P, at_branch=False, password_correct=True, identity_checked=True)
    for kind, who, right, checked in ((U, P, True, False), (U, P, False, True),
                                      (U, C, True, True), (A, P, True, True)):
        with pytest.raises(NotPermitted):
            ctr.check_unlock(kind, who, at_branch=False, password_correct=right,
                             identity_checked=checked)


# --------------------------------------------------------------------------- inactivity

def test_suspension_after_5_days_unregistered_or_12_months_unused():
    rules = ina.InactivityRules()
    agreed = dt.datetime(2026, 1, 10, 12, 0, tzinfo=KST).timestamp()
    day = 86400
    fresh = ina.Activity(agreed, 0, 0, 0)
    assert ina.suspension(fresh, agreed + 5 * day, rules) is None
    assert ina.suspension(fresh, agreed + 5 * day + 1, rules) is ina.Suspension.NOT_REGISTERED
    used = ina.Activity(agreed, agreed, agreed + day, 0)
    a_year_on = dt.datetime(2027, 1, 11, 12, 0, tzinfo=KST).timestamp()
    assert ina.suspension(used, a_year_on, rules) is None
    assert ina.suspension(used, a_year_on + 1, rules) is ina.Suspension.UNUSED
    lifted = ina.Activity(agreed, agreed, agreed + day, a_year_on)
    assert ina.suspension(lifted, a_year_on + 1, rules) is None
    # a month end: 12 months after 29 Feb is 28 Feb
    leap = dt.datetime(2028, 2, 29, 9, 0, tzinfo=KST).timestamp()
    assert ina.add_months(leap, 12, 9) == dt.datetime(2029, 2, 28, 9, 0, tzinfo=KST).timestamp()


def test_how_a_suspension_is_lifted():
    rules = ina.InactivityRules()
    P, C = gr.CustomerKind.PERSONAL, gr.CustomerKind.CORPORATE
    ina.check_lift(ina.LiftChannel.BRANCH, C, strong_login=False, age=None, rules=rules)
    ina.check_lift(ina.LiftChannel.ONLINE, C, strong_login=True, age=None, rules=rules)
    ina.check_lift(ina.LiftChannel.CALL_CENTRE, P, strong_login=False, age=14, rules=rules)
    for channel, who, strong, age in ((ina.LiftChannel.ONLINE, P, False, 30),
                                      (ina.LiftChannel.CALL_CENTRE, P, True, 13),
                                      (ina.LiftChannel.CALL_CENTRE, C, True, 40)):
        with pytest.raises(NotPermitted):
            ina.check_lift(channel, who, strong_login=strong, age=age, rules=rules)


# --------------------------------------------------------------------------- terminals

def test_device_information_is_normalised_and_checked():
    d = normalise(DeviceInfo(ip=" 2001:DB8::0001 ", mac="00-1A-2B-3C-4D-5E",
                             hdd_serial="wd-wx11", os_version="Windows 11"))
    assert (d.ip, d.mac, d.hdd_serial) == ("2001:db8::1", "00:1a:2b:3c:4d:5e", "WD-WX11")
    assert normalise(DeviceInfo(mac="001a2b3c4d5e")).mac == "00:1a:2b:3c:4d:5e"
    for bad in (DeviceInfo(mac="00:1a:2b:3c:4d"), DeviceInfo(mac="00:1a-2b:3c:4d:5e"),
                DeviceInfo(ip="256.1.1.1"), DeviceInfo(phone_id="!"),
                DeviceInfo(hdd_serial="x" * 65), DeviceInfo(os_version="a\tb")):
        with pytest.raises(BadRequest):
            normalise(bad)
    with pytest.raises(BadRequest):
        require_device(DeviceInfo(ip="192.0.2.1"), identifying=True)
    with pytest.raises(BadRequest):
        require_device(DeviceInfo(), identifying=False)


def test_a_designated_terminal_matches_by_its_identifiers():
    home = normalise(DeviceInfo(ip="192.0.2.1", mac="00:1a:2b:3c:4d:5e", hdd_serial="WD-1"))
    moved = normalise(DeviceInfo(ip="192.0.2.99", mac="00:1A:2B:3C:4D:5E", hdd_serial="wd-1",
                                 browser_version="Chrome 130"))
    assert designated_by(home, moved)
    assert not designated_by(home, normalise(DeviceInfo(mac="00:1a:2b:3c:4d:5e")))
    assert not designated_by(normalise(DeviceInfo(ip="192.0.2.1")), moved)  # IP alone: none
    assert designated_by(home, moved, (Field.MAC,))
    assert incident_keys(moved) == [(Field.IP, "192.0.2.99"), (Field.MAC, "00:1a:2b:3c:4d:5e"),
                                    (Field.HDD_SERIAL, "WD-1")]


def test_a_decision_round_trips_through_its_record():
    d = Decision(Outcome.OVER_LIMIT, (Reason(Why.OVER_DAILY, "left 0"),),
                 grade=gr.Grade.PERSONAL_GENERAL, limits=gr.Limits(10, 50), used_today=50,
                 additional_kinds=(ex.AdditionalKind.SMS,), exemptions=(ex.Exemption.OTP,),
                 no_certificate=ex.NoCertificate.ARS_ATM, attempts_left=2, day="2026-01-01",
                 extra={"fields": "mac"})
    assert from_record(to_record(d)) == d
    assert d.daily_left == 0 and d.message == "left 0"


def test_the_policy_section_defaults_and_problems():
    from authd.policy.settings import PolicySettings
    from authd.settings import ConfigError, load_section

    s = load_section(PolicySettings, "policy", {})
    assert s.grade_limits() == gr.DEFAULT_GRADE_LIMITS
    assert s.thresholds() == ctr.DEFAULT_THRESHOLDS
    assert s.inactivity() == ina.InactivityRules(5, 12, 14, 9)
    assert s.applied_exemptions() == frozenset(ex.Exemption)
    with pytest.raises(ConfigError) as err:
        load_section(PolicySettings, "policy", {
            "personal_safe_per_transfer": 600_000_000, "additional_kinds": ["fax"],
            "exemptions": ["friendly_face"], "account_password_threshold": 0,
            "designation_fields": []})
    text = str(err.value)
    for word in ("personal_safe", "additional_kinds", "exemptions", "account_password",
                 "designation_fields"):
        assert word in text
