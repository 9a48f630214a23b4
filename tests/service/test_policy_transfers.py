"""Transfer decisions through a real gRPC channel, on SQLite and PostgreSQL: grades and limits,
additional authentication and its exemptions, the no-certificate cases, duplicates, media."""

from __future__ import annotations

from typing import Any

import grpc

from authd.v1 import otp_pb2
from authd.v1 import policy_pb2 as P
from tests.policy_bank import HOME_PC, NEW_PC, Bank, codes_of, status_of

APPROVED = P.DECISION_APPROVED


def test_designated_terminal_with_otp_is_approved_and_counted(server: Any, store_url: str):
    bank = Bank(server(store_url=store_url))
    bank.customer("kim")
    otp = bank.otp("kim")
    bank.designate("kim")
    d = bank.transfer("kim", 30_000_000, otp=otp)
    assert d.outcome == APPROVED, d.message
    assert d.grade == P.SECURITY_GRADE_PERSONAL_SAFE
    assert (d.per_transfer_limit_krw, d.daily_limit_krw) == (100_000_000, 500_000_000)
    assert d.consumed_krw == 30_000_000 and d.used_today_krw == 30_000_000
    assert d.daily_left_krw == 470_000_000
    # the OTP is exempt from additional authentication (the terminal is then not looked at)
    assert codes_of(d) == ["within_limits", "exempt_from_additional_authentication"]
    assert list(d.exemptions) == ["otp"] and len(d.decision_id) == 32
    assert bank.view("kim").used_today_krw == 30_000_000


def test_safe_grade_limits_per_transfer_and_per_day(server: Any, store_url: str):
    bank = Bank(server(store_url=store_url))
    bank.customer("lee")
    otp = bank.otp("lee")
    bank.designate("lee")
    over = bank.transfer("lee", 100_000_001, otp=otp, code="000000")
    assert over.outcome == P.DECISION_OVER_LIMIT and codes_of(over) == ["over_per_transfer_limit"]
    assert over.consumed_krw == 0 and over.per_transfer_limit_krw == 100_000_000
    for i in range(5):
        assert bank.transfer("lee", 100_000_000, otp=otp, to_account=f"{i}").outcome == APPROVED
    last = bank.transfer("lee", 1, otp=otp, code="000000")
    assert last.outcome == P.DECISION_OVER_LIMIT and codes_of(last) == ["over_daily_limit"]
    assert last.daily_left_krw == 0 and last.used_today_krw == 500_000_000
    # the refused orders never evaluated the code: the device has no failure
    status = bank.otp_teller.GetStatus(otp_pb2.GetStatusRequest(serial=otp.serial))
    assert status.consecutive_failures == 0


def test_security_card_customer_hits_the_general_grade(server: Any, store_url: str):
    bank = Bank(server(store_url=store_url))
    bank.customer("park")
    codes = bank.card("park")
    bank.designate("park")
    d = bank.transfer("park", 10_000_001, card=bank.challenge("park", codes))
    assert d.outcome == P.DECISION_OVER_LIMIT and d.grade == P.SECURITY_GRADE_PERSONAL_GENERAL
    assert (d.per_transfer_limit_krw, d.daily_limit_krw) == (10_000_000, 50_000_000)
    for i in range(5):
        ok = bank.transfer("park", 10_000_000, card=bank.challenge("park", codes),
                           to_account=f"{i}")
        assert ok.outcome == APPROVED, ok.message
    d = bank.transfer("park", 1, card=bank.challenge("park", codes))
    assert d.outcome == P.DECISION_OVER_LIMIT and codes_of(d) == ["over_daily_limit"]


def test_new_pc_needs_additional_authentication_unless_exempt(server: Any, store_url: str):
    bank = Bank(server(store_url=store_url))
    bank.customer("choi")
    codes = bank.card("choi")
    bank.designate("choi")
    home = bank.transfer("choi", 1_000_000, card=bank.challenge("choi", codes))
    assert home.outcome == APPROVED
    assert codes_of(home) == ["within_limits", "designated_terminal"]
    asked = bank.transfer("choi", 1_000_000, device=NEW_PC, card=bank.challenge("choi", codes),
                          to_account="1")
    assert asked.outcome == P.DECISION_ADDITIONAL_AUTHENTICATION_REQUIRED
    assert list(asked.additional_kinds) == [P.ADDITIONAL_SMS, P.ADDITIONAL_ARS,
                                            P.ADDITIONAL_TWO_CHANNEL]
    assert asked.consumed_krw == 0 and codes_of(asked) == ["terminal_not_designated"]
    done = bank.transfer("choi", 1_000_000, device=NEW_PC, card=bank.challenge("choi", codes),
                         additional_done=P.ADDITIONAL_SMS, to_account="2")
    assert done.outcome == APPROVED and "additional_authentication_done" in codes_of(done)
    # own-account transfers and OTP use are exempt (EFT art. 14(1)6 바, 사)
    own = bank.transfer("choi", 1_000_000, device=NEW_PC, receiving=P.RECEIVING_OWN_ACCOUNT,
                        card=bank.challenge("choi", codes), to_account="3")
    assert own.outcome == APPROVED and list(own.exemptions) == ["own_account"]
    otp = bank.otp("choi")
    with_otp = bank.transfer("choi", 1_000_000, device=NEW_PC, otp=otp, to_account="4")
    assert with_otp.outcome == APPROVED and list(with_otp.exemptions) == ["otp"]
    assert bank.view("choi").used_today_krw == 4_000_000


def test_braille_card_users_and_agreements_are_exempt(server: Any, store_url: str):
    bank = Bank(server(store_url=store_url))
    bank.customer("jung")
    codes = bank.card("jung", braille=True)
    d = bank.transfer("jung", 500_000, device=NEW_PC, card=bank.challenge("jung", codes))
    assert d.outcome == APPROVED and list(d.exemptions) == ["braille_card"]
    bank.customer("han", sms_result_notice=True)
    codes = bank.card("han")
    d = bank.transfer("han", 500_000, device=NEW_PC, card=bank.challenge("han", codes))
    assert d.outcome == APPROVED and list(d.exemptions) == ["sms_result_notice"]


def test_an_institution_that_applies_no_otp_exemption(server: Any):
    bank = Bank(server(policy={"exemptions": ["braille_card", "branch_token"]}))
    bank.customer("kang")
    otp = bank.otp("kang")
    bank.designate("kang")
    assert bank.transfer("kang", 1_000, otp=otp).outcome == APPROVED
    asked = bank.transfer("kang", 1_000, otp=otp, device=NEW_PC, to_account="2")
    assert asked.outcome == P.DECISION_ADDITIONAL_AUTHENTICATION_REQUIRED
    # nothing was evaluated: the code asked with it still works
    assert bank.transfer("kang", 1_000, otp=otp, device=NEW_PC, to_account="3",
                         additional_done=P.ADDITIONAL_ARS).outcome == APPROVED


def test_orders_that_need_no_certificate(server: Any, store_url: str):
    bank = Bank(server(store_url=store_url))
    bank.customer("yoon")
    bank.card("yoon")
    inquiry = bank.transfer("yoon", 0, device=NEW_PC, purpose=P.PURPOSE_OWN_ACCOUNT_INQUIRY,
                            receiving=P.RECEIVING_OWN_ACCOUNT)
    assert inquiry.outcome == APPROVED and inquiry.no_certificate == "own_account_inquiry"
    assert inquiry.consumed_krw == 0
    shop = bank.transfer("yoon", 299_999, device=NEW_PC, channel=P.CHANNEL_E_COMMERCE)
    assert shop.outcome == APPROVED and shop.no_certificate == "small_e_commerce"
    assert shop.consumed_krw == 299_999
    big = bank.transfer("yoon", 300_000, device=NEW_PC, channel=P.CHANNEL_E_COMMERCE)
    assert big.outcome == P.DECISION_MEDIUM_REFUSED and codes_of(big) == ["no_medium_presented"]
    atm = bank.transfer("yoon", 2_000_000, device=NEW_PC, channel=P.CHANNEL_ARS_ATM)
    assert atm.outcome == APPROVED and atm.no_certificate == "ars_atm"
    money = bank.transfer("yoon", 50_000, device=NEW_PC, channel=P.CHANNEL_E_MONEY)
    assert money.outcome == APPROVED and money.no_certificate == "e_money"
    # still within the customer's grade: the general grade's daily limit counts them
    assert bank.view("yoon").used_today_krw == 299_999 + 2_000_000 + 50_000
    over = bank.transfer("yoon", 10_000_001, device=NEW_PC, channel=P.CHANNEL_ARS_ATM)
    assert over.outcome == P.DECISION_OVER_LIMIT


def test_double_click_is_answered_once(server: Any, store_url: str):
    bank = Bank(server(store_url=store_url))
    bank.customer("seo")
    otp = bank.otp("seo")
    bank.designate("seo")
    key = bank.key()
    code = otp.next_code()
    first = bank.transfer("seo", 2_000_000, otp=otp, code=code, key=key)
    again = bank.transfer("seo", 2_000_000, otp=otp, code=code, key=key)
    assert first.outcome == APPROVED
    assert again.outcome == P.DECISION_DUPLICATE and codes_of(again) == ["same_idempotency_key"]
    assert again.first_decision.decision_id == first.decision_id
    assert again.first_decision.outcome == APPROVED and again.consumed_krw == 0
    # the same order with a new key within the window is the same order (EFT art. 12(3))
    third = bank.transfer("seo", 2_000_000, otp=otp, code=otp.next_code())
    assert third.outcome == P.DECISION_DUPLICATE and codes_of(third) == [
        "identical_order_within_window"]
    assert third.first_decision.decision_id == first.decision_id
    assert bank.view("seo").used_today_krw == 2_000_000
    # another order (another account) is not a duplicate
    other = bank.transfer("seo", 2_000_000, otp=otp, to_account="220-1")
    assert other.outcome == APPROVED
    # a key reused for a different order is an error, and changes nothing
    assert status_of(lambda: bank.transfer("seo", 3_000_000, otp=otp, key=key)) == (
        grpc.StatusCode.ALREADY_EXISTS)
    assert bank.view("seo").used_today_krw == 4_000_000
    # once the window (60 s) has passed, the same order is a new order
    bank.srv.app.db.run(lambda tx: tx.execute(
        "UPDATE policy_decisions SET decided_at = decided_at - 61 WHERE customer_id = 'seo'"))
    later = bank.transfer("seo", 2_000_000, otp=otp)
    assert later.outcome == APPROVED and bank.view("seo").used_today_krw == 6_000_000


def test_the_day_is_the_korean_calendar_day(server: Any, store_url: str):
    """Today's total is the Korean day's (UTC+9): what was counted on the previous Korean day
    does not count today."""
    import datetime
    from zoneinfo import ZoneInfo

    bank = Bank(server(store_url=store_url))
    bank.customer("jin")
    codes = bank.card("jin")
    bank.designate("jin")
    seoul = datetime.datetime.now(ZoneInfo("Asia/Seoul")).date()
    for i in range(5):  # the general grade: 10,000,000 a transfer, 50,000,000 a day
        d = bank.transfer("jin", 10_000_000, card=bank.challenge("jin", codes),
                          to_account=f"{i}")
        assert d.outcome == APPROVED and d.day == seoul.isoformat()
    over = bank.transfer("jin", 10_000_000, card=bank.challenge("jin", codes), to_account="x")
    assert over.outcome == P.DECISION_OVER_LIMIT and over.daily_left_krw == 0
    yesterday = (seoul - datetime.timedelta(days=1)).isoformat()
    bank.srv.app.db.run(lambda tx: tx.execute(
        "UPDATE policy_daily_totals SET day = ? WHERE customer_id = 'jin'", (yesterday,)))
    again = bank.transfer("jin", 10_000_000, card=bank.challenge("jin", codes), to_account="x")
    assert again.outcome == APPROVED and again.used_today_krw == 10_000_000


def test_records_past_their_retention_are_pruned(server: Any, store_url: str):
    """A decision's record is kept until its retention ends (5 years; 1 year up to
    10,000 KRW), then pruned with the decisions that follow."""
    from authd.policy.feature import PolicyFeature
    from authd.policy.service import PRUNE_EVERY

    bank = Bank(server(store_url=store_url))
    bank.customer("min")
    otp = bank.otp("min")
    old = bank.transfer("min", 10_000, otp=otp)
    kept = bank.transfer("min", 10_001, otp=otp)
    db = bank.srv.app.db
    # the small one's year has passed; the other's five years have not
    db.run(lambda tx: tx.execute(
        "UPDATE policy_decisions SET keep_until = keep_until - 366 * 86400,"
        " decided_at = decided_at - 366 * 86400 WHERE id = ?", (old.decision_id,)))
    service = bank.srv.app.require(PolicyFeature).service
    service._decided = PRUNE_EVERY * (service._decided // PRUNE_EVERY + 1) - 1
    bank.transfer("min", 1_000, otp=otp, to_account="2")
    left = db.run(lambda tx: tx.all("SELECT id FROM policy_decisions WHERE customer_id ="
                                    " 'min'"), write=False)
    ids = {r[0] for r in left}
    assert old.decision_id not in ids and kept.decision_id in ids and len(ids) == 2


def test_cancelled_transfer_gives_back_its_amount(server: Any, store_url: str):
    bank = Bank(server(store_url=store_url))
    bank.customer("oh")
    otp = bank.otp("oh")
    bank.designate("oh")
    done = [bank.transfer("oh", 100_000_000, otp=otp, to_account=f"{i}") for i in range(5)]
    assert [d.outcome for d in done] == [APPROVED] * 5
    refused = bank.transfer("oh", 1, otp=otp, to_account="8", code="000000")
    assert refused.outcome == P.DECISION_OVER_LIMIT
    back = bank.backend.CancelTransfer(P.CancelTransferRequest(
        decision_id=done[0].decision_id, reason="core banking refused"))
    assert back.released and back.consumed_krw == 100_000_000
    assert bank.view("oh").used_today_krw == 400_000_000
    again = bank.backend.CancelTransfer(P.CancelTransferRequest(decision_id=done[0].decision_id))
    assert again.released and bank.view("oh").used_today_krw == 400_000_000
    assert status_of(lambda: bank.backend.CancelTransfer(P.CancelTransferRequest(
        decision_id=refused.decision_id))) == grpc.StatusCode.PERMISSION_DENIED
    assert bank.transfer("oh", 100_000_000, otp=otp, to_account="7").outcome == APPROVED
    assert bank.view("oh").used_today_krw == 500_000_000


def test_wrong_codes_count_on_the_otp_center(server: Any, store_url: str):
    bank = Bank(server(store_url=store_url))
    bank.customer("ko")
    otp = bank.otp("ko")
    bank.designate("ko")
    wrong = bank.transfer("ko", 1_000, otp=otp, code="999999")
    assert wrong.outcome == P.DECISION_AUTHENTICATION_FAILED and wrong.attempts_left == 9
    assert codes_of(wrong) == ["wrong_code"] and wrong.consumed_krw == 0
    status = bank.otp_teller.GetStatus(otp_pb2.GetStatusRequest(serial=otp.serial))
    assert status.consecutive_failures == 1
    for i in range(9):
        last = bank.transfer("ko", 1_000, otp=otp, code="999999", to_account=f"{i}")
    assert last.outcome == P.DECISION_AUTHENTICATION_FAILED and last.attempts_left == 0
    locked = bank.transfer("ko", 1_000, otp=otp)
    assert locked.outcome == P.DECISION_MEDIUM_REFUSED and codes_of(locked) == ["medium_locked"]
    assert bank.view("ko").used_today_krw == 0


def test_a_medium_the_customer_does_not_hold_is_refused_unevaluated(server: Any,
                                                                   store_url: str):
    bank = Bank(server(store_url=store_url))
    bank.customer("a1")
    bank.customer("a2")
    mine = bank.otp("a1")
    bank.otp("a2")
    bank.designate("a2")
    d = bank.transfer("a2", 1_000, otp=mine, code="999999")
    assert d.outcome == P.DECISION_MEDIUM_REFUSED and codes_of(d) == ["not_customers_medium"]
    status = bank.otp_teller.GetStatus(otp_pb2.GetStatusRequest(serial=mine.serial))
    assert status.consecutive_failures == 0
    # nor may another customer's security-card challenge be answered for this one
    codes = bank.card("a1")
    bank.card("a2")
    d = bank.transfer("a2", 1_000, card=bank.challenge("a1", codes))
    assert d.outcome == P.DECISION_MEDIUM_REFUSED and codes_of(d) == ["not_customers_medium"]


def test_lost_device_and_restricted_card_are_refused(server: Any, store_url: str):
    bank = Bank(server(store_url=store_url))
    bank.customer("lim")
    otp = bank.otp("lim")
    bank.designate("lim")
    bank.otp_teller.ReportLost(otp_pb2.ReportLostRequest(serial=otp.serial, reason="lost"))
    d = bank.transfer("lim", 1_000, otp=otp)
    assert d.outcome == P.DECISION_MEDIUM_REFUSED and codes_of(d) == ["medium_lost"]
    codes = bank.card("lim")
    for left in (2, 1):
        wrong = bank.transfer("lim", 1_000, card=bank.challenge("lim", codes, right=False))
        assert wrong.outcome == P.DECISION_AUTHENTICATION_FAILED
        assert wrong.attempts_left == left
    third = bank.transfer("lim", 1_000, card=bank.challenge("lim", codes, right=False))
    assert third.outcome in (P.DECISION_AUTHENTICATION_FAILED, P.DECISION_MEDIUM_REFUSED)
    assert bank.view("lim").media[-1].state == "restricted" or any(
        m.state == "restricted" for m in bank.view("lim").media)
    assert status_of(lambda: bank.challenge("lim", codes)) == grpc.StatusCode.FAILED_PRECONDITION


def test_corporate_safe_grade_and_foreign_otp(server: Any, store_url: str):
    kind = P.CUSTOMER_KIND_CORPORATE
    bank = Bank(server(store_url=store_url))
    other = Bank(bank.srv, "bank-b")
    bank.customer("corp", kind=kind)
    own = bank.otp("corp")
    bank.designate("corp")
    d = bank.transfer("corp", 1_000_000_000, otp=own, corporate_role=P.CORPORATE_EMPLOYEE)
    assert d.outcome == APPROVED and d.grade == P.SECURITY_GRADE_CORPORATE_SAFE
    assert (d.per_transfer_limit_krw, d.daily_limit_krw) == (1_000_000_000, 5_000_000_000)
    # an OTP issued by bank-b, registered at a branch of bank-a by the master administrator:
    # the master uses it, an employee does not
    serial = "OTP-FOREIGN-1"
    other.customer("b-corp", kind=kind)
    device = other.otp("b-corp", serial)
    bank.otp_teller.Register(otp_pb2.RegisterRequest(serial=serial, operator_id="teller",
                                                     customer_id="corp",
                                                     master_administrator=True))
    employee = bank.transfer("corp", 1_000, otp=device, to_account="1",
                             corporate_role=P.CORPORATE_EMPLOYEE, code="000000")
    assert employee.outcome == P.DECISION_MEDIUM_REFUSED
    assert codes_of(employee) == ["employee_foreign_otp"]
    master = bank.transfer("corp", 1_000, otp=device, to_account="2",
                           corporate_role=P.CORPORATE_MASTER)
    assert master.outcome == APPROVED  # registered at a branch of bank-a
    # a corporate customer has no general grade: a security card is no transfer medium
    codes = bank.card("corp")
    d = bank.transfer("corp", 1_000, card=bank.challenge("corp", codes), to_account="3")
    assert d.outcome == P.DECISION_MEDIUM_REFUSED and codes_of(d) == ["grade_not_available"]


def test_every_decision_is_recorded_with_the_device(server: Any, store_url: str):
    bank = Bank(server(store_url=store_url))
    bank.customer("nam")
    otp = bank.otp("nam")
    small = bank.transfer("nam", 10_000, otp=otp, device=NEW_PC)
    big = bank.transfer("nam", 10_001, otp=otp, device=HOME_PC)
    explained = bank.backend.ExplainDecision(P.ExplainDecisionRequest(
        decision_id=small.decision_id))
    assert explained.outcome == APPROVED and explained.device.mac == "00:16:3e:aa:bb:cc"
    assert explained.amount_krw == 10_000 and explained.customer_id == "nam"
    export = bank.backend.ExportRecords(P.ExportRecordsRequest(customer_id="nam"))
    assert [d.decision_id for d in export.decisions] == [small.decision_id, big.decision_id]
    assert export.decisions[1].device.hdd_serial == "WD-WX11A12345"

    from authd.audit.settings import AuditSettings

    records = bank.srv.app.db.run(lambda tx: bank.srv.app.audit.for_target(
        tx, "customer:nam"), write=False)
    decided = sorted((r for r in records if r.action == "policy.transfer"), key=lambda r: r.id)
    assert [r.outcome for r in decided] == ["approved", "approved"]
    assert [r.detail["amount_krw"] for r in decided] == [10_000, 10_001]
    assert decided[1].detail["device"]["mac"] == "00:1a:2b:3c:4d:5e"
    assert {r.customer for r in decided} == {"nam"}
    # the audit's retention class: 1 year up to 10,000 KRW, 5 years above (EFT art. 22)
    audit = AuditSettings()
    assert [audit.classify(r.action, r.detail) for r in decided] == [
        "small_transaction", "default"]
    keep = bank.srv.app.db.run(lambda tx: tx.all(
        "SELECT amount, keep_until - decided_at FROM policy_decisions WHERE customer_id = 'nam'"
        " ORDER BY decided_at"), write=False)
    year = 365.25 * 86400
    assert [(a, round(k / year)) for a, k in keep] == [(10_000, 1), (10_001, 5)]
