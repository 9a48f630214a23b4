"""Transfer orders: what a backend asks about, and when two orders are the same one.

An order received again with the same content within a set time is confirmed with the customer
and the duplicates discarded (EFT art. 12(3)); authd answers the first decision again. Two
orders are the same when their fingerprint is: institution, customer, amount, receiving
account, kind of receiving account and channel (not the idempotency key, not the time, not the
means presented).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum, unique

from devices.errors import BadRequest
from devices.policy.grades import MAX_KRW


@unique
class Receiving(StrEnum):
    OWN_ACCOUNT = "own_account"  # the customer's own account (EFT art. 14(1)6 바)
    OTHER = "other"


@unique
class Channel(StrEnum):
    INTERNET_BANKING = "internet_banking"
    E_COMMERCE = "e_commerce"  # a payment in electronic commerce
    ARS_ATM = "ars_atm"  # ARS, ATMs and payment terminals: no certificate installable
    E_MONEY = "e_money"  # electronic money, prepaid means


@unique
class Purpose(StrEnum):
    TRANSFER = "transfer"
    OWN_ACCOUNT_INQUIRY = "own_account_inquiry"


_KEY = re.compile(r"[A-Za-z0-9._:-]{8,128}")
_ACCOUNT = re.compile(r"[0-9A-Za-z-]{1,40}")


@dataclass(frozen=True)
class Order:
    institution: str
    customer_id: str
    purpose: Purpose
    amount: int  # KRW; 0 for an inquiry
    receiving: Receiving
    to_account: str  # the receiving account number as the backend names it
    channel: Channel
    idempotency_key: str

    def check(self, max_amount: int = MAX_KRW) -> Order:
        if _KEY.fullmatch(self.idempotency_key or "") is None:
            raise BadRequest("idempotency_key must be 8..128 letters, digits or . _ : -",
                             field="idempotency_key")
        if self.purpose is Purpose.OWN_ACCOUNT_INQUIRY:
            if self.amount:
                raise BadRequest("an own-account inquiry moves no money: amount_krw must be 0",
                                 field="amount_krw")
            return self
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or \
                self.amount <= 0:
            raise BadRequest("amount_krw must be a positive number of won", field="amount_krw")
        if self.amount > max_amount:
            raise BadRequest(f"amount_krw must be at most {max_amount:,}", field="amount_krw")
        if _ACCOUNT.fullmatch(self.to_account or "") is None:
            raise BadRequest("to_account must be 1..40 letters, digits or dashes",
                             field="to_account")
        return self

    def fingerprint(self) -> str:
        """Equal for the same order sent again (EFT art. 12(3))."""
        text = "\n".join(("authd-order-v1", self.institution, self.customer_id,
                          self.purpose.value, str(self.amount), self.receiving.value,
                          self.to_account, self.channel.value))
        return hashlib.sha256(text.encode()).hexdigest()

    def signing_bytes(self) -> bytes:
        """What a customer's token or smartcard signs to authorise this order: the
        fingerprint's fields and the idempotency key, one a line (UTF-8)."""
        return "\n".join(("authd-transfer-v1", self.institution, self.customer_id,
                          self.purpose.value, str(self.amount), self.receiving.value,
                          self.to_account, self.channel.value,
                          self.idempotency_key)).encode()
