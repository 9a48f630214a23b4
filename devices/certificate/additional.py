"""Additional authentication (추가인증; CA art. 2(8), 6(4)5): the proof a reissue, and the
registration of another bank's certificate, need beyond the login (FAQ): an ARS call, an SMS
code, or a one-time number the customer registered at a branch.

The kinds and the proof are defined here; who checks a proof is behind the daemon's
``AdditionalAuthenticator`` interface (the branch-registered number is checked by authd, SMS
and ARS by the bank's own channels).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import StrEnum, unique

from devices.errors import BadRequest

ONE_TIME_NUMBER_DIGITS = 8
MAX_ATTEMPTS = 3  # DOMAIN §2: three wrong identity inputs restrict the service


@unique
class ProofKind(StrEnum):
    BRANCH_NUMBER = "branch_number"  # 영업점에서 등록한 1회용 인증번호
    SMS = "sms"  # 휴대폰 SMS
    ARS = "ars"  # 자동응답 전화


@unique
class Purpose(StrEnum):
    REISSUE = "reissue"
    REGISTER_OTHER_BANK = "register_other_bank"


@dataclass(frozen=True)
class Proof:
    kind: ProofKind
    value: str  # the number or code the customer gave; never logged, never stored

    def __repr__(self) -> str:
        return f"Proof({self.kind.value}, ***)"


def new_number(digits: int = ONE_TIME_NUMBER_DIGITS) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(digits))


def check_number(value: str, digits: int = ONE_TIME_NUMBER_DIGITS) -> str:
    if len(value) != digits or not value.isascii() or not value.isdigit():
        raise BadRequest(f"the one-time number is {digits} digits", field="proof")
    return value
