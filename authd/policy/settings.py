"""The ``[policy]`` section: transfer authorisation rules with the defaults of DOMAIN §2-§7."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from authd.settings import setting
from devices.policy.calendar import KOREA_UTC_OFFSET_HOURS
from devices.policy.counters import DEFAULT_THRESHOLDS, InputKind
from devices.policy.exemptions import E_COMMERCE_THRESHOLD_KRW, AdditionalKind, Exemption
from devices.policy.grades import DEFAULT_GRADE_LIMITS, MAX_KRW, Grade, Limits
from devices.policy.inactivity import InactivityRules
from devices.policy.terminals import IDENTIFYING, Field

_G = DEFAULT_GRADE_LIMITS


@dataclass(frozen=True)
class PolicySettings:
    SECTION: ClassVar[str] = "policy"
    personal_safe_per_transfer: int = setting(
        _G[Grade.PERSONAL_SAFE].per_transfer,
        "personal safe grade (OTP): most KRW per transfer (FAQ; IB art. 9(1))")
    personal_safe_daily: int = setting(
        _G[Grade.PERSONAL_SAFE].daily, "personal safe grade (OTP): most KRW per day")
    personal_general_per_transfer: int = setting(
        _G[Grade.PERSONAL_GENERAL].per_transfer,
        "personal general grade (security card): most KRW per transfer (FAQ)")
    personal_general_daily: int = setting(
        _G[Grade.PERSONAL_GENERAL].daily, "personal general grade (security card): most KRW "
                                          "per day")
    corporate_safe_per_transfer: int = setting(
        _G[Grade.CORPORATE_SAFE].per_transfer,
        "corporate safe grade (OTP): most KRW per transfer (FAQ; IB art. 9(1))")
    corporate_safe_daily: int = setting(
        _G[Grade.CORPORATE_SAFE].daily, "corporate safe grade (OTP): most KRW per day")
    e_commerce_no_certificate_below: int = setting(
        E_COMMERCE_THRESHOLD_KRW, "electronic-commerce transfers below this many KRW need no "
                                  "certificate (EFT art. 7(1)4)")
    additional_kinds: tuple[str, ...] = setting(
        tuple(k.value for k in AdditionalKind),
        "additional authentication accepted from a terminal that is not designated "
        "(EFT art. 2(1)17): sms, ars, two_channel")
    exemptions: tuple[str, ...] = setting(
        tuple(e.value for e in Exemption),
        "exemptions from additional authentication this institution applies (EFT art. "
        "14(1)6): special_agreement, sms_result_notice, overseas_departure, braille_card, "
        "branch_token, own_account, otp")
    designation_fields: tuple[str, ...] = setting(
        tuple(f.value for f in IDENTIFYING),
        "device information a designated terminal must match (of mac, hdd_serial, "
        "usb_serial, phone_id, ip, os_version, browser_version)")
    max_terminals_per_customer: int = setting(10, "designated terminals a customer may keep")
    duplicate_window_seconds: float = setting(
        60.0, "an identical order approved within this many seconds is a duplicate "
              "(EFT art. 12(3))")
    user_password_threshold: int = setting(
        DEFAULT_THRESHOLDS[InputKind.USER_PASSWORD],
        "consecutive wrong user passwords that restrict the service (IB art. 11(1))")
    certificate_password_threshold: int = setting(
        DEFAULT_THRESHOLDS[InputKind.CERTIFICATE_PASSWORD],
        "consecutive wrong certificate passwords that restrict the service")
    security_card_answer_threshold: int = setting(
        DEFAULT_THRESHOLDS[InputKind.SECURITY_CARD_ANSWER],
        "consecutive wrong security-card answers, reported by the backend, that restrict the "
        "service (answers verified by authd count on the card itself)")
    account_password_threshold: int = setting(
        DEFAULT_THRESHOLDS[InputKind.ACCOUNT_PASSWORD],
        "consecutive wrong account passwords that restrict the service")
    registration_days: int = setting(
        5, "days after the agreement within which internet banking must be registered (FAQ)")
    unused_months: int = setting(
        12, "months without use after which internet banking is suspended (EFT art. 14(2)2)")
    call_centre_minimum_age: int = setting(
        14, "the call centre lifts a suspension for personal customers of this age or over")
    utc_offset_hours: int = setting(
        KOREA_UTC_OFFSET_HOURS, "the calendar day of daily limits, hours east of UTC (Korea: 9)")
    retention_years: float = setting(5.0, "decision records are kept this long (EFT art. 22(1))")
    small_transfer_krw: int = setting(
        10_000, "decisions on transfers of this many KRW or less are small transactions")
    small_retention_years: float = setting(
        1.0, "small-transaction decision records are kept this long (EFT art. 22(2))")
    writers: int = setting(0, "decision writer threads; 0: 1 on SQLite, 4 on PostgreSQL")
    batch_max: int = setting(128, "decisions committed together at most (group commit)")
    export_max: int = setting(10_000, "records in one export of a customer's records")

    def grade_limits(self) -> dict[Grade, Limits]:
        return {Grade.PERSONAL_SAFE: Limits(self.personal_safe_per_transfer,
                                            self.personal_safe_daily),
                Grade.PERSONAL_GENERAL: Limits(self.personal_general_per_transfer,
                                               self.personal_general_daily),
                Grade.CORPORATE_SAFE: Limits(self.corporate_safe_per_transfer,
                                             self.corporate_safe_daily)}

    def thresholds(self) -> dict[InputKind, int]:
        return {InputKind.USER_PASSWORD: self.user_password_threshold,
                InputKind.CERTIFICATE_PASSWORD: self.certificate_password_threshold,
                InputKind.SECURITY_CARD_ANSWER: self.security_card_answer_threshold,
                InputKind.ACCOUNT_PASSWORD: self.account_password_threshold}

    def inactivity(self) -> InactivityRules:
        return InactivityRules(self.registration_days, self.unused_months,
                               self.call_centre_minimum_age, self.utc_offset_hours)

    def accepted_additional(self) -> tuple[AdditionalKind, ...]:
        return tuple(AdditionalKind(k) for k in self.additional_kinds)

    def applied_exemptions(self) -> frozenset[Exemption]:
        return frozenset(Exemption(e) for e in self.exemptions)

    def matched_fields(self) -> tuple[Field, ...]:
        return tuple(Field(f) for f in self.designation_fields)

    def problems(self) -> list[str]:
        out = []
        for grade, limits in self.grade_limits().items():
            if not (1 <= limits.per_transfer <= limits.daily <= MAX_KRW):
                out.append(f"{grade.value}: per_transfer must be 1..daily and daily at most "
                           f"{MAX_KRW}")
        if not 0 <= self.e_commerce_no_certificate_below <= MAX_KRW:
            out.append(f"e_commerce_no_certificate_below must be 0..{MAX_KRW}")
        kinds = {k.value for k in AdditionalKind}
        if not self.additional_kinds or set(self.additional_kinds) - kinds:
            out.append(f"additional_kinds must be some of {', '.join(sorted(kinds))}")
        if set(self.exemptions) - {e.value for e in Exemption}:
            out.append("exemptions must be some of "
                       + ", ".join(e.value for e in Exemption))
        fields = {f.value for f in Field}
        if not self.designation_fields or set(self.designation_fields) - fields:
            out.append(f"designation_fields must be some of {', '.join(sorted(fields))}")
        if not 1 <= self.max_terminals_per_customer <= 1000:
            out.append("max_terminals_per_customer must be 1..1000")
        if not 0 <= self.duplicate_window_seconds <= 86400:
            out.append("duplicate_window_seconds must be 0..86400")
        for kind, n in self.thresholds().items():
            if not 1 <= n <= 100:
                out.append(f"{kind.value}_threshold must be 1..100")
        if not 1 <= self.registration_days <= 366 or not 1 <= self.unused_months <= 120:
            out.append("registration_days must be 1..366 and unused_months 1..120")
        if not 0 <= self.call_centre_minimum_age <= 120:
            out.append("call_centre_minimum_age must be 0..120")
        if not -12 <= self.utc_offset_hours <= 14:
            out.append("utc_offset_hours must be -12..14")
        if not 0 < self.small_retention_years <= self.retention_years <= 100:
            out.append("small_retention_years must be above 0 and at most retention_years "
                       "(at most 100)")
        if not 0 <= self.small_transfer_krw <= MAX_KRW:
            out.append(f"small_transfer_krw must be 0..{MAX_KRW}")
        if not 0 <= self.writers <= 64 or not 1 <= self.batch_max <= 10_000:
            out.append("writers must be 0..64 and batch_max 1..10000")
        if not 1 <= self.export_max <= 1_000_000:
            out.append("export_max must be 1..1000000")
        return out


SETTINGS = PolicySettings
