"""When a transfer needs a certificate, and when additional authentication (DOMAIN §5).

EFT art. 7(1): no certificate for an inquiry of one's own accounts, for ARS / ATM / payment
terminals, for electronic-commerce transfers under 300,000 KRW, and for electronic money.
EFT art. 7(2), 14(1)6: a certificate transfer from a terminal that is not designated needs
additional authentication (SMS, ARS, two channels) unless an exemption applies: a special
agreement, SMS notice of results, a confirmed overseas departure, a braille security card user,
an HSM token registered at a branch and used, a transfer to one's own account, an OTP used.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum, unique

from devices.policy.orders import Channel, Order, Purpose, Receiving


@unique
class NoCertificate(StrEnum):
    """Why an order needs no certificate (EFT art. 7(1))."""

    OWN_ACCOUNT_INQUIRY = "own_account_inquiry"  # 1호
    ARS_ATM = "ars_atm"  # 2호
    SMALL_E_COMMERCE = "small_e_commerce"  # 4호: under the e-commerce threshold
    E_MONEY = "e_money"  # 5호


@unique
class Exemption(StrEnum):
    """Why no additional authentication is needed (EFT art. 14(1)6 가-사)."""

    SPECIAL_AGREEMENT = "special_agreement"  # 가
    SMS_RESULT_NOTICE = "sms_result_notice"  # 나
    OVERSEAS_DEPARTURE = "overseas_departure"  # 다
    BRAILLE_CARD = "braille_card"  # 라
    BRANCH_TOKEN = "branch_token"  # 마
    OWN_ACCOUNT = "own_account"  # 바
    OTP = "otp"  # 사


@unique
class AdditionalKind(StrEnum):
    SMS = "sms"
    ARS = "ars"
    TWO_CHANNEL = "two_channel"


E_COMMERCE_THRESHOLD_KRW = 300_000


def no_certificate(order: Order, e_commerce_threshold: int = E_COMMERCE_THRESHOLD_KRW
                   ) -> NoCertificate | None:
    if order.purpose is Purpose.OWN_ACCOUNT_INQUIRY:
        return NoCertificate.OWN_ACCOUNT_INQUIRY
    if order.channel is Channel.ARS_ATM:
        return NoCertificate.ARS_ATM
    if order.channel is Channel.E_MONEY:
        return NoCertificate.E_MONEY
    if order.channel is Channel.E_COMMERCE and order.amount < e_commerce_threshold:
        return NoCertificate.SMALL_E_COMMERCE
    return None


@dataclass(frozen=True)
class Agreements:
    """What the customer agreed at the branch (kept on the customer's profile)."""

    special_agreement: bool = False
    sms_result_notice: bool = False
    overseas_departure_confirmed: bool = False


def exemptions(order: Order, agreements: Agreements, *, braille_card_user: bool,
               branch_token_used: bool, otp_used: bool) -> list[Exemption]:
    """Every exemption from additional authentication that applies to this order."""
    found = []
    if agreements.special_agreement:
        found.append(Exemption.SPECIAL_AGREEMENT)
    if agreements.sms_result_notice:
        found.append(Exemption.SMS_RESULT_NOTICE)
    if agreements.overseas_departure_confirmed:
        found.append(Exemption.OVERSEAS_DEPARTURE)
    if braille_card_user:
        found.append(Exemption.BRAILLE_CARD)
    if branch_token_used:
        found.append(Exemption.BRANCH_TOKEN)
    if order.receiving is Receiving.OWN_ACCOUNT:
        found.append(Exemption.OWN_ACCOUNT)
    if otp_used:
        found.append(Exemption.OTP)
    return found


def additional_required(*, designated: bool, exempt: list[Exemption],
                        done: AdditionalKind | None, accepted: tuple[AdditionalKind, ...]
                        ) -> bool:
    """Whether the order must stop for additional authentication."""
    if designated or exempt:
        return False
    return done is None or done not in accepted
