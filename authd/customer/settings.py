"""The ``[customer]`` section: the customer area has no settings of its own yet.

It reads the OTP lockout and the security-card failure limit from ``[otp]`` and
``[security_card]``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class CustomerSettings:
    SECTION: ClassVar[str] = "customer"


SETTINGS = CustomerSettings
