"""Identity-input counters (DOMAIN §2; IB art. 11).

The backend checks some inputs itself (the user password, the certificate password, the
account password) and reports each outcome; authd keeps the consecutive-failure count. Three
consecutive wrong entries restrict the service (five for an account password); a success
resets the count. A restriction is lifted at a branch; a personal customer's user-password
restriction also online, with the right password and an identity check (IB art. 11(2)).
The reason is told to the user through the device used (EFT art. 14(3)).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum, unique

from devices.errors import NotPermitted
from devices.policy.grades import CustomerKind


@unique
class InputKind(StrEnum):
    USER_PASSWORD = "user_password"
    CERTIFICATE_PASSWORD = "certificate_password"
    SECURITY_CARD_ANSWER = "security_card_answer"
    ACCOUNT_PASSWORD = "account_password"


DEFAULT_THRESHOLDS: dict[InputKind, int] = {
    InputKind.USER_PASSWORD: 3,
    InputKind.CERTIFICATE_PASSWORD: 3,
    InputKind.SECURITY_CARD_ANSWER: 3,
    InputKind.ACCOUNT_PASSWORD: 5,
}

LABELS = {
    InputKind.USER_PASSWORD: "user password",
    InputKind.CERTIFICATE_PASSWORD: "certificate password",
    InputKind.SECURITY_CARD_ANSWER: "security card answer",
    InputKind.ACCOUNT_PASSWORD: "account password",
}


@dataclass(frozen=True)
class Counter:
    kind: InputKind
    failures: int
    restricted: bool
    threshold: int

    @property
    def attempts_left(self) -> int:
        return 0 if self.restricted else max(0, self.threshold - self.failures)

    def message(self) -> str:
        label = LABELS[self.kind]
        if self.restricted:
            how = ("at a branch, or online with the right password and an identity check"
                   if self.kind is InputKind.USER_PASSWORD else "at a branch")
            return (f"The service is restricted after {self.threshold} consecutive wrong "
                    f"entries of the {label}. It can be unlocked {how} (IB art. 11).")
        if self.failures:
            return (f"Wrong {label}: {self.attempts_left} attempt(s) left before the service "
                    "is restricted.")
        return f"The {label} was accepted."


def after_input(before: Counter, ok: bool) -> Counter:
    """The counter after one reported entry. A restricted counter stays restricted (an entry
    made while restricted changes nothing: only an unlock lifts it)."""
    if before.restricted:
        return before
    if ok:
        return Counter(before.kind, 0, False, before.threshold)
    failures = before.failures + 1
    return Counter(before.kind, failures, failures >= before.threshold, before.threshold)


def check_unlock(kind: InputKind, customer: CustomerKind, *, at_branch: bool,
                 password_correct: bool, identity_checked: bool) -> None:
    """Whether a restriction may be lifted this way (IB art. 11(2))."""
    if at_branch:
        return
    if kind is not InputKind.USER_PASSWORD or customer is not CustomerKind.PERSONAL:
        raise NotPermitted("this restriction is lifted only at a branch (IB art. 11(2)); "
                           "online only a personal customer's user password",
                           reason="UNLOCK_AT_BRANCH")
    if not (password_correct and identity_checked):
        raise NotPermitted("an online unlock of the user password needs the right password "
                           "and an identity check (IB art. 11(2))",
                           reason="IDENTITY_CHECK_NEEDED")
